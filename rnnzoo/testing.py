"""Test helpers shared by rnnzoo's tests, usable for your own layers too.

`gradients` gives the backend's automatic-differentiation reference; `run_layer_test` checks
the Keras layer contract in one call, in the spirit of keras's own `run_layer_test`.
"""

import copy
import os
import tempfile

import keras
import numpy as np
from keras import tree


def gradients(fn, args):
    """Gradients of the scalar `fn(*args)` w.r.t. each of `args` by the backend's autodiff.

    `tf.GradientTape` on TensorFlow, `jax.grad` on JAX: the references the explicit BPTT is
    validated against. Returns NumPy arrays (zeros where `fn` does not depend on an arg).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        args = [tf.convert_to_tensor(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(args)
            value = fn(*args)
        grads = tape.gradient(value, args)
        return [np.zeros(a.shape) if g is None else g.numpy() for a, g in zip(args, grads)]
    if backend == "jax":
        import jax

        return [np.asarray(g) for g in jax.grad(lambda a: fn(*a))(list(args))]
    raise NotImplementedError(f"`gradients` supports the tensorflow and jax backends. Received: {backend}")


def relative_error(actual, expected):
    """`max |actual - expected| / max |expected|` (0 when both are 0)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = np.max(np.abs(expected)) if expected.size else 0.0
    error = np.max(np.abs(actual - expected)) if expected.size else 0.0
    return float(error / scale) if scale > 0 else float(error)


def run_layer_test(layer, inputs, targets=None, *, expected_num_trainable_weights=None):
    """Checks the Keras contract of `layer` on `inputs` (a batch, or a list for several inputs).

    - `get_config` / `from_config` round-trip gives an equivalent layer;
    - the symbolic output shape equals the eager output shape;
    - the number of trainable weights (if given);
    - one `model.fit` step changes every trainable weight;
    - a `.keras` save/load, without `custom_objects`, gives identical outputs.

    Returns the functional model that wraps `layer`.
    """
    inputs_list = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    config = layer.get_config()
    # A copy: some `from_config`s (keras.layers.RNN's) pop keys from the dict they are given.
    clone = type(layer).from_config(copy.deepcopy(config))
    assert clone.get_config() == config, (clone.get_config(), config)

    symbolic = [keras.Input(shape=np.shape(x)[1:], dtype=str(np.asarray(x).dtype)) for x in inputs_list]
    outputs = layer(symbolic if len(symbolic) > 1 else symbolic[0])
    model = keras.Model(symbolic, outputs)
    eager = model(inputs_list if len(inputs_list) > 1 else inputs_list[0])
    for sym, real in zip(tree.flatten(outputs), tree.flatten(eager)):
        sym_shape, real_shape = tuple(sym.shape), tuple(np.shape(real))
        assert len(sym_shape) == len(real_shape) and all(
            s is None or s == r for s, r in zip(sym_shape, real_shape)
        ), (sym_shape, real_shape)
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, layer.trainable_weights

    if targets is None:
        targets = tree.map_structure(lambda y: np.random.default_rng(0).normal(size=np.shape(y)), eager)
    before = [np.array(w) for w in layer.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(inputs_list if len(inputs_list) > 1 else inputs_list[0], targets, epochs=1,
              batch_size=len(inputs_list[0]), verbose=0)
    for w, old in zip(layer.trainable_weights, before):
        assert not np.allclose(np.array(w), old), f"`fit` did not change weight {w.path}"

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
    x = inputs_list if len(inputs_list) > 1 else inputs_list[0]
    for a, b in zip(tree.flatten(model.predict(x, verbose=0)), tree.flatten(loaded.predict(x, verbose=0))):
        np.testing.assert_array_equal(a, b)
    return model


PARITY_SHAPES = ((1, 1), (1, 7), (3, 10), (5, 33))  # (batch, time): sizes never seen at export


def numpy_deep_transition(x, cell, mask=None, dtype=np.float64, tanh=np.tanh):
    """A tanh `rnnzoo.cells.DeepTransitionCell` stepped by hand in NumPy, float64 by default:
    the reference its tests and `examples/deep_rnn.py` compare Keras and TFLite with.

    Args:
        x: `(batch, time, features)` array.
        cell: a built `DeepTransitionCell` with the tanh activation.
        mask: optional `(batch, time)` bool array; a masked step keeps the state.
        dtype: the NumPy float type to compute in.
        tanh: the activation function (to perturb it, for example).

    Returns:
        `(outputs, h)`: `(batch, time, units)`, zero at masked steps, and the final state.
    """
    weights = {w.path.split("/")[-1]: np.asarray(w, dtype) for w in cell.weights}
    mask = np.ones(x.shape[:2], bool) if mask is None else mask
    x = np.asarray(x, dtype)
    h = np.zeros((x.shape[0], cell.units), dtype)
    outputs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ weights["U"] + h @ weights["W_1"]
        for k in range(1, cell.transition_depth + 1):
            if k > 1:
                z = z @ weights[f"W_{k}"]
            if k == cell.transition_depth and cell.skip_connection:
                z = z + h @ weights["S"]
            z = tanh(z + weights[f"b_{k}"])
        h = np.where(mask[:, t : t + 1], z, h)
        outputs.append(np.where(mask[:, t : t + 1], h, dtype(0)))
    return np.stack(outputs, axis=1), h


def padded_batches(features, shapes=PARITY_SHAPES, seed=7):
    """Random float32 `(batch, time, features)` batches; in each batch of 2 or more, the first
    sequence is right-padded with zeros from half its length (for a `Masking(0.0)` model)."""
    rng = np.random.default_rng(seed)
    batches = []
    for batch, time in shapes:
        x = rng.normal(size=(batch, time, features)).astype("float32")
        if batch > 1:
            x[0, time // 2:] = 0.0
        batches.append(x)
    return batches


def assert_exports_with_parity(model, directory, batches, tolerance=1e-5, max_abs_error=1e-5):
    """Exports `model` to a SavedModel and a builtin-ops TFLite file under `directory` and checks
    both: no custom or Flex op, a `WHILE` loop, and parity with Keras on `batches` -- the
    report's relative error within `tolerance` and, unless `max_abs_error` is None, the
    absolute difference within `max_abs_error`.

    Returns the `rnnzoo.export.ParityReport`.
    """
    from rnnzoo.export import parity_report, tflite_ops, to_saved_model, to_tflite

    saved_model = to_saved_model(model, os.path.join(directory, "saved_model"))
    tflite = to_tflite(saved_model, os.path.join(directory, "model.tflite"))
    operators = tflite_ops(tflite)
    assert not [op for op in operators if op.startswith("CUSTOM") or "Flex" in op], operators
    assert "WHILE" in operators, operators
    report = parity_report(model, [tflite, saved_model], batches, tolerance=tolerance)
    assert report.passed, str(report)
    assert max_abs_error is None or report.max_abs_error <= max_abs_error, str(report)
    return report
