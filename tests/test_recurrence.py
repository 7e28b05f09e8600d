"""The recurrence engine's inference loop (checkpoints + batched replay) against the training loop.

The inference loop cuts time in chunks of `recurrence.CHUNK` steps and replays the chunks side
by side as one batch, so lengths around the chunk size, batches above one and both directions
are where it could go wrong.
"""

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo import recurrence

BATCH, UNITS = 3, 4
LENGTHS = [1, recurrence.CHUNK - 1, recurrence.CHUNK, recurrence.CHUNK + 1, 3 * recurrence.CHUNK + 5]


def step(carry, inputs):
    # A carry with a per-example constant (`scale`) that rides along unchanged, an integer
    # counter, and two outputs of different shapes.
    h, count, scale = carry
    a, gate = inputs
    h = ops.tanh(h * scale + a * gate)
    count = count + 1
    return (h, count, scale), (2.0 * h, count)


def reference(init, xs, reverse):
    h, count, scale = init
    a, gate = xs
    order = range(len(a))[::-1] if reverse else range(len(a))
    ys_h, ys_count = [None] * len(a), [None] * len(a)
    for t in order:
        h = np.tanh(h * scale + a[t] * gate[t])
        count = count + 1
        ys_h[t], ys_count[t] = 2.0 * h, count
    return (h, count, scale), (np.stack(ys_h), np.stack(ys_count))


def data(time, seed=0):
    rng = np.random.default_rng(seed)
    xs = (rng.normal(size=(time, BATCH, UNITS)).astype("float32"), rng.normal(size=(time, BATCH, 1)).astype("float32"))
    init = (rng.normal(size=(BATCH, UNITS)).astype("float32"), np.zeros((BATCH,), "int32"),
            rng.uniform(0.2, 0.9, size=(BATCH, 1)).astype("float32"))
    return init, xs


def check(result, expected, name):
    (carry, ys), (expected_carry, expected_ys) = result, expected
    for got, want in zip(list(carry) + list(ys), list(expected_carry) + list(expected_ys)):
        got = ops.convert_to_numpy(got)
        assert got.shape == want.shape, name
        np.testing.assert_allclose(got, want, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("time", LENGTHS, ids=[f"T{t}" for t in LENGTHS])
def test_inference_loop_equals_reference(time, reverse):
    init, xs = data(time)
    expected = reference(init, xs, reverse)
    check(recurrence.scan(step, init, xs, training=False, reverse=reverse), expected, "inference")
    check(recurrence.scan(step, init, xs, training=True, reverse=reverse), expected, "training")


# 81 chunks: on TensorFlow, pass 1's three nested loops of sizes (3, 3, GROUP), each running
# more than once and the last block of each partly (see `recurrence._loop_sizes`).
LONG = 5 * recurrence.GROUP * recurrence.CHUNK + 3


def test_inference_loop_in_a_graph_with_dynamic_shapes():
    # One traced function, every length and batch: the shapes the exported loop will see.
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        spec = [tf.TensorSpec((None, None, UNITS)), tf.TensorSpec((None, None, 1)),
                tf.TensorSpec((None, UNITS)), tf.TensorSpec((None,), "int32"), tf.TensorSpec((None, 1))]
        run = tf.function(
            lambda a, gate, h, count, scale: recurrence.scan(step, (h, count, scale), (a, gate), training=False),
            input_signature=spec,
        )
    elif keras.backend.backend() == "jax":
        import jax

        run = jax.jit(lambda a, gate, h, count, scale: recurrence.scan(step, (h, count, scale), (a, gate)))
    else:  # eager on other backends
        def run(a, gate, h, count, scale):
            return recurrence.scan(step, (h, count, scale), (a, gate), training=False)
    for time in (2 * recurrence.CHUNK + 3, 5, LONG):
        init, xs = data(time, seed=time)
        check(run(*xs, *init), reference(init, xs, False), f"T={time}")


# -- `generate`: closed-loop steps with no input, stopping early --------------------------------


def generate_step(carry, constants):
    # A row runs until its own `limit`, then stays put and emits zeros (what `stop` requires);
    # `ticks` counts the steps actually taken, to see the loop end early.
    h, count, ticks = carry
    scale, limit = constants
    alive = count < limit
    new_h = ops.where(ops.expand_dims(alive, -1), ops.tanh(h * scale + 0.5), h)
    count = count + ops.cast(alive, "int32")
    y = (ops.where(ops.expand_dims(alive, -1), 2.0 * new_h, 0.0), ops.cast(alive, "int32"))
    return (new_h, count, ticks + 1), y


def generate_reference(init, constants, num_steps):
    h, count, _ = (np.array(v) for v in init)
    scale, limit = constants
    ys_h, ys_alive = [], []
    for _ in range(num_steps):
        alive = count < limit
        h = np.where(alive[:, None], np.tanh(h * scale + 0.5), h)
        count = count + alive
        ys_h.append(np.where(alive[:, None], 2.0 * h, 0.0))
        ys_alive.append(alive.astype("int32"))
    return h, count, np.stack(ys_h), np.stack(ys_alive)


G = recurrence.GENERATE_CHUNK
GENERATE_LENGTHS = [1, G - 1, G, G + 1, 3 * G + 5, 17 * G * recurrence.GROUP // 8]  # the last: over two groups


@pytest.mark.parametrize("num_steps", GENERATE_LENGTHS, ids=[f"T{t}" for t in GENERATE_LENGTHS])
def test_generate_equals_a_plain_loop_and_stops_early(num_steps):
    rng = np.random.default_rng(num_steps)
    init = (rng.normal(size=(BATCH, UNITS)).astype("float32"), np.zeros((BATCH,), "int32"), np.zeros((BATCH,), "int32"))
    limit = np.array([1, 3, 2 * G + 1], "int32")
    constants = (rng.uniform(0.2, 0.9, size=(BATCH, 1)).astype("float32"), limit)
    h, count, ys_h, ys_alive = generate_reference(init, constants, num_steps)
    for stop in (None, lambda carry: ops.all(carry[1] >= limit)):
        (got_h, got_count, ticks), (got_ys_h, got_ys_alive) = recurrence.generate(
            generate_step, init, num_steps, constants=constants, stop=stop)
        np.testing.assert_allclose(ops.convert_to_numpy(got_h), h, atol=1e-6)
        np.testing.assert_array_equal(ops.convert_to_numpy(got_count), count)
        np.testing.assert_allclose(ops.convert_to_numpy(got_ys_h), ys_h, atol=1e-6)
        np.testing.assert_array_equal(ops.convert_to_numpy(got_ys_alive), ys_alive)
        ticks = int(ops.convert_to_numpy(ticks)[0])
        if stop is None or num_steps <= limit.max() + G:
            assert ticks == num_steps
        else:  # stopped within a chunk of the last row's end, not at num_steps
            assert limit.max() <= ticks <= limit.max() + G < num_steps


def test_generate_refuses_a_bad_number_of_steps():
    for bad in (0, -1, 2.0, True, None):
        with pytest.raises(ValueError, match=r"`generate\(num_steps=...\)` must be an integer >= 1"):
            recurrence.generate(generate_step, (np.zeros((1, 1)),), bad)


@pytest.mark.tensorflow
def test_inference_loop_compiles_with_xla():
    # Keras compiles `predict` and `evaluate` with `jit_compile=True` when a model asks for it
    # (`Seq2Seq` does): every shape of the inference loop must then follow from the input shapes.
    import tensorflow as tf

    for time in (3 * recurrence.CHUNK + 5, LONG):
        init, xs = data(time)
        compiled = tf.function(lambda a, gate: recurrence.scan(step, init, (a, gate), training=False),
                               jit_compile=True)
        check(compiled(*xs), reference(init, xs, False), f"XLA, T={time}")
