"""Data: task generators (NumPy, deterministic), and later TFDS builders and tree readers."""

from rnnzoo.data import tasks

__all__ = ["tasks"]

from rnnzoo.data import trees  # noqa: E402

__all__ += ["trees"]

from rnnzoo.data import seq2seq_tasks  # noqa: E402

__all__ += ["seq2seq_tasks"]
