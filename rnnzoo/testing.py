"""Test helpers shared by rnnzoo's tests, usable for your own layers too.

`gradients` gives the backend's automatic-differentiation reference; `run_layer_test` checks
the Keras layer contract in one call, in the spirit of keras's own `run_layer_test`.
"""

import copy
import json
import os
import tempfile

import keras
import numpy as np
from keras import tree


@keras.saving.register_keras_serializable(package="rnnzoo_testing")
class IndexingCell(keras.layers.Layer):
    """A cell written to Keras's contract as users write them: it reads its one state as `states[0]`.

    `h = activation(x K + h R)` (`activation` None: linear). Keras always passes the states as a
    list, so a layer that passes a bare tensor gives such a cell its first row at batch > 1.
    """

    def __init__(self, units, activation=None, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        self.state_size = units
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")

    def call(self, inputs, states):
        h = states[0]
        h = self.activation(keras.ops.matmul(inputs, self.kernel) + keras.ops.matmul(h, self.recurrent_kernel))
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": keras.activations.serialize(self.activation)}


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


def _config_json(config):
    """A canonical JSON text of a config (tuples and lists alike, keys sorted)."""
    return json.dumps(config, sort_keys=True, default=repr)


def _without_dtype(config):
    """`config` with every nested layer's `dtype` entry removed, so that a layer rebuilt from it
    takes the global dtype policy (the way a user switches a model to mixed precision)."""
    if isinstance(config, dict):
        return {k: _without_dtype(v) for k, v in config.items() if k != "dtype"}
    if isinstance(config, (list, tuple)):
        return type(config)(_without_dtype(v) for v in config)
    return config


def _numpy(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


def _is_float(x):
    return keras.backend.is_float_dtype(keras.backend.standardize_dtype(x.dtype))


def _default_call(layer, inputs, *args, **kwargs):
    return layer(inputs, *args, **kwargs)


def check_config_round_trip(layer):
    """`from_config(get_config())` and a JSON `serialize`/`deserialize` give the same config.

    Returns the layer rebuilt by `from_config` (unbuilt).
    """
    name = type(layer).__name__
    config = layer.get_config()
    # A copy: some `from_config`s (keras.layers.RNN's) pop keys from the dict they are given.
    clone = type(layer).from_config(copy.deepcopy(config))
    assert _config_json(clone.get_config()) == _config_json(config), (
        f"{name}: from_config(get_config()) changed the config:\n{clone.get_config()}\n!=\n{config}"
    )
    serialized = json.loads(_config_json(keras.saving.serialize_keras_object(layer)))
    revived = keras.saving.deserialize_keras_object(serialized)  # no custom_objects
    assert type(revived) is type(layer), (type(revived), type(layer))
    assert _config_json(revived.get_config()) == _config_json(config), (
        f"{name}: a JSON serialize/deserialize round-trip changed the config"
    )
    return clone


def run_layer_test(
    layer,
    inputs,
    targets=None,
    *,
    call_args=(),
    call_kwargs=None,
    call_fn=None,
    build_shapes=None,
    expected_num_trainable_weights=None,
    expected_num_non_trainable_weights=None,
    expected_num_losses=None,
    run_masking_check=None,
    run_training_check=True,
    run_saving_check=True,
    run_mixed_precision_check=True,
    tolerance=1e-5,
):
    """Checks the Keras layer contract of `layer` (unbuilt) on the data `inputs`, in one call.

    In the spirit of Keras's own `TestCase.run_layer_test`:

    - **config**: `from_config(get_config())` and a JSON `serialize_keras_object` /
      `deserialize_keras_object` round-trip (without `custom_objects`) give an equal config, and
      the rebuilt layer given the same weights computes the same outputs;
    - **build**: `build(*build_shapes)` builds the layer with the expected weight counts;
    - **symbolic vs eager**: called on `keras.Input`s and on the data, it gives outputs of the
      same shapes (the symbolic ones may have None), and a functional model of it computes what
      the layer computes eagerly; the weight and loss counts are those expected;
    - **masking** (by default for a layer with `supports_masking` and one `(batch, time,
      features)` input): a batch whose rows are right-padded with junk to different lengths,
      with a mask, gives at the valid steps (and in the final outputs and states) what each row
      gives alone, unpadded;
    - **training**: one `model.fit` step (SGD, mean squared error on every output) changes every
      trainable weight;
    - **saving**: a `.keras` save/load, without `custom_objects`, gives identical predictions;
    - **mixed precision**: rebuilt from its config under the global `mixed_float16` policy, the
      layer computes in float16 (every floating output has the layer's compute dtype, as does
      its symbolic output), keeps float32 variables, and its outputs are finite.

    Args:
        layer: the layer (or cell) to check, not yet built.
        inputs: the first call argument: a NumPy array, or a list of arrays for a layer that
            takes a list (e.g. `TreeLayer`).
        targets: optional training targets, one per flattened output; random by default.
        call_args: further positional call arguments (e.g. a cell's `states`), arrays in any
            nesting.
        call_kwargs: keyword call arguments; arrays among them become model inputs too.
        call_fn: `call_fn(layer, inputs, *call_args, **call_kwargs)` if the layer is not simply
            called (e.g. a cell whose constants come from one of its methods).
        build_shapes: the arguments of the explicit `build` check; by default the shape of
            `inputs` (a list of shapes for a list).
        expected_num_trainable_weights, expected_num_non_trainable_weights,
        expected_num_losses: counts checked once the layer is built / called.
        run_masking_check: None (automatic, see above), True or False.
        run_training_check, run_saving_check, run_mixed_precision_check: bools.
        tolerance: absolute and relative tolerance of the float32 comparisons.

    Returns:
        The functional model that wraps `layer` (trained one step).
    """
    name = type(layer).__name__
    call_kwargs = dict(call_kwargs or {})
    call_fn = call_fn or _default_call
    stateful = bool(getattr(layer, "stateful", False))
    structure = (inputs, list(call_args), call_kwargs)
    data = [x for x in tree.flatten(structure) if isinstance(x, np.ndarray)]
    batch = len(data[0])

    def call(target, values):
        """Calls `target` with the arrays of `structure` replaced, in order, by `values`."""
        values = iter(values)
        args = tree.map_structure(lambda x: next(values) if isinstance(x, np.ndarray) else x, structure)
        return call_fn(target, args[0], *args[1], **args[2])

    def restore(target, weights):
        """Sets `weights`; a stateful layer's carried state is zeroed too (Keras does not count it
        among the weights)."""
        target.set_weights(weights)
        if stateful and hasattr(target, "reset_state"):
            target.reset_state()

    def count_weights(target, when):
        if expected_num_trainable_weights is not None:
            assert len(target.trainable_weights) == expected_num_trainable_weights, (
                f"{name} {when}: {len(target.trainable_weights)} trainable weights, expected "
                f"{expected_num_trainable_weights}: {[w.path for w in target.trainable_weights]}"
            )
        if expected_num_non_trainable_weights is not None:
            assert len(target.non_trainable_weights) == expected_num_non_trainable_weights, (
                f"{name} {when}: non-trainable weights {[w.path for w in target.non_trainable_weights]}, "
                f"expected {expected_num_non_trainable_weights}"
            )

    # Config round-trip (before anything is built).
    config = layer.get_config()
    check_config_round_trip(layer)

    # Build.
    if build_shapes is None:
        build_shapes = ([np.shape(x) for x in inputs] if isinstance(inputs, (list, tuple)) else np.shape(inputs),)
    built = type(layer).from_config(copy.deepcopy(config))
    built.build(*build_shapes)
    assert built.built, f"{name}.build did not build the layer"
    count_weights(built, "after build")

    # Symbolic call, then eager.
    symbolic_inputs = [
        keras.Input(shape=x.shape[1:], dtype=str(x.dtype), batch_size=batch if stateful else None) for x in data
    ]
    symbolic_outputs = tree.flatten(call(layer, symbolic_inputs))
    assert layer.built, f"{name} is not built after a symbolic call"
    count_weights(layer, "after a symbolic call")
    model = keras.Model(symbolic_inputs, symbolic_outputs)
    initial_weights = layer.get_weights()  # the stateful layer's state included
    eager_outputs = tree.flatten(call(layer, data))
    assert len(eager_outputs) == len(symbolic_outputs), (len(eager_outputs), len(symbolic_outputs))
    for sym, real in zip(symbolic_outputs, eager_outputs):
        sym_shape, real_shape = tuple(sym.shape), tuple(real.shape)
        assert len(sym_shape) == len(real_shape) and all(
            s is None or s == r for s, r in zip(sym_shape, real_shape)
        ), f"{name}: symbolic output shape {sym_shape} != eager {real_shape}"
        assert keras.backend.standardize_dtype(sym.dtype) == keras.backend.standardize_dtype(real.dtype), (
            f"{name}: symbolic output dtype {sym.dtype} != eager {real.dtype}"
        )
    if expected_num_losses is not None:
        assert len(layer.losses) == expected_num_losses, (
            f"{name}: {len(layer.losses)} losses, expected {expected_num_losses}"
        )
    restore(layer, initial_weights)
    eager_outputs = tree.flatten(call(layer, data))
    restore(layer, initial_weights)
    model_outputs = tree.flatten(model(data))
    for a, b in zip(model_outputs, eager_outputs):
        np.testing.assert_allclose(_numpy(a), _numpy(b), rtol=tolerance, atol=tolerance,
                                   err_msg=f"{name}: the functional model and the eager call differ")

    # The layer rebuilt from its config, given the same weights, computes the same outputs.
    clone = type(layer).from_config(copy.deepcopy(config))
    call(clone, data)  # builds it
    restore(clone, initial_weights)
    restore(layer, initial_weights)
    for a, b in zip(tree.flatten(call(clone, data)), tree.flatten(call(layer, data))):
        np.testing.assert_allclose(_numpy(a), _numpy(b), rtol=tolerance, atol=tolerance,
                                   err_msg=f"{name}: from_config(get_config()) with the same weights differs")

    if run_masking_check is None:
        run_masking_check = (
            bool(getattr(layer, "supports_masking", False)) and not stateful and len(data) == 1
            and not isinstance(inputs, (list, tuple)) and np.ndim(inputs) == 3
        )
    if run_masking_check:
        restore(layer, initial_weights)
        check_masking(layer, inputs, call_fn=call_fn, tolerance=tolerance)

    if run_training_check:
        if targets is None:
            rng = np.random.default_rng(0)
            targets = [rng.normal(size=tuple(np.shape(y))).astype("float32") for y in eager_outputs]
        restore(layer, initial_weights)
        before = [np.array(w) for w in layer.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        model.fit(data, targets, epochs=1, batch_size=batch, verbose=0)
        for w, old in zip(layer.trainable_weights, before):
            assert not np.allclose(np.array(w), old), f"{name}: `fit` did not change weight {w.path}"
            assert np.all(np.isfinite(np.array(w))), f"{name}: `fit` made weight {w.path} non-finite"

    if run_saving_check:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            loaded = keras.saving.load_model(path)
        for m in (model, loaded):  # a carried state is not saved: start both from zeros
            for sublayer in m.layers:
                if getattr(sublayer, "stateful", False) and hasattr(sublayer, "reset_state"):
                    sublayer.reset_state()
        expected = tree.flatten(model.predict(data, batch_size=batch, verbose=0))
        actual = tree.flatten(loaded.predict(data, batch_size=batch, verbose=0))
        for a, b in zip(expected, actual):
            np.testing.assert_array_equal(a, b, err_msg=f"{name}: `.keras` save/load changed the outputs")

    if run_mixed_precision_check:
        check_mixed_precision(layer, call, data, stateful=stateful, batch=batch)
    return model


def check_mixed_precision(layer, call, data, *, stateful=False, batch=None):
    """`layer` rebuilt from its config under the global `mixed_float16` policy: float16 outputs
    (eager and symbolic), float32 variables, finite outputs. `call(layer, arrays)` calls it."""
    name = type(layer).__name__
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = type(layer).from_config(_without_dtype(layer.get_config()))
        assert mixed.compute_dtype == "float16", f"{name}: compute dtype {mixed.compute_dtype} under mixed_float16"
        symbolic = tree.flatten(call(mixed, [
            keras.Input(shape=x.shape[1:], dtype=str(x.dtype), batch_size=batch if stateful else None) for x in data
        ]))
        eager = tree.flatten(call(mixed, data))
    finally:
        keras.config.set_dtype_policy(previous)
    for sym, real in zip(symbolic, eager):
        if _is_float(real):
            assert keras.backend.standardize_dtype(real.dtype) == mixed.compute_dtype, (
                f"{name} under mixed_float16: an output is {keras.backend.standardize_dtype(real.dtype)}, "
                f"expected the compute dtype {mixed.compute_dtype}"
            )
            assert np.all(np.isfinite(_numpy(real).astype("float32"))), f"{name} under mixed_float16: non-finite output"
        assert keras.backend.standardize_dtype(sym.dtype) == keras.backend.standardize_dtype(real.dtype), (
            f"{name} under mixed_float16: symbolic output dtype {sym.dtype} != eager {real.dtype}"
        )
    for w in mixed.weights:
        if keras.backend.is_float_dtype(w.dtype):
            assert keras.backend.standardize_dtype(w.dtype) == "float32", (
                f"{name} under mixed_float16: variable {w.path} is {w.dtype}, expected float32"
            )


def check_masking(layer, inputs, *, call_fn=None, junk=1e3, tolerance=1e-5):
    """Padded equals unpadded: each row of `inputs` `(batch, time, features)` is cut to its own
    length (`time - row`, at least 1), right-padded with `junk`-sized random values to
    `time + 2` and masked; the layer's valid sequence outputs (in processing order: reversed
    with `go_backwards`), final outputs and states then equal those of the row alone, unpadded.
    `layer` must be built with the weights to check.
    """
    name = type(layer).__name__
    call_fn = call_fn or _default_call
    x = np.asarray(inputs)
    batch, time, features = x.shape
    padded_time = time + 2
    rng = np.random.default_rng(1)
    padded = (junk * rng.normal(size=(batch, padded_time, features))).astype(x.dtype)
    mask = np.zeros((batch, padded_time), bool)
    lengths = [max(1, time - row) for row in range(batch)]
    for row, length in enumerate(lengths):
        padded[row, :length] = x[row, :length]
        mask[row, :length] = True
    padded_outputs = tree.flatten(call_fn(layer, padded, mask=mask))
    backwards = bool(getattr(layer, "go_backwards", False))
    for row, length in enumerate(lengths):
        alone = tree.flatten(call_fn(layer, x[row : row + 1, :length]))
        for k, (p, a) in enumerate(zip(padded_outputs, alone)):
            p, a = _numpy(p)[row], _numpy(a)[0]
            if p.ndim == 2 and p.shape[0] == padded_time:  # a sequence output
                valid = mask[row][::-1] if backwards else mask[row]
                p = p[valid]
            np.testing.assert_allclose(
                p, a, rtol=tolerance, atol=tolerance,
                err_msg=f"{name}: output {k} of row {row} (valid length {length}) differs padded and masked "
                f"from the row alone",
            )


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
