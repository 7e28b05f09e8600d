"""Modelling the length of generated sequences (10.2.3): EOS symbol, Bernoulli stop unit, P(tau) first."""

import keras
import numpy as np
import pytest

from rnnzoo.data import tasks
from rnnzoo.export import run_artifact, tflite_ops, to_saved_model, to_tflite
from rnnzoo.models import length_models as L

V, MIN_LENGTH, MAX_LENGTH = 4, 2, 8  # lengths uniform in [2, 8]: mean 5
CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def train(kind, tokens, lengths, epochs=5):
    keras.utils.set_random_seed(0)
    if kind == "eos":
        model = L.eos_generator(V, MAX_LENGTH, 32)
        labels, weights = L.eos_training_data(tokens, lengths)
        model.compile(keras.optimizers.Adam(0.02), CE)
        model.fit({"labels": labels}, labels, sample_weight=weights, batch_size=64, epochs=epochs, verbose=0)
        return model, L.eos_generation_model(model)
    if kind == "stop_unit":
        model = L.stop_unit_generator(V, MAX_LENGTH, 32)
        labels, targets, weights = L.stop_unit_training_data(tokens, lengths)
        model.compile(keras.optimizers.Adam(0.02),
                      {"logits": CE, "stop_logits": keras.losses.BinaryCrossentropy(from_logits=True)})
        model.fit({"labels": labels}, targets, sample_weight=weights, batch_size=64, epochs=epochs, verbose=0)
        return model, L.stop_unit_generation_model(model)
    model = L.length_prior_generator(V, MAX_LENGTH, 32)
    inputs, targets, weights = L.length_prior_training_data(tokens, lengths)
    model.compile(keras.optimizers.Adam(0.02), {"logits": CE, "length_logits": CE})
    model.fit(inputs, targets, sample_weight=weights, batch_size=64, epochs=epochs, verbose=0)
    return model, L.length_prior_generation_model(model)


def noise_inputs(kind, n, seed):
    rng = np.random.default_rng(seed)
    u = lambda *shape: rng.uniform(size=shape).astype("float32")  # noqa: E731
    if kind == "eos":
        return u(n, MAX_LENGTH + 1, V + 1)
    if kind == "stop_unit":
        return {"noise": u(n, MAX_LENGTH, V), "stop_noise": u(n, MAX_LENGTH)}
    return {"length_noise": u(n, MAX_LENGTH), "noise": u(n, MAX_LENGTH, V)}


KINDS = ["eos", "stop_unit", "length_prior"]


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_generated_lengths_match_the_training_distribution(kind):
    tokens, lengths = tasks.variable_length_sequences(1500, V, MIN_LENGTH, MAX_LENGTH, seed=0)
    _, generate = train(kind, tokens, lengths)
    out = generate.predict(noise_inputs(kind, 1000, seed=1), verbose=0)
    generated = out["lengths"]
    assert abs(generated.mean() - 5.0) <= 0.5, generated.mean()  # mean within 10%
    counts = np.bincount(generated, minlength=MAX_LENGTH + 2)
    assert np.all(counts[MIN_LENGTH:MAX_LENGTH + 1] >= 50), counts  # covers the range (each ~143 expected)
    outside = counts.sum() - counts[MIN_LENGTH:MAX_LENGTH + 1].sum()
    assert outside <= 30, counts  # at most 3% outside [2, 8]
    # The done mask: tokens are real ids up to the length and 0 after it.
    np.testing.assert_array_equal((out["tokens"] > 0).sum(axis=1), generated)
    assert np.all(out["tokens"][np.arange(out["tokens"].shape[1])[None, :] < generated[:, None]] > 0)


@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_config_round_trip_and_keras_save_load(kind, tmp_path):
    tokens, lengths = tasks.variable_length_sequences(8, V, MIN_LENGTH, MAX_LENGTH, seed=0)
    model, generate = train(kind, tokens, lengths, epochs=1)
    assert keras.Model.from_config(model.get_config()).get_config() == model.get_config()
    path = str(tmp_path / "generate.keras")
    generate.save(path)
    noise = noise_inputs(kind, 3, seed=2)
    loaded, expected = keras.saving.load_model(path)(noise), generate(noise)
    for key in ("tokens", "lengths"):
        np.testing.assert_array_equal(np.asarray(loaded[key]), np.asarray(expected[key]))


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS, ids=KINDS)
def test_sampling_loop_exports_to_tflite_builtins_with_parity(kind, tmp_path):
    builders = {"eos": (L.eos_generator, L.eos_generation_model),
                "stop_unit": (L.stop_unit_generator, L.stop_unit_generation_model),
                "length_prior": (L.length_prior_generator, L.length_prior_generation_model)}
    build, generation = builders[kind]
    generate = generation(build(V, MAX_LENGTH, 6, bias_initializer="random_normal"))
    saved_model = to_saved_model(generate, str(tmp_path / "saved_model"))
    tflite = to_tflite(saved_model, str(tmp_path / "model.tflite"))
    names = tflite_ops(tflite)
    assert "WHILE" in names and not [n for n in names if n.startswith("CUSTOM")], names
    for n in (1, 7):
        noise = noise_inputs(kind, n, seed=n)
        expected = {k: np.asarray(v) for k, v in generate(noise).items()}
        for path in (tflite, saved_model):
            lengths, tokens = run_artifact(path, noise)  # dict outputs come in key order, as keras.tree orders them
            np.testing.assert_array_equal(tokens, expected["tokens"])
            np.testing.assert_array_equal(lengths, expected["lengths"])


def test_bad_configurations_raise():
    with pytest.raises(ValueError, match=r"`eos_generator\(max_length=\.\.\.\)`.* Received: max_length=0"):
        L.eos_generator(4, 0)
    with pytest.raises(ValueError, match=r"`stop_unit_generator\(vocabulary_size=\.\.\.\)`.* Received: vocabulary_size=-1"):
        L.stop_unit_generator(-1, 5)
    with pytest.raises(ValueError, match=r"`length_prior_generation_model` needs .* Received: model="):
        L.length_prior_generation_model(keras.Sequential([keras.layers.Dense(1)]))
    with pytest.raises(ValueError, match=r"Received: min_length=9"):
        tasks.variable_length_sequences(2, 4, min_length=9, max_length=8)
