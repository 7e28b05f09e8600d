"""The vanilla recurrent cell of the Deep Learning book, section 10.2 (eqs. 10.8-10.11)."""

import keras
from keras import ops

from rnnzoo import bptt, bptt_wiring
from rnnzoo.foundation import (
    activate,
    check_cell_call,
    known_features,
    validate_activation,
    validate_rate,
    validate_units,
)

# Keras's mixin that draws one dropout mask per sequence and caches it across steps. Keras's
# `RNN` (and rnnzoo's `Recurrent`) recognise cells by it to prepare the masks before the loop.
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell  # noqa: E402


@keras.saving.register_keras_serializable(package="rnnzoo")
class VanillaRNNCell(keras.layers.Layer, DropoutRNNCell):
    """One step of the vanilla RNN: `a = b + W h + U x`, `h = tanh(a)`, `o = c + V h`.

    Follows the Keras cell contract, so `keras.layers.RNN(VanillaRNNCell(8))` works and
    computes what `keras.layers.SimpleRNNCell` computes with the same weights. Run by
    `rnnzoo.layers.Recurrent` (which is what `rnnzoo.layers.VanillaRNN` is), the cell also
    supplies its whole-sequence computation, `sequence_call`, whose gradient is the book's
    back-propagation through time (`gradient="bptt"`, `rnnzoo.bptt`).

    The weights carry the book's names, in Keras's row-vector layout (the transposes of the
    book's matrices) and Keras's order: `U` `(features, units)` (Keras `kernel`), `W`
    `(units, units)` (`recurrent_kernel`), `b` `(units,)` (`bias`), and with `output_units`,
    `V` `(units, output_units)` and `c` `(output_units,)`.

    Args:
        units: int, size of the hidden state `h`.
        output_units: int or None. If set, the cell outputs `o = c + V h` (logits, no
            softmax) instead of `h`.
        activation: `"tanh"` (the book's), `"relu"`, `"sigmoid"` or `"linear"`.
        use_bias: bool, whether to use `b` (and `c`).
        kernel_initializer, recurrent_initializer, bias_initializer, output_initializer:
            initializers for `U`, `W`, `b` and `c`, `V`.
        kernel_regularizer, recurrent_regularizer, bias_regularizer: regularizers for `U`,
            `W`, `b`.
        kernel_constraint, recurrent_constraint, bias_constraint: constraints for `U`, `W`, `b`.
        dropout: float in [0, 1), the fraction of the inputs `x(t)` dropped in training (one
            mask per sequence, as in Keras).
        recurrent_dropout: float in [0, 1), the fraction of `h(t-1)` dropped on its way
            through `W` in training.
        seed: int or None, the seed of the dropout masks.
        gradient: `"bptt"` (the explicit backward pass) or `"autodiff"`: the gradient of
            `sequence_call`. A single `call` step is always differentiated automatically.
        jit_compile: bool. On TensorFlow, compile `sequence_call`'s training loops with XLA,
            once per input shape; inference and export never use XLA. No effect elsewhere.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, features)`, `x(t)`.
        states: list of one `(batch, units)` tensor, `h(t-1)` (a bare tensor is accepted too).
        training: bool, applies dropout.

    Returns:
        `(output, [h])`: output `(batch, output_units or units)` and the new state `h(t)`.

    Example:

    >>> cell = VanillaRNNCell(4)
    >>> layer = keras.layers.RNN(cell, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 4)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.2, eqs. 10.8-10.11;
        Gal and Ghahramani, "A Theoretically Grounded Application of Dropout in Recurrent
        Neural Networks" (2016), for the dropout masks.
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
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        gradient="bptt",
        jit_compile=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = validate_units("units", units, name)
        self.output_units = validate_units("output_units", output_units, name, allow_none=True)
        self.activation = validate_activation(activation, name)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.output_initializer = keras.initializers.get(output_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = validate_rate("dropout", dropout, name)
        self.recurrent_dropout = validate_rate("recurrent_dropout", recurrent_dropout, name)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`{name}(seed=...)` must be an int or None. Received: seed={seed!r}")
        self.seed = seed
        # Only a cell that drops anything has a random state: a seed-generator variable would
        # otherwise be exported with the model (and the TFLite converter rejects it on JAX).
        self.seed_generator = (
            keras.random.SeedGenerator(seed) if self.dropout or self.recurrent_dropout else None
        )
        if gradient not in bptt_wiring.GRADIENTS:
            raise ValueError(
                f"`{name}(gradient=...)` must be one of {list(bptt_wiring.GRADIENTS)}. Received: gradient={gradient!r}"
            )
        self.gradient = gradient
        self.jit_compile = bool(jit_compile)
        self.state_size = self.units
        self.output_size = self.output_units or self.units

    def build(self, input_shape):
        features = known_features(input_shape, type(self).__name__)
        self.U = self.add_weight(
            shape=(features, self.units), name="U", initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.W = self.add_weight(
            shape=(self.units, self.units), name="W", initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer, constraint=self.recurrent_constraint,
        )
        self.b = self.add_weight(
            shape=(self.units,), name="b", initializer=self.bias_initializer,
            regularizer=self.bias_regularizer, constraint=self.bias_constraint,
        ) if self.use_bias else None
        if self.output_units:
            self.V = self.add_weight(shape=(self.units, self.output_units), name="V", initializer=self.output_initializer)
            self.c = (
                self.add_weight(shape=(self.output_units,), name="c", initializer=self.bias_initializer)
                if self.use_bias else None
            )
        else:
            self.V = self.c = None

    def weight_tensors(self):
        """`(U, W, b, V, c)` as tensors of the compute dtype; `b` zeros without a bias, `V`, `c`
        None without an output layer.

        Custom-gradient functions must receive tensors, not variables (see FACTS.md).
        """
        dtype = self.compute_dtype
        cast = lambda v: ops.cast(v, dtype)  # noqa: E731  (a tensor, autocast for mixed precision)
        b = cast(self.b) if self.b is not None else ops.zeros((self.units,), dtype)
        V = cast(self.V) if self.V is not None else None
        c = None
        if V is not None:
            c = cast(self.c) if self.c is not None else ops.zeros((self.output_units,), dtype)
        return cast(self.U), cast(self.W), b, V, c

    def call(self, inputs, states, training=False):
        check_cell_call(self, inputs, states)
        h_previous = states[0] if isinstance(states, (list, tuple)) else states
        input_dropout, recurrent_dropout = self._dropout_masks(inputs, h_previous, training)
        U, W, b, V, c = self.weight_tensors()
        x = inputs if input_dropout is None else inputs * input_dropout
        h_in = h_previous if recurrent_dropout is None else h_previous * recurrent_dropout
        h = activate(ops.matmul(x, U) + ops.matmul(h_in, W) + b, self.activation)  # (10.8), (10.9)
        output = bptt.output_forward(h, V, c) if V is not None else h  # (10.10)
        return output, ([h] if isinstance(states, (list, tuple)) else h)

    def sequence_call(self, inputs, states, mask=None, *, training=False, return_sequences=False,
                      zero_output_for_mask=False, unroll=1, return_state=True):
        """The whole sequence at once, with the explicit BPTT as its gradient.

        The hook `rnnzoo.layers.Recurrent` uses instead of stepping `call` (same function:
        `call` repeated over time with Keras's masking). The input projection `b + U x(t)` is
        one GEMM for all t, the loop carries only `h`, and with `gradient="bptt"` the backward
        pass is `rnnzoo.bptt`'s, parameter gradients as GEMMs after the loop.

        Args:
            inputs: `(batch, time, features)`, in processing order.
            states: list of one `(batch, units)` tensor, `h(0)`.
            mask: optional `(batch, time)` bool.
            training: bool, applies dropout; on TensorFlow selects the training loop.
            return_sequences: bool, the output at every step, or only at the last.
            zero_output_for_mask: bool, Keras's meaning: zeros at padded steps (else the
                previous output).
            unroll: loop unrolling on JAX (an int, or True for the whole loop).
            return_state: bool, False when the caller does not use the final state: with
                `return_sequences` it is then not computed at inference (see
                `bptt_wiring.vanilla_rnn`) and comes back as None.

        Returns:
            `(outputs, [h_last])`.
        """
        h0 = states[0] if isinstance(states, (list, tuple)) else states
        input_dropout, recurrent_dropout = self._dropout_masks(inputs[:, 0, :], h0, training)
        U, W, b, V, c = self.weight_tensors()
        if mask is not None:
            mask = ops.cast(mask, self.compute_dtype)
        if unroll is True:
            unroll = inputs.shape[1] or 1
        outputs, h_last = bptt_wiring.vanilla_rnn(
            inputs, h0, U, W, b, V, c, mask,
            activation=self.activation,
            return_sequences=return_sequences,
            padded_outputs="zeros" if zero_output_for_mask else "previous",
            input_dropout=input_dropout,
            recurrent_dropout=recurrent_dropout,
            gradient=self.gradient,
            training=bool(training),
            unroll=int(unroll),
            jit_compile=self.jit_compile,
            return_state=return_state,
        )
        if mask is not None and zero_output_for_mask and not return_sequences:
            # Keras's last output is the last step's (masked) output: zeros if that step is padded.
            outputs = ops.where(ops.cast(mask[:, -1:], "bool"), outputs, ops.zeros_like(outputs))
        return outputs, [h_last]

    def _dropout_masks(self, step_input, h_previous, training):
        if not training or self.seed_generator is None:
            return None, None
        # Cached per sequence (`DropoutRNNCell`); the layer resets them after the loop.
        return self.get_dropout_mask(step_input), self.get_recurrent_dropout_mask(h_previous)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        config = {
            "units": self.units,
            "output_units": self.output_units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": serialize(self.kernel_initializer),
            "recurrent_initializer": serialize(self.recurrent_initializer),
            "bias_initializer": serialize(self.bias_initializer),
            "output_initializer": serialize(self.output_initializer),
            "kernel_regularizer": serialize(self.kernel_regularizer),
            "recurrent_regularizer": serialize(self.recurrent_regularizer),
            "bias_regularizer": serialize(self.bias_regularizer),
            "kernel_constraint": serialize(self.kernel_constraint),
            "recurrent_constraint": serialize(self.recurrent_constraint),
            "bias_constraint": serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
            "gradient": self.gradient,
            "jit_compile": self.jit_compile,
        }
        return {**super().get_config(), **config}
