"""Data: task generators (NumPy, deterministic), tree and parallel-text readers; TFDS builders in `datasets`."""

from rnnzoo.data import tasks

__all__ = ["tasks"]

from rnnzoo.data import trees  # noqa: E402

__all__ += ["trees"]

from rnnzoo.data import seq2seq_tasks  # noqa: E402

__all__ += ["seq2seq_tasks"]

from rnnzoo.data import parallel_text  # noqa: E402

__all__ += ["parallel_text"]
