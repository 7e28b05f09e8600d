"""How the gradient of the loss fades (or explodes) as it flows back in time (section 10.7).

`gradient_decay(model, x, y)` runs the book's explicit back-propagation through time,
`rnnzoo.bptt.backward`, on a batch and reports `||grad_h(t) L||` as a function of the
distance `tau - t` between the step where the loss is measured and the step whose state
receives the gradient. `rnnzoo.bptt.backward` already computes `grad_h(t) L` for every t
(the carry of the backward recurrence), so no extra automatic-differentiation pass is run:
the gradient of the loss with respect to the layer's output is written out too, for the
in-layer output `o(t) = c + V h(t)` (or `h(t)` itself) and a mean squared error or a softmax
cross-entropy.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from rnnzoo import bptt
from rnnzoo.diagnostics import spectrum
from rnnzoo.layers.vanilla_rnn import VanillaRNN

LOSSES = ("mse", "sparse_categorical_crossentropy")


@dataclasses.dataclass
class GradientDecay:
    """The result of `gradient_decay`; every array is indexed by the distance `k = tau - t`.

    Attributes:
        distance: `(time,)` ints `0, 1, ..., time - 1`.
        gradient_norm: `(time,)`, `||grad_h(tau - k) L||` averaged over the batch.
        gradient_norm_per_example: `(batch, time)`, the same for each example.
        jacobian_norm: `(time,)` or None, `||dh(tau)/dh(tau - k)||_2` averaged over the batch.
        eigenvalues: `(units,)` complex, the eigenvalues of `W`, largest modulus first.
        spectral_radius: float, `max |lambda|`.
        loss: float, the loss on the batch.
        loss_name: str, `"mse"` or `"sparse_categorical_crossentropy"`.
    """

    distance: np.ndarray
    gradient_norm: np.ndarray
    gradient_norm_per_example: np.ndarray
    jacobian_norm: np.ndarray | None
    eigenvalues: np.ndarray
    spectral_radius: float
    loss: float
    loss_name: str

    @property
    def relative_gradient_norm(self):
        """`gradient_norm / gradient_norm[0]`: 1 at distance 0, the decay factor after."""
        return self.gradient_norm / self.gradient_norm[0]


def find_vanilla_rnn(model):
    """The single `VanillaRNN` layer of `model` (or `model` itself if it is one)."""
    if isinstance(model, VanillaRNN):
        return model
    layers = [layer for layer in getattr(model, "_flatten_layers", lambda: [])() if isinstance(layer, VanillaRNN)]
    if len(layers) != 1:
        raise ValueError(
            "`gradient_decay` needs a model with exactly one `rnnzoo.layers.VanillaRNN` layer "
            f"(its explicit BPTT is what it reads). Received: {len(layers)} VanillaRNN layers in "
            f"{getattr(model, 'name', model)!r}"
        )
    return layers[0]


def _layer_inputs(model, layer, x):
    if model is layer:
        return ops.convert_to_tensor(x)
    if len(model.outputs) != 1 or model.outputs[0] is not layer.output:
        raise ValueError(
            "`gradient_decay` reads the loss gradient at the `VanillaRNN`'s own output, so the "
            "layer must be the model's output (use its `output_units` for the output layer "
            f"`o = c + V h`). Received: a model whose output comes from {model.layers[-1].name!r}"
        )
    if len(model.inputs) == 1 and layer.input is model.inputs[0]:
        return ops.convert_to_tensor(x)
    # Layers before the recurrence (no masks): run them to get the layer's inputs.
    return keras.Model(model.inputs, layer.input)(x)


def _output_gradient(o, y, loss):
    # grad_o L for L the mean over every example (and step, and output for mse) of the loss.
    if loss == "mse":
        y = ops.reshape(ops.cast(y, o.dtype), ops.shape(o))
        count = float(np.prod(o.shape))
        return 2.0 * (o - y) / count, ops.sum(ops.square(o - y)) / count
    y = ops.reshape(ops.cast(y, "int32"), ops.shape(o)[:-1])
    count = float(np.prod(o.shape[:-1]))
    log_p = ops.log_softmax(o, axis=-1)
    one_hot = ops.one_hot(y, ops.shape(o)[-1], dtype=o.dtype)
    loss_value = -ops.sum(one_hot * log_p) / count
    return (ops.exp(log_p) - one_hot) / count, loss_value  # eq. 10.18


def gradient_decay(model, x, y, *, loss="mse", at="last", jacobians=True):
    """`||grad_h(t) L||` against `tau - t` for a model built on `VanillaRNN`, from explicit BPTT.

    Args:
        model: a `keras.Model` whose output is the output of its one `VanillaRNN` layer
            (layers before it are allowed, masks are not), or a `VanillaRNN` itself. Trained
            or fresh.
        x: `(batch, time, features)` inputs of the model.
        y: targets: `(batch, n)` floats for `"mse"` on a last-step output, `(batch,)` ints
            for a softmax; with `return_sequences`, one target per step, `(batch, time, ...)`.
        loss: `"mse"` (mean squared error) or `"sparse_categorical_crossentropy"` (softmax
            of the layer's output, read as logits).
        at: for a `return_sequences` layer, `"last"` differentiates the loss at the last
            step only, so that `grad_h(t) L` is the gradient that travelled `tau - t` steps
            (the long-term-dependency question); `"all"` the loss averaged over every step.
        jacobians: bool, also compute `||dh(tau)/dh(t)||_2` (costs `time` batched
            `units x units` products and SVDs).

    Returns:
        A `GradientDecay`.

    Example:

    >>> from rnnzoo.layers import VanillaRNN
    >>> layer = VanillaRNN(4, output_units=1)
    >>> decay = gradient_decay(layer, np.ones((2, 5, 3), "float32"), np.zeros((2, 1), "float32"))
    >>> decay.distance.tolist(), float(decay.relative_gradient_norm[0])
    ([0, 1, 2, 3, 4], 1.0)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.7; Bengio, Simard,
        Frasconi, *Learning long-term dependencies with gradient descent is difficult*, 1994;
        Pascanu, Mikolov, Bengio, *On the difficulty of training recurrent neural networks*, 2013.
    """
    if loss not in LOSSES:
        raise ValueError(f"`gradient_decay(loss=...)` must be one of {list(LOSSES)}. Received: loss={loss!r}")
    if at not in ("last", "all"):
        raise ValueError(f"`gradient_decay(at=...)` must be 'last' or 'all'. Received: at={at!r}")
    layer = find_vanilla_rnn(model)
    inputs = _layer_inputs(model, layer, x)
    if not layer.built:
        layer(inputs)
    inputs = ops.cast(inputs, layer.compute_dtype)
    U, W, b, V, c = layer.cell.weight_tensors()
    y = ops.convert_to_tensor(y)
    if layer.go_backwards:
        inputs = ops.flip(inputs, axis=1)
        if layer.return_sequences:
            y = ops.flip(y, axis=1)  # the layer's sequence output is in processing order
    batch = ops.shape(inputs)[0]
    h0 = ops.zeros((batch, layer.units), dtype=inputs.dtype)
    hs = bptt.forward(inputs, h0, U, W, b, activation=layer.activation)  # (batch, time, units)

    def output(h):
        return bptt.output_forward(h, V, c) if V is not None else h

    def back_to_h(do):
        return ops.matmul(do, ops.transpose(V)) if V is not None else do  # V^T grad_o L

    dhs, dh_last = None, None
    if layer.return_sequences and at == "all":
        do, loss_value = _output_gradient(output(hs), y, loss)
        dhs = back_to_h(do)
    else:
        if layer.return_sequences:
            y = y[:, -1]
        do, loss_value = _output_gradient(output(hs[:, -1]), y, loss)
        dh_last = back_to_h(do)
    dh = bptt.backward(inputs, h0, hs, U, W, dhs=dhs, dh_last=dh_last, activation=layer.activation)["dh"]

    per_example = ops.convert_to_numpy(ops.flip(spectrum.vector_norm(dh), axis=1))  # (batch, time), by distance
    per_example = np.asarray(per_example, np.float64)
    jacobian_norm = None
    if jacobians:
        jacobian_norm = spectrum.jacobian_norms(hs, W, layer.activation)[:, :-1].mean(axis=0)
    values = spectrum.eigenvalues(W)
    return GradientDecay(
        distance=np.arange(per_example.shape[1]),
        gradient_norm=per_example.mean(axis=0),
        gradient_norm_per_example=per_example,
        jacobian_norm=jacobian_norm,
        eigenvalues=values,
        spectral_radius=float(np.abs(values).max()),
        loss=float(ops.convert_to_numpy(loss_value)),
        loss_name=loss,
    )


def _table_distances(time):
    if time <= 12:
        return list(range(time))
    picks = {0, 1, 2, 3, 5, time - 1}
    k = 10
    while k < time:
        picks.update({k})
        k = k * 2 if str(k).startswith("1") else k * 5 // 2
    return sorted(picks)


def format_table(decay, distances=None):
    """The table `rnnzoo diagnose` prints: one row per distance `tau - t` (a log-spaced subset).

    Example:

    >>> from rnnzoo.layers import VanillaRNN
    >>> layer = VanillaRNN(4, output_units=1)
    >>> decay = gradient_decay(layer, np.ones((2, 3, 3), "float32"), np.zeros((2, 1), "float32"))
    >>> print(format_table(decay).splitlines()[0])
    tau - t   ||grad_h(t) L||   relative   ||dh(tau)/dh(t)||
    """
    if distances is None:
        distances = _table_distances(len(decay.distance))
    lines = [f"{'tau - t':>7}   {'||grad_h(t) L||':>15}   {'relative':>8}   {'||dh(tau)/dh(t)||':>17}"]
    for k in distances:
        jacobian = f"{decay.jacobian_norm[k]:17.3e}" if decay.jacobian_norm is not None else f"{'-':>17}"
        lines.append(
            f"{k:>7}   {decay.gradient_norm[k]:15.3e}   {decay.relative_gradient_norm[k]:8.2e}   {jacobian}"
        )
    return "\n".join(lines)


__all__ = ["GradientDecay", "gradient_decay", "find_vanilla_rnn", "format_table", "LOSSES"]
