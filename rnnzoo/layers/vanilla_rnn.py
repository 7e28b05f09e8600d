"""The vanilla RNN over whole sequences, with the book's BPTT as its gradient (section 10.2)."""

import keras
from keras import ops

from rnnzoo import bptt
from rnnzoo.cells.vanilla_rnn_cell import VanillaRNNCell, validate_activation, validate_units


def check_sequence_inputs(layer, inputs_shape, inputs_dtype=None, features=None, mask_shape=None):
    """Validates `(batch, time, features)` inputs and their mask; raises Keras-style errors."""
    name = type(layer).__name__
    shape = tuple(inputs_shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` expects inputs of shape (batch, time, features), i.e. rank 3. "
            f"Received: inputs.shape={shape}"
        )
    if inputs_dtype is not None and not keras.backend.is_float_dtype(inputs_dtype):
        raise TypeError(
            f"`{name}` expects floating-point inputs; embed integer token ids first (e.g. with "
            f"`keras.layers.Embedding`) or cast them. Received: inputs.dtype={keras.backend.standardize_dtype(inputs_dtype)}"
        )
    if shape[1] == 0:
        raise ValueError(f"`{name}` needs at least one time step. Received: inputs.shape={shape}")
    if features is not None and shape[2] is not None and shape[2] != features:
        raise ValueError(
            f"`{name}` was built for inputs with {features} features (last axis) but received "
            f"{shape[2]}. Received: inputs.shape={shape}"
        )
    if mask_shape is not None:
        mask_shape = tuple(mask_shape)
        compatible = len(mask_shape) == 2 and all(
            m is None or s is None or m == s for m, s in zip(mask_shape, shape[:2])
        )
        if not compatible:
            raise ValueError(
                f"`{name}` expects a mask of shape (batch, time) = {shape[:2]} matching the "
                f"inputs. Received: mask.shape={mask_shape}, inputs.shape={shape}"
            )


def sequence_output_mask(layer, mask, num_states):
    """What a recurrent layer's `compute_mask` returns: the input mask on the sequence output
    (reversed with `go_backwards`, None without `return_sequences`), and None for each state."""
    output_mask = None
    if layer.return_sequences and mask is not None:
        output_mask = ops.flip(mask, axis=1) if layer.go_backwards else mask
    return [output_mask] + [None] * num_states if layer.return_state else output_mask


@keras.saving.register_keras_serializable(package="rnnzoo")
class VanillaRNN(keras.layers.Layer):
    """The book's vanilla recurrent network over whole sequences, trained with explicit BPTT.

    Computes, for t = 1..time,

        a(t) = b + W h(t-1) + U x(t),   h(t) = tanh(a(t)),   o(t) = c + V h(t)

    where the output layer `o(t)` is present only with `output_units`. With
    `gradient="bptt"` (the default) its gradient is the book's back-propagation through
    time, `rnnzoo.bptt.backward`, wired in with `keras.ops.custom_gradient`; with
    `"autodiff"` the same forward pass is differentiated automatically. Its loop
    (`rnnzoo.recurrence`) exports to TFLite with builtin ops only, batch and time dynamic.

    Masks (from `keras.layers.Embedding(mask_zero=True)`, `keras.layers.Masking`, or the
    `mask` argument) mark padded steps: there the state is carried unchanged and the
    sequence output is zero; the final state is the state at each sequence's last valid step.

    Args:
        units: int, size of the hidden state.
        output_units: int or None, size of the in-layer output `o(t) = c + V h(t)` (logits).
            None outputs `h(t)`.
        activation: `"tanh"` (the book's) or `"relu"`.
        use_bias: bool, whether to use the biases `b` and `c`.
        kernel_initializer, recurrent_initializer, bias_initializer, output_initializer:
            initializers for `U`, `W`, `b`/`c` and `V`.
        kernel_regularizer, recurrent_regularizer: regularizers for `U` and `W`.
        return_sequences: bool, return the output at every step (`(batch, time, n)`) or only
            at the last (`(batch, n)`).
        return_state: bool, also return the final state `(batch, units)`.
        go_backwards: bool, process the sequence in reverse; as in Keras, sequence outputs are
            then in reverse order too.
        stateful: bool, carry the final state of each batch over as the initial state of the
            next (needs a fixed batch size; `reset_state()` zeroes it).
        unroll: int >= 1, loop unrolling on the JAX backend (no effect on TensorFlow).
        gradient: `"bptt"` or `"autodiff"`.
        jit_compile: bool. On TensorFlow, compile the training loops (forward and backward)
            with XLA, once per input shape, which removes the per-step overhead of graph mode;
            inference and export never use XLA. No effect on JAX, which compiles everything.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, time, features)` floating-point tensor, `time >= 1`.
        initial_state: optional `(batch, units)` tensor `h(0)` (or a list of one); zeros if
            omitted.
        mask: optional `(batch, time)` boolean tensor, True at valid steps.
        training: bool; on TensorFlow it selects the training loop or the export-friendly one
            (they compute the same function).

    Returns:
        `(batch, time, n)` if `return_sequences` else `(batch, n)`, with `n = output_units or
        units`; with `return_state`, a list `[outputs, final_state]`.

    Example:

    >>> layer = VanillaRNN(8, output_units=3, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 4), "float32")).shape)
    (2, 5, 3)
    >>> [w.path.split("/")[-1] for w in layer.weights]
    ['U', 'W', 'b', 'V', 'c']

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, sections 10.2 and 10.2.2 (BPTT).
    """

    def __init__(
        self,
        units,
        output_units=None,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        output_initializer="glorot_uniform",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        stateful=False,
        unroll=1,
        gradient="bptt",
        jit_compile=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # Validated here too, so that the error names `VanillaRNN`, the class the user called.
        validate_units("units", units, "VanillaRNN")
        validate_units("output_units", output_units, "VanillaRNN", allow_none=True)
        validate_activation(activation, "VanillaRNN")
        if gradient not in bptt.GRADIENTS:
            raise ValueError(
                f"`VanillaRNN(gradient=...)` must be one of {list(bptt.GRADIENTS)}. "
                f"Received: gradient={gradient!r}"
            )
        if isinstance(unroll, bool) or not isinstance(unroll, int) or unroll < 1:
            raise ValueError(f"`VanillaRNN(unroll=...)` must be an integer >= 1. Received: unroll={unroll!r}")
        self.cell = VanillaRNNCell(
            units,
            output_units=output_units,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            output_initializer=output_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            dtype=self.dtype_policy,
            name="cell",
        )
        self.units = units
        self.output_units = output_units
        self.activation = activation
        self.use_bias = use_bias
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = unroll
        self.gradient = gradient
        self.jit_compile = bool(jit_compile)
        self.supports_masking = True
        self.states = None

    def build(self, inputs_shape):
        check_sequence_inputs(self, inputs_shape)
        self.cell.build((inputs_shape[0], inputs_shape[-1]))
        if self.stateful:
            if inputs_shape[0] is None:
                raise ValueError(
                    "`VanillaRNN(stateful=True)` needs a fixed batch size: use "
                    "`keras.Input(shape=..., batch_size=...)`. "
                    f"Received: inputs.shape={tuple(inputs_shape)}"
                )
            self.states = self.add_weight(
                shape=(inputs_shape[0], self.units), name="states",
                initializer="zeros", trainable=False,
            )

    def reset_state(self):
        """Zeroes the carried state of a stateful layer."""
        if self.states is not None:
            # Not `ops.zeros_like(self.states)`: on JAX it cannot take a Keras variable.
            self.states.assign(ops.zeros(self.states.shape, self.states.dtype))

    reset_states = reset_state

    def call(self, inputs, initial_state=None, mask=None, training=None):
        check_sequence_inputs(
            self, inputs.shape, inputs.dtype, self.cell.U.shape[0],
            None if mask is None else mask.shape,
        )
        h0 = self._initial_state(inputs, initial_state)
        if mask is not None:
            mask = ops.cast(mask, self.compute_dtype)
        if self.go_backwards:
            inputs = ops.flip(inputs, axis=1)
            mask = None if mask is None else ops.flip(mask, axis=1)
        U, W, b, V, c = self.cell.weight_tensors()
        outputs, h_last = bptt.vanilla_rnn(
            inputs, h0, U, W, b, V, c, mask,
            activation=self.activation,
            return_sequences=self.return_sequences,
            gradient=self.gradient,
            training=bool(training),
            unroll=self.unroll,
            jit_compile=self.jit_compile,
        )
        if self.stateful:
            self.states.assign(ops.cast(h_last, self.states.dtype))
        if self.return_state:
            return [outputs, h_last]
        return outputs

    def _initial_state(self, inputs, initial_state):
        if isinstance(initial_state, (list, tuple)):
            if len(initial_state) != 1:
                raise ValueError(
                    "`VanillaRNN` has one state tensor; pass `initial_state` as a tensor or a "
                    f"list of one. Received: {len(initial_state)} tensors"
                )
            initial_state = initial_state[0]
        if initial_state is None:
            if self.stateful:
                return ops.cast(self.states, self.compute_dtype)
            return ops.zeros((ops.shape(inputs)[0], self.units), dtype=self.compute_dtype)
        shape = tuple(initial_state.shape)
        if len(shape) != 2 or shape[-1] not in (None, self.units):
            raise ValueError(
                f"`VanillaRNN` expects `initial_state` of shape (batch, units={self.units}). "
                f"Received: initial_state.shape={shape}"
            )
        return ops.cast(initial_state, self.compute_dtype)

    def compute_output_shape(self, inputs_shape, initial_state_shape=None, **kwargs):
        features = self.cell.U.shape[0] if self.cell.built else None
        check_sequence_inputs(self, inputs_shape, features=features)
        batch, time = inputs_shape[0], inputs_shape[1]
        n = self.output_units or self.units
        outputs_shape = (batch, time, n) if self.return_sequences else (batch, n)
        if self.return_state:
            return [outputs_shape, (batch, self.units)]
        return outputs_shape

    def compute_mask(self, inputs, mask=None):
        return sequence_output_mask(self, mask, num_states=1)

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {
            key: cell_config[key]
            for key in (
                "units", "output_units", "activation", "use_bias", "kernel_initializer",
                "recurrent_initializer", "bias_initializer", "output_initializer",
                "kernel_regularizer", "recurrent_regularizer",
            )
        }
        config.update(
            return_sequences=self.return_sequences,
            return_state=self.return_state,
            go_backwards=self.go_backwards,
            stateful=self.stateful,
            unroll=self.unroll,
            gradient=self.gradient,
            jit_compile=self.jit_compile,
        )
        return {**super().get_config(), **config}
