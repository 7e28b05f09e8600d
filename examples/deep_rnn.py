"""Deep RNNs (section 10.5, fig. 10.13): a deep transition with and without its skip connection,
and a residual stack; export and parity.

    python examples/deep_rnn.py                      # about 1 minute on 2 CPU cores
    KERAS_BACKEND=jax python examples/deep_rnn.py    # faster

The task (`rnnzoo.data.tasks.delayed_recall`): random bits, and the label at step t is the bit
seen 8 steps earlier. Three models of 16 units each are trained for the same number of epochs
with the same seed:

    (b) deep transition, depth 4:  h(t) = MLP_4(h(t-1), x(t))              -- 4 tanh layers per step
    (c) the same with the skip:    last layer also gets h(t-1) S            -- 1 tanh layer per step
    (a) a residual stack of 2 layers of the skip cell (`DeepRNN(..., residual=True)`)

Expected result (seed 0, 6 epochs; accuracy on steps t >= 8, chance 0.5):

    (b) plain deep transition     held-out accuracy ~0.49   (stays at chance; also after 30 epochs)
    (c) deep transition + skip    held-out accuracy 1.000   (at least 0.99)
    (a) residual stack of (c)     held-out accuracy 1.000

then the exports of (c)

    exports/deep_rnn_tagger/<version>/          SavedModel (batch and time dynamic)
    exports/deep_rnn_tagger/<version>.tflite    TFLite, builtin ops only

and a parity table: the SavedModel (reloaded in a fresh process) and the LiteRT interpreter
against Keras at (batch, time) = (1, 1), (1, 7), (3, 10), (5, 33), each within rnnzoo's bound:
a normwise relative error max |artifact - keras| / max(1, max |keras|) of at most 1e-5 per
example.
Measured on TF: SavedModel exact; TFLite 7.5e-8, 1.9e-7, 5.2e-7 and 2.4e-6. At T=33 the absolute
difference is 1.35e-5, over 1e-5, on logits up to 6.7 -- float32 rounding through 4 tanh layers
x 33 steps, which the next printed line measures against the same model computed exactly in
float64:

    TF:  ... Keras is 8.25e-06 off and TFLite 1.43e-05; every tanh 1 ulp off moves them by 1.49e-05
    JAX: ... Keras is 1.24e-05 off and TFLite 9.31e-06; every tanh 1 ulp off moves them by 2.34e-05

and then the residual stack (a) at the same inputs (relative 1.3e-6, absolute 1.05e-5). On JAX,
TFLite vs Keras: relative 1.3e-6 (absolute 7.5e-6), stack 1.6e-6 (1.28e-5). Each float32
computation is about 1e-5 from the exact logits, so two of them can differ by more than 1e-5;
hence rnnzoo's relative bound (docs/recurrent_family_a.md).

Options: `--epochs`, `--units`, `--depth`, `--delay`, `--out`, `--seed`.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# oneDNN reorders float32 sums, so Keras and the reloaded SavedModel would differ by ~1e-5.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from rnnzoo import export  # noqa: E402
from rnnzoo.cells import DeepTransitionCell  # noqa: E402
from rnnzoo.data import tasks  # noqa: E402
from rnnzoo.layers import DeepRNN, Recurrent  # noqa: E402
from rnnzoo.testing import numpy_deep_transition  # noqa: E402


def tagger(recurrent_layer, name):
    inputs = keras.Input((None, 1), name="x")
    h = recurrent_layer(inputs)  # (batch, time, units)
    return keras.Model(inputs, keras.layers.Dense(2, name="logits")(h), name=name)


def numpy_tagger(model, x, dtype, tanh=np.tanh):
    """The skip tagger (c) stepped by hand in NumPy: logits (batch, time, 2)."""
    kernel, bias = (np.asarray(v, dtype) for v in model.get_layer("logits").weights)
    h = numpy_deep_transition(x, model.get_layer(index=1).cell, dtype=dtype, tanh=tanh)[0]
    return h @ kernel + bias


def rounding_check(model, tflite, x):
    """How large float32 rounding is on this model: Keras and TFLite against the exact (float64)
    logits, and a float32 run against itself with every tanh result one unit in the last place off."""
    exact = numpy_tagger(model, x, np.float64)
    keras_error = np.abs(np.asarray(model.predict(x, verbose=0)) - exact).max()
    tflite_error = np.abs(export.run_artifact(tflite, x) - exact).max()
    rng = np.random.default_rng(0)

    def tanh_one_ulp_off(z):
        return np.nextafter(np.tanh(z), np.where(rng.random(z.shape) < 0.5, np.inf, -np.inf).astype(z.dtype))

    ulp_error = np.abs(numpy_tagger(model, x, np.float32, tanh_one_ulp_off) - numpy_tagger(model, x, np.float32)).max()
    print(f"float32 rounding at {x.shape}: from the exact float64 logits (up to {np.abs(exact).max():.1f}), Keras is "
          f"{keras_error:.2e} off and TFLite {tflite_error:.2e}; every tanh 1 ulp off moves them by {ulp_error:.2e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--units", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--delay", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="exports")
    args = parser.parse_args(argv)

    length = 16
    x_train, y_train = tasks.delayed_recall(1024, length, delay=args.delay, seed=args.seed)
    x_test, y_test = tasks.delayed_recall(256, length, delay=args.delay, seed=args.seed + 1)

    def cell(skip):
        return DeepTransitionCell(args.units, transition_depth=args.depth, skip_connection=skip)

    variants = {
        "(b) plain deep transition": lambda: Recurrent(cell(False), return_sequences=True),
        "(c) deep transition + skip": lambda: Recurrent(cell(True), return_sequences=True),
        "(a) residual stack of (c)": lambda: DeepRNN([cell(True), cell(True)], residual=True, return_sequences=True),
    }
    accuracies, models = {}, {}
    for label, make in variants.items():
        keras.utils.set_random_seed(args.seed)
        model = models[label] = tagger(make(), "deep_rnn_tagger")
        model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        start = time.perf_counter()
        model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, verbose=0)
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        accuracies[label] = float(np.mean(predictions[:, args.delay :] == y_test[:, args.delay :]))
        print(f"{label:<28} {model.count_params():>6,} weights  held-out accuracy {accuracies[label]:.3f} "
              f"(chance 0.5; trained in {time.perf_counter() - start:.1f}s)")

    # The exported model is (c). (The trained residual stack also exports to builtins.)
    model = models["(c) deep transition + skip"]
    rng = np.random.default_rng(args.seed)
    inputs = [rng.integers(0, 2, size=(b, t, 1)).astype("float32") for b, t in [(1, 1), (1, 7), (3, 10), (5, 33)]]
    entries = export.export_model(model, inputs, out=args.out, fresh_process=True)
    for entry in entries:
        print(f"exported {os.path.join(args.out, model.name, entry['path'])} ({entry['bytes']:,} bytes)")
        print(entry["report"])
    print(f"TFLite ops: {', '.join(entries[1]['tflite_ops'])}")
    rounding_check(model, os.path.join(args.out, model.name, entries[1]["path"]), inputs[-1])

    stack = models["(a) residual stack of (c)"]  # exports to builtins as well (not kept)
    with tempfile.TemporaryDirectory() as tmp:
        tflite = export.to_tflite(stack, os.path.join(tmp, "stack.tflite"))
        stack_parity = export.parity_report(stack, [tflite], inputs)
    print(f"(a) residual stack, TFLite at the same inputs: relative error {stack_parity.max_relative_error:.2e}, "
          f"max |diff| {stack_parity.max_abs_error:.2e} ({'PASS' if stack_parity.passed else 'FAIL'})")
    ok = all(e["parity"]["passed"] for e in entries) and stack_parity.passed and accuracies["(c) deep transition + skip"] >= 0.99 and accuracies["(a) residual stack of (c)"] >= 0.99
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
