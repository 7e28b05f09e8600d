"""Layers: loops and wrappers over cells."""

from rnnzoo.layers.vanilla_rnn import VanillaRNN

__all__ = ["VanillaRNN"]

from rnnzoo.layers.tree_layer import TreeLayer  # noqa: E402

__all__ += ["TreeLayer"]
from rnnzoo.layers.recurrent import Recurrent  # noqa: E402

__all__ += ["Recurrent"]

from rnnzoo.layers.bidirectional import Bidirectional  # noqa: E402
from rnnzoo.layers.deep_rnn import DeepRNN  # noqa: E402

__all__ += ["Bidirectional", "DeepRNN"]

from rnnzoo.layers.output_recurrent_rnn import OutputRecurrentRNN, ScheduledSampling  # noqa: E402

__all__ += ["OutputRecurrentRNN", "ScheduledSampling"]

from rnnzoo.attention import BahdanauAttention  # noqa: E402

__all__ += ["BahdanauAttention"]
