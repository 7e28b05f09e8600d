"""Layers: loops and wrappers over cells."""

from rnnzoo.layers.vanilla_rnn import VanillaRNN

__all__ = ["VanillaRNN"]
