"""Context-conditioned generation (10.2.4): a vector x at every step and/or as h(0) (fig. 10.9)."""

import keras
import numpy as np
import pytest

from rnnzoo.data import tasks
from rnnzoo.export import parity_report, tflite_ops, to_saved_model, to_tflite
from rnnzoo.models import conditional_generation_model, conditional_generator

VARIANTS = {"input": (True, False), "initial_state": (False, True), "both": (True, True)}


@pytest.mark.parametrize("variant", ["input", "initial_state"], ids=["context_as_input", "context_as_initial_state"])
def test_generator_learns_arithmetic_sequences(variant):
    context_as_input, context_as_initial_state = VARIANTS[variant]
    x, y = tasks.arithmetic_sequences(1000, 8, seed=0)
    x_test, y_test = tasks.arithmetic_sequences(200, 8, seed=1)
    model = conditional_generator(7, 9, 32, context_as_input=context_as_input,
                                  context_as_initial_state=context_as_initial_state)
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit({"context": x, "labels": y}, y, batch_size=32, epochs=8, verbose=0)
    tokens = conditional_generation_model(model, max_length=8).predict(x_test, verbose=0)["tokens"]
    # Closed-loop greedy generation reproduces whole unseen sequences (chance per token: 1/7).
    assert np.mean((tokens == y_test).all(axis=1)) >= 0.95


def test_context_feeds_where_configured():
    context = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    labels = np.zeros((2, 4), "int32")
    for variant, (as_input, as_state) in VARIANTS.items():
        model = conditional_generator(5, 3, 6, context_as_input=as_input, context_as_initial_state=as_state)
        names = {w.path.split("/")[0] for w in model.trainable_weights}
        assert ("initial_state" in names) == as_state, (variant, names)
        # The output depends on the context in every variant.
        a = np.asarray(model({"context": context, "labels": labels}))
        b = np.asarray(model({"context": context + 1.0, "labels": labels}))
        assert np.max(np.abs(a - b)) > 1e-4, variant


def test_generation_equals_teacher_forcing_on_its_own_output():
    """Greedy generation fed back its own tokens = the teacher-forced model given those tokens."""
    model = conditional_generator(5, 3, 8, context_as_initial_state=True, bias_initializer="random_normal")
    context = np.random.default_rng(1).normal(size=(4, 3)).astype("float32")
    out = conditional_generation_model(model, 6)(context)
    forced = model({"context": context, "labels": np.asarray(out["tokens"])})
    np.testing.assert_allclose(np.asarray(forced), np.asarray(out["logits"]), atol=1e-5)


def test_config_round_trip_and_keras_save_load(tmp_path):
    model = conditional_generator(5, 3, 4, context_as_initial_state=True)
    assert keras.Model.from_config(model.get_config()).get_config() == model.get_config()
    generate = conditional_generation_model(model, 5)
    context = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    for m, inputs in ((model, {"context": context, "labels": np.ones((2, 5), "int32")}), (generate, context)):
        path = str(tmp_path / f"{m.name}.keras")
        m.save(path)
        loaded, expected = keras.saving.load_model(path)(inputs), m(inputs)
        for a, b in zip(keras.tree.flatten(loaded), keras.tree.flatten(expected)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_greedy_generation_exports_to_tflite_builtins_with_parity(tmp_path):
    model = conditional_generator(5, 3, 6, context_as_initial_state=True, bias_initializer="random_normal")
    generate = conditional_generation_model(model, 7)
    saved_model = to_saved_model(generate, str(tmp_path / "saved_model"))
    tflite = to_tflite(saved_model, str(tmp_path / "model.tflite"))
    names = tflite_ops(tflite)
    assert "WHILE" in names and not [n for n in names if n.startswith("CUSTOM")], names
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(b, 3)).astype("float32") for b in (1, 2, 9)]
    report = parity_report(generate, [tflite, saved_model], batches, tolerance=1e-5)
    assert report.passed and report.max_abs_error <= 1e-5, str(report)


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match=r"must feed the context somewhere.* Received: context_as_input=False"):
        conditional_generator(5, 3, context_as_input=False)
    with pytest.raises(TypeError, match=r"Received: context_as_initial_state='yes'"):
        conditional_generator(5, 3, context_as_initial_state="yes")
    with pytest.raises(ValueError, match=r"`conditional_generation_model\(max_length=\.\.\.\)`.* Received: max_length=0"):
        conditional_generation_model(conditional_generator(5, 3), 0)
    with pytest.raises(ValueError, match=r"needs a model built by `conditional_generator`"):
        conditional_generation_model(keras.Sequential([keras.layers.Dense(1)]), 4)
    with pytest.raises(ValueError, match=r"Received: vocabulary_size=1"):
        tasks.arithmetic_sequences(2, 3, vocabulary_size=1)
