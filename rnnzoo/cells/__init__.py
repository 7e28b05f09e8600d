"""Cells: one time step each, following the Keras cell contract."""

from rnnzoo.cells.vanilla_rnn_cell import VanillaRNNCell

__all__ = ["VanillaRNNCell"]
