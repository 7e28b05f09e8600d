"""`Recurrent`: the one sequence layer of rnnzoo. Any Keras-contract cell, run over time on
rnnzoo's recurrence engine, so that the model trains everywhere and exports to TFLite builtins."""

import keras
from keras import ops
from keras import tree

from rnnzoo import recurrence
from rnnzoo.foundation import (
    check_sequence_inputs,
    output_size,
    sequence_output_mask,
    state_sizes,
    time_major,
    validate_unroll,
)

try:  # Keras's mixin for cells with per-sequence dropout masks (see `VanillaRNNCell`)
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell
except ImportError:  # pragma: no cover
    DropoutRNNCell = ()


@keras.saving.register_keras_serializable(package="rnnzoo")
class Recurrent(keras.layers.Layer):
    """Runs a cell over a sequence: the drop-in for `keras.layers.RNN(cell)`.

    The same cell contract (`call(inputs, states) -> (output, new_states)` with `states` always
    a list, `state_size`, `output_size`, optional `get_initial_state`), the same arguments and
    the same results given the same weights, but the loop is `rnnzoo.recurrence.scan`: it
    trains on TensorFlow, JAX and PyTorch and exports to TFLite builtins with batch and time
    dynamic. A cell that also has `sequence_call` (e.g. `rnnzoo.cells.VanillaRNNCell`, whose
    gradient is the book's explicit BPTT) is run by that instead of step by step.

    Masks: a padded step keeps every state (selected, not blended: a NaN or inf in a padded
    input reaches nothing); its output is the previous step's output (zeros before the first
    valid step) or, with `zero_output_for_mask=True`, zeros. Both are Keras's conventions;
    the default, `False`, is Keras's default.

    Args:
        cell: a Keras cell, or a list of cells (stacked with `keras.layers.StackedRNNCells`).
        return_sequences: bool, return the output at every step or only the last.
        return_state: bool, also return the final states.
        go_backwards: bool, process the sequence in reverse; sequence outputs come in the
            order processed (reversed), as in Keras.
        stateful: bool, each batch starts from the final states of the previous one (needs a
            fixed batch size; `reset_state()` zeroes them).
        unroll: bool or int. True unrolls the whole loop (a known number of steps is
            needed, as in Keras); an int `k >= 1` unrolls `k` steps per loop iteration. On
            TensorFlow the loop is never unrolled (the result is the same).
        zero_output_for_mask: bool, zeros at padded steps instead of the previous output.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        sequences: `(batch, time, features)` floating-point tensor.
        initial_state: optional list of state tensors (`(batch, state_size)` each).
        mask: optional `(batch, time)` boolean tensor, True at valid steps.
        training: bool, passed to the cell (dropout); on TensorFlow it also selects the
            training or the export-friendly loop (they compute the same function).
        constants: optional tensor or structure of tensors the cell reads at every step,
            passed to it as `call(inputs, states, constants=constants)` (Keras 2's RNN
            argument, e.g. the encoder's annotations for an attention decoder).

    Returns:
        `(batch, time, output_size)` or `(batch, output_size)`, in the layer's compute dtype;
        with `return_state`, `[outputs, *final_states]`.

    Example:

    >>> layer = Recurrent(keras.layers.SimpleRNNCell(4), return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 4)
    """

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = keras.layers.StackedRNNCells(cell)
        if not hasattr(cell, "state_size") or not callable(getattr(cell, "call", None)):
            raise ValueError(
                f"`{type(self).__name__}(cell=...)` needs a Keras cell: a layer with `state_size` and "
                f"`call(inputs, states)`. Received: cell={cell!r}"
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = validate_unroll(unroll, type(self).__name__)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.supports_masking = True
        self.states = None  # the state variables of a stateful layer

    @property
    def state_size(self):
        return state_sizes(self.cell)

    @property
    def output_size(self):
        return output_size(self.cell)

    def build(self, sequences_shape, initial_state_shape=None):
        check_sequence_inputs(self, sequences_shape)
        self._features = sequences_shape[-1]  # checked at every call: a cell's kernels have this size
        self._check_unroll(sequences_shape)
        if not self.cell.built:
            self.cell.build((sequences_shape[0],) + tuple(sequences_shape[2:]))
        if self.stateful and self.states is None:
            batch = sequences_shape[0]
            if batch is None:
                raise ValueError(
                    f"`{type(self).__name__}(stateful=True)` needs a fixed batch size: use "
                    "`keras.Input(shape=..., batch_size=...)`. "
                    f"Received: sequences.shape={tuple(sequences_shape)}"
                )
            self._create_state_variables(batch)

    def _create_state_variables(self, batch):
        with keras.name_scope(self.name, caller=self):
            self.states = [
                self.add_weight(shape=tuple(s.shape), initializer="zeros", trainable=False, name="state",
                                dtype=self.variable_dtype)
                for s in tree.flatten(self.get_initial_state(batch))
            ]

    def get_initial_state(self, batch_size):
        """The cell's initial states (`cell.get_initial_state`, else zeros), as a list."""
        if hasattr(self.cell, "get_initial_state"):
            states = self.cell.get_initial_state(batch_size=batch_size)
            return list(states) if tree.is_nested(states) else [states]
        return [ops.zeros((batch_size, n), self.cell.compute_dtype) for n in state_sizes(self.cell)]

    def reset_state(self):
        """Zeroes the carried states of a stateful layer."""
        for variable in self.states or ():
            variable.assign(ops.zeros(variable.shape, variable.dtype))

    reset_states = reset_state

    def call(self, sequences, initial_state=None, mask=None, training=False, constants=None):
        check_sequence_inputs(self, sequences.shape, sequences.dtype, getattr(self, "_features", None),
                              None if mask is None else mask.shape)
        self._check_unroll(sequences.shape)
        if not keras.backend.is_float_dtype(sequences.dtype):  # integers are numbers, as in Keras
            sequences = ops.cast(sequences, self.compute_dtype)
        states = self._initial_states(sequences, initial_state)
        if mask is not None:
            mask = ops.cast(mask, "bool")
        if self.go_backwards:
            sequences = ops.flip(sequences, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        unroll = (sequences.shape[1] or 1) if self.unroll is True else max(int(self.unroll), 1)

        if hasattr(self.cell, "sequence_call") and constants is None:
            hook = {}
            if not (self.return_state or self.stateful) and _accepts(self.cell.sequence_call, "return_state"):
                hook["return_state"] = False  # the final states are not used: not computed where they need not be
            outputs, states = self.cell.sequence_call(
                sequences, states, mask, training=bool(training), return_sequences=self.return_sequences,
                zero_output_for_mask=self.zero_output_for_mask, unroll=unroll, **hook,
            )
        else:
            outputs, states = self._step_over_time(sequences, states, mask, training, unroll, constants)
        _reset_dropout_masks(self.cell)

        if self.stateful:
            for variable, state in zip(self.states, tree.flatten(states)):
                variable.assign(ops.cast(state, variable.dtype))
        outputs = ops.cast(outputs, self.compute_dtype)
        if self.return_state:
            states = [ops.cast(s, self.compute_dtype) for s in tree.flatten(states)]
            return [outputs, *states]
        return outputs

    def _check_unroll(self, sequences_shape):
        if self.unroll is True and sequences_shape[1] is None:
            raise ValueError(
                f"`{type(self).__name__}(unroll=True)` unrolls every step, so the number of steps must be "
                f"known: give `keras.Input` a fixed `shape[0]`, or pass an int `unroll`. "
                f"Received: sequences.shape={tuple(sequences_shape)}"
            )

    def _initial_states(self, sequences, initial_state):
        batch = ops.shape(sequences)[0]
        if initial_state is None:
            if self.stateful:
                states = list(self.states)
            else:
                states = self.get_initial_state(batch)
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            expected = len(tree.flatten(self._state_structure()))
            if len(tree.flatten(states)) != expected:
                raise ValueError(
                    f"`{type(self).__name__}` over {type(self.cell).__name__} expects {expected} initial state "
                    f"tensor(s). Received: {len(tree.flatten(states))}"
                )
            for i, (state, size) in enumerate(zip(tree.flatten(states), tree.flatten(self._state_structure()))):
                shape = tuple(state.shape)
                if len(shape) != 2 or shape[-1] not in (None, size):
                    raise ValueError(
                        f"`{type(self).__name__}` expects `initial_state[{i}]` of shape (batch, {size}). "
                        f"Received: initial_state[{i}].shape={shape}"
                    )
        if self.stateful and sequences.shape[0] is not None and self.states:
            expected_batch = self.states[0].shape[0]
            if sequences.shape[0] != expected_batch:
                raise ValueError(
                    f"`{type(self).__name__}(stateful=True)` was built for a batch size of {expected_batch}: "
                    f"every batch must have that batch size. Received: sequences.shape={tuple(sequences.shape)}"
                )
        # The states live in the cell's dtype (e.g. float16 for a cell made under mixed_float16).
        dtype = self.cell.compute_dtype
        states = [ops.cast(s, dtype) for s in tree.flatten(states)]
        # In the structure the cell expects (a `StackedRNNCells` takes one list per cell).
        return tree.pack_sequence_as(self._state_structure(), states)

    def _state_structure(self):
        # Plain lists: a cell's `state_size` may hold Keras's `TrackedList`s (e.g. the `[units,
        # units]` of an `LSTMCell` inside `StackedRNNCells`), which `lax.scan` cannot carry.
        def plain(sizes):
            return [plain(s) for s in sizes] if isinstance(sizes, (list, tuple)) else sizes

        sizes = self.cell.state_size
        return plain(sizes) if isinstance(sizes, (list, tuple)) else [sizes]

    def _step_over_time(self, sequences, states, mask, training, unroll, constants=None):
        """Steps `cell.call` over time with Keras's masking conventions: `(outputs, states)`."""
        cell_kwargs = {}
        if getattr(self.cell, "_call_has_training_arg", True):
            cell_kwargs["training"] = training
        # Dropout masks are drawn once, before the loop, so the loop itself is stateless (JAX).
        _prepare_dropout_masks(self.cell, sequences[:, 0], states)
        dtype = self.cell.compute_dtype
        xs = time_major(sequences)
        mask_tm = None if mask is None else ops.expand_dims(ops.transpose(mask), -1)  # (time, batch, 1)
        has_constants = constants is not None

        # The step closes over no per-example tensor: whatever varies with the example (states,
        # the last output, the constants) rides in the carry, so that the engine may replay
        # chunks of steps as one batch (`rnnzoo.recurrence`).
        def step(carry, inputs):
            states, last_output, constants = carry
            x_t, m_t = inputs if mask_tm is not None else (inputs, None)
            if m_t is not None:  # a NaN or inf in a padded input reaches nothing
                x_t = ops.where(m_t, x_t, ops.zeros_like(x_t))
            step_kwargs = {**cell_kwargs, "constants": constants} if has_constants else cell_kwargs
            output, new_states = self.cell(x_t, states, **step_kwargs)
            new_states = new_states if tree.is_nested(new_states) else [new_states]
            new_states = tree.pack_sequence_as(states, tree.flatten(new_states))
            output = ops.cast(output, dtype)
            if m_t is not None:
                new_states = tree.map_structure(lambda new, old: ops.where(m_t, new, old), new_states, states)
                previous = ops.zeros_like(output) if self.zero_output_for_mask else last_output
                output = ops.where(m_t, output, previous)
            return (new_states, output, constants), (output if self.return_sequences else ())

        xs = xs if mask_tm is None else (xs, mask_tm)
        last_output = ops.zeros((ops.shape(sequences)[0], self.output_size), dtype)
        (states, last_output, _), outputs = recurrence.scan(
            step, (states, last_output, constants if has_constants else ()), xs, training=bool(training),
            unroll=unroll,
        )
        return (time_major(outputs) if self.return_sequences else last_output), states

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        check_sequence_inputs(self, sequences_shape)
        batch, time = sequences_shape[0], sequences_shape[1]
        outputs = (batch, time, self.output_size) if self.return_sequences else (batch, self.output_size)
        if self.return_state:
            return [outputs] + [(batch, n) for n in tree.flatten(self.state_size)]
        return outputs

    def compute_mask(self, inputs, mask=None):
        return sequence_output_mask(self, mask, num_states=len(tree.flatten(self.state_size)))

    def get_config(self):
        config = {
            "cell": keras.saving.serialize_keras_object(self.cell),
            "return_sequences": self.return_sequences,
            "return_state": self.return_state,
            "go_backwards": self.go_backwards,
            "stateful": self.stateful,
            "unroll": self.unroll,
            "zero_output_for_mask": self.zero_output_for_mask,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


class StepFunction(keras.layers.Layer):
    """Internal: a step function as a Keras cell, for a loop whose step closes over tensors of the
    enclosing call (e.g. a decoder attending to its encoder's outputs), so that it still runs on
    `Recurrent`, the one loop. Has no weights of its own and is never serialized.

    Args:
        step: `(inputs, states[, constants]) -> (output, new_states)`, the Keras cell contract.
        state_size: list of ints. output_size: int.
    """

    def __init__(self, step, state_size, output_size, **kwargs):
        super().__init__(**kwargs)
        self.step = step
        self.state_size = list(state_size)
        self.output_size = output_size

    def build(self, input_shape):
        pass

    def call(self, inputs, states, constants=None):
        return self.step(inputs, states) if constants is None else self.step(inputs, states, constants)


def _prepare_dropout_masks(cell, step_input, states):
    """Draws the per-sequence dropout masks of `cell` (and of stacked cells) before the loop."""
    if DropoutRNNCell and isinstance(cell, DropoutRNNCell):
        first = tree.flatten(states)[0]
        cell.get_dropout_mask(step_input)
        cell.get_recurrent_dropout_mask(first)
    if isinstance(cell, keras.layers.StackedRNNCells):
        for inner, inner_states in zip(cell.cells, states):
            _prepare_dropout_masks(inner, step_input, inner_states)
            inner_states = list(inner_states) if tree.is_nested(inner_states) else [inner_states]
            step_input, _ = inner(step_input, inner_states)  # the next cell's input


def _reset_dropout_masks(cell):
    if DropoutRNNCell and isinstance(cell, DropoutRNNCell):
        cell.reset_dropout_mask()
        cell.reset_recurrent_dropout_mask()
    for inner in getattr(cell, "cells", ()):
        _reset_dropout_masks(inner)


def _accepts(function, argument):
    """Whether `function` takes the keyword `argument` (a cell's `sequence_call` hook may predate it)."""
    import inspect

    parameters = inspect.signature(function).parameters
    return argument in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
