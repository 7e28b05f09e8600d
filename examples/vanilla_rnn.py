"""Train the book's vanilla RNN (explicit BPTT) on a memory task, export it, check parity.

    python examples/vanilla_rnn.py            # about 1 minute on 2 CPU cores

The task (`rnnzoo.data.tasks.delayed_recall`): a stream of random bits, and at every step the
label is the bit seen 4 steps earlier, so the network must remember its last 4 inputs. Chance
is 50%. Expected result: held-out per-step accuracy 1.000 (at least 0.99) after 8 epochs, then

    exports/vanilla_tagger/<version>/          SavedModel (batch and time dynamic)
    exports/vanilla_tagger/<version>.tflite    TFLite, builtin ops only

and a parity table: the SavedModel (reloaded in a fresh process) and the LiteRT interpreter
against Keras at (batch, time) = (1, 1), (1, 7), (3, 10), (5, 33), all within 1e-5.

Options: `--epochs`, `--units`, `--delay`, `--out`, `--seed`, `--gradient bptt|autodiff`.
"""

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import rnnzoo  # noqa: E402
from rnnzoo import export  # noqa: E402
from rnnzoo.data import tasks  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--delay", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gradient", choices=["bptt", "autodiff"], default="bptt")
    parser.add_argument("--out", default="exports")
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(args.seed)
    x_train, y_train = tasks.delayed_recall(4000, 24, delay=args.delay, seed=args.seed)
    x_test, y_test = tasks.delayed_recall(1000, 24, delay=args.delay, seed=args.seed + 1)
    model = rnnzoo.models.vanilla_tagger(num_classes=2, features=1, units=args.units, gradient=args.gradient)
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"trained in {time.perf_counter() - start:.1f}s; held-out per-step accuracy {accuracy:.3f} (chance 0.5)")

    rng = np.random.default_rng(args.seed)
    inputs = [rng.integers(0, 2, size=(b, t, 1)).astype("float32") for b, t in [(1, 1), (1, 7), (3, 10), (5, 33)]]
    saved_model, tflite = export.export_model(model, inputs, out=args.out, fresh_process=True)
    for entry in (saved_model, tflite):
        print(f"exported {os.path.join(args.out, model.name, entry['path'])} ({entry['bytes']:,} bytes)")
        print(entry["report"])
    print(f"TFLite ops: {', '.join(tflite['tflite_ops'])}")
    passed = saved_model["parity"]["passed"] and tflite["parity"]["passed"]
    return 0 if passed and accuracy >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
