"""Export: SavedModel (batch and time dynamic) and TFLite with builtin ops only, compared in numbers.

Runs in both backend passes: on JAX, `model.export` goes through jax2tf. Each export takes
seconds, so there are few of them and they are marked slow.
"""

import os

import keras
import numpy as np
import pytest

from rnnzoo.export import (
    load_artifact,
    parity_report,
    run_artifact,
    run_artifact_in_fresh_process,
    tflite_ops,
    to_saved_model,
    to_tflite,
)
from rnnzoo.layers import VanillaRNN

FEATURES = 3
# (batch, time): a single step, a batch of one, and batches and lengths never seen at export.
SHAPES = [(1, 1), (1, 7), (3, 10), (5, 33)]
TOLERANCE = 1e-5  # float32 TFLite / SavedModel vs Keras: relative error, and here absolute difference too


def sequences_with_projection():
    inputs = keras.Input((None, FEATURES))
    outputs = VanillaRNN(5, output_units=2, return_sequences=True, bias_initializer="random_normal")(inputs)
    return keras.Model(inputs, outputs)


def stack_with_go_backwards():
    inputs = keras.Input((None, FEATURES))
    x = VanillaRNN(4, return_sequences=True, bias_initializer="random_normal")(inputs)
    last, state = VanillaRNN(5, output_units=3, go_backwards=True, return_state=True,
                             activation="relu", bias_initializer="random_normal")(x)
    return keras.Model(inputs, [last, state])


def masking_with_padding():
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    x = VanillaRNN(4, return_sequences=True, bias_initializer="random_normal")(x)
    outputs = VanillaRNN(5, output_units=2, return_sequences=True, go_backwards=True)(x)
    return keras.Model(inputs, outputs)


MODELS = {
    "sequences_projection": sequences_with_projection,
    "stack_go_backwards": stack_with_go_backwards,
    "masking_padded": masking_with_padding,
}


def input_batches(padded, seed=0, features=FEATURES):
    rng = np.random.default_rng(seed)
    batches = []
    for batch, time in SHAPES:
        x = rng.normal(size=(batch, time, features)).astype("float32")
        if padded and batch > 1:
            x[0, time // 2 :] = 0.0  # right padding
            x[1, : time // 3] = 0.0  # left padding
        batches.append(x)
    return batches


def assert_builtins_only(tflite_path):
    ops = tflite_ops(tflite_path)
    assert not [op for op in ops if op.startswith("CUSTOM") or "Flex" in op], ops
    assert "WHILE" in ops, ops  # the recurrence is a loop, batch and time dynamic
    return ops


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS), ids=list(MODELS))
def test_saved_model_and_tflite_match_keras(name, tmp_path):
    model = MODELS[name]()
    saved_model = to_saved_model(model, str(tmp_path / "saved_model"))
    tflite = to_tflite(saved_model, str(tmp_path / "model.tflite"))
    assert_builtins_only(tflite)

    batches = input_batches(padded=name == "masking_padded")
    report = parity_report(model, [tflite, saved_model], batches, tolerance=TOLERANCE)
    assert len(report.rows) == 2 * len(SHAPES)
    assert report.passed and report.max_abs_error <= TOLERANCE, str(report)
    if name == "masking_padded":
        # The padded steps really are masked: the same layers without `Masking` differ.
        inputs = keras.Input((None, FEATURES))
        unmasked = keras.Model(inputs, model.layers[3](model.layers[2](inputs)))
        x = batches[2]
        assert np.max(np.abs(np.asarray(unmasked(x)) - run_artifact(tflite, x))) > 1e-3

    # `parity_report` loads each artifact once: loaded once, it also runs the shapes backwards
    # (LiteRT resizes its inputs down) and an empty batch.
    for path in (tflite, saved_model):
        run = load_artifact(path)
        for x in batches[::-1] + [batches[-1][:0]]:
            got, want = run(x), model(x, training=False)
            for g, w in zip(got if isinstance(got, list) else [got], want if isinstance(want, list) else [want]):
                assert g.shape == tuple(w.shape)
                np.testing.assert_allclose(g, np.asarray(w), atol=TOLERANCE, rtol=0)

    # A new Python process shares nothing with this one: the SavedModel alone gives the numbers.
    x = batches[-1]
    expected = model(x, training=False)
    fresh = run_artifact_in_fresh_process(saved_model, x)
    for got, want in zip(fresh if isinstance(fresh, list) else [fresh],
                         expected if isinstance(expected, list) else [expected]):
        assert got.shape == tuple(want.shape)
        np.testing.assert_allclose(got, np.asarray(want), atol=TOLERANCE, rtol=0)


def test_parity_is_the_relative_error_of_each_example():
    from rnnzoo.export.parity import ParityReport, _errors

    keras_logits = np.array([[8.0, -2.0], [0.5, 0.1]])
    # Example 0's logits reach 8: 4e-5 is a relative error of 5e-6.
    absolute, relative = _errors(keras_logits + [[4e-5, 4e-5], [0.0, 0.0]], keras_logits)
    assert absolute == pytest.approx(4e-5) and relative == pytest.approx(5e-6)
    # Example 1's outputs stay below 1, so its bound is absolute; example 0's size does not loosen it.
    absolute, relative = _errors(keras_logits + [[0.0, 0.0], [0.0, 2e-5]], keras_logits)
    assert relative == pytest.approx(2e-5)
    assert not ParityReport([{"max_abs_error": absolute, "max_relative_error": relative}], 1e-5).passed
    # Every output counts; a shape mismatch is an error, not a broadcast.
    assert _errors([np.zeros(3), np.full(3, 3e-5)], [np.zeros(3), np.zeros(3)]) == pytest.approx((3e-5, 3e-5))
    with pytest.raises(ValueError, match="shape"):
        _errors(np.zeros((2, 1)), np.zeros((2,)))
    # Token ids must be equal, however large; a NaN on either side fails; equal infinities agree.
    assert _errors(np.array([120001]), np.array([120000])) == (1.0, 1.0)
    assert _errors(np.array([[np.nan, 0.0]]), np.zeros((1, 2))) == (np.inf, np.inf)
    assert _errors(np.zeros((1, 2)), np.array([[np.nan, 0.0]])) == (np.inf, np.inf)
    assert _errors(np.array([[-np.inf, 1.0]]), np.array([[-np.inf, 1.0]])) == (0.0, 0.0)


# Post-training quantization: weights of at least 1024 elements are quantized (smaller ones
# are left in float32), so this model is wide enough for quantization to happen.
# Relative error vs Keras (`ParityReport`), on outputs of magnitude ~1 (float32 is within 1e-5).
QUANTIZATION_TOLERANCE = {"float16": 5e-3, "dynamic_range": 0.1}


@pytest.mark.slow
def test_quantized_tflite_stays_close(tmp_path):
    features = 32
    inputs = keras.Input((None, features))
    outputs = VanillaRNN(48, output_units=8, return_sequences=True, bias_initializer="random_normal")(inputs)
    model = keras.Model(inputs, outputs)
    saved_model = to_saved_model(model, str(tmp_path / "saved_model"))
    float32_path = to_tflite(saved_model, str(tmp_path / "float32.tflite"))
    batches = input_batches(padded=False, seed=1, features=features)[1:]
    float32_parity = parity_report(model, [float32_path], batches, tolerance=TOLERANCE)
    assert float32_parity.passed and float32_parity.max_abs_error <= TOLERANCE, str(float32_parity)
    quantizable_bytes = 4 * (features * 48 + 48 * 48)  # U and W; V (384 elements) is too small
    for quantization, tolerance in QUANTIZATION_TOLERANCE.items():
        path = to_tflite(saved_model, str(tmp_path / f"{quantization}.tflite"), quantization=quantization)
        assert_builtins_only(path)
        # At least one of U, W was stored in fewer bits. (How many depends on the backend's
        # graph: on JAX, dynamic range quantizes fewer of them than on TensorFlow.)
        saved = os.path.getsize(float32_path) - os.path.getsize(path)
        assert saved > 0.25 * quantizable_bytes, (quantization, saved)
        report = parity_report(model, [path], batches, tolerance=tolerance)
        assert report.passed, str(report)
        assert report.max_abs_error > 0  # the weights really changed


def test_to_saved_model_will_not_overwrite(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="will not overwrite"):
        to_saved_model(sequences_with_projection(), str(tmp_path))
    assert (tmp_path / "keep.txt").read_text() == "precious"


@pytest.mark.slow
def test_fresh_process_takes_a_list_of_inputs(tmp_path):
    a, b = keras.Input((5, 3), name="a"), keras.Input((5, 3), name="b")  # one time axis (JAX export)
    model = keras.Model([a, b], VanillaRNN(4)(keras.layers.Add()([a, b])))
    path = to_saved_model(model, str(tmp_path / "saved_model"))
    rng = np.random.default_rng(0)
    x = [rng.normal(size=(2, 5, 3)).astype("float32"), rng.normal(size=(2, 5, 3)).astype("float32")]
    np.testing.assert_allclose(run_artifact_in_fresh_process(path, x), model(x), atol=1e-6)


# --- ONNX, one set of quantization options, the JAX export path -------------------------------


def wide_model(features=32):
    inputs = keras.Input((None, features))
    outputs = VanillaRNN(48, output_units=8, return_sequences=True, bias_initializer="random_normal")(inputs)
    return keras.Model(inputs, outputs)


@pytest.mark.tensorflow
@pytest.mark.slow
def test_onnx_quantizations_are_those_of_tflite(tmp_path):
    from rnnzoo.export import onnx_ops, quantized_weights, to_onnx

    model = wide_model()
    saved_model = to_saved_model(model, str(tmp_path / "saved_model"))
    batches = input_batches(padded=False, seed=1, features=32)[1:]
    float32 = to_onnx(saved_model, str(tmp_path / "float32.onnx"))
    assert "Loop" in onnx_ops(float32) and quantized_weights(float32) == 0
    report = parity_report(model, [float32], batches, tolerance=TOLERANCE)
    assert report.passed and report.max_abs_error <= TOLERANCE, str(report)
    for quantization, tolerance in QUANTIZATION_TOLERANCE.items():
        path = to_onnx(saved_model, str(tmp_path / f"{quantization}.onnx"), quantization=quantization)
        assert quantized_weights(path) > 0, quantization
        report = parity_report(model, [path], batches, tolerance=tolerance)
        assert report.passed and report.max_abs_error > 0, (quantization, str(report))


@pytest.mark.slow
def test_a_quantization_that_changes_nothing_says_so(tmp_path):
    from rnnzoo.export import export_model, quantized_weights

    model = sequences_with_projection()  # every weight far below 1024 elements
    saved_model = to_saved_model(model, str(tmp_path / "saved_model"))
    with pytest.warns(UserWarning, match=r"`to_tflite\(quantization='dynamic_range'\)` changed nothing"):
        path = to_tflite(saved_model, str(tmp_path / "dr.tflite"), quantization="dynamic_range")
    assert quantized_weights(path) == 0
    entries = export_model(model, input_batches(padded=False)[1:3], ["tflite-dynamic-range", "tflite-fp16"],
                           out=str(tmp_path / "exports"))
    unchanged, half = entries
    # On either backend the `.tflite` holds TensorFlow's loop (on JAX `export_model` converts the model on the
    # TensorFlow backend), not jax2tf's `lax.scan`, whose per-step buffer write LiteRT copies at every step.
    for entry in entries:
        assert "UNPACK" in entry["tflite_ops"] and "DYNAMIC_UPDATE_SLICE" not in entry["tflite_ops"], entry["tflite_ops"]
    assert unchanged["quantization"]["quantized_weights"] == 0
    assert unchanged["quantization"]["note"].startswith("changed nothing"), unchanged["quantization"]
    assert unchanged["parity"]["max_abs_error"] <= TOLERANCE  # unchanged weights: float32 parity
    # TFLite's float16 stores even small weights in 16 bits, and the numbers move.
    assert half["quantization"]["quantized_weights"] > 0 and half["parity"]["max_abs_error"] > 0


def test_converters_reject_unknown_quantization_alike(tmp_path):
    from rnnzoo.export import to_onnx

    for name, convert in (("to_tflite", to_tflite), ("to_onnx", to_onnx)):
        with pytest.raises(ValueError, match=rf"`{name}\(quantization=\.\.\.\)` must be one of .* "
                                             r"Received: quantization='int4'"):
            convert(str(tmp_path), str(tmp_path / "model.out"), quantization="int4")


@pytest.mark.slow
def test_export_model_writes_onnx_with_parity_in_the_manifest(tmp_path):
    import json

    from rnnzoo.export import export_model

    model = stack_with_go_backwards()
    entries = export_model(model, input_batches(padded=False)[1:], ["onnx"], out=str(tmp_path))
    (entry,) = entries
    assert entry["format"] == "onnx" and entry["path"] == "1.onnx" and "Loop" in entry["onnx_ops"]
    assert entry["parity"]["passed"] and entry["parity"]["max_abs_error"] <= TOLERANCE, entry["report"]
    manifest = json.loads((tmp_path / model.name / "manifest.json").read_text())
    assert manifest[0]["backend"] == keras.backend.backend() and manifest[0]["quantization"] is None


def test_to_saved_model_needs_a_signature_for_a_subclassed_model(tmp_path):
    from rnnzoo.models import Seq2Seq

    model = Seq2Seq("ab", "ab", embedding_dim=4, hidden_dim=4)
    with pytest.raises(ValueError, match=r"not a functional model\. Pass `input_signature=.*export_translator"):
        to_saved_model(model, str(tmp_path / "m"))


def test_polymorphic_shapes_must_have_the_structure_of_the_inputs(tmp_path):
    with pytest.raises(ValueError, match=r"`to_saved_model\(polymorphic_shapes=\.\.\.\)` must have the structure"):
        to_saved_model(sequences_with_projection(), str(tmp_path / "m"),
                       polymorphic_shapes=[{"x": "(batch, time, 3)"}])


@pytest.mark.jax
def test_to_onnx_refuses_a_jax_saved_model_and_names_the_way(tmp_path):
    from rnnzoo.export import to_onnx

    saved_model = to_saved_model(sequences_with_projection(), str(tmp_path / "saved_model"))
    with pytest.raises(ValueError, match=r"written from the JAX backend.*`to_onnx\(model, path\)`"):
        to_onnx(saved_model, str(tmp_path / "m.onnx"))


@pytest.mark.jax
def test_jax_export_slices_without_gather_and_top_k_without_composite():
    import jax
    import jax.numpy as jnp
    from jax import export as jax_export

    from rnnzoo.export.saved_model import _convertible_jax

    b, t = jax_export.symbolic_shape("b, t")
    sliced = [np.s_[:, :-1], np.s_[..., -1], np.s_[:, None, :, 2:], np.s_[0], np.s_[1:, ..., :2], np.s_[:, :, 1:3]]
    # Left to JAX: bounds that do not hold for every length (1:3 of a symbolic axis), steps.
    left = [np.s_[:, 1:3], np.s_[:, -2:, 1], np.s_[:, ::2]]
    x = np.random.default_rng(0).normal(size=(3, 5, 4)).astype("float32")
    for index in sliced + left:
        with _convertible_jax():
            exported = jax_export.export(jax.jit(lambda a: a[index]))(jax.ShapeDtypeStruct((b, t, 4), "float32"))
        np.testing.assert_array_equal(np.asarray(exported.call(x)), x[index], err_msg=str(index))
        assert ("stablehlo.dynamic_gather" in exported.mlir_module()) == (index in left), index
    # top_k: the same values and indices, ties to the lowest index, and no composite op.
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, 2.0], [0.5, 0.5, 0.5, 0.5, 0.5]], "float32")
    with _convertible_jax():
        exported = jax_export.export(jax.jit(lambda a: jax.lax.top_k(a, 3)))(
            jax.ShapeDtypeStruct((b, 5), "float32"))
    values, positions = exported.call(scores)
    want_values, want_positions = jax.lax.top_k(jnp.asarray(scores), 3)
    np.testing.assert_array_equal(np.asarray(values), np.asarray(want_values))
    np.testing.assert_array_equal(np.asarray(positions), np.asarray(want_positions))
    assert "stablehlo.composite" not in exported.mlir_module() and "chlo.top_k" not in exported.mlir_module()


@pytest.mark.jax
@pytest.mark.slow
def test_jax_export_of_keras_cell_and_shared_length(tmp_path):
    from rnnzoo.export import matrix
    from rnnzoo.layers import OutputRecurrentRNN, Recurrent

    # Keras's GRUCell owns a uint32 seed state; only the variables a call changes are written back.
    inputs = keras.Input((None, FEATURES))
    model = keras.Model(inputs, Recurrent(keras.layers.GRUCell(4), return_sequences=True)(inputs))
    assert any(v.dtype == "uint32" for v in model.non_trainable_variables)
    # The jax2tf SavedModel still converts, with a warning that its `lax.scan` is quadratic in LiteRT.
    with pytest.warns(UserWarning, match=r"quadratic in the sequence length.*`to_tflite\(model, path\)`"):
        tflite = to_tflite(to_saved_model(model, str(tmp_path / "gru")), str(tmp_path / "gru.tflite"))
    assert "DYNAMIC_UPDATE_SLICE" in tflite_ops(tflite)
    report = parity_report(model, [tflite], input_batches(padded=False), tolerance=TOLERANCE)
    assert report.passed and report.max_abs_error <= TOLERANCE, str(report)

    # Two inputs of one length: each its own symbol fails; the shared symbol declared once exports.
    x = keras.Input((None, FEATURES), name="x")
    labels = keras.Input((None,), dtype="int32", name="labels")
    model = keras.Model({"x": x, "labels": labels}, OutputRecurrentRNN(4, 3)(x, labels=labels))
    with pytest.raises(Exception, match="(?i)shape|dimension"):
        to_saved_model(model, str(tmp_path / "independent"))
    path = to_saved_model(model, str(tmp_path / "shared"), polymorphic_shapes=matrix.SHARED_TIME)
    batches = [{"x": x, "labels": np.zeros(x.shape[:2], "int32")} for x in input_batches(padded=False)]
    report = parity_report(model, [path], batches, tolerance=TOLERANCE)
    assert report.passed, str(report)


def test_a_sequential_model_built_from_an_input_exports_without_a_signature(tmp_path):
    # Keras's `Sequential` has `inputs` but no `input` until it is called: the default signature
    # comes from `inputs` (batch and time dynamic), as for a functional model.
    model = keras.Sequential([keras.Input((None, 3)), VanillaRNN(4, return_sequences=True)])
    saved_model = to_saved_model(model, str(tmp_path / "sequential"))
    for batch, time in [(1, 1), (3, 7)]:
        x = np.random.default_rng(batch).normal(size=(batch, time, 3)).astype("float32")
        np.testing.assert_allclose(run_artifact(saved_model, x), np.asarray(model(x)), atol=1e-5)
