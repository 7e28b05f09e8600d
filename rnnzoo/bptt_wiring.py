"""The vanilla RNN as one differentiable function whose gradient is the book's BPTT.

`rnnzoo.bptt` is the mathematics, step by step; this module is the plumbing around it:

* `vanilla_rnn` wires the explicit backward pass in as the gradient of the whole sequence
  (`keras.ops.custom_gradient`; TensorFlow, JAX and PyTorch each pass gradients their way);
* Keras's output conventions at padded steps (zeros, or the previous output);
* on TensorFlow with XLA, the backward recurrence in time chunks, so that each chunk's share of
  the parameter-gradient GEMMs runs beside the next chunk's loop on another core.

`VanillaRNNCell.sequence_call` (the hook `rnnzoo.layers.Recurrent` uses for a cell with a
whole-sequence gradient) calls `vanilla_rnn`.
"""

import keras
from keras import ops
from keras import tree

from rnnzoo import bptt, gradient_registry, recurrence
from rnnzoo.foundation import flatten_time, time_major

GRADIENTS = ("bptt", "autodiff")
PADDED_OUTPUTS = ("zeros", "previous")
_OVERLAP_CHUNKS = 4


def vanilla_rnn(x, h0, U, W, b, V=None, c=None, mask=None, *, activation="tanh", return_sequences=False,
                padded_outputs="zeros", input_dropout=None, recurrent_dropout=None, gradient="bptt",
                training=True, unroll=1, jit_compile=False, return_state=True):
    """The whole vanilla RNN as one differentiable function.

    With `gradient="bptt"` its gradient is the explicit backward pass of `rnnzoo.bptt` (wired in
    with `keras.ops.custom_gradient`); with `"autodiff"` the same forward is differentiated
    automatically.

    Args:
        x: `(batch, time, features)`. h0: `(batch, units)`. U, W, b: the recurrence's weights.
        V: optional `(units, output_units)`, with `c` `(output_units,)`: the output layer.
        mask: optional `(batch, time)`, True or 1 at valid steps.
        activation: `"tanh"`, `"relu"`, `"sigmoid"` or `"linear"`.
        return_sequences: bool, return the output at every step or only the last.
        padded_outputs: the sequence output at a padded step: `"zeros"`, or `"previous"`, the
            output of the last valid step before it (zeros before the first): Keras's
            `zero_output_for_mask=True` / `False`.
        input_dropout, recurrent_dropout: optional dropout masks `(batch, features)`,
            `(batch, units)`, applied at every step.
        gradient: `"bptt"` or `"autodiff"`.
        training: bool, selects the loop implementation on TensorFlow (`rnnzoo.recurrence`).
        unroll: loop unrolling on JAX.
        jit_compile: bool, compile the loops with XLA on TensorFlow in training (graph mode);
            only with `gradient="bptt"`.
        return_state: bool. False when the caller does not use `h_last`: with
            `return_sequences`, `h_last` is then not an output of the function (None is
            returned), so that a graph that does not use it does not compute it (on TensorFlow
            the inference loop's final chunk, run again for the final state: one `WHILE` per
            call of the `.tflite`). The outputs and their gradients are the same.

    Returns:
        `(outputs, h_last)`: `outputs` is `(batch, time, n)` if `return_sequences`, else the
        output at the last valid step `(batch, n)` (zeros if there is none); `n` is
        `output_units` with an output layer, else `units`. `h_last` `(batch, units)` is the
        state after the last valid step (None if `return_state=False` and `return_sequences`).
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"`gradient` must be one of {list(GRADIENTS)}. Received: gradient={gradient!r}")
    if padded_outputs not in PADDED_OUTPUTS:
        raise ValueError(
            f"`padded_outputs` must be one of {list(PADDED_OUTPUTS)}. Received: padded_outputs={padded_outputs!r}"
        )
    has_output = V is not None
    has_mask = mask is not None
    track_seen = has_mask and return_sequences and padded_outputs == "previous"
    # TensorFlow cannot differentiate through an XLA-compiled `while_loop` ("XLA compilation
    # requires a fixed tensor list size"): with autodiff the forward loop stays uncompiled.
    forward_jit_compile = jit_compile and gradient == "bptt"
    optional = {"V": V, "c": c, "mask": mask, "input_dropout": input_dropout, "recurrent_dropout": recurrent_dropout}
    names = [name for name, value in optional.items() if value is not None]
    # Without sequence outputs, the outputs are computed from h_last; PyTorch packs both in one.
    with_state = return_state or not return_sequences or keras.backend.backend() == "torch"

    def run(x, h0, U, W, b, extra):
        mask_tm = bptt.time_major_mask(extra.get("mask"))
        x = bptt.clean_inputs(x, mask_tm)
        projected = bptt.input_projection(x, U, b, extra.get("input_dropout"))
        (h_last, seen_any), (hs, keep) = _scan_forward(
            projected, h0, W, mask_tm, activation=activation, recurrent_dropout=extra.get("recurrent_dropout"),
            track_seen=track_seen, training=training, unroll=unroll, jit_compile=forward_jit_compile,
        )
        if return_sequences:
            outputs = time_major(hs)
            if has_output:
                outputs = bptt.output_forward(outputs, extra["V"], extra["c"])
            if has_mask:
                # (batch, time, 1): which steps show their own output
                keep = time_major(keep) if track_seen else time_major(mask_tm)
                outputs = ops.where(keep, outputs, ops.zeros_like(outputs))
        else:
            outputs = bptt.output_forward(h_last, extra["V"], extra["c"]) if has_output else h_last
            if has_mask:
                keep = ops.any(ops.cast(extra["mask"], "bool"), axis=1, keepdims=True)  # (batch, 1)
                outputs = ops.where(keep, outputs, ops.zeros_like(outputs))
        return hs, keep, (outputs, h_last)

    if gradient == "autodiff":
        outputs, h_last = run(x, h0, U, W, b, optional_values(optional))[2]
        return outputs, (h_last if with_state else None)

    # The custom-gradient function takes only tensors (no None, no variables): see FACTS.md.
    args = [x, h0, U, W, b] + [optional[name] for name in names]

    @ops.custom_gradient
    def explicit(*args):
        x, h0, U, W, b = args[:5]
        extra = dict(zip(names, args[5:]))
        hs, keep, (outputs, h_last) = run(x, h0, U, W, b, extra)

        def grad(*upstream, **kwargs):
            # TensorFlow passes one gradient per output, JAX one tuple; PyTorch passes the
            # inputs and `upstream=` the gradient of the one packed output (see below).
            if kwargs.get("upstream") is not None:
                upstream = _unpack(kwargs["upstream"], ops.shape(h0)[-1], ops.shape(x)[1] if return_sequences else None)
            upstream = tree.flatten(upstream) + ([] if with_state else [None])  # no h_last: no gradient for it
            d_outputs, d_h_last = [
                ops.zeros_like(v) if g is None else g
                for g, v in zip(upstream, (outputs, h_last))
            ]
            if has_mask:  # a step that shows zeros passes no gradient
                d_outputs = ops.where(keep, d_outputs, ops.zeros_like(d_outputs))
            grads, dhs = {}, None
            if return_sequences:
                if has_output:
                    d_outputs, grads["V"], grads["c"] = bptt.output_backward(hs, extra["V"], time_major(d_outputs))
                    dhs = d_outputs
                else:
                    dhs = time_major(d_outputs)
            elif has_output:
                d_last, grads["V"], grads["c"] = bptt.output_backward(h_last, extra["V"], d_outputs)
                d_h_last = d_h_last + d_last
            else:
                d_h_last = d_h_last + d_outputs
            mask_tm = bptt.time_major_mask(extra.get("mask"))
            g = _backward_and_parameter_gradients(
                bptt.clean_inputs(x, mask_tm), h0, hs, U, W, dhs, d_h_last, mask_tm, activation,
                extra.get("input_dropout"), extra.get("recurrent_dropout"), training, unroll, jit_compile,
            )
            result = [g["dx"], g["dh0"], g["dU"], g["dW"], g["db"]]
            for name in names:  # masks get zero gradients
                result.append(grads[name] if name in grads else ops.zeros_like(extra[name]))
            return tuple(result)

        if keras.backend.backend() == "torch":
            return _pack(outputs, h_last), grad
        return ((outputs, h_last) if with_state else outputs), grad

    if keras.backend.backend() == "torch":
        # Keras's PyTorch `custom_gradient` supports one output: both are packed into one.
        return _unpack(explicit(*args), ops.shape(h0)[-1], ops.shape(x)[1] if return_sequences else None)
    outputs, h_last = explicit(*args) if with_state else (explicit(*args), None)
    if keras.backend.backend() == "tensorflow":  # in graph mode, not kept forever (see there)
        gradient_registry.release_with_graph(outputs)
    return outputs, h_last


def optional_values(optional):
    return {name: value for name, value in optional.items() if value is not None}


def _scan_forward(projected, h0, W, mask, *, activation, recurrent_dropout, track_seen, training, unroll,
                  jit_compile):
    """`bptt.scan_forward`, optionally also tracking, per sequence, whether a valid step has been
    seen yet (for Keras's "previous output" at padded steps, zeros before the first valid one).

    Returns `((h_last, seen_last), (hs, seen))`, the `seen` parts None unless `track_seen`.
    """
    if not track_seen:
        h_last, hs = bptt.scan_forward(projected, h0, W, mask, activation=activation,
                                       recurrent_dropout=recurrent_dropout, training=training, unroll=unroll,
                                       jit_compile=jit_compile)
        return (h_last, None), (hs, None)
    dtype = projected.dtype

    def step(carry, inputs):
        h, seen = carry
        projected_t, m_t = inputs
        h = bptt.forward_step(h, projected_t, W, activation=activation, step_mask=m_t,
                              recurrent_dropout=recurrent_dropout)
        seen = ops.maximum(seen, ops.cast(m_t, dtype))  # 1 from the first valid step on
        return (h, seen), (h, seen)

    seen0 = ops.zeros((ops.shape(h0)[0], 1), dtype)
    (h_last, seen_last), (hs, seen) = recurrence.scan(step, (h0, seen0), (projected, mask), training=training,
                                                      unroll=unroll, jit_compile=jit_compile)
    return (h_last, seen_last), (hs, ops.greater(seen, 0))


def _backward_and_parameter_gradients(x, h0, hs, U, W, dhs, dh_last, mask, activation, input_dropout,
                                      recurrent_dropout, training, unroll, jit_compile):
    """The backward recurrence, then the parameter gradients (time-major `hs`, `dhs`, `mask`)."""
    num_steps = hs.shape[0]
    chunks = _OVERLAP_CHUNKS
    dropout = dict(input_dropout=input_dropout, recurrent_dropout=recurrent_dropout)
    if not (jit_compile and training and keras.backend.backend() == "tensorflow"
            and isinstance(num_steps, int) and num_steps >= 8 * chunks):
        dh0, da = bptt.scan_backward(hs, W, dhs, dh_last, mask, activation=activation,
                                     recurrent_dropout=recurrent_dropout, training=training, unroll=unroll,
                                     jit_compile=jit_compile)
        return {**bptt.parameter_gradients(x, h0, hs, U, da, **dropout), "dh0": dh0}
    # On TensorFlow the XLA-compiled loop runs on one core. Run the backward recurrence in time
    # chunks, last chunk first: each chunk's share of the sums over t (two GEMMs) is independent
    # of the next chunk's loop, so the graph executor runs them side by side on the other core.
    # Same function, same formulas; the sums over t are just split in `chunks` partial sums.
    bounds = [round(i * num_steps / chunks) for i in range(chunks + 1)]
    x_time_major = time_major(x)
    if input_dropout is not None:
        x_time_major = x_time_major * input_dropout
    dh_future, das, dW, dU = dh_last, [], 0.0, 0.0
    for start, end in reversed(list(zip(bounds[:-1], bounds[1:]))):
        dh_future, da = bptt.scan_backward(
            hs[start:end], W, None if dhs is None else dhs[start:end], dh_future,
            None if mask is None else mask[start:end], activation=activation,
            recurrent_dropout=recurrent_dropout, training=training, unroll=unroll, jit_compile=True,
        )
        h_previous = hs[start - 1:end - 1] if start > 0 else ops.concatenate(
            [ops.expand_dims(h0, 0), hs[:end - 1]], axis=0)
        if recurrent_dropout is not None:
            h_previous = h_previous * recurrent_dropout
        da_flat = flatten_time(da)
        dW = dW + ops.matmul(ops.transpose(flatten_time(h_previous)), da_flat)  # this chunk's share of sum_t
        dU = dU + ops.matmul(ops.transpose(flatten_time(x_time_major[start:end])), da_flat)
        das.insert(0, da)
    da = ops.concatenate(das, axis=0)
    dx = ops.einsum("tbu,fu->btf", da, U)
    if input_dropout is not None:
        dx = dx * ops.expand_dims(input_dropout, 1)
    return {"dW": dW, "dU": dU, "db": ops.sum(flatten_time(da), axis=0), "dx": dx, "dh0": dh_future}


def _pack(outputs, h_last):
    """`(outputs, h_last)` as one `(batch, outputs.size / batch + units)` tensor."""
    return ops.concatenate([ops.reshape(outputs, (ops.shape(outputs)[0], -1)), h_last], axis=1)


def _unpack(packed, units, num_steps=None):
    """The inverse of `_pack`; `num_steps` for sequence outputs `(batch, time, n)`."""
    outputs, h_last = packed[:, :-units], packed[:, -units:]
    if num_steps is not None:
        outputs = ops.reshape(outputs, (ops.shape(packed)[0], num_steps, -1))
    return outputs, h_last


__all__ = ["vanilla_rnn", "GRADIENTS", "PADDED_OUTPUTS"]
