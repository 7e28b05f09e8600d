"""Back-propagation through time for the vanilla RNN, written out as in the book (section 10.2.2).

The vanilla recurrent network of the Deep Learning book, eqs. 10.8-10.10:

    a(t) = b + W h(t-1) + U x(t)        (10.8)
    h(t) = tanh(a(t))                   (10.9)
    o(t) = c + V h(t)                   (10.10)

and its gradients (eqs. 10.18-10.28), with L the loss and t = 1..tau:

    grad_h(tau) L = V^T grad_o(tau) L                                       (10.19)
    grad_h(t) L   = W^T diag(1 - h(t+1)^2) grad_h(t+1) L + V^T grad_o(t) L   (10.21)
    grad_c L      = sum_t grad_o(t) L                                       (10.22)
    grad_b L      = sum_t diag(1 - h(t)^2) grad_h(t) L                      (10.23)
    grad_V L      = sum_t (grad_o(t) L) h(t)^T                              (10.24)
    grad_W L      = sum_t diag(1 - h(t)^2) (grad_h(t) L) h(t-1)^T           (10.26)
    grad_U L      = sum_t diag(1 - h(t)^2) (grad_h(t) L) x(t)^T             (10.28)

This module is the book's part: one step forwards, one step backwards, and the sums over t.
How the steps are scheduled (XLA, time chunks) and wired into Keras as a layer's gradient
(`keras.ops.custom_gradient`) is in `rnnzoo.bptt_wiring`.

Conventions. Tensors are batch-major and vectors are rows, as in Keras: `x` is
`(batch, time, features)` and the book's `W h(t-1)` is `h(t-1) @ W` here, so our `U`, `W`, `V`
(shapes `(features, units)`, `(units, units)`, `(units, output_units)`, the layout of Keras's
`kernel` and `recurrent_kernel`) are the transposes of the book's matrices. The loops run
time-major (`(time, batch, ...)`). The sums over time in the parameter gradients are single
matrix products over the flattened `(time * batch)` axis, computed after the backward
recurrence, which only carries `grad_h(t) L` (one small GEMM per step). The activation may be
`tanh` (the book's), `relu`, `sigmoid` or `linear`: `1 - h(t)^2` is then its derivative.

Masks. `mask` is `(batch, time)`, True (or 1) at valid steps. At a padded step the state is
carried, `h(t) = h(t-1)`, selected (never blended, so a NaN in a padded input cannot leak), and
the step contributes nothing to any gradient.

Dropout (Gal and Ghahramani, 2016, as Keras's cells do it). `input_dropout` `(batch, features)`
and `recurrent_dropout` `(batch, units)` are masks (0 or 1 / (1 - rate)) drawn once per sequence
and applied at every step: the book's `U x(t)` becomes `U (x(t) * input_dropout)` and
`W h(t-1)` becomes `W (h(t-1) * recurrent_dropout)`; the gradients use the same masked
`x(t)` and `h(t-1)`.

Everything here is a pure function of `keras.ops` tensors, usable on every backend.
"""

from keras import ops

from rnnzoo import recurrence
from rnnzoo.foundation import activate, activation_derivative, flatten_time, time_major

# ---------------------------------------------------------------------------------------------
# One step


def forward_step(h_previous, projected_input, W, *, activation, step_mask=None, recurrent_dropout=None):
    """One step of the recurrence: `h(t)` from `h(t-1)` and `b + U x(t)`.

    Args:
        h_previous: `(batch, units)`, `h(t-1)`.
        projected_input: `(batch, units)`, `b + U x(t)` (computed for all t at once).
        W: `(units, units)`.
        activation: the name of `f`.
        step_mask: optional `(batch, 1)` bool, True where step t is valid.
        recurrent_dropout: optional `(batch, units)` dropout mask on `h(t-1)`.
    """
    h_in = h_previous if recurrent_dropout is None else h_previous * recurrent_dropout
    a = projected_input + ops.matmul(h_in, W)  # (10.8)   a(t) = b + W h(t-1) + U x(t)
    h = activate(a, activation)  # (10.9)                  h(t) = tanh(a(t))
    if step_mask is not None:
        h = ops.where(step_mask, h, h_previous)  # padded step: h(t) = h(t-1)
    return h


def backward_step(dh_future, h, W_transposed, *, activation, dh_output=None, step_mask=None,
                  recurrent_dropout=None):
    """One step of the backward recurrence, from t + 1 to t.

    Args:
        dh_future: `(batch, units)`, the gradient reaching `h(t)` through `a(t+1)`:
            `W^T diag(1 - h(t+1)^2) grad_h(t+1) L`.
        h: `(batch, units)`, `h(t)`.
        W_transposed: `(units, units)`, `W^T`.
        dh_output: optional `(batch, units)`, `V^T grad_o(t) L`, the gradient reaching `h(t)`
            from the output at t.
        step_mask, recurrent_dropout: as in `forward_step`.

    Returns:
        `(dh_past, da, dh)`: the gradient reaching `h(t-1)`, `grad_a(t) L` and `grad_h(t) L`.
    """
    dh = dh_future if dh_output is None else dh_future + dh_output  # (10.21) grad_h(t) L
    da = activation_derivative(h, activation) * dh  # grad_a(t) L = diag(1 - h(t)^2) grad_h(t) L
    if step_mask is not None:
        da = ops.where(step_mask, da, ops.zeros_like(da))  # a padded step has no a(t)
    dh_past = ops.matmul(da, W_transposed)  # W^T grad_a(t) L: grad_h(t-1) L through a(t)
    if recurrent_dropout is not None:
        dh_past = dh_past * recurrent_dropout
    if step_mask is not None:
        dh_past = ops.where(step_mask, dh_past, dh)  # padded step: h(t) = h(t-1) passes it on
    return dh_past, da, dh


# ---------------------------------------------------------------------------------------------
# Whole sequences


def forward(x, h0, U, W, b, mask=None, *, activation="tanh", input_dropout=None, recurrent_dropout=None,
            training=True, unroll=1):
    """Runs the recurrence `h(t) = f(b + W h(t-1) + U x(t))` over a whole sequence.

    Args:
        x: `(batch, time, features)` inputs, `time >= 1`.
        h0: `(batch, units)` initial state `h(0)`.
        U: `(features, units)`. W: `(units, units)`. b: `(units,)`.
        mask: optional `(batch, time)`, True or 1 at valid steps; padded steps keep the state.
        activation: `"tanh"` (the book's), `"relu"`, `"sigmoid"` or `"linear"`.
        input_dropout, recurrent_dropout: optional dropout masks (see the module docstring).
        training: bool, selects the loop implementation on TensorFlow (`rnnzoo.recurrence`).
        unroll: loop unrolling on JAX.

    Returns:
        `(batch, time, units)`: `h(t)` for every t.
    """
    mask = time_major_mask(mask)
    projected = input_projection(clean_inputs(x, mask), U, b, input_dropout)
    _, hs = scan_forward(projected, h0, W, mask, activation=activation, recurrent_dropout=recurrent_dropout,
                         training=training, unroll=unroll)
    return time_major(hs)


def backward(x, h0, hs, U, W, dhs=None, mask=None, *, dh_last=None, activation="tanh", input_dropout=None,
             recurrent_dropout=None, training=True, unroll=1):
    """The backward recurrence and the gradients of the recurrence's parameters.

    Args:
        x, h0, U, W, mask, activation, input_dropout, recurrent_dropout: as given to `forward`.
        hs: `(batch, time, units)`, the result of `forward`.
        dhs: optional `(batch, time, units)`, the gradient arriving at each `h(t)` from outside
            the recurrence, e.g. `V^T grad_o(t) L` for a per-step output (`output_backward`).
        dh_last: optional `(batch, units)`, the gradient arriving at the final state.

    Returns:
        A dict of tensors: `dh` is `grad_h(t) L` for every t, `(batch, time, units)` (the total
        gradient, through the recurrence: what the long-term-dependency diagnostics plot);
        `da` is `grad_a(t) L`; `dU`, `dW`, `db` the parameter gradients; `dx` the input
        gradient `(batch, time, features)`; `dh0` the gradient of the initial state.
    """
    if dhs is None and dh_last is None:
        raise ValueError("`backward` needs the gradient of the loss: pass `dhs` and/or `dh_last`.")
    mask = time_major_mask(mask)
    hs = time_major(hs)
    dh_last = ops.zeros_like(h0) if dh_last is None else dh_last
    dh0, (da, dh) = scan_backward(hs, W, None if dhs is None else time_major(dhs), dh_last, mask,
                                  activation=activation, recurrent_dropout=recurrent_dropout,
                                  training=training, unroll=unroll, return_dh=True)
    return {
        "dh": time_major(dh),
        "da": time_major(da),
        "dh0": dh0,
        **parameter_gradients(clean_inputs(x, mask), h0, hs, U, da, input_dropout=input_dropout,
                              recurrent_dropout=recurrent_dropout),
    }


def scan_forward(projected, h0, W, mask=None, *, activation, recurrent_dropout=None, training=True, unroll=1,
                 jit_compile=False):
    """The forward loop, time-major: `projected` `(time, batch, units)`, `mask` `(time, batch, 1)`.

    Returns `(h_last, hs)`. The final state is the loop's carry, not `hs[-1]`, which jax2tf
    exports as a `dynamic_gather` (time is symbolic) that the TFLite converter rejects.
    """
    xs = projected if mask is None else (projected, mask)

    def step(h, inputs):
        projected_t, m_t = (inputs, None) if mask is None else inputs
        h = forward_step(h, projected_t, W, activation=activation, step_mask=m_t,
                         recurrent_dropout=recurrent_dropout)
        return h, h

    return recurrence.scan(step, h0, xs, training=training, unroll=unroll, jit_compile=jit_compile)


def scan_backward(hs, W, dhs, dh_last, mask=None, *, activation, recurrent_dropout=None, training=True, unroll=1,
                  return_dh=False, jit_compile=False):
    """The backward loop, time-major, from the last step to the first.

    Returns `(dh0, da)`, or `(dh0, (da, dh))` with `return_dh`.
    """
    W_transposed = ops.transpose(W)
    xs = (hs,) + ((dhs,) if dhs is not None else ()) + ((mask,) if mask is not None else ())

    def step(dh_future, inputs):
        h_t = inputs[0]
        dh_output = inputs[1] if dhs is not None else None
        m_t = inputs[-1] if mask is not None else None
        dh_past, da, dh = backward_step(dh_future, h_t, W_transposed, activation=activation, dh_output=dh_output,
                                        step_mask=m_t, recurrent_dropout=recurrent_dropout)
        return dh_past, ((da, dh) if return_dh else da)

    return recurrence.scan(step, dh_last, xs, training=training, reverse=True, unroll=unroll,
                           jit_compile=jit_compile)


def parameter_gradients(x, h0, hs, U, da, *, input_dropout=None, recurrent_dropout=None):
    """The sums over t of the book's formulas, each one GEMM over the flattened (time * batch) axis.

    Args:
        x: `(batch, time, features)` (zero at padded steps); `hs`, `da`: time-major.
    """
    h_previous = ops.concatenate([ops.expand_dims(h0, 0), hs[:-1]], axis=0)  # h(t-1)
    if recurrent_dropout is not None:
        h_previous = h_previous * recurrent_dropout
    x = time_major(x)
    if input_dropout is not None:
        x = x * input_dropout
    da_flat = flatten_time(da)
    dx = ops.einsum("tbu,fu->btf", da, U)  # grad_x(t) L = U^T grad_a(t) L
    if input_dropout is not None:
        dx = dx * ops.expand_dims(input_dropout, 1)
    return {
        "dW": ops.matmul(ops.transpose(flatten_time(h_previous)), da_flat),  # (10.26)
        "dU": ops.matmul(ops.transpose(flatten_time(x)), da_flat),  # (10.28)
        "db": ops.sum(da_flat, axis=0),  # (10.23)
        "dx": dx,
    }


# ---------------------------------------------------------------------------------------------
# The output layer and the loss


def output_forward(h, V, c):
    """`o(t) = c + V h(t)` (10.10) for `h` of shape `(..., units)`."""
    return ops.matmul(h, V) + c


def output_backward(h, V, do):
    """Gradients of `o(t) = c + V h(t)` given `do = grad_o(t) L`, shape `(batch, [time,] outputs)`.

    Returns:
        `(dh, dV, dc)`: `V^T grad_o(t) L`, `sum_t grad_o(t) L h(t)^T` (10.24), `sum_t grad_o(t) L` (10.22).
    """
    do_flat = flatten_time(do)
    dV = ops.matmul(ops.transpose(flatten_time(h)), do_flat)  # (10.24)
    dc = ops.sum(do_flat, axis=0)  # (10.22)
    dh = ops.matmul(do, ops.transpose(V))  # V^T grad_o(t) L
    return dh, dV, dc


def softmax_cross_entropy_output_gradient(o, y):
    """`grad_o(t) L = y_hat(t) - y(t)` for `L = -sum_t log softmax(o(t))[y(t)]`, eq. 10.18.

    Args:
        o: `(..., classes)` logits. y: `(...)` integer targets.
    """
    return ops.softmax(o, axis=-1) - ops.one_hot(y, ops.shape(o)[-1], dtype=o.dtype)


# ---------------------------------------------------------------------------------------------
# Inputs


def input_projection(x, U, b, input_dropout=None):
    """`b + U x(t)` for all t at once, time-major: one GEMM. Transposing x (features wide) before
    the product is cheaper than transposing its (units wide) result."""
    x = time_major(x)
    if input_dropout is not None:
        x = x * input_dropout
    return ops.matmul(x, U) + b


def time_major_mask(mask):
    """`(batch, time)` -> `(time, batch, 1)` bool (None stays None)."""
    return None if mask is None else ops.expand_dims(ops.transpose(ops.cast(mask, "bool")), -1)


def clean_inputs(x, mask):
    """`x` with zeros at padded steps (`mask` time-major), so that a NaN there reaches nothing."""
    if mask is None:
        return x
    return ops.where(time_major(mask), x, ops.zeros_like(x))


__all__ = [
    "forward_step",
    "backward_step",
    "forward",
    "backward",
    "scan_forward",
    "scan_backward",
    "parameter_gradients",
    "output_forward",
    "output_backward",
    "softmax_cross_entropy_output_gradient",
    "input_projection",
]
