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
        return _replay_scan(step, init, xs, reverse)
    if not training and keras.backend.backend() == "jax":
        return _replay_scan(step, init, xs, reverse)
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


def _pack_ys(y, ys_flat, xs_flat):
    num_steps = xs_flat[0].shape[0]
    for v, v0 in zip(ys_flat, tree.flatten(y)):
        v.set_shape([num_steps] + list(v0.shape))
    return tree.pack_sequence_as(y, ys_flat)


# -- The inference loop: checkpoints, then one batched replay -----------------------------------
#
# A loop that writes step t into a `(time, ...)` buffer carried by the loop is quadratic on every
# export path: LiteRT's WHILE copies each body output back to the body input at every iteration
# (`CopyTensorsData`, a `memcpy` of the whole buffer; it skips only a tensor passed through
# unchanged), and TF graph mode copies the buffer at every scatter. So the inference loop carries
# no per-step buffer at all:
#
# 1. `time` is cut in `num_chunks = ceil(time / CHUNK)` chunks. One loop over the chunks runs the
#    CHUNK steps of a chunk unrolled (steps past `time` leave the carry unchanged) and records the
#    carry at the start of each chunk: a `(num_chunks, batch, ...)` buffer, so the copies cost
#    `num_chunks^2` rows, `time / CHUNK^2` rows per step.
# 2. The chunks are then replayed side by side, as one batch of `num_chunks * batch` rows started
#    from those checkpoints: CHUNK unrolled steps, no loop, outputs stacked once. The same step on
#    the same carries gives the same outputs (as one batched product).
#
# Cost: every step runs twice (once per row, once in a batched product), plus O(time) copies.
# When the outputs are not used (`return_sequences=False`), graph pruning drops step 2.
# The step must treat axis 0 of the carry and of `x_t` as a batch of independent rows and close
# over no tensor with that batch axis (put per-example constants in the carry).

CHUNK = 16


def _replay_scan(step, init, xs, reverse, chunk=None):
    chunk = CHUNK if chunk is None else chunk
    xs_flat = [ops.convert_to_tensor(x) for x in tree.flatten(xs)]
    init_flat = [ops.convert_to_tensor(c) for c in tree.flatten(init)]
    static_steps = xs_flat[0].shape[0]
    num_steps = ops.shape(xs_flat[0])[0]
    if reverse:
        xs_flat = [ops.flip(x, axis=0) for x in xs_flat]
    num_chunks = (num_steps + (chunk - 1)) // chunk
    padding = num_chunks * chunk - num_steps

    def chunked(x):  # (time, *rest) -> (num_chunks, chunk, *rest), zero-padded
        rest = ops.shape(x)[1:]
        x = ops.concatenate([x, ops.zeros((padding,) + tuple(rest), x.dtype)], axis=0)
        return ops.reshape(x, (num_chunks, chunk) + tuple(rest))

    xs_chunks = [chunked(x) for x in xs_flat]

    def x_at(x_chunk_flat, j):
        return tree.pack_sequence_as(xs, [_row(x, j) for x in x_chunk_flat])

    def run_chunk(carry_flat, x_chunk_flat, start):
        # Pass 1: `chunk` steps of one row of chunks; steps past the end keep the carry.
        carry = tree.pack_sequence_as(init, carry_flat)
        for j in range(chunk):
            new_carry, _ = step(carry, x_at(x_chunk_flat, j))
            valid = ops.less(start + j, num_steps)
            carry = tree.pack_sequence_as(init, [
                ops.where(valid, ops.cast(new, old.dtype), old)
                for new, old in zip(tree.flatten(new_carry), tree.flatten(carry))
            ])
        return tree.flatten(carry)

    final_flat, checkpoints = _chunk_loop(run_chunk, init_flat, xs_chunks, chunk, num_chunks)

    # Pass 2: the chunks side by side, (num_chunks * batch) rows from their checkpoints.
    def fold(c):  # (num_chunks, batch, *rest) -> (num_chunks * batch, *rest)
        return ops.reshape(c, (-1,) + tuple(ops.shape(c)[2:]))

    def time_first(x):  # (num_chunks, chunk, batch, *rest) -> (chunk, num_chunks * batch, *rest)
        rank = len(x.shape)
        x = ops.transpose(x, (1, 0) + tuple(range(2, rank)))
        return ops.reshape(x, (chunk, -1) + tuple(ops.shape(x)[3:]))

    carry = tree.pack_sequence_as(init, [fold(c) for c in checkpoints])
    xs_replay = [time_first(x) for x in xs_chunks]
    ys = []
    for j in range(chunk):
        carry, y_structure = step(carry, x_at(xs_replay, j))
        ys.append(tree.flatten(y_structure))
    del carry  # the replay's carries are those of pass 1 (or steps past the end)
    ys_flat = []
    for parts in zip(*ys):
        y = ops.stack(parts, axis=0)  # (chunk, num_chunks * batch, *rest)
        rest = tuple(ops.shape(parts[0])[1:])
        y = ops.reshape(y, (chunk, num_chunks, -1) + rest)
        y = ops.transpose(y, (1, 0) + tuple(range(2, len(y.shape))))
        y = ops.reshape(y, (num_chunks * chunk,) + tuple(ops.shape(y)[2:]))
        y = ops.slice(y, (0,) * len(y.shape), (num_steps,) + tuple(ops.shape(y)[1:]))
        if reverse:
            y = ops.flip(y, axis=0)
        ys_flat.append(y)
    if isinstance(static_steps, int):
        ys_flat = [ops.reshape(y, (static_steps,) + tuple(ops.shape(y)[1:])) for y in ys_flat]
    final = tree.pack_sequence_as(init, final_flat)
    return final, tree.pack_sequence_as(y_structure, ys_flat)


def _row(x, j):
    # `x[j]` for a static j, as a slice: indexing a tensor with a symbolic shape exports from
    # JAX as a `dynamic_gather` that the TFLite converter rejects.
    rest = tuple(ops.shape(x)[1:])
    return ops.reshape(ops.slice(x, (j,) + (0,) * len(rest), (1,) + rest), rest)


def _chunk_loop(run_chunk, init_flat, xs_chunks, chunk, num_chunks):
    """Runs `run_chunk` over the chunks: `(final carry, carry at the start of each chunk)`."""
    if keras.backend.backend() != "tensorflow":
        # The chunk's first step is counted in the carry: a scanned index vector would export
        # from JAX as an integer `dynamic_slice` that the TFLite converter rejects.
        def body(carry, x_chunk_flat):
            start, carry_flat = carry
            return (start + chunk, run_chunk(carry_flat, x_chunk_flat, start)), carry_flat

        (_, final_flat), checkpoints = ops.scan(body, (ops.convert_to_tensor(0, "int32"), init_flat), xs_chunks)
        return final_flat, checkpoints

    import tensorflow as tf

    # A fixed-shape `(num_chunks, batch, ...)` buffer written by scatter (unique indices): it
    # lowers to TFLite builtins with batch and time dynamic, and converts to ONNX.
    buffers = [tf.zeros(tf.concat([[num_chunks], tf.shape(c)], 0), c.dtype) for c in init_flat]

    def body(i, carry_flat, buffers):
        index = tf.reshape(i, (1, 1))
        buffers = [tf.tensor_scatter_nd_update(b, index, tf.expand_dims(c, 0))
                   for b, c in zip(buffers, carry_flat)]
        carry_flat = run_chunk(carry_flat, [tf.gather(x, i) for x in xs_chunks], i * chunk)
        return i + 1, [tf.convert_to_tensor(c) for c in carry_flat], buffers

    _, final_flat, buffers = tf.while_loop(
        lambda i, *_: i < num_chunks, body, (tf.constant(0), init_flat, buffers)
    )
    return final_flat, buffers
