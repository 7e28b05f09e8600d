"""The recurrence engine: the one place in rnnzoo that knows about loops over time.

`scan(step, init, xs)` runs `carry, y = step(carry, x_t)` over the leading (time) axis of
`xs` and stacks the `y`s. It has to serve two masters, so it picks one of three
implementations of the same function (tests prove they agree):

* Training on JAX (and PyTorch): `keras.ops.scan`, i.e. `lax.scan` -- fast, differentiable,
  compiled by XLA.
* Training on TensorFlow: a `tf.while_loop` writing a `TensorArray` -- the fastest graph-mode
  loop and differentiable, but its `TensorListReserve` needs a static element shape, so a
  model exported with a dynamic batch would need Flex ops in TFLite.
* Inference on TensorFlow (`predict`, `evaluate`, `model.export`): checkpoints and one batched
  replay (`_replay_scan`, below), linear in time in TF graph mode, SavedModel signatures and
  LiteRT at batch 1 (bench/RESULTS.md), with builtin TFLite ops only and batch and time dynamic;
  no `XlaDynamicUpdateSlice`, so it converts to ONNX. On JAX, inference and the jax2tf
  SavedModel use `lax.scan` too (XLA runs it in linear time); `rnnzoo.export.to_tflite(model)`
  converts a JAX model on the TensorFlow backend, so its `.tflite` runs this loop.

With `jit_compile=True`, the TensorFlow training loop is compiled with XLA: it then runs as
one native loop instead of one graph-executor dispatch per op per step, which is most of the
time of small-batch, long-sequence training. Only the loop is compiled: the work around it
stays in the graph, where TensorFlow prunes what is not needed and runs independent ops in
parallel. (JAX compiles everything with XLA already.) That suits a loop with its own gradient
(`rnnzoo.bptt`); a loop differentiated by autodiff cannot be compiled alone (its gradient's
accumulators would cross the XLA boundary), but a whole training step can: the training loop
has a `maximum_iterations`, which XLA needs to differentiate a while loop, so `model.compile(
jit_compile=True)` compiles models whose cells are plain Keras cells (`Seq2Seq` does by default).

Time is always the leading axis here (`(time, batch, ...)`); layers transpose.
"""

import keras
from keras import ops
from keras import tree


def scan(step, init, xs, *, training=False, reverse=False, unroll=1, jit_compile=False):
    """Runs `step` over the leading axis of `xs`.

    Args:
        step: callable `(carry, x_t) -> (carry, y_t)`; `carry` keeps its structure, shapes
            and dtypes; `x_t` has the structure of `xs` without the time axis. Axis 0 of the
            carry and of `x_t` is the batch: rows must be independent, and `step` must close
            over no tensor with a batch axis (put per-example constants in the carry). The
            inference loop runs it on a batch of `chunks * batch` rows.
        init: nested structure of tensors, the initial carry.
        xs: nested structure of tensors of shape `(time, ...)`, `time >= 1`.
        training: bool. Selects the training loop (`True`) or the inference loop (`False`),
            which is linear in time when exported; on PyTorch both are `keras.ops.scan`.
        reverse: bool. Run from the last step to the first; `ys` keep the time order of `xs`.
        unroll: int >= 1, loop unrolling for `lax.scan` in training on JAX.
        jit_compile: bool. On TensorFlow in training and graph mode, compile the loop with
            XLA (once per input shape).

    Returns:
        `(final_carry, ys)` with `ys` the stacked `y_t`, shape `(time, ...)`.
    """
    if keras.backend.backend() == "tensorflow":
        xs = _tf_at_least_one_step(xs)
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
    # JAX keeps `lax.scan` at inference too: its replay loop exported through jax2tf did not run
    # flat in LiteRT (bench/RESULTS.md) and crashed TensorFlow's XlaCallModule when run in a
    # process that also runs JAX (the export matrix test, 2026-12-02). So a `.tflite` from JAX is
    # converted on the TensorFlow backend (`rnnzoo.export.to_tflite(model)`).
    return ops.scan(step, init, xs, reverse=reverse, unroll=unroll)


def _tf_at_least_one_step(xs):
    """`xs`, after a check in the graph that time is not 0 (where its static size is unknown).

    Layers check a static length themselves; a length known only when the graph runs (`predict`,
    a SavedModel signature) is checked here, with an error that says what is wrong instead of an
    out-of-range gather deep in the loop. (The TFLite converter drops the check; the exported
    signatures fail in LiteRT on purpose, see `rnnzoo.export.saved_model._guard_shapes`, and
    rnnzoo's artifact runner refuses a zero-length input before LiteRT sees it.)
    """
    import tensorflow as tf

    first = tree.flatten(xs)[0]
    if isinstance(first.shape[0], int) or tf.executing_eagerly():
        return xs
    check = tf.debugging.assert_positive(
        tf.shape(first)[0], message="A recurrent layer needs at least one time step. Received: 0 time steps"
    )
    with tf.control_dependencies([check]):
        return tree.map_structure(tf.identity, xs)


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
        lambda i, *_: i < num_steps, body, (tf.constant(1), carry, arrays), maximum_iterations=num_steps
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
# 1. `time` is cut in chunks of CHUNK steps, and the chunks in groups of GROUP. A loop over the
#    chunks of a group, inside a loop over the groups, runs the CHUNK steps of a chunk unrolled
#    (steps past `time` leave the carry unchanged) and records the carry at the start of each
#    chunk, first in a `(GROUP, batch, ...)` buffer, then group by group in a
#    `(num_groups, GROUP, batch, ...)` buffer.
# 2. The chunks are then replayed side by side, as one batch of `num_chunks * batch` rows started
#    from those checkpoints: CHUNK unrolled steps, no loop, outputs stacked once. The same step on
#    the same carries gives the same outputs (as one batched product).
#
# Cost: every step runs twice (once per row, once in a batched product), plus the buffer copies:
# 2 rows per step for the inner buffer, and 2 * num_groups / CHUNK rows per step for the outer
# one (T / 512 rows at CHUNK = 8, GROUP = 16: still quadratic, with a tiny constant). Time is
# padded to a multiple of CHUNK * GROUP = 128 steps. The graph holds 2 * CHUNK copies of the step:
# CHUNK = 8 rather than 16 halves the export and conversion time (ONNX above all) for the same
# per-step time in LiteRT at batch 1 (bench/RESULTS.md). When the outputs are not used
# (`return_sequences=False`), graph pruning drops step 2.
# The step must treat axis 0 of the carry and of `x_t` as a batch of independent rows and close
# over no tensor with that batch axis (put per-example constants in the carry).

CHUNK = 8  # steps unrolled per chunk
GROUP = 16  # chunks per iteration of the outer loop of step 1


def _replay_scan(step, init, xs, reverse, chunk=None, group=None):
    chunk = CHUNK if chunk is None else chunk
    group = GROUP if group is None else group
    xs_flat = [ops.convert_to_tensor(x) for x in tree.flatten(xs)]
    init_flat = [ops.convert_to_tensor(c) for c in tree.flatten(init)]
    static_steps = xs_flat[0].shape[0]
    num_steps = ops.shape(xs_flat[0])[0]
    if reverse:
        xs_flat = [ops.flip(x, axis=0) for x in xs_flat]
    # At least one group: 0 steps (which layers refuse, but a bare LiteRT interpreter cannot) then
    # give 0 outputs and the initial carry, never a wrongly shaped result.
    num_groups = ops.maximum((num_steps + (group * chunk - 1)) // (group * chunk), 1)
    num_chunks = num_groups * group
    padding = num_chunks * chunk - num_steps

    def chunked(x):  # (time, *rest) -> (num_chunks, chunk, *rest), zero-padded
        rest = ops.shape(x)[1:]
        x = ops.concatenate([x, ops.zeros((padding,) + tuple(rest), x.dtype)], axis=0)
        return ops.reshape(x, (num_chunks, chunk) + tuple(rest))

    xs_chunks = [chunked(x) for x in xs_flat]

    def steps_of(x_chunk_flat):  # the `chunk` inputs x_t of a chunk, in order
        rows = [_rows(x, chunk) for x in x_chunk_flat]
        return [tree.pack_sequence_as(xs, [r[j] for r in rows]) for j in range(chunk)]

    def run_chunk(carry_flat, x_chunk_flat, start):
        # Pass 1: `chunk` steps of one row of chunks; steps past the end keep the carry.
        carry = tree.pack_sequence_as(init, carry_flat)
        valid = _rows(ops.less(start + ops.arange(chunk, dtype="int32"), num_steps), chunk)
        for j, x_t in enumerate(steps_of(x_chunk_flat)):
            new_carry, _ = step(carry, x_t)
            carry = tree.pack_sequence_as(init, [
                ops.where(valid[j], ops.cast(new, old.dtype), old)
                for new, old in zip(tree.flatten(new_carry), tree.flatten(carry))
            ])
        return tree.flatten(carry)

    xs_groups = [ops.reshape(x, (num_groups, group) + tuple(ops.shape(x)[1:])) for x in xs_chunks]
    final_flat, checkpoints = _chunk_loop(run_chunk, init_flat, xs_groups, chunk, group, num_groups)

    # Pass 2: the chunks side by side, (num_chunks * batch) rows from their checkpoints.
    def fold(c):  # (num_groups, group, batch, *rest) -> (num_chunks * batch, *rest)
        return ops.reshape(c, (-1,) + tuple(ops.shape(c)[3:]))

    def replay_inputs(x_chunks_flat):  # step j of every chunk: (num_chunks * batch, *rest)
        rows = [[ops.reshape(r, (-1,) + tuple(ops.shape(r)[2:])) for r in _rows(x, chunk, axis=1)]
                for x in x_chunks_flat]  # unstacked along the chunk's own time axis: one pass
        return [tree.pack_sequence_as(xs, [r[j] for r in rows]) for j in range(chunk)]

    carry = tree.pack_sequence_as(init, [fold(c) for c in checkpoints])
    ys = []
    for x_t in replay_inputs(xs_chunks):
        carry, y_structure = step(carry, x_t)
        ys.append(tree.flatten(y_structure))
    del carry  # the replay's carries are those of pass 1 (or steps past the end)
    ys_flat = []
    batch = ops.shape(init_flat[0])[0]  # not -1 in the reshapes: a batch of 0 makes -1 ambiguous
    for parts in zip(*ys):
        rest = tuple(ops.shape(parts[0])[1:])
        parts = [ops.reshape(p, (num_chunks, batch) + rest) for p in parts]
        y = ops.stack(parts, axis=1)  # (num_chunks, chunk, batch, *rest), one pass
        y = ops.reshape(y, (num_chunks * chunk,) + tuple(ops.shape(y)[2:]))
        y = ops.slice(y, (0,) * len(y.shape), (num_steps,) + tuple(ops.shape(y)[1:]))
        if reverse:
            y = ops.flip(y, axis=0)
        ys_flat.append(y)
    if isinstance(static_steps, int):
        ys_flat = [ops.reshape(y, (static_steps,) + tuple(ops.shape(y)[1:])) for y in ys_flat]
    final = tree.pack_sequence_as(init, final_flat)
    return final, tree.pack_sequence_as(y_structure, ys_flat)


def _rows(x, num, axis=0):
    """The `num` slices of `x` along `axis` (of static size `num`)."""
    # One UNPACK in TFLite; static slices from JAX (`x[j]` on a symbolic shape exports as a
    # `dynamic_gather`, which the TFLite converter rejects).
    return ops.unstack(x, num=num, axis=axis)


def _chunk_loop(run_chunk, init_flat, xs_groups, chunk, group, num_groups):
    """Runs `run_chunk` over the chunks: `(final carry, carry at the start of each chunk)`.

    Two nested loops, so that no loop carries a long buffer: the inner one over the `group`
    chunks of a group (a `(group, batch, ...)` buffer), the outer one over the groups (a
    `(num_groups, group, batch, ...)` buffer, written once per group). The checkpoints are
    returned in that shape.
    """
    if keras.backend.backend() != "tensorflow":
        # The chunk's first step is counted in the carry: a scanned index vector would export
        # from JAX as an integer `dynamic_slice` that the TFLite converter rejects.
        def chunk_body(carry, x_chunk_flat):
            start, carry_flat = carry
            return (start + chunk, run_chunk(carry_flat, x_chunk_flat, start)), carry_flat

        def group_body(carry, x_group_flat):
            return ops.scan(chunk_body, carry, x_group_flat)

        (_, final_flat), checkpoints = ops.scan(group_body, (ops.convert_to_tensor(0, "int32"), init_flat), xs_groups)
        return final_flat, checkpoints

    import tensorflow as tf

    # Fixed-shape buffers, row i written by a select (one pass over the buffer; a scatter lowers
    # to several in TFLite): builtins with batch and time dynamic, and it converts to ONNX.
    # Everything shaped by a runtime value (`range`, `zeros`) is made outside the loops: one such
    # tensor in a loop body makes LiteRT's WHILE resize the body and deep-copy every loop
    # variable, the captured inputs included, at every iteration.
    def write(buffer, rows, i, value):
        here = tf.reshape(tf.equal(rows, i), [-1] + [1] * len(value.shape))
        return tf.where(here, tf.expand_dims(value, 0), buffer)

    group_rows, chunk_rows = tf.range(num_groups), tf.range(group)
    empty_group = [tf.zeros(tf.concat([[group], tf.shape(c)], 0), c.dtype) for c in init_flat]

    def group_body(g, carry_flat, buffers):
        x_group = [tf.gather(x, g) for x in xs_groups]  # (group, chunk, batch, ...)

        def chunk_body(i, carry_flat, group_buffers):
            group_buffers = [write(b, chunk_rows, i, c) for b, c in zip(group_buffers, carry_flat)]
            carry_flat = run_chunk(carry_flat, [tf.gather(x, i) for x in x_group], (g * group + i) * chunk)
            return i + 1, [tf.convert_to_tensor(c) for c in carry_flat], group_buffers

        _, carry_flat, group_buffers = tf.while_loop(
            lambda i, *_: i < group, chunk_body, (tf.constant(0), carry_flat, empty_group)
        )
        buffers = [write(b, group_rows, g, gb) for b, gb in zip(buffers, group_buffers)]
        return g + 1, carry_flat, buffers

    buffers = [tf.zeros(tf.concat([[num_groups, group], tf.shape(c)], 0), c.dtype) for c in init_flat]
    _, final_flat, buffers = tf.while_loop(
        lambda g, *_: g < num_groups, group_body, (tf.constant(0), init_flat, buffers)
    )
    return final_flat, buffers
