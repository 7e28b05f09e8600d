"""A bidirectional RNN (section 10.3, fig. 10.11) on a task that needs the future; export and parity.

    python examples/bidirectional.py                      # about 1-2 minutes on 2 CPU cores
    KERAS_BACKEND=jax python examples/bidirectional.py

The task (`rnnzoo.data.tasks.future_recall`): a stream of random bits (fed as -1/+1, so that
0.0 can mark padding), and the label at step t is the bit that comes 3 steps *later*. A model
that reads left to right can only guess (50%); `Bidirectional(VanillaRNN(16))` reads the
sequence both ways. Expected result (seed 0):

    bidirectional  (16 + 16 units, ... weights): held-out accuracy 1.000  (at least 0.99)
    unidirectional (32 units, ... weights):      held-out accuracy ~0.50  (chance)

then a check that a right-padded sequence gives, at its valid steps, the outputs of the same
sequence unpadded (max difference ~1e-7), the exports

    exports/bidirectional_tagger/<version>/          SavedModel (batch and time dynamic)
    exports/bidirectional_tagger/<version>.tflite    TFLite, builtin ops only

and a parity table: the SavedModel (reloaded in a fresh process) and the LiteRT interpreter
against Keras on padded batches at (batch, time) = (1, 1), (1, 7), (3, 10), (5, 33), all within 1e-5.

Options: `--epochs`, `--units`, `--advance`, `--out`, `--seed`.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN reorders float32 sums, so Keras and the reloaded SavedModel would differ slightly.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from rnnzoo import export  # noqa: E402
from rnnzoo.data import tasks  # noqa: E402
from rnnzoo.layers import Bidirectional, VanillaRNN  # noqa: E402


def tagger(units, bidirectional, name):
    inputs = keras.Input((None, 1), name="x")
    x = keras.layers.Masking(0.0)(inputs)  # padded steps are all-zero
    if bidirectional:
        h = Bidirectional(VanillaRNN(units, return_sequences=True), name="bidirectional")(x)  # (batch, time, 2 units)
    else:
        h = VanillaRNN(2 * units, return_sequences=True)(x)  # (batch, time, 2 units)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(h), name=name)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--advance", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="exports")
    args = parser.parse_args(argv)

    length = 20
    x_train, y_train = tasks.future_recall(4000, length, advance=args.advance, seed=args.seed)
    x_test, y_test = tasks.future_recall(1000, length, advance=args.advance, seed=args.seed + 1)
    x_train, x_test = 2 * x_train - 1, 2 * x_test - 1  # bits as -1/+1; 0.0 is padding
    scored = slice(0, length - args.advance)  # steps that have a future bit to recall

    models = {}
    for bidirectional in (True, False):
        keras.utils.set_random_seed(args.seed)
        model = tagger(args.units, bidirectional, "bidirectional_tagger" if bidirectional else "unidirectional_tagger")
        model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=0)
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        accuracy = float(np.mean(predictions[:, scored] == y_test[:, scored]))
        label = "bidirectional " if bidirectional else "unidirectional"
        width = f"{args.units} + {args.units}" if bidirectional else f"{2 * args.units}"
        print(f"{label} ({width} units, {model.count_params():,} weights): held-out accuracy {accuracy:.3f} "
              f"(chance 0.5; trained in {time.perf_counter() - start:.1f}s)")
        models[bidirectional] = (model, accuracy)
    model, accuracy = models[True]

    # Padding: the backward direction must start at each sequence's own last valid step.
    padded = x_test[:4].copy()
    valid = [20, 13, 7, 1]
    for row, n in enumerate(valid):
        padded[row, n:] = 0.0
    outputs = np.asarray(model.predict(padded, verbose=0))
    difference = max(
        float(np.max(np.abs(outputs[row, :n] - model.predict(padded[row : row + 1, :n], verbose=0)[0])))
        for row, n in enumerate(valid)
    )
    print(f"padded vs unpadded sequences, max difference at valid steps: {difference:.1e}")

    rng = np.random.default_rng(args.seed)
    inputs = []
    for b, t in [(1, 1), (1, 7), (3, 10), (5, 33)]:
        x = 2 * rng.integers(0, 2, size=(b, t, 1)).astype("float32") - 1
        x[1:, t // 2 :] = 0.0  # right-pad every row but the first
        inputs.append(x)
    entries = export.export_model(model, inputs, out=args.out, fresh_process=True)
    for entry in entries:
        print(f"exported {os.path.join(args.out, model.name, entry['path'])} ({entry['bytes']:,} bytes)")
        print(entry["report"])
    print(f"TFLite ops: {', '.join(entries[1]['tflite_ops'])}")
    ok = all(e["parity"]["passed"] for e in entries) and accuracy >= 0.99 and models[False][1] <= 0.6 and difference <= 1e-5
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
