"""The recurrence engine: the one place in rnnzoo that knows about loops over time.

`scan(step, init, xs)` runs `carry, y = step(carry, x_t)` over the leading (time) axis of
`xs` and stacks the `y`s. It has to serve two masters, so it picks one of three
implementations of the same function (tests prove they agree):

* JAX (and PyTorch): `keras.ops.scan`, i.e. `lax.scan` -- fast, differentiable, compiled by
  XLA, and exported through jax2tf as a builtin TFLite `WHILE` with dynamic batch and time.
* TensorFlow, training: a `tf.while_loop` writing a `TensorArray` -- the fastest graph-mode
  loop and differentiable, but its `TensorListReserve` needs a static element shape, so a
  model exported with a dynamic batch would need Flex ops in TFLite.
* TensorFlow, inference (`predict`, `evaluate`, `model.export`): a `tf.while_loop` over a
  fixed-shape carry with a preallocated `(time, ...)` buffer written by scatter. It lowers
  to TFLite builtins (`WHILE`, `GATHER`, `SCATTER_ND`) with batch *and* time dynamic, and
  also converts to ONNX. It copies the buffer at every step in graph mode (O(T^2) memory
  traffic), which is why training does not use it.

With `jit_compile=True`, the TensorFlow training loop is compiled with XLA: it then runs as
one native loop instead of one graph-executor dispatch per op per step, which is most of the
time of small-batch, long-sequence training. Only the loop is compiled: the work around it
stays in the graph, where TensorFlow prunes what is not needed and runs independent ops in
parallel. (JAX compiles everything with XLA already.)

Time is always the leading axis here (`(time, batch, ...)`); layers transpose.
"""

import keras
from keras import ops
from keras import tree


def scan(step, init, xs, *, training=False, reverse=False, unroll=1, jit_compile=False):
    """Runs `step` over the leading axis of `xs`.

    Args:
        step: callable `(carry, x_t) -> (carry, y_t)`; `carry` keeps its structure, shapes
            and dtypes; `x_t` has the structure of `xs` without the time axis.
        init: nested structure of tensors, the initial carry.
        xs: nested structure of tensors of shape `(time, ...)`, `time >= 1`.
        training: bool. On TensorFlow, selects the training loop (`True`) or the
            export-friendly loop (`False`); ignored on other backends.
        reverse: bool. Run from the last step to the first; `ys` keep the time order of `xs`.
        unroll: int >= 1, loop unrolling for `lax.scan` on JAX.
        jit_compile: bool. On TensorFlow in training and graph mode, compile the loop with
            XLA (once per input shape).

    Returns:
        `(final_carry, ys)` with `ys` the stacked `y_t`, shape `(time, ...)`.
    """
    if keras.backend.backend() == "tensorflow":
        if training:
            if jit_compile and not _tf_executing_eagerly():
                import tensorflow as tf

                compiled = tf.function(
                    lambda init, xs: _tf_tensor_array_scan(step, init, xs, reverse),
                    jit_compile=True, autograph=False,
                )
                return compiled(init, xs)
            return _tf_tensor_array_scan(step, init, xs, reverse)
        return _tf_fixed_buffer_scan(step, init, xs, reverse)
    return ops.scan(step, init, xs, reverse=reverse, unroll=unroll)


def _tf_executing_eagerly():
    import tensorflow as tf

    return tf.executing_eagerly()


def _tf_loop_parts(xs, reverse):
    import tensorflow as tf

    xs_flat = [tf.convert_to_tensor(x) for x in tree.flatten(xs)]
    num_steps = tf.shape(xs_flat[0])[0]

    def index(i):  # position in `xs` of the i-th step processed
        return num_steps - 1 - i if reverse else i

    def x_at(i):
        return tree.pack_sequence_as(xs, [tf.gather(x, index(i)) for x in xs_flat])

    return tf, xs_flat, num_steps, index, x_at


def _tf_tensor_array_scan(step, init, xs, reverse):
    tf, xs_flat, num_steps, index, x_at = _tf_loop_parts(xs, reverse)
    # The first step is peeled so that the output buffers know their dtypes and shapes.
    carry, y = step(init, x_at(0))
    y_flat = tree.flatten(y)
    arrays = [
        tf.TensorArray(v.dtype, size=num_steps, element_shape=v.shape).write(index(0), v)
        for v in y_flat
    ]

    def body(i, carry, arrays):
        carry, y = step(carry, x_at(i))
        arrays = [a.write(index(i), v) for a, v in zip(arrays, tree.flatten(y))]
        return i + 1, carry, arrays

    _, carry, arrays = tf.while_loop(
        lambda i, *_: i < num_steps, body, (tf.constant(1), carry, arrays)
    )
    return carry, _pack_ys(y, [a.stack() for a in arrays], xs_flat)


def _tf_fixed_buffer_scan(step, init, xs, reverse):
    tf, xs_flat, num_steps, index, x_at = _tf_loop_parts(xs, reverse)

    def write(buffer, i, value):
        # Indices are unique (one step per write): the TFLite lowering of a scatter with
        # duplicate indices would sum them.
        return tf.tensor_scatter_nd_update(buffer, tf.reshape(index(i), (1, 1)), tf.expand_dims(value, 0))

    carry, y = step(init, x_at(0))
    buffers = [
        write(tf.zeros(tf.concat([[num_steps], tf.shape(v)], 0), v.dtype), 0, v)
        for v in tree.flatten(y)
    ]

    def body(i, carry, buffers):
        carry, y = step(carry, x_at(i))
        buffers = [write(b, i, v) for b, v in zip(buffers, tree.flatten(y))]
        return i + 1, carry, buffers

    _, carry, buffers = tf.while_loop(
        lambda i, *_: i < num_steps, body, (tf.constant(1), carry, buffers)
    )
    return carry, _pack_ys(y, buffers, xs_flat)


def _pack_ys(y, ys_flat, xs_flat):
    num_steps = xs_flat[0].shape[0]
    for v, v0 in zip(ys_flat, tree.flatten(y)):
        v.set_shape([num_steps] + list(v0.shape))
    return tree.pack_sequence_as(y, ys_flat)
