"""The vanilla recurrent cell of the Deep Learning book, section 10.2 (eqs. 10.8-10.11)."""

import keras
from keras import ops

from rnnzoo import bptt


def validate_units(name, value, layer, allow_none=False):
    """Raises a Keras-style error unless `value` is a positive int (or None if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{layer}({name}=...)` must be a positive integer"
            + (" or None" if allow_none else "")
            + f". Received: {name}={value!r}"
        )
    return value


def known_features(input_shape, layer):
    """The feature size (last axis) a cell builds its input kernel for; a Keras-style error if unknown."""
    features = input_shape[-1]
    if features is None:
        raise ValueError(
            f"`{layer}` needs a known feature size (last input axis). Received: input_shape={tuple(input_shape)}"
        )
    return features


def validate_activation(activation, layer):
    if activation not in bptt.ACTIVATIONS:
        raise ValueError(
            f"`{layer}(activation=...)` must be one of {list(bptt.ACTIVATIONS)}: the explicit "
            f"gradient needs the activation's derivative. Received: activation={activation!r}"
        )
    return activation


@keras.saving.register_keras_serializable(package="rnnzoo")
class VanillaRNNCell(keras.layers.Layer):
    """One step of the vanilla RNN: `a = b + W h + U x`, `h = tanh(a)`, `o = c + V h`.

    Follows the Keras cell contract, so `keras.layers.RNN(VanillaRNNCell(8))` works; for the
    whole sequence with the explicit BPTT gradient and an exportable loop use
    `rnnzoo.layers.VanillaRNN`, which holds one of these cells.

    The weights carry the book's names, in Keras's row-vector layout (the transposes of the
    book's matrices): `U` `(features, units)` (Keras `kernel`), `W` `(units, units)`
    (`recurrent_kernel`), `b` `(units,)` (`bias`), and with `output_units`, `V`
    `(units, output_units)` and `c` `(output_units,)`.

    Args:
        units: int, size of the hidden state `h`.
        output_units: int or None. If set, the cell outputs `o = c + V h` (logits, no
            softmax) instead of `h`.
        activation: `"tanh"` (the book's) or `"relu"`.
        use_bias: bool, whether to use `b` (and `c`).
        kernel_initializer: initializer for `U`.
        recurrent_initializer: initializer for `W`.
        bias_initializer: initializer for `b` and `c`.
        output_initializer: initializer for `V`.
        kernel_regularizer: regularizer for `U`.
        recurrent_regularizer: regularizer for `W`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        inputs: `(batch, features)`, `x(t)`.
        states: list of one `(batch, units)` tensor, `h(t-1)`.

    Returns:
        `(output, [h])`: output `(batch, output_units or units)` and the new state `h(t)`.

    Example:

    >>> cell = VanillaRNNCell(4)
    >>> layer = keras.layers.RNN(cell, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 4)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.2, eqs. 10.8-10.11.
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
        self.state_size = self.units
        self.output_size = self.output_units or self.units

    def build(self, input_shape):
        features = known_features(input_shape, type(self).__name__)
        self.U = self.add_weight(
            shape=(features, self.units), name="U",
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
        )
        self.W = self.add_weight(
            shape=(self.units, self.units), name="W",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
        )
        self.b = self.add_weight(shape=(self.units,), name="b", initializer=self.bias_initializer) if self.use_bias else None
        if self.output_units:
            self.V = self.add_weight(
                shape=(self.units, self.output_units), name="V", initializer=self.output_initializer
            )
            self.c = (
                self.add_weight(shape=(self.output_units,), name="c", initializer=self.bias_initializer)
                if self.use_bias else None
            )
        else:
            self.V = self.c = None

    def weight_tensors(self):
        """`(U, W, b, V, c)` as tensors of the compute dtype; `b`, `V`, `c` may be zeros/None.

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
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        U, W, b, V, c = self.weight_tensors()
        h = bptt._activate(ops.matmul(inputs, U) + ops.matmul(h_prev, W) + b, self.activation)
        output = bptt.output_forward(h, V, c) if V is not None else h
        return output, [h]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = {
            "units": self.units,
            "output_units": self.output_units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "output_initializer": keras.initializers.serialize(self.output_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
        }
        return {**super().get_config(), **config}
