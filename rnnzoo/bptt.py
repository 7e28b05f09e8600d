"""Back-propagation through time for the vanilla RNN, written out as in the book (section 10.2.2).

The vanilla recurrent network of the Deep Learning book, eqs. 10.8-10.11:

    a(t) = b + W h(t-1) + U x(t)
    h(t) = tanh(a(t))
    o(t) = c + V h(t)

and its gradients (eqs. 10.18-10.28), with L the loss and t = 1..tau:

    grad_h(tau) L = V^T grad_o(tau) L
    grad_h(t) L   = W^T diag(1 - h(t+1)^2) grad_h(t+1) L + V^T grad_o(t) L
    grad_c L      = sum_t grad_o(t) L
    grad_b L      = sum_t diag(1 - h(t)^2) grad_h(t) L
    grad_V L      = sum_t (grad_o(t) L) h(t)^T
    grad_W L      = sum_t diag(1 - h(t)^2) (grad_h(t) L) h(t-1)^T
    grad_U L      = sum_t diag(1 - h(t)^2) (grad_h(t) L) x(t)^T

Conventions. Tensors are batch-major and vectors are rows, as in Keras: `x` is
`(batch, time, features)` and the book's `W h(t-1)` is `h(t-1) @ W` here, so our `U`, `W`, `V`
(shapes `(features, units)`, `(units, units)`, `(units, output_units)`, the layout of Keras's
`kernel` and `recurrent_kernel`) are the transposes of the book's matrices. The sums over time
in the parameter gradients are single matrix products over the flattened `(batch * time)` axis,
computed after the backward recurrence, which only carries `grad_h(t) L` (one small GEMM per
step).

Masks. `mask` is `(batch, time)` with 1 at valid steps and 0 at padding. At a padded step the
state is carried unchanged, `h(t) = h(t-1)`, so the state after the loop is the state at each
sequence's last valid step; the padded step contributes nothing to any gradient.

Everything here is a pure function of `keras.ops` tensors, usable on every backend.
"""

import keras
from keras import ops
from keras import tree

from rnnzoo import recurrence

ACTIVATIONS = ("tanh", "relu")
GRADIENTS = ("bptt", "autodiff")


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"`activation` must be one of {list(ACTIVATIONS)}: the explicit gradient needs its "
            f"derivative. Received: activation={activation!r}"
        )


def _activate(a, activation):
    _check_activation(activation)
    if activation == "relu":
        return ops.relu(a)
    h = ops.tanh(a)
    if h.dtype != a.dtype:
        # Keras's type promotion computes `ops.tanh` of float64 in float32 on JAX. This form
        # of tanh keeps float64 and full precision: tanh|a| = -e / (e + 2), e = expm1(-2|a|).
        e = ops.expm1(-2.0 * ops.abs(a))
        h = ops.sign(a) * (-e) / (e + 2.0)
    return h


def activation_derivative(h, activation):
    """`f'(a(t))` written in terms of `h(t) = f(a(t))`: `1 - h^2` for tanh, `[h > 0]` for relu."""
    _check_activation(activation)
    if activation == "tanh":
        return 1.0 - ops.square(h)
    return ops.cast(ops.greater(h, 0), h.dtype)  # relu


def _flatten(x):
    # (time, batch, n) -> (time * batch, n): a sum over t (and the batch) becomes one GEMM.
    return ops.reshape(x, (-1, ops.shape(x)[-1]))


def _time_major(x):
    return ops.transpose(x, (1, 0) + tuple(range(2, len(x.shape))))


def _forward_time_major(xu, h0, W, mask, activation, training, unroll, jit_compile=False):
    # xu: (time, batch, units) = b + U x(t); mask: (time, batch, 1) or None.
    xs = xu if mask is None else (xu, mask)

    def step(h, inputs):
        xu_t, m_t = (inputs, None) if mask is None else inputs
        a = xu_t + ops.matmul(h, W)  # a(t) = b + W h(t-1) + U x(t)
        h_new = _activate(a, activation)  # h(t) = tanh(a(t))
        if m_t is not None:
            h_new = h + m_t * (h_new - h)  # padded step: h(t) = h(t-1)
        return h_new, h_new

    # (h_last, hs): the final state is the loop's carry, not `hs[-1]`, which jax2tf exports as
    # a `dynamic_gather` (time is symbolic) that the TFLite converter rejects.
    return recurrence.scan(step, h0, xs, training=training, unroll=unroll, jit_compile=jit_compile)


def _backward_time_major(hs, W, dhs, dh_last, mask, activation, training, unroll, return_dh,
                         jit_compile=False):
    # hs: (time, batch, units); dhs: (time, batch, units) or None; mask: (time, batch, 1) or None.
    # The carry is the gradient reaching h(t) from the future; it starts as grad_h(tau) L.
    W_transposed = ops.transpose(W)
    xs = (hs,) + ((dhs,) if dhs is not None else ()) + ((mask,) if mask is not None else ())

    def step(dh_future, inputs):
        h_t, rest = inputs[0], list(inputs[1:])
        dh = dh_future + rest.pop(0) if dhs is not None else dh_future  # grad_h(t) L = W^T diag(1-h(t+1)^2) grad_h(t+1) L + V^T grad_o(t) L
        derivative = activation_derivative(h_t, activation)  # diag(1 - h(t)^2)
        m_t = rest.pop(0) if mask is not None else None
        if m_t is not None:
            derivative = derivative * m_t  # a padded step has no a(t)
        da = derivative * dh  # grad_a(t) L = diag(1 - h(t)^2) grad_h(t) L
        dh_past = ops.matmul(da, W_transposed)  # W^T grad_a(t) L: grad_h(t-1) L through a(t)
        if m_t is not None:
            dh_past = dh_past + (1.0 - m_t) * dh  # padded step: h(t) = h(t-1) passes it on
        return dh_past, ((da, dh) if return_dh else da)

    dh0, ys = recurrence.scan(step, dh_last, xs, training=training, reverse=True, unroll=unroll,
                              jit_compile=jit_compile)
    da, dh = ys if return_dh else (ys, None)
    return da, dh, dh0


def _parameter_gradients(x, h0, hs, U, da):
    # The sums over t of the book's formulas, each one GEMM over the flattened (time * batch)
    # axis, after the backward recurrence. x: (batch, time, features); hs, da: time-major.
    h_prev = ops.concatenate([ops.expand_dims(h0, 0), hs[:-1]], axis=0)  # h(t-1)
    da_flat = _flatten(da)
    return {
        "dW": ops.matmul(ops.transpose(_flatten(h_prev)), da_flat),  # sum_t diag(1-h(t)^2) grad_h(t) L h(t-1)^T
        "dU": ops.matmul(ops.transpose(_flatten(_time_major(x))), da_flat),  # sum_t diag(1-h(t)^2) grad_h(t) L x(t)^T
        "db": ops.sum(da_flat, axis=0),  # sum_t diag(1-h(t)^2) grad_h(t) L
        "dx": ops.einsum("tbu,fu->btf", da, U),  # grad_x(t) L = U^T grad_a(t) L
    }


def _backward_and_parameter_gradients(x, h0, hs, U, W, dhs, dh_last, mask, activation, training,
                                      unroll, jit_compile):
    """The backward recurrence, then the parameter gradients (time-major `hs`, `dhs`, `mask`)."""
    num_steps = hs.shape[0]
    chunks = _OVERLAP_CHUNKS
    if not (jit_compile and training and keras.backend.backend() == "tensorflow"
            and isinstance(num_steps, int) and num_steps >= 8 * chunks):
        da, _, dh0 = _backward_time_major(hs, W, dhs, dh_last, mask, activation, training, unroll,
                                          return_dh=False, jit_compile=jit_compile)
        return {**_parameter_gradients(x, h0, hs, U, da), "dh0": dh0}
    # On TensorFlow the XLA-compiled loop runs on one core. Run the backward recurrence in time
    # chunks, last chunk first: each chunk's share of the sums over t (two GEMMs) is independent
    # of the next chunk's loop, so the graph executor runs them side by side on the other core.
    # Same function, same formulas; the sums over t are just split in `chunks` partial sums.
    bounds = [round(i * num_steps / chunks) for i in range(chunks + 1)]
    x_time_major = _time_major(x)
    dh_future, das, dW, dU = dh_last, [], 0.0, 0.0
    for start, end in reversed(list(zip(bounds[:-1], bounds[1:]))):
        da, _, dh_future = _backward_time_major(
            hs[start:end], W, None if dhs is None else dhs[start:end], dh_future,
            None if mask is None else mask[start:end], activation, training, unroll,
            return_dh=False, jit_compile=True,
        )
        h_prev = hs[start - 1:end - 1] if start > 0 else ops.concatenate(
            [ops.expand_dims(h0, 0), hs[:end - 1]], axis=0)
        da_flat = _flatten(da)
        dW = dW + ops.matmul(ops.transpose(_flatten(h_prev)), da_flat)  # this chunk's share of sum_t
        dU = dU + ops.matmul(ops.transpose(_flatten(x_time_major[start:end])), da_flat)
        das.insert(0, da)
    da = ops.concatenate(das, axis=0)
    return {
        "dW": dW,
        "dU": dU,
        "db": ops.sum(_flatten(da), axis=0),
        "dx": ops.einsum("tbu,fu->btf", da, U),
        "dh0": dh_future,
    }


_OVERLAP_CHUNKS = 4


def _input_projection(x, U, b):
    # b + U x(t) for all t at once: one GEMM, time-major. Transposing x (features wide) before
    # the product is cheaper than transposing its (units wide) result.
    return ops.matmul(_time_major(x), U) + b


def _mask_time_major(mask):
    return None if mask is None else ops.expand_dims(ops.transpose(mask), -1)


def forward(x, h0, U, W, b, mask=None, *, activation="tanh", training=True, unroll=1):
    """Runs the recurrence `h(t) = f(b + W h(t-1) + U x(t))` over a whole sequence.

    Args:
        x: `(batch, time, features)` inputs, `time >= 1`.
        h0: `(batch, units)` initial state `h(0)`.
        U: `(features, units)`. W: `(units, units)`. b: `(units,)`.
        mask: optional `(batch, time)` float tensor of 0/1; padded steps keep the state.
        activation: `"tanh"` (the book's) or `"relu"`.
        training: bool, selects the loop implementation on TensorFlow (see `rnnzoo.recurrence`).
        unroll: int, loop unrolling on JAX.

    Returns:
        `(batch, time, units)`: `h(t)` for every t; `h[:, -1]` is the final state.
    """
    xu = _input_projection(x, U, b)
    _, hs = _forward_time_major(xu, h0, W, _mask_time_major(mask), activation, training, unroll)
    return _time_major(hs)


def backward(x, h0, hs, U, W, dhs=None, mask=None, *, dh_last=None, activation="tanh",
             training=True, unroll=1):
    """The backward recurrence and the gradients of the recurrence's parameters.

    Args:
        x, h0, U, W, mask, activation: as given to `forward`.
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
    hs = _time_major(hs)
    if dh_last is None:
        dh_last = ops.zeros_like(h0)
    da, dh, dh0 = _backward_time_major(
        hs, W, None if dhs is None else _time_major(dhs), dh_last, _mask_time_major(mask),
        activation, training, unroll, return_dh=True,
    )
    return {
        "dh": _time_major(dh),
        "da": _time_major(da),
        "dh0": dh0,
        **_parameter_gradients(x, h0, hs, U, da),
    }


def output_forward(h, V, c):
    """`o(t) = c + V h(t)` for `h` of shape `(..., units)`."""
    return ops.matmul(h, V) + c


def output_backward(h, V, do):
    """Gradients of `o(t) = c + V h(t)` given `do = grad_o(t) L`, shape `(batch, [time,] outputs)`.

    Returns:
        `(dh, dV, dc)`: `V^T grad_o(t) L`, `sum_t grad_o(t) L h(t)^T`, `sum_t grad_o(t) L`.
    """
    do_flat = _flatten(do)
    dV = ops.matmul(ops.transpose(_flatten(h)), do_flat)  # sum_t (grad_o(t) L) h(t)^T
    dc = ops.sum(do_flat, axis=0)  # sum_t grad_o(t) L
    dh = ops.matmul(do, ops.transpose(V))  # V^T grad_o(t) L
    return dh, dV, dc


def softmax_cross_entropy_output_gradient(o, y):
    """`grad_o(t) L = y_hat(t) - y(t)` for `L = -sum_t log softmax(o(t))[y(t)]`, eq. 10.18.

    Args:
        o: `(..., classes)` logits. y: `(...)` integer targets.
    """
    return ops.softmax(o, axis=-1) - ops.one_hot(y, ops.shape(o)[-1], dtype=o.dtype)


def vanilla_rnn(x, h0, U, W, b, V=None, c=None, mask=None, *, activation="tanh",
                return_sequences=False, gradient="bptt", training=True, unroll=1, jit_compile=False):
    """The whole vanilla RNN as one differentiable function.

    With `gradient="bptt"` its gradient is the explicit backward pass above (wired in with
    `keras.ops.custom_gradient`); with `"autodiff"` the same forward is differentiated
    automatically.

    Args:
        x, h0, U, W, b, mask, activation, training, unroll: as for `forward`.
        jit_compile: bool, compile the loops with XLA on TensorFlow in training (graph mode);
            only with `gradient="bptt"`.
        V: optional `(units, output_units)`, with `c` `(output_units,)`: the output layer.
        return_sequences: bool, return the output at every step or only the last.

    Returns:
        `(outputs, h_last)`: `outputs` is `(batch, time, n)` with zeros at padded steps if
        `return_sequences`, else `(batch, n)`; `n` is `output_units` with an output layer, else
        `units`. `h_last` `(batch, units)` is the state after the last valid step.
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"`gradient` must be one of {list(GRADIENTS)}. Received: gradient={gradient!r}")
    has_output = V is not None
    has_mask = mask is not None
    # TensorFlow cannot differentiate through an XLA-compiled `while_loop` ("XLA compilation
    # requires a fixed tensor list size"): with autodiff the forward loop stays uncompiled.
    forward_jit_compile = jit_compile and gradient == "bptt"

    def run(x, h0, mask, U, W, b, V, c):
        xu = _input_projection(x, U, b)
        h_last, hs = _forward_time_major(xu, h0, W, _mask_time_major(mask), activation, training,
                                         unroll, forward_jit_compile)
        if return_sequences:
            outputs = _time_major(hs)
            if has_output:
                outputs = output_forward(outputs, V, c)
            if mask is not None:
                outputs = outputs * ops.expand_dims(mask, -1)
        else:
            outputs = output_forward(h_last, V, c) if has_output else h_last
        return hs, (outputs, h_last)

    if gradient == "autodiff":
        return run(x, h0, mask, U, W, b, V, c)[1]

    # The custom-gradient function takes only tensors (no None, no variables): see FACTS.md.
    args = [x, h0, U, W, b] + ([V, c] if has_output else []) + ([mask] if has_mask else [])

    @ops.custom_gradient
    def explicit(*args):
        x, h0, U, W, b = args[:5]
        V, c = args[5:7] if has_output else (None, None)
        mask = args[-1] if has_mask else None
        hs, (outputs, h_last) = run(x, h0, mask, U, W, b, V, c)

        def grad(*args, upstream=None):
            # TensorFlow passes one gradient per output, JAX one tuple; PyTorch passes the
            # inputs and `upstream=` the gradient of the one packed output (see below).
            if upstream is not None:
                upstream = _unpack(upstream, ops.shape(h0)[-1], ops.shape(x)[1] if return_sequences else None)
            else:
                upstream = args
            d_outputs, d_h_last = [
                ops.zeros_like(v) if g is None else g
                for g, v in zip(tree.flatten(upstream), (outputs, h_last))
            ]
            grads = {}
            dhs = None
            if return_sequences:
                if mask is not None:
                    d_outputs = d_outputs * ops.expand_dims(mask, -1)
                if has_output:
                    d_outputs, grads["dV"], grads["dc"] = output_backward(_time_major(hs), V, d_outputs)
                dhs = _time_major(d_outputs)
            elif has_output:
                d_last, grads["dV"], grads["dc"] = output_backward(h_last, V, d_outputs)
                d_h_last = d_h_last + d_last
            else:
                d_h_last = d_h_last + d_outputs
            g = _backward_and_parameter_gradients(
                x, h0, hs, U, W, dhs, d_h_last, _mask_time_major(mask), activation, training, unroll,
                jit_compile,
            )
            dh0 = g["dh0"]
            result = [g["dx"], dh0, g["dU"], g["dW"], g["db"]]
            if has_output:
                result += [grads["dV"], grads["dc"]]
            if has_mask:
                result.append(ops.zeros_like(mask))
            return tuple(result)

        if keras.backend.backend() == "torch":
            return _pack(outputs, h_last), grad
        return (outputs, h_last), grad

    if keras.backend.backend() == "torch":
        # Keras's PyTorch `custom_gradient` supports one output: both are packed into one.
        return _unpack(explicit(*args), ops.shape(h0)[-1], ops.shape(x)[1] if return_sequences else None)
    return explicit(*args)


def _pack(outputs, h_last):
    """`(outputs, h_last)` as one `(batch, outputs.size / batch + units)` tensor."""
    return ops.concatenate([ops.reshape(outputs, (ops.shape(outputs)[0], -1)), h_last], axis=1)


def _unpack(packed, units, num_steps=None):
    """The inverse of `_pack`; `num_steps` for sequence outputs `(batch, time, n)`."""
    outputs, h_last = packed[:, :-units], packed[:, -units:]
    if num_steps is not None:
        outputs = ops.reshape(outputs, (ops.shape(packed)[0], num_steps, -1))
    return outputs, h_last


__all__ = [
    "forward",
    "backward",
    "output_forward",
    "output_backward",
    "softmax_cross_entropy_output_gradient",
    "activation_derivative",
    "vanilla_rnn",
]
