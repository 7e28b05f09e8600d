"""Sequence to one (fig. 10.5): read a whole variable-length bit sequence, answer once at the end.

    python examples/sequence_classifier.py        # about 30 s on 2 CPU cores

Task (`rnnzoo.data.tasks.majority_bit`): are there more ones than zeros? Lengths 3..9, padded
with -1 and masked. Expected: held-out accuracy 0.998 (at least 0.95; chance 0.5), then a
SavedModel and a builtins-only TFLite file under exports/sequence_classifier/, and a parity
table within 1e-5 at (batch, time) = (1, 1), (1, 7), (3, 9), (5, 21).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from rnnzoo import export  # noqa: E402
from rnnzoo.data import tasks  # noqa: E402
from rnnzoo.models import sequence_classifier  # noqa: E402


def main(out="exports/sequence_classifier"):
    keras.utils.set_random_seed(0)
    x, y = tasks.majority_bit(2000, 9, min_length=3, seed=0)
    x_test, y_test = tasks.majority_bit(500, 9, min_length=3, seed=1)
    model = sequence_classifier(num_classes=2, features=1, units=16, mask_value=-1.0)
    model.compile(keras.optimizers.Adam(0.02), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=8, verbose=2)
    print(f"held-out accuracy {model.evaluate(x_test, y_test, verbose=0)[1]:.3f} (chance 0.5)")
    saved_model = export.to_saved_model(model, os.path.join(out, "saved_model"))
    tflite = export.to_tflite(model, os.path.join(out, "model.tflite"))  # on JAX: converted on TensorFlow
    print("TFLite ops:", export.tflite_ops(tflite))
    batches = [tasks.majority_bit(b, t, min_length=1, seed=b)[0] for b, t in [(1, 1), (1, 7), (3, 9), (5, 21)]]
    print(export.parity_report(model, [saved_model, tflite], batches))


if __name__ == "__main__":
    main()
