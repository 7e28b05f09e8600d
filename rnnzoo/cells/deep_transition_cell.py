"""The deep-transition cell of the Deep Learning book, section 10.5 (fig. 10.13 b and c)."""

import keras
from keras import ops

from rnnzoo.foundation import check_cell_call, known_features, validate_units


@keras.saving.register_keras_serializable(package="rnnzoo")
class DeepTransitionCell(keras.layers.Layer):
    """One step whose hidden-to-hidden transition is an MLP, optionally with a skip connection.

    With `L = transition_depth` layers (book notation, row-vector layout as in Keras):

        z(1) = f(b_1 + h(t-1) W_1 + x(t) U)                 # (batch, transition_units)
        z(k) = f(b_k + z(k-1) W_k),        k = 2 .. L-1      # (batch, transition_units)
        h(t) = f(b_L + z(L-1) W_L [+ h(t-1) S])              # (batch, units)

    so the shortest path from `h(t-1)` to `h(t)` crosses `L` nonlinearities (fig. 10.13b).
    `skip_connection=True` adds the learned shortcut `h(t-1) S` straight into the last layer
    (fig. 10.13c; the DT(S)-RNN of Pascanu et al., 2014), which shortens that path to one
    nonlinearity while keeping the deep transition. With `L = 1` the cell is the vanilla cell
    `h(t) = f(b_1 + h(t-1) W_1 + x(t) U)`.

    Run it over a sequence with `rnnzoo.layers.Recurrent` (or stack it with
    `rnnzoo.layers.DeepRNN`); gradients are automatic.

    Weights: `U` `(features, n_1)`, `W_1` `(units, n_1)`, `W_k` `(transition_units,
    n_k)` for k >= 2, `b_k` `(n_k,)`, and with the skip `S` `(units, units)`, where
    `n_k = transition_units` for k < L and `n_L = units`.

    Args:
        units: int, size of the hidden state `h`.
        transition_depth: int >= 1, number of layers `L` of the transition MLP.
        transition_units: int or None, width of the MLP's intermediate layers `z(k)`;
            None uses `units`.
        skip_connection: bool, add the shortcut `h(t-1) S` to the last layer (needs
            `transition_depth >= 2`).
        activation: a Keras activation (name or callable) for every layer `f`.
        use_bias: bool, whether to use the biases `b_k`.
        kernel_initializer: initializer for `U` and the intermediate `W_k` (k >= 2).
        recurrent_initializer: initializer for `W_1` and `S` (the weights applied to `h(t-1)`).
        bias_initializer: initializer for the `b_k`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, features)`, `x(t)`.
        states: list of one `(batch, units)` tensor, `h(t-1)`.

    Returns:
        `(h, [h])`, each `(batch, units)`.

    Example:

    >>> from rnnzoo.layers import Recurrent
    >>> cell = DeepTransitionCell(8, transition_depth=3, skip_connection=True)
    >>> tuple(Recurrent(cell, return_sequences=True)(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 8)
    >>> [w.path.split("/")[-1] for w in cell.weights]
    ['U', 'W_1', 'b_1', 'W_2', 'b_2', 'W_3', 'b_3', 'S']

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.5, fig. 10.13 (b), (c);
        Pascanu, Gulcehre, Cho, Bengio, "How to Construct Deep Recurrent Neural Networks" (2014).
    """

    def __init__(
        self,
        units,
        transition_depth=2,
        transition_units=None,
        skip_connection=False,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        self.units = validate_units("units", units, name)
        self.transition_depth = validate_units("transition_depth", transition_depth, name)
        self.transition_units = validate_units("transition_units", transition_units, name, allow_none=True)
        if skip_connection and transition_depth < 2:
            raise ValueError(
                f"`{name}(skip_connection=True)` shortens a deep transition, so it needs "
                "`transition_depth >= 2` (with depth 1 the shortcut would duplicate `W_1`). "
                f"Received: skip_connection={skip_connection!r}, transition_depth={transition_depth!r}"
            )
        self.skip_connection = bool(skip_connection)
        self.activation = keras.activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        features = known_features(input_shape, type(self).__name__)
        depth, width = self.transition_depth, self.transition_units or self.units
        sizes = [width] * (depth - 1) + [self.units]  # n_1 .. n_L
        self.U = self.add_weight(shape=(features, sizes[0]), name="U", initializer=self.kernel_initializer)
        self.transition_kernels, self.transition_biases = [], []
        for k, size in enumerate(sizes, start=1):
            rows = self.units if k == 1 else sizes[k - 2]
            initializer = self.recurrent_initializer if k == 1 else self.kernel_initializer
            self.transition_kernels.append(
                self.add_weight(shape=(rows, size), name=f"W_{k}", initializer=initializer)
            )
            self.transition_biases.append(
                self.add_weight(shape=(size,), name=f"b_{k}", initializer=self.bias_initializer)
                if self.use_bias else None
            )
        self.S = (
            self.add_weight(shape=(self.units, self.units), name="S", initializer=self.recurrent_initializer)
            if self.skip_connection else None
        )

    def call(self, inputs, states, training=False):
        check_cell_call(self, inputs, states)
        h_prev = states[0] if isinstance(states, (list, tuple)) else states  # (batch, units)
        z = ops.matmul(inputs, self.U) + ops.matmul(h_prev, self.transition_kernels[0])
        for k in range(self.transition_depth):
            if k > 0:
                z = ops.matmul(z, self.transition_kernels[k])  # (batch, n_k)
            if k == self.transition_depth - 1 and self.S is not None:
                z = z + ops.matmul(h_prev, self.S)  # the shortcut h(t-1) -> h(t)
            if self.transition_biases[k] is not None:
                z = z + self.transition_biases[k]
            z = self.activation(z)
        return z, [z]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def get_config(self):
        config = {
            "units": self.units,
            "transition_depth": self.transition_depth,
            "transition_units": self.transition_units,
            "skip_connection": self.skip_connection,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }
        return {**super().get_config(), **config}
