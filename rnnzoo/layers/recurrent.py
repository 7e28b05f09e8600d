"""`Recurrent`: any Keras-contract cell run over time on rnnzoo's exportable loop."""

import keras
from keras import ops
from keras import tree

from rnnzoo import recurrence
from rnnzoo.layers.vanilla_rnn import check_sequence_inputs, sequence_output_mask


def _state_sizes(cell):
    sizes = cell.state_size
    return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]


@keras.saving.register_keras_serializable(package="rnnzoo")
class Recurrent(keras.layers.Layer):
    """Runs a cell over a sequence with rnnzoo's recurrence engine, so the model exports.

    The drop-in for `keras.layers.RNN(cell)`: the same cell contract (`call(inputs, states) ->
    (output, new_states)`, `state_size`, `output_size`, optional `get_initial_state`), but the loop
    is `rnnzoo.recurrence.scan`, which converts to TFLite builtin ops with batch and time dynamic.
    Gradients are automatic (only `VanillaRNN` has an explicit BPTT).

    Masked (padded) steps keep every state unchanged and output zeros, so the final states are
    those at each sequence's last valid step.

    Args:
        cell: a Keras cell: a layer with `state_size` (int or list of ints) and `output_size`.
        return_sequences: bool, return the output at every step or only the last.
        return_state: bool, also return the final states.
        go_backwards: bool, process the sequence in reverse (sequence outputs in reverse order,
            as in Keras).
        unroll: int >= 1, loop unrolling on the JAX backend.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, time, features)` floating-point tensor.
        initial_state: optional list of `(batch, state_size)` tensors.
        mask: optional `(batch, time)` boolean tensor.
        training: bool, passed to the cell; on TensorFlow it also selects the training or
            the export-friendly loop (they compute the same function).

    Returns:
        `(batch, time, output_size)` or `(batch, output_size)`; with `return_state`,
        `[outputs, *final_states]`.

    Example:

    >>> layer = Recurrent(keras.layers.SimpleRNNCell(4), return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 4)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, unroll=1, **kwargs):
        super().__init__(**kwargs)
        if not hasattr(cell, "state_size") or not hasattr(cell, "call"):
            raise ValueError(
                "`Recurrent(cell=...)` needs a Keras cell: a layer with `state_size` and "
                f"`call(inputs, states)`. Received: cell={cell!r}"
            )
        if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
            raise ValueError(f"`Recurrent(unroll=...)` must be an integer >= 1. Received: unroll={unroll!r}")
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.unroll = unroll
        self.supports_masking = True

    @property
    def output_size(self):
        size = getattr(self.cell, "output_size", None)
        return size if size is not None else _state_sizes(self.cell)[0]

    def build(self, inputs_shape):
        check_sequence_inputs(self, inputs_shape)
        if not self.cell.built:
            self.cell.build((inputs_shape[0], inputs_shape[-1]))

    def call(self, inputs, initial_state=None, mask=None, training=None):
        check_sequence_inputs(self, inputs.shape, inputs.dtype, None, None if mask is None else mask.shape)
        batch = ops.shape(inputs)[0]
        if initial_state is None:
            if hasattr(self.cell, "get_initial_state"):
                states = list(tree.flatten(self.cell.get_initial_state(batch_size=batch)))
            else:
                states = [ops.zeros((batch, n), self.compute_dtype) for n in _state_sizes(self.cell)]
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != len(_state_sizes(self.cell)):
                raise ValueError(
                    f"`Recurrent` over {type(self.cell).__name__} expects {len(_state_sizes(self.cell))} "
                    f"initial state tensors. Received: {len(states)}"
                )
        states = [ops.cast(s, self.compute_dtype) for s in states]
        xs = ops.transpose(inputs, (1, 0, 2))  # (time, batch, features)
        if mask is not None:
            xs = (xs, ops.expand_dims(ops.transpose(ops.cast(mask, self.compute_dtype)), -1))

        last_output = ops.zeros((batch, self.output_size), self.compute_dtype)

        def step(carry, x_t):
            states, last_output = carry
            x_t, m_t = x_t if mask is not None else (x_t, None)
            output, new_states = self.cell(x_t, states if len(states) > 1 else states[0], training=training)
            new_states = list(tree.flatten(new_states))
            if m_t is not None:  # a padded step keeps the states and outputs zeros
                new_states = [old + m_t * (new - old) for old, new in zip(states, new_states)]
                last_output = last_output + m_t * (output - last_output)
                output = output * m_t
            else:
                last_output = output
            return (new_states, last_output), output

        (states, last_output), outputs = recurrence.scan(
            step, (states, last_output), xs, training=bool(training), reverse=self.go_backwards,
            unroll=self.unroll,
        )
        if self.return_sequences:
            if self.go_backwards:  # Keras order: the step processed first comes first
                outputs = ops.flip(outputs, axis=0)
            outputs = ops.transpose(outputs, (1, 0, 2))
        else:
            outputs = last_output
        if self.return_state:
            return [outputs, *states]
        return outputs

    def compute_output_shape(self, inputs_shape, initial_state_shape=None, **kwargs):
        check_sequence_inputs(self, inputs_shape)
        batch, time = inputs_shape[0], inputs_shape[1]
        outputs = (batch, time, self.output_size) if self.return_sequences else (batch, self.output_size)
        if self.return_state:
            return [outputs] + [(batch, n) for n in _state_sizes(self.cell)]
        return outputs

    def compute_mask(self, inputs, mask=None):
        return sequence_output_mask(self, mask, num_states=len(_state_sizes(self.cell)))

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "unroll": self.unroll,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)
