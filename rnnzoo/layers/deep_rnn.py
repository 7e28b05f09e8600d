"""`DeepRNN`: stacked recurrent layers, optionally with residual connections (section 10.5)."""

import keras
from keras import ops

from rnnzoo.foundation import check_sequence_inputs, sequence_output_mask, validate_unroll
from rnnzoo.foundation import output_size as _output_size
from rnnzoo.foundation import state_sizes as _state_sizes
from rnnzoo.layers.recurrent import Recurrent


class _ResidualStep(keras.layers.Layer):
    """Internal: a cell whose output is `cell(x_t) + x_t`, so `Recurrent`'s masking applies to the sum.

    Not serialized on its own: `DeepRNN` saves the plain cells and `residual=True`.
    """

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.state_size = cell.state_size
        self.output_size = _output_size(cell)

    def build(self, input_shape):
        if not self.cell.built:
            self.cell.build(input_shape)

    def call(self, inputs, states, training=None):
        output, new_states = self.cell(inputs, states, training=training)
        return output + inputs, new_states

    def get_initial_state(self, batch_size=None):
        if hasattr(self.cell, "get_initial_state"):
            return self.cell.get_initial_state(batch_size=batch_size)
        return [ops.zeros((batch_size, n), self.compute_dtype) for n in _state_sizes(self.cell)]


@keras.saving.register_keras_serializable(package="rnnzoo")
class DeepRNN(keras.layers.Layer):
    """A deep RNN of stacked recurrent layers (fig. 10.13a), each a cell run over time.

    Layer `i` reads the output sequence of layer `i - 1`:

        y_0 = x,   y_i = RNN_i(y_{i-1}) [+ y_{i-1} if residual and i >= 2]

    `residual=True` adds each layer's input sequence to its output from the second layer
    on (the first layer's input usually has another size), shortening the path from the
    bottom of the stack to the top. Any Keras cell works, e.g. `VanillaRNNCell`,
    `DeepTransitionCell` (a deep transition inside each layer, fig. 10.13 b and c) or
    `keras.layers.GRUCell`; the loops are `rnnzoo.layers.Recurrent`, so the layer exports to
    TFLite builtins with batch and time dynamic, and masks work as there: padded steps keep
    every layer's state and output the previous output (zeros with `zero_output_for_mask`).

    Args:
        cells: list of Keras cells, bottom first (at least one).
        residual: bool, residual connections between stacked layers (all cells must then
            have the same output size).
        return_sequences: bool, return the top layer's output at every step or only the last.
        return_state: bool, also return every layer's final states, bottom first.
        go_backwards: bool, process the sequence in reverse (sequence outputs in reverse
            order, as in Keras).
        unroll: bool or int, loop unrolling (see `Recurrent`).
        zero_output_for_mask: bool, zeros at padded steps instead of the previous output
            (see `Recurrent`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, time, features)` floating-point tensor.
        mask: optional `(batch, time)` boolean tensor, True at valid steps.
        training: bool, passed to the cells.

    Returns:
        `(batch, time, n)` or `(batch, n)` with `n` the top cell's output size; with
        `return_state`, `[outputs, *states]` with each layer's states in order.

    Example:

    >>> from rnnzoo.cells import VanillaRNNCell
    >>> layer = DeepRNN([VanillaRNNCell(8), VanillaRNNCell(8)], residual=True, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 8)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.5, fig. 10.13 (a);
        Pascanu, Gulcehre, Cho, Bengio, "How to Construct Deep Recurrent Neural Networks" (2014).
    """

    def __init__(self, cells, residual=False, return_sequences=False, return_state=False, go_backwards=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(cells, (list, tuple)) or not cells:
            raise ValueError(
                "`DeepRNN(cells=...)` must be a non-empty list of Keras cells, bottom first. "
                f"Received: cells={cells!r}"
            )
        for cell in cells:
            if not hasattr(cell, "state_size") or not hasattr(cell, "call"):
                raise ValueError(
                    "`DeepRNN(cells=...)` needs Keras cells: layers with `state_size` and "
                    f"`call(inputs, states)`. Received: cells=[..., {cell!r}, ...]"
                )
        sizes = [_output_size(cell) for cell in cells]
        if residual and len(set(sizes)) > 1:
            raise ValueError(
                "`DeepRNN(residual=True)` adds each layer's input sequence to its output, so every "
                "cell must have the same output size; use the same `units` for all cells, or "
                f"`residual=False`. Received: output sizes {sizes}"
            )
        validate_unroll(unroll, "DeepRNN")
        self.cells = list(cells)
        self.residual = bool(residual)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = unroll
        self._zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        # The direction is handled once, here (flip in, outputs in processing order), so every
        # layer of the stack runs forwards over the already reversed sequence.
        last = len(self.cells) - 1
        self.recurrent_layers = [
            Recurrent(
                _ResidualStep(cell, name=f"residual_{i}") if self.residual and i > 0 else cell,
                return_sequences=self.return_sequences or i < last,
                return_state=True,
                unroll=unroll,
                zero_output_for_mask=zero_output_for_mask,
                name=f"layer_{i}",
            )
            for i, cell in enumerate(self.cells)
        ]

    @property
    def zero_output_for_mask(self):
        return self._zero_output_for_mask

    @zero_output_for_mask.setter
    def zero_output_for_mask(self, value):  # `Bidirectional` sets it, as Keras's does
        self._zero_output_for_mask = bool(value)
        for layer in self.recurrent_layers:
            layer.zero_output_for_mask = self._zero_output_for_mask

    def build(self, inputs_shape):
        check_sequence_inputs(self, inputs_shape)
        shape = tuple(inputs_shape)
        self._input_features = shape[-1]  # a later call with another feature size is an error, not a matmul failure
        for i, layer in enumerate(self.recurrent_layers):
            layer.build(shape)
            shape = shape[:2] + (_output_size(self.cells[i]),)

    def call(self, inputs, mask=None, training=None):
        check_sequence_inputs(self, inputs.shape, inputs.dtype, getattr(self, "_input_features", None),
                              None if mask is None else mask.shape)
        if self.go_backwards:
            inputs = ops.flip(inputs, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        x, states = inputs, []
        for layer in self.recurrent_layers:
            x, *layer_states = layer(x, mask=mask, training=training)  # (batch, time, n_i)
            states += layer_states
        if self.return_state:
            return [x, *states]
        return x

    def compute_output_shape(self, inputs_shape, **kwargs):
        check_sequence_inputs(self, inputs_shape)
        batch, time = inputs_shape[0], inputs_shape[1]
        size = _output_size(self.cells[-1])
        outputs = (batch, time, size) if self.return_sequences else (batch, size)
        if self.return_state:
            return [outputs] + [(batch, n) for cell in self.cells for n in _state_sizes(cell)]
        return outputs

    def compute_mask(self, inputs, mask=None):
        return sequence_output_mask(self, mask, num_states=sum(len(_state_sizes(cell)) for cell in self.cells))

    def get_config(self):
        config = {
            "cells": [keras.saving.serialize_keras_object(cell) for cell in self.cells],
            "residual": self.residual,
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cells"] = [keras.saving.deserialize_keras_object(cell) for cell in config["cells"]]
        return cls(**config)

