"""The recursive network's node function (Deep Learning book, section 10.6, fig. 10.14)."""

import keras
from keras import ops

from rnnzoo.foundation import check_cell_call, known_features, validate_units

COMBINES = ("concat", "sum")
TREE_ACTIVATIONS = ("tanh", "relu", "sigmoid")


@keras.saving.register_keras_serializable(package="rnnzoo")
class TreeCell(keras.layers.Layer):
    """One node of a recursive network: `h(n) = tanh(b + W c(n) + U x(n))`.

    `c(n)` combines the states of the node's children:

    * `combine="concat"`: `c(n) = [h(child 1); ...; h(child K)]` -- the book's binary node
      `W [h(left); h(right)]` for `num_children=2`; a missing child counts as zeros.
    * `combine="sum"`: `c(n) = sum of h(child)` over any number of children (the child-sum
      form of Tai et al.'s Child-Sum Tree-LSTM, with a plain tanh unit).

    Weights, in Keras's row-vector layout: `U` `(features, units)`, `W`
    `(num_children * units, units)` for concat or `(units, units)` for sum, `b` `(units,)`.
    A leaf has no children (all zero), so `h(leaf) = tanh(b + U x(leaf))`.

    Args:
        units: int, size of the node state `h`.
        num_children: int, K, the most children a node has (the width of `W` for concat).
        combine: `"concat"` or `"sum"`.
        activation: `"tanh"` (the book's), `"relu"` or `"sigmoid"`.
        use_bias: bool, whether to use `b`.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers for `U`,
            `W` and `b`.
        kernel_regularizer, recurrent_regularizer: regularizers for `U` and `W`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(rows, features)`, `x(n)` of each node.
        children_states: `(rows, K, units)`, the children's states (zeros where absent).

    Returns:
        `(rows, units)`, `h(n)`.

    Example:

    >>> cell = TreeCell(4)
    >>> tuple(cell(np.ones((3, 5), "float32"), np.zeros((3, 2, 4), "float32")).shape)
    (3, 4)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.6; Socher et al., 2011.
    """

    def __init__(
        self,
        units,
        num_children=2,
        combine="concat",
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = validate_units("units", units, name)
        self.num_children = validate_units("num_children", num_children, name)
        if combine not in COMBINES:
            raise ValueError(f"`{name}(combine=...)` must be one of {list(COMBINES)}. Received: combine={combine!r}")
        if activation not in TREE_ACTIVATIONS:
            raise ValueError(
                f"`{name}(activation=...)` must be one of {list(TREE_ACTIVATIONS)}. Received: activation={activation!r}"
            )
        self.combine = combine
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, inputs_shape, children_states_shape=None):
        features = known_features(inputs_shape, type(self).__name__)
        self.U = self.add_weight(
            shape=(features, self.units), name="U",
            initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
        )
        width = self.num_children * self.units if self.combine == "concat" else self.units
        self.W = self.add_weight(
            shape=(width, self.units), name="W",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
        )
        self.b = self.add_weight(shape=(self.units,), name="b", initializer=self.bias_initializer) if self.use_bias else None

    def project_inputs(self, inputs):
        """`b + U x`, for any leading shape of `inputs` (hoisted out of the level loop)."""
        z = ops.matmul(inputs, ops.cast(self.U, self.compute_dtype))
        return z + ops.cast(self.b, self.compute_dtype) if self.b is not None else z

    def activate(self, z):
        return {"tanh": ops.tanh, "relu": ops.relu, "sigmoid": ops.sigmoid}[self.activation](z)

    def recurrent_kernel(self):
        """`W` as a tensor of the compute dtype (read it once, outside a loop)."""
        return ops.cast(self.W, self.compute_dtype)

    def from_children(self, projected, children_states, recurrent_kernel=None):
        """`activation(projected + W c(n))`; `children_states` `(rows, K, units)`."""
        if recurrent_kernel is None:
            recurrent_kernel = self.recurrent_kernel()
        rows = ops.shape(children_states)[0]
        if self.combine == "concat":
            combined = ops.reshape(children_states, (rows, self.num_children * self.units))
        else:
            combined = ops.sum(children_states, axis=1)
        return self.activate(projected + ops.matmul(combined, recurrent_kernel))

    def call(self, inputs, children_states):
        check_cell_call(self, inputs)
        if children_states.shape[-1] not in (None, self.units):
            raise ValueError(
                f"`TreeCell` expects children_states of shape (rows, num_children, {self.units}). "
                f"Received: children_states.shape={tuple(children_states.shape)}"
            )
        if self.combine == "concat" and children_states.shape[1] not in (None, self.num_children):
            raise ValueError(
                f"`TreeCell(combine='concat', num_children={self.num_children})` expects children_states "
                f"of shape (rows, {self.num_children}, units). Received: children_states.shape={tuple(children_states.shape)}"
            )
        return self.from_children(self.project_inputs(inputs), children_states)

    def get_config(self):
        config = {
            "units": self.units,
            "num_children": self.num_children,
            "combine": self.combine,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
        }
        return {**super().get_config(), **config}
