"""The output-recurrence cell: the state at t is fed the output of t-1 (section 10.2.1, figs. 10.4, 10.6, 10.10)."""

import keras
from keras import ops

from rnnzoo.foundation import activate, check_cell_call, known_features, validate_activation, validate_units


def greedy_one_hot(logits):
    """One-hot of the largest logit, `(batch, n)` -> `(batch, n)` float.

    Written as `logits == max(logits)`: `keras.ops.argmax` on floats needs Flex ops in TFLite
    (FACTS.md), and `top_k` does not export from JAX. An exact tie (measure zero for real
    logits) marks every tied class.
    """
    return ops.cast(ops.equal(logits, ops.max(logits, axis=-1, keepdims=True)), logits.dtype)


def sample_one_hot(logits, uniform_noise):
    """One-hot of a sample of `softmax(logits)`, by the Gumbel-max trick.

    `uniform_noise` `(batch, n)` in (0, 1) is the randomness, passed in so that the function is
    deterministic given its inputs (exportable, testable): `argmax(logits + g)` with
    `g = -log(-log(u))` is a sample of the softmax.
    """
    u = ops.clip(uniform_noise, 1e-7, 1.0 - 1e-7)
    return greedy_one_hot(logits - ops.log(-ops.log(u)))


@keras.saving.register_keras_serializable(package="rnnzoo")
class OutputRecurrenceCell(keras.layers.Layer):
    """One step of an RNN whose state at t is fed the output of t-1 (figs. 10.4, 10.6, 10.10).

        a(t) = b + U x(t) + R y(t-1) [+ W h(t-1)],   h(t) = tanh(a(t)),   o(t) = c + V h(t)

    With `hidden_recurrence=False` the only recurrence is output -> hidden (fig. 10.4), so
    with teacher forcing (fig. 10.6: the true `y(t-1)` is fed) all time steps are independent.
    With `hidden_recurrence=True` it is the hybrid with both h -> h and o -> h recurrence
    (fig. 10.10). `y(t-1)` is a one-hot vector over `num_classes` (zeros before the first step).

    As a Keras cell (`call(inputs, states)`, e.g. in `rnnzoo.layers.Recurrent`) it runs
    *closed-loop*: the fed-back `y(t)` is the one-hot of the greedy prediction
    `argmax o(t)`. `OutputRecurrentRNN` runs it with teacher forcing or scheduled sampling.

    The weights, Keras row-vector layout: `U` `(features, units)`, `R` `(num_classes, units)`,
    `W` `(units, units)` (only with `hidden_recurrence`), `b` `(units,)`, `V`
    `(units, num_classes)`, `c` `(num_classes,)`.

    Args:
        units: int, size of `h(t)`.
        num_classes: int, size of `o(t)` and of the one-hot `y(t)`.
        hidden_recurrence: bool, also feed `h(t-1)` (the hybrid of fig. 10.10).
        activation: `"tanh"` or `"relu"`.
        kernel_initializer: initializer for `U`.
        feedback_initializer: initializer for `R`.
        recurrent_initializer: initializer for `W`.
        output_initializer: initializer for `V`.
        bias_initializer: initializer for `b` and `c`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, features)`, `x(t)`.
        states: `[h(t-1), y(t-1)]`, `(batch, units)` and `(batch, num_classes)`.

    Returns:
        `(o(t), [h(t), greedy_one_hot(o(t))])`.

    Example:

    >>> cell = OutputRecurrenceCell(8, num_classes=3)
    >>> o, (h, y) = cell(np.zeros((2, 4), "float32"), [np.zeros((2, 8), "float32"), np.zeros((2, 3), "float32")])
    >>> tuple(o.shape), tuple(h.shape), tuple(y.shape)
    ((2, 3), (2, 8), (2, 3))

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, sections 10.2.1 and 10.2.4.
    """

    def __init__(
        self,
        units,
        num_classes,
        hidden_recurrence=False,
        activation="tanh",
        kernel_initializer="glorot_uniform",
        feedback_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        output_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = validate_units("units", units, name)
        self.num_classes = validate_units("num_classes", num_classes, name)
        if not isinstance(hidden_recurrence, bool):
            raise TypeError(
                f"`{name}(hidden_recurrence=...)` must be a bool. Received: hidden_recurrence={hidden_recurrence!r}"
            )
        self.hidden_recurrence = hidden_recurrence
        self.activation = validate_activation(activation, name)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.feedback_initializer = keras.initializers.get(feedback_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.output_initializer = keras.initializers.get(output_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = [self.units, self.num_classes]
        self.output_size = self.num_classes

    def build(self, input_shape):
        features = known_features(input_shape, type(self).__name__)
        self.U = self.add_weight(shape=(features, self.units), name="U", initializer=self.kernel_initializer)
        self.R = self.add_weight(shape=(self.num_classes, self.units), name="R", initializer=self.feedback_initializer)
        self.W = (
            self.add_weight(shape=(self.units, self.units), name="W", initializer=self.recurrent_initializer)
            if self.hidden_recurrence else None
        )
        self.b = self.add_weight(shape=(self.units,), name="b", initializer=self.bias_initializer)
        self.V = self.add_weight(shape=(self.units, self.num_classes), name="V", initializer=self.output_initializer)
        self.c = self.add_weight(shape=(self.num_classes,), name="c", initializer=self.bias_initializer)

    def input_projection(self, x):
        """`b + U x` for `x` of shape `(..., features)`: hoisted out of loops by the layer."""
        return ops.matmul(x, ops.cast(self.U, self.compute_dtype)) + ops.cast(self.b, self.compute_dtype)

    def feedback_projection(self, y):
        """`R y` for one-hot `y` of shape `(..., num_classes)`."""
        return ops.matmul(y, ops.cast(self.R, self.compute_dtype))

    def logits(self, h):
        """`o = c + V h` for `h` of shape `(..., units)`."""
        return ops.matmul(h, ops.cast(self.V, self.compute_dtype)) + ops.cast(self.c, self.compute_dtype)

    def step(self, projected_input, h_prev, y_prev):
        """One step from the projected input `b + U x(t)`: returns `(o(t), h(t))`."""
        a = projected_input + self.feedback_projection(y_prev)
        if self.hidden_recurrence:
            a = a + ops.matmul(h_prev, ops.cast(self.W, self.compute_dtype))
        h = activate(a, self.activation)
        return self.logits(h), h

    def call(self, inputs, states, training=False):
        check_cell_call(self, inputs, states)
        h_prev, y_prev = states
        o, h = self.step(self.input_projection(inputs), h_prev, y_prev)
        return o, [h, greedy_one_hot(o)]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), self.compute_dtype),
                ops.zeros((batch_size, self.num_classes), self.compute_dtype)]

    def get_config(self):
        config = {
            "units": self.units,
            "num_classes": self.num_classes,
            "hidden_recurrence": self.hidden_recurrence,
            "activation": self.activation,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "feedback_initializer": keras.initializers.serialize(self.feedback_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "output_initializer": keras.initializers.serialize(self.output_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
        return {**super().get_config(), **config}
