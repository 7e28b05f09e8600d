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

`generate(step, init, num_steps, stop=...)` is the same loop for closed-loop generation (no
input per step; it may stop once `stop(carry)` holds): the decoders of `rnnzoo.decoding`.

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
            over no tensor with a batch axis (put per-example constants in the carry, or use
            `generate`'s `constants`). The inference loop runs it on a batch of
            `chunks * batch` rows.
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


def generate(step, init, num_steps, *, constants=(), stop=None):
    """Runs `carry, y = step(carry, constants)` `num_steps` times: a loop with no input per step.

    For closed-loop generation (decoders, samplers), where each step feeds on the last. Linear in
    `num_steps` on every path, as `scan` at inference: on TensorFlow, `scan`'s checkpoints and
    one batched replay; elsewhere a while loop writing each `y` in place (XLA).

    Args:
        step: callable `(carry, constants) -> (carry, y)`, batch-polymorphic as `scan`'s step
            (axis 0 of the carry, of `constants` and of `y` is a batch of independent rows;
            the carry's and `y`'s batches may differ, e.g. `(batch * beams, ...)` and
            `(batch, beams, ...)`).
        init: nested structure of tensors, the initial carry.
        num_steps: int >= 1, the number of steps.
        constants: nest of `(batch, ...)` tensors every step reads (e.g. encoder annotations);
            passed, not carried.
        stop: optional callable `carry -> scalar bool`, true once nothing is left to generate.
            The loop may then end early; for this to change nothing, a stopped carry must stay
            stopped and give the same `y` at every later step (e.g. a pad token): the
            remaining `ys` are the step's `y` from the final carry.

    Returns:
        `(final_carry, ys)`, `ys` the stacked `y`s, shape `(num_steps, ...)`. When the loop
        stops early, `final_carry` is the carry at the stop (on TensorFlow, up to
        `GENERATE_CHUNK - 1` steps after it: the loop checks `stop` once per chunk).

    On TensorFlow each step runs twice (`scan`'s inference loop), at different batch sizes:
    `ys` come from the replay, `final_carry` from the first pass, so a decision taken on a
    difference below float rounding could differ between them. With `stop`, it does not compile
    with XLA there (the replay's size is known only at run time).
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"`generate(num_steps=...)` must be an integer >= 1. Received: num_steps={num_steps!r}")
    if keras.backend.backend() == "tensorflow":
        steps = ops.zeros((num_steps, 1), "int32")  # no inputs: a time axis for the replay
        return _replay_scan(lambda carry, _, constants: step(carry, constants), init, steps, False,
                            chunk=GENERATE_CHUNK, constants=constants, stop=stop)
    # XLA updates a loop's buffer in place: a while loop, with the first step peeled so that the
    # buffers know the shapes of `y`.
    carry, y = step(init, constants)
    buffers = [ops.zeros((num_steps,) + tuple(ops.shape(v)), v.dtype) for v in tree.flatten(y)]
    buffers = [ops.slice_update(b, (0,) * len(b.shape), ops.expand_dims(v, 0))
               for b, v in zip(buffers, tree.flatten(y))]

    def cond(i, carry, buffers):
        return i < num_steps if stop is None else ops.logical_and(i < num_steps, ops.logical_not(stop(carry)))

    def body(i, carry, buffers):
        carry, y = step(carry, constants)
        buffers = [ops.slice_update(b, (i,) + (0,) * (len(b.shape) - 1), ops.expand_dims(ops.cast(v, b.dtype), 0))
                   for b, v in zip(buffers, tree.flatten(y))]
        return i + 1, carry, buffers

    i, carry, buffers = ops.while_loop(cond, body, (ops.convert_to_tensor(1, "int32"), carry, buffers))
    if stop is not None:  # steps after the stop: the step's outputs from the final carry
        after = tree.flatten(step(carry, constants)[1])
        ran = ops.arange(num_steps, dtype="int32") < i
        buffers = [ops.where(ops.reshape(ran, (-1,) + (1,) * (len(b.shape) - 1)), b,
                             ops.cast(ops.expand_dims(v, 0), b.dtype)) for b, v in zip(buffers, after)]
    return carry, tree.pack_sequence_as(y, buffers)


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
# 1. `time` is cut in chunks of CHUNK steps. Nested loops over the chunks (on TensorFlow three:
#    `n` blocks of `n` groups of GROUP chunks, `n` from the length, `_loop_sizes`) run the CHUNK
#    steps of a chunk unrolled and record the carry at the start of each chunk. The steps are not
#    masked (no select per step: a quarter fewer LiteRT ops per step): only the last chunk that
#    runs can hold steps past `time`, no checkpoint follows it, and the final carry is that
#    chunk's steps run again from its checkpoint, one per iteration of a loop. The checkpoints:
#    the innermost loop in a `(GROUP, batch, ...)` buffer, each loop above, once per iteration,
#    the buffer of the loop it runs in its own (`(n, GROUP, ...)`, then `(n, n, GROUP, ...)`).
# 2. The chunks are then replayed side by side, as one batch of `num_chunks * batch` rows started
#    from those checkpoints: CHUNK unrolled steps, no loop, outputs stacked once. The same step on
#    the same carries gives the same outputs (as one batched product).
#
# Pass 1 runs only the chunks that hold steps (and, given `stop`, ends after the chunk where it
# holds); the replay covers only the chunks that ran. Constants of the step (`generate`'s) are
# loop variables passed through, not checkpointed, and are tiled for the replay.
# Cost: every step runs twice (once per row, once in a batched product), plus the buffer copies
# (a select writes a buffer whole, and LiteRT's WHILE copies it once more): 2 * GROUP / CHUNK =
# 4 rows per step for the innermost buffer, about n / 4 for each of the two above (n = 6 at
# T = 4000, 12 at T = 16000), where one buffer of all chunks written once per group cost T / 512
# (31 rows per step at T = 16000; 125 for `generate`'s chunks of 4: bench/RESULTS.md). The inputs
# are padded to a multiple of CHUNK * GROUP * n * n steps. The graph holds 2 * CHUNK + 1 copies of
# the step (pass 1, the replay, the final chunk's loop; 3 * CHUNK when that chunk ran again unrolled
# and masked: a third more to trace, export and convert). CHUNK = 8 rather than 16 halves the
# export and conversion time (ONNX above all) for the same per-step time in LiteRT at batch 1
# (bench/RESULTS.md). When the outputs are not used (`return_sequences=False`), graph pruning
# drops step 2.
# The step must treat axis 0 of the carry and of `x_t` as a batch of independent rows and close
# over no tensor with that batch axis (per-example constants go in the carry, or in `constants`).

CHUNK = 8  # steps unrolled per chunk
# `generate`'s steps (a decoder: attention, an output layer over the vocabulary, a top-k) are
# larger graphs: 4 halves what its SavedModel, TFLite and ONNX conversions hold and cost.
GENERATE_CHUNK = 4
GROUP = 16  # chunks per iteration of pass 1's innermost loop


def _replay_scan(step, init, xs, reverse, chunk=None, group=None, constants=None, stop=None):
    """The inference loop (see above): `step(carry, x_t)` over `xs`.

    With `constants` (a nest of `(batch, ...)` tensors), the step is `step(carry, x_t,
    constants)`: they are passed as they are in pass 1 and tiled over the chunks in the replay,
    so they are neither carried nor checkpointed. `stop(carry) -> scalar bool`, if given, ends
    pass 1 after the first chunk whose final carry it holds for (see `generate`).
    """
    if constants is None:
        constants, plain_step = (), step
        step = lambda carry, x_t, _: plain_step(carry, x_t)  # noqa: E731
    chunk = CHUNK if chunk is None else chunk
    group = GROUP if group is None else group
    xs_flat = [ops.convert_to_tensor(x) for x in tree.flatten(xs)]
    init_flat = [ops.convert_to_tensor(c) for c in tree.flatten(init)]
    static_steps = xs_flat[0].shape[0]
    num_steps = ops.shape(xs_flat[0])[0]
    if reverse:
        xs_flat = [ops.flip(x, axis=0) for x in xs_flat]
    needed = (num_steps + (chunk - 1)) // chunk  # chunks holding steps; pass 1 runs no others
    # At least one chunk: 0 steps (which layers refuse, but a bare LiteRT interpreter cannot) then
    # give 0 outputs and the initial carry, never a wrongly shaped result.
    sizes = _loop_sizes(ops.maximum(needed, 1), group)
    num_chunks = sizes[0]
    for size in sizes[1:]:
        num_chunks = num_chunks * size
    padding = num_chunks * chunk - num_steps

    def chunked(x):  # (time, *rest) -> (num_chunks, chunk, *rest), zero-padded
        rest = ops.shape(x)[1:]
        x = ops.concatenate([x, ops.zeros((padding,) + tuple(rest), x.dtype)], axis=0)
        return ops.reshape(x, (num_chunks, chunk) + tuple(rest))

    xs_chunks = [chunked(x) for x in xs_flat]

    def steps_of(x_chunk_flat):  # the `chunk` inputs x_t of a chunk, in order
        rows = [_rows(x, chunk) for x in x_chunk_flat]
        return [tree.pack_sequence_as(xs, [r[j] for r in rows]) for j in range(chunk)]

    def run_chunk(carry_flat, x_chunk_flat, constants_flat):  # pass 1: `chunk` steps of one row of chunks
        carry = tree.pack_sequence_as(init, carry_flat)
        pass_constants = tree.pack_sequence_as(constants, constants_flat)
        for x_t in steps_of(x_chunk_flat):
            new_carry, _ = step(carry, x_t, pass_constants)
            carry = tree.pack_sequence_as(init, [ops.cast(new, old.dtype) for new, old in
                                                 zip(tree.flatten(new_carry), tree.flatten(carry))])
        return tree.flatten(carry)

    stop_flat = None if stop is None else (lambda carry_flat: stop(tree.pack_sequence_as(init, carry_flat)))
    constants_flat = [ops.convert_to_tensor(c) for c in tree.flatten(constants)]
    # No select per step in the loop: only the last chunk that runs can hold steps past the end,
    # and no checkpoint comes after it. The final carry is that chunk's steps run again from its
    # checkpoint, one per iteration of a loop (one more copy of the step, not `chunk`; not in the
    # replay: a model that uses only the final carry still drops the replay).
    final_flat, checkpoints, ran = _chunk_loop(run_chunk, init_flat, xs_chunks, chunk, sizes, needed,
                                               constants_flat, stop_flat)
    last_ran = needed if stop is None else ran  # from the shapes where it can be (XLA)
    last = ops.maximum(last_ran - 1, 0)
    redone = _steps_of_a_chunk(step, init, xs, [ops.take(c, last, axis=0) for c in checkpoints],
                               [ops.take(x, last, axis=0) for x in xs_chunks],
                               ops.minimum(num_steps - last * chunk, chunk),
                               tree.pack_sequence_as(constants, constants_flat))
    final_flat = [ops.where(last_ran > 0, r, c) for r, c in zip(redone, init_flat)]  # 0 steps: the initial carry
    final = tree.pack_sequence_as(init, final_flat)
    # The replay below needs a chunk (of padding, for 0 steps). Without `stop` all needed chunks
    # ran: their number then comes from the shapes, which XLA (`jit_compile`) needs; a number that
    # comes out of a loop is known only at run time, so `generate` with `stop` does not compile.
    ran = ops.maximum(needed if stop is None else ran, 1)

    # Pass 2: the chunks that ran, side by side: (ran * batch) rows from their checkpoints.
    def first_chunks(x):  # (num_chunks, *rest) -> (ran, *rest)
        return ops.slice(x, (0,) * len(x.shape), (ran,) + tuple(ops.shape(x)[1:]))

    def fold(c):  # (num_chunks, batch, *rest) -> (ran * batch, *rest)
        c = first_chunks(c)
        return ops.reshape(c, (-1,) + tuple(ops.shape(c)[2:]))

    def replay_inputs(x_chunks_flat):  # step j of every chunk: (ran * batch, *rest)
        rows = [[ops.reshape(r, (-1,) + tuple(ops.shape(r)[2:])) for r in _rows(first_chunks(x), chunk, axis=1)]
                for x in x_chunks_flat]  # unstacked along the chunk's own time axis: one pass
        return [tree.pack_sequence_as(xs, [r[j] for r in rows]) for j in range(chunk)]

    def tiled(c):  # (batch, *rest) -> (ran * batch, *rest), chunk-major as the folded carry
        c = ops.convert_to_tensor(c)
        rest = tuple(ops.shape(c))
        return ops.reshape(ops.broadcast_to(ops.expand_dims(c, 0), (ran,) + rest), (-1,) + rest[1:])

    carry = tree.pack_sequence_as(init, [fold(c) for c in checkpoints])
    replay_constants = tree.map_structure(tiled, constants)
    ys = []
    for x_t in replay_inputs(xs_chunks):
        carry, y_structure = step(carry, x_t, replay_constants)
        ys.append(tree.flatten(y_structure))
    del carry  # the replay's carries are those of pass 1 (or steps past the end)
    if stop is not None:  # steps after the stop: the step's outputs from the final carry
        x_last = tree.pack_sequence_as(xs, [x[0] for x in xs_flat])
        after = tree.flatten(step(final, x_last, constants)[1])
    ys_flat = []
    for i, parts in enumerate(zip(*ys)):
        rest = tuple(ops.shape(parts[0])[1:])
        rows = ops.shape(parts[0])[0] // ran  # this output's batch (outputs may differ from the carry's)
        parts = [ops.reshape(p, (ran, rows) + rest) for p in parts]
        y = ops.stack(parts, axis=1)  # (ran, chunk, batch, *rest), one pass
        y = ops.reshape(y, (ran * chunk, rows) + rest)
        done = ops.minimum(ran * chunk, num_steps)
        y = ops.slice(y, (0,) * len(y.shape), (done, rows) + rest)
        if stop is not None:
            filler = ops.broadcast_to(ops.expand_dims(ops.cast(after[i], y.dtype), 0), (num_steps - done, rows) + rest)
            y = ops.concatenate([y, filler], axis=0)
        if reverse:
            y = ops.flip(y, axis=0)
        ys_flat.append(y)
    if isinstance(static_steps, int):
        ys_flat = [ops.reshape(y, (static_steps,) + tuple(ops.shape(y)[1:])) for y in ys_flat]
    return final, tree.pack_sequence_as(y_structure, ys_flat)


def _rows(x, num, axis=0):
    """The `num` slices of `x` along `axis` (of static size `num`)."""
    # One UNPACK in TFLite; static slices from JAX (`x[j]` on a symbolic shape exports as a
    # `dynamic_gather`, which the TFLite converter rejects).
    return ops.unstack(x, num=num, axis=axis)


def _steps_of_a_chunk(step, init, xs, carry_flat, x_chunk_flat, count, constants):
    """`step(carry, x_t, constants)` over the first `count` steps of a chunk's `(chunk, batch, ...)` inputs.

    One step per iteration of a loop: one copy of the step in the graph.
    """

    def cond(j, carry_flat):
        return j < count

    def body(j, carry_flat):
        x_t = tree.pack_sequence_as(xs, [ops.take(x, j, axis=0) for x in x_chunk_flat])
        new_carry, _ = step(tree.pack_sequence_as(init, carry_flat), x_t, constants)
        return j + 1, [ops.cast(new, old.dtype) for new, old in zip(tree.flatten(new_carry), carry_flat)]

    loop_vars = (ops.convert_to_tensor(0, "int32"), carry_flat)
    if keras.backend.backend() != "tensorflow":
        return ops.while_loop(cond, body, loop_vars)[1]
    import tensorflow as tf

    # A step may lose the batch's static size (e.g. through a reshape).
    invariants = [tf.TensorShape([None] + c.shape[1:]) if c.shape.rank else c.shape for c in carry_flat]
    return tf.while_loop(cond, body, loop_vars, shape_invariants=(tf.TensorShape([]), invariants))[1]


def _loop_sizes(num_chunks, group):
    """The sizes of pass 1's nested loops over `num_chunks` chunks, outermost first.

    On TensorFlow, three levels: `group` chunks innermost, then two loops of `n` each, `n` about
    the smallest with `n * n * group >= num_chunks` (computed in the graph, from the shapes). A
    level's checkpoint buffer holds the chunks of one iteration of the level above and is
    written whole once per iteration, and LiteRT's WHILE copies it at every iteration: with
    these sizes every level costs O(sqrt(T)) rows per step at most, instead of the O(T) of one
    `(all chunks, ...)` buffer. Elsewhere (`keras.ops.scan`, static shapes): two levels,
    `group` chunks in each group.
    """
    if keras.backend.backend() != "tensorflow":
        return [(num_chunks + group - 1) // group, group]
    import tensorflow as tf

    groups = (num_chunks + group - 1) // group
    n = tf.cast(tf.math.ceil(tf.sqrt(tf.cast(groups, "float32"))), "int32")
    n = n + tf.cast(n * n < groups, "int32")  # float rounding
    return [n, n, tf.constant(group)]


def _chunk_loop(run_chunk, init_flat, xs_chunks, chunk, sizes, needed, constants_flat, stop_flat=None):
    """Runs `run_chunk` over the first `needed` chunks, or until `stop_flat(carry)` after one.

    Nested loops (sizes from `_loop_sizes`, their product the number of chunks), so that no
    loop carries a long buffer: each records the carries at the start of the chunks of one of
    its iterations in a buffer written once per iteration. The constants ride in every loop as
    loop variables the bodies pass through unchanged (LiteRT's WHILE copies none such) and are
    not checkpointed.

    Returns `(final carry, carry at the start of each chunk, number of chunks run)`, the
    checkpoints shaped `(num_chunks, batch, ...)` (those of chunks not run are unspecified).
    """
    if keras.backend.backend() != "tensorflow":
        # Every chunk runs (`stop` only saves time, so it is not needed; the carries of chunks
        # past the last needed one are not used).
        def chunk_body(carry_flat, x_chunk_flat):
            return run_chunk(carry_flat, x_chunk_flat, constants_flat), carry_flat

        def group_body(carry_flat, x_group_flat):
            return ops.scan(chunk_body, carry_flat, x_group_flat)

        xs_groups = [ops.reshape(x, tuple(sizes) + tuple(ops.shape(x)[1:])) for x in xs_chunks]
        final_flat, checkpoints = ops.scan(group_body, init_flat, xs_groups)
        checkpoints = [ops.reshape(c, (-1,) + tuple(ops.shape(c)[2:])) for c in checkpoints]
        return final_flat, checkpoints, needed

    import tensorflow as tf

    # Fixed-shape buffers, row i written by a select (one pass over the buffer; a scatter lowers
    # to several in TFLite): builtins with batch and time dynamic, and it converts to ONNX.
    # Everything shaped by a runtime value (`range`, `zeros`) is made outside the loops: one such
    # tensor in a loop body makes LiteRT's WHILE resize the body and deep-copy every loop
    # variable, the captured inputs included, at every iteration.
    def write(buffer, rows, i, value):
        here = tf.reshape(tf.equal(rows, i), [-1] + [1] * len(value.shape))
        return tf.where(here, tf.expand_dims(value, 0), buffer)

    def go_on(index, carry_flat):  # with `stop`: whether chunk `index` runs (it holds steps, and no stop yet)
        return tf.logical_and(index < needed,
                              tf.logical_or(tf.equal(index, 0), tf.logical_not(stop_flat(carry_flat))))

    def any_batch(tensors, axis=0):  # a step may lose the batch's static size (e.g. through a reshape)
        return [tf.TensorShape(t.shape[:axis] + [None] + t.shape[axis + 1:]) if (t.shape.rank or 0) > axis
                else t.shape for t in tensors]

    depth = len(sizes)
    spans = [tf.reduce_prod(tf.stack(sizes[k + 1:])) if k + 1 < depth else tf.constant(1) for k in range(depth)]
    rows = [tf.range(size) for size in sizes]
    empty = [[tf.zeros(tf.concat([tf.stack(sizes[k:]), tf.shape(c)], 0), c.dtype) for c in init_flat]
             for k in range(depth)]
    xs_nested = [tf.reshape(x, tf.concat([tf.stack(sizes), tf.shape(x)[1:]], 0)) for x in xs_chunks]

    def level(k, first, carry_flat, x_block, constants_flat):
        """Loop `k` over its `sizes[k]` blocks, from chunk `first`: (carry, checkpoints, chunks run)."""
        innermost = k == depth - 1  # one chunk per iteration: the chunks run are the iterations
        if stop_flat is None:  # the blocks that hold steps, counted before the loop
            limit = tf.minimum(sizes[k], (needed - first + spans[k] - 1) // spans[k])

        def body(i, carry_flat, buffers, ran, constants_flat):
            x_i = [tf.gather(x, i) for x in x_block]
            if innermost:  # one chunk; its checkpoint is the carry it starts from
                checkpoints = carry_flat
                carry_flat = run_chunk(carry_flat, x_i, constants_flat)
            else:
                carry_flat, checkpoints, block_ran = level(k + 1, first + i * spans[k], carry_flat, x_i, constants_flat)
                ran = ran + block_ran
            buffers = [write(b, rows[k], i, c) for b, c in zip(buffers, checkpoints)]
            return i + 1, [tf.convert_to_tensor(c) for c in carry_flat], buffers, ran, constants_flat

        def cond(i, carry_flat, buffers, ran, constants_flat):  # the blocks before ran whole, and more to run
            if stop_flat is None:  # LiteRT evaluates the condition once per iteration: one op
                return i < limit
            more = i < sizes[k] if innermost else tf.logical_and(i < sizes[k], tf.equal(ran, i * spans[k]))
            return tf.logical_and(more, go_on(first + i * spans[k], carry_flat))

        i, carry_flat, buffers, ran, _ = tf.while_loop(
            cond, body, (tf.constant(0), carry_flat, empty[k], tf.constant(0), constants_flat),
            shape_invariants=(tf.TensorShape([]), any_batch(carry_flat), any_batch(empty[k], depth - k),
                              tf.TensorShape([]), any_batch(constants_flat)),
        )
        return carry_flat, buffers, i if innermost else ran

    final_flat, checkpoints, ran = level(0, tf.constant(0), init_flat, xs_nested, constants_flat)
    checkpoints = [tf.reshape(c, tf.concat([[-1], tf.shape(c)[depth:]], 0)) for c in checkpoints]
    return final_flat, checkpoints, ran
