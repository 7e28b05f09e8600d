"""`rnnzoo.losses.SparseCategoricalCrossentropy`: Keras's numbers, and a clear error for a label out of range.

Keras's own loss, given a label of 7 for 2 classes, trains on a loss of 0 on JAX (an all-zero
one-hot row) and fails deep in a TF kernel on TensorFlow; this one refuses it on both, in
`fit` (compiled) and eagerly, and naming the label and the number of classes.
"""

import keras
import numpy as np
import pytest

from rnnzoo import losses
from rnnzoo.layers import VanillaRNN


def tagger():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 3))
    return keras.Model(inputs, VanillaRNN(4, output_units=2, return_sequences=True)(inputs))


def test_same_numbers_as_keras_with_and_without_ignore_class():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 4)).astype("float32")
    labels = rng.integers(0, 4, size=(3, 5))
    labels[0, :2] = -1
    for kwargs in ({"from_logits": True, "ignore_class": -1}, {"from_logits": True}):
        y = labels if "ignore_class" in kwargs else np.abs(labels)
        ours = losses.SparseCategoricalCrossentropy(**kwargs)(y, logits)
        theirs = keras.losses.SparseCategoricalCrossentropy(**kwargs)(y, logits)
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-6)


def test_eager_call_refuses_a_label_out_of_range():
    logits = np.zeros((2, 3), "float32")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\).*Received: a label of 3"):
        losses.SparseCategoricalCrossentropy(from_logits=True)(np.array([0, 3]), logits)
    with pytest.raises(ValueError, match=r"Received: a label of -2"):
        losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)(np.array([-1, -2]), logits)


@pytest.mark.parametrize("label", [7, -3])
def test_fit_refuses_a_label_out_of_range(label):
    model = tagger()
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.zeros((4, 5, 3), "float32"), np.zeros((4, 5), "int32")
    y[2, 3] = label
    with pytest.raises(Exception, match=r"labels must be in \[0, 2\)") as caught:
        model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert str(label) in str(caught.value)
    # Labels in range train. (A new model: after an error inside `fit`, Keras's JAX trainer
    # leaves the model's variables detached, with Keras's own loss too.)
    y[2, 3] = 1
    model = tagger()
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and history.history["loss"][0] > 0


def test_serializes_with_the_model(tmp_path):
    model = tagger()
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.loss, losses.SparseCategoricalCrossentropy)
