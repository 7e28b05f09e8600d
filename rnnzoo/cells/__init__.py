"""Cells: one time step each, following the Keras cell contract."""

from rnnzoo.cells.vanilla_rnn_cell import VanillaRNNCell

__all__ = ["VanillaRNNCell"]

from rnnzoo.cells.tree_cell import TreeCell  # noqa: E402

__all__ += ["TreeCell"]

from rnnzoo.cells.deep_transition_cell import DeepTransitionCell  # noqa: E402

__all__ += ["DeepTransitionCell"]

from rnnzoo.cells.output_recurrence_cell import OutputRecurrenceCell  # noqa: E402

__all__ += ["OutputRecurrenceCell"]

from rnnzoo.cells.attention_decoder_cell import AttentionDecoderCell  # noqa: E402

__all__ += ["AttentionDecoderCell"]
