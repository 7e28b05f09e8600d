"""Sequence to one (fig. 10.5): `sequence_classifier` and `sequence_regressor`."""

import os

import keras
import numpy as np
import pytest

from rnnzoo.data import tasks
from rnnzoo.export import parity_report, tflite_ops, to_saved_model, to_tflite
from rnnzoo.models import sequence_classifier, sequence_regressor


def test_classifier_learns_majority_with_padding():
    x, y = tasks.majority_bit(2000, 9, min_length=3, seed=0)
    x_test, y_test = tasks.majority_bit(500, 9, min_length=3, seed=1)
    model = sequence_classifier(num_classes=2, features=1, units=16, mask_value=-1.0)
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy >= 0.95, accuracy  # chance is 0.5


def test_regressor_learns_adding_problem():
    x, y = tasks.adding_problem(2000, 10, seed=0)
    x_test, y_test = tasks.adding_problem(500, 10, seed=1)
    model = sequence_regressor(features=2, units=16)
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.fit(x, y, batch_size=64, epochs=10, verbose=0)
    mse = model.evaluate(x_test, y_test, verbose=0)
    assert mse < 0.05, mse  # predicting the mean gives about 0.167


def test_output_is_read_at_each_sequences_last_valid_step():
    model = sequence_classifier(num_classes=3, features=2, units=5, mask_value=-1.0,
                                bias_initializer="random_normal")
    rng = np.random.default_rng(0)
    short, long = rng.normal(size=(1, 4, 2)).astype("float32"), rng.normal(size=(1, 7, 2)).astype("float32")
    batch = np.full((2, 7, 2), -1.0, "float32")
    batch[0, :4], batch[1] = short[0], long[0]
    together = np.asarray(model(batch))
    np.testing.assert_allclose(together[0], np.asarray(model(short))[0], atol=1e-6)
    np.testing.assert_allclose(together[1], np.asarray(model(long))[0], atol=1e-6)
    # Without the mask the padding would change the summary.
    unmasked = sequence_classifier(num_classes=3, features=2, units=5)
    unmasked.set_weights(model.get_weights())
    assert np.max(np.abs(np.asarray(unmasked(batch))[0] - together[0])) > 1e-3


def test_config_round_trip_and_keras_save_load(tmp_path):
    model = sequence_classifier(num_classes=2, features=1, units=4, mask_value=-1.0)
    clone = keras.Model.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    x, _ = tasks.majority_bit(3, 5, min_length=3, seed=2)
    path = str(tmp_path / "model.keras")
    model.save(path)
    np.testing.assert_array_equal(np.asarray(keras.saving.load_model(path)(x)), np.asarray(model(x)))


@pytest.mark.slow
def test_export_saved_model_and_tflite_builtins_parity(tmp_path):
    model = sequence_classifier(num_classes=2, features=1, units=6, mask_value=-1.0,
                                bias_initializer="random_normal")
    saved_model = to_saved_model(model, str(tmp_path / "saved_model"))
    tflite = to_tflite(saved_model, str(tmp_path / "model.tflite"))
    names = tflite_ops(tflite)
    assert "WHILE" in names and not [n for n in names if n.startswith("CUSTOM")], names
    batches = [tasks.majority_bit(b, t, min_length=1, seed=b)[0] for b, t in [(1, 1), (1, 7), (3, 9), (5, 21)]]
    report = parity_report(model, [tflite, saved_model], batches, tolerance=1e-5)
    assert report.passed and report.max_abs_error <= 1e-5, str(report)
    assert os.path.getsize(tflite) > 0


@pytest.mark.parametrize(
    "builder, kwargs, message",
    [
        (sequence_classifier, {"num_classes": 0, "features": 1}, r"`sequence_classifier\(num_classes=\.\.\.\)` .* Received: num_classes=0"),
        (sequence_classifier, {"num_classes": 2, "features": 1, "return_sequences": True},
         r"sets `return_sequences` itself.* Received: return_sequences=True"),
        (sequence_regressor, {"features": 2, "num_outputs": -1}, r"Received: num_outputs=-1"),
    ],
    ids=["num_classes", "return_sequences", "num_outputs"],
)
def test_bad_configurations_raise(builder, kwargs, message):
    with pytest.raises(ValueError, match=message):
        builder(**kwargs)


def test_majority_bit_rejects_even_length():
    with pytest.raises(ValueError, match=r"must be odd .* Received: length=4"):
        tasks.majority_bit(2, 4)
