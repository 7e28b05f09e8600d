"""Inference time per step of rnnzoo's exported loop against `keras.layers.SimpleRNN`, CPU.

The model is `Input(None, 16) -> recurrent layer (64 units, return_sequences) -> Dense(16)`;
rnnzoo's is `VanillaRNN`, Keras's is `SimpleRNN` with the same weights. For batch 1 and 8 and
T = 250, 1000, 4000, 16000 the script times, in one process and interleaved (the fastest of a
few calls, after a warm-up call):

- `predict`: `model.predict_on_batch` on the TensorFlow backend, both models;
- `saved_model`: the `serving_default` signature of each model's SavedModel, reloaded (and of
  rnnzoo's SavedModel written from JAX by jax2tf);
- `litert`: rnnzoo's TFLite model (exported from TF, and from JAX by a child process run with
  `KERAS_BACKEND=jax`: `to_tflite(model)`, which converts on the TensorFlow backend, and the
  conversion of the jax2tf SavedModel, `lax.scan`; batch and time dynamic, builtin ops only) in
  `ai_edge_litert`, and
  Keras's `SimpleRNN` converted with `unroll=True` at a fixed T (the only way it converts to
  builtins with `batch_size=1`), at that T only;
- `floor`: the arithmetic of one step, `D*H + H*H + H*O` multiply-adds per example, at the rate
  LiteRT's FULLY_CONNECTED reaches on one large product on this machine.

It prints ms per step (time / T) and the ratios the goals of issue 16 are stated in:
flatness (ms per step at T / ms per step at T = 250, per path), rnnzoo / SimpleRNN, and
LiteRT / floor. Results are recorded in bench/RESULTS.md.

Run (about 5 minutes on 2 cores):

    python bench/inference.py            # TensorFlow backend; spawns the JAX export itself
    python bench/inference.py --quick    # T = 250, 1000 only; fewer repeats
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if __name__ == "__main__" and "--export-jax" not in sys.argv:
    os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

FEATURES, UNITS, OUTPUTS = 16, 64, 16
MACS_PER_STEP = FEATURES * UNITS + UNITS * UNITS + UNITS * OUTPUTS  # per example
UNROLLED_T = 250


def build(kind, unroll=False, batch_size=None, time_steps=None):
    import keras

    import rnnzoo

    keras.utils.set_random_seed(0)
    inputs = keras.Input((time_steps, FEATURES), batch_size=batch_size)
    if kind == "rnnzoo":
        h = rnnzoo.layers.VanillaRNN(UNITS, return_sequences=True)(inputs)
    else:
        h = keras.layers.SimpleRNN(UNITS, return_sequences=True, unroll=unroll)(inputs)
    return keras.Model(inputs, keras.layers.Dense(OUTPUTS)(h))


def export_rnnzoo(weights_path, directory):
    """Exports rnnzoo's model (weights from `weights_path`) to a SavedModel and a TFLite file.

    On JAX also the TFLite file converted from the jax2tf SavedModel (`lax.scan`), the path
    `to_tflite(model)` took before it converted JAX models on the TensorFlow backend.
    """
    import warnings

    import keras

    from rnnzoo.export import converters

    model = build("rnnzoo")
    model.load_weights(weights_path)
    saved = converters.to_saved_model(model, os.path.join(directory, "saved_model"))
    tflite = converters.to_tflite(model, os.path.join(directory, "model.tflite"))
    out = {"saved_model": saved, "tflite": tflite, "ops": converters.tflite_ops(tflite)}
    if keras.backend.backend() == "jax":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the warning that this one is quadratic in T
            jax2tf = converters.to_tflite(saved, os.path.join(directory, "jax2tf.tflite"))
        out.update(jax2tf_tflite=jax2tf, jax2tf_ops=converters.tflite_ops(jax2tf))
    return out


class LiteRT:
    """A TFLite model resized to each input shape it is called with."""

    def __init__(self, path):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path)
        self.shape = None

    def __call__(self, x):
        it = self.interpreter
        index = it.get_input_details()[0]["index"]
        if self.shape != x.shape:
            it.resize_tensor_input(index, x.shape)
            it.allocate_tensors()
            self.shape = x.shape
        it.set_tensor(index, x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])


def best_seconds(fn, x, repeats, budget):
    """The fastest of `repeats` calls (after a warm-up call), stopping early past `budget` s.

    The minimum, not the median: on a machine shared with other jobs, the other jobs only ever
    add time, so the fastest call is the one closest to the code's own cost.
    """
    fn(x)  # warm-up (tracing, allocation)
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget and len(times) >= 2:
            break
    return min(times)


def litert_rate():
    """Multiply-adds per second of LiteRT's FULLY_CONNECTED on a (4096, 64) x (64, 64) product."""
    import tensorflow as tf

    w = np.random.default_rng(0).normal(size=(UNITS, UNITS)).astype("float32")
    f = tf.function(lambda x: tf.matmul(x, w), input_signature=[tf.TensorSpec((4096, UNITS))])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
    path = os.path.join(tempfile.mkdtemp(), "fc.tflite")
    with open(path, "wb") as file:
        file.write(converter.convert())
    run = LiteRT(path)
    x = np.ones((4096, UNITS), "float32")
    seconds = min(best_seconds(run, x, 50, 2.0) for _ in range(3))
    return 4096 * UNITS * UNITS / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="T = 250, 1000 only, fewer repeats")
    parser.add_argument("--lengths", type=int, nargs="*", default=None)
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--no-jax", action="store_true", help="skip the export from the JAX backend")
    parser.add_argument("--export-jax", nargs=2, metavar=("WEIGHTS", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.export_jax:  # child process, KERAS_BACKEND=jax
        print(json.dumps(export_rnnzoo(*args.export_jax)))
        return

    import keras
    import tensorflow as tf

    lengths = args.lengths or ([250, 1000] if args.quick else [250, 1000, 4000, 16000])
    repeats = 3 if args.quick else 5
    directory = tempfile.mkdtemp(prefix="rnnzoo_bench_")
    ours, theirs = build("rnnzoo"), build("simple_rnn")
    theirs.set_weights(ours.get_weights())  # U, W, b -> kernel, recurrent_kernel, bias; Dense
    weights = os.path.join(directory, "rnnzoo.weights.h5")
    ours.save_weights(weights)

    exported_tf = export_rnnzoo(weights, os.path.join(directory, "tf"))
    saved_ours = exported_tf["saved_model"]
    theirs.export(os.path.join(directory, "simple_rnn_saved"), format="tf_saved_model", verbose=False)
    print("rnnzoo TFLite ops (from TF):", exported_tf["ops"])
    paths = {"rnnzoo litert (TF export)": LiteRT(exported_tf["tflite"])}
    saved_jax = None
    if not args.no_jax:
        env = dict(os.environ, KERAS_BACKEND="jax")
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--export-jax", weights, os.path.join(directory, "jax")],
            env=env, capture_output=True, text=True, check=True,
        )
        exported = json.loads(out.stdout.strip().splitlines()[-1])
        print("rnnzoo TFLite ops (from JAX, `to_tflite(model)`):", exported["ops"])
        print("rnnzoo TFLite ops (from JAX's jax2tf SavedModel):", exported["jax2tf_ops"])
        paths["rnnzoo litert (JAX export)"] = LiteRT(exported["tflite"])
        paths["rnnzoo litert (JAX jax2tf SavedModel)"] = LiteRT(exported["jax2tf_tflite"])
        saved_jax = exported["saved_model"]

    # Keras's SimpleRNN converts to builtins only unrolled, with a fixed batch and T.
    unrolled = build("simple_rnn", unroll=True, batch_size=1, time_steps=UNROLLED_T)
    unrolled.set_weights(ours.get_weights())
    # From the Keras model (its variables frozen to constants). `from_concrete_functions` on a
    # `tf.function` of it left the variables as VAR_HANDLE / READ_VARIABLE ops, never assigned in
    # the interpreter: a file that ran extra ops and returned NaN, timed here until 2026-12-04.
    converter = tf.lite.TFLiteConverter.from_keras_model(unrolled)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    unrolled_path = os.path.join(directory, "simple_rnn_unrolled.tflite")
    with open(unrolled_path, "wb") as f:
        f.write(converter.convert())
    unrolled_run = LiteRT(unrolled_path)
    x = np.random.default_rng(1).normal(size=(1, UNROLLED_T, FEATURES)).astype("float32")
    error = float(np.max(np.abs(unrolled_run(x) - ours.predict_on_batch(x))))
    print(f"  max |SimpleRNN litert unrolled - rnnzoo predict| at B=1, T={UNROLLED_T}: {error:.2e}")
    if not error <= 1e-4:  # NaN fails: never time an anchor that computes something else
        raise RuntimeError(f"the unrolled SimpleRNN TFLite model does not compute the model ({error})")

    sig_ours = tf.saved_model.load(saved_ours).signatures["serving_default"]
    sig_theirs = tf.saved_model.load(os.path.join(directory, "simple_rnn_saved")).signatures["serving_default"]

    def signature(fn):
        key = list(fn.structured_input_signature[1])[0]
        return lambda x: list(fn(**{key: tf.constant(x)}).values())[0].numpy()

    runs = {
        "rnnzoo predict": ours.predict_on_batch,
        "SimpleRNN predict": theirs.predict_on_batch,
        "rnnzoo saved_model": signature(sig_ours),
        "SimpleRNN saved_model": signature(sig_theirs),
        **paths,
    }
    if saved_jax is not None:
        sig_jax = tf.saved_model.load(saved_jax).signatures["serving_default"]
        runs["rnnzoo saved_model (JAX export)"] = signature(sig_jax)
    rate = litert_rate()
    print(f"LiteRT FULLY_CONNECTED rate: {rate / 1e9:.2f} GMAC/s; floor per step = {MACS_PER_STEP} MACs x batch")

    table = {}  # (name, batch, T) -> ms per step
    rng = np.random.default_rng(0)
    for batch in args.batches:
        for T in lengths:
            x = rng.normal(size=(batch, T, FEATURES)).astype("float32")
            budget = 20.0 if T >= 16000 else 8.0
            for name, fn in runs.items():
                table[(name, batch, T)] = 1000 * best_seconds(fn, x, repeats, budget) / T
            if T == UNROLLED_T and batch == 1:
                reference = ours.predict_on_batch(x)
                for name in list(paths) + (["rnnzoo saved_model (JAX export)"] if saved_jax else []):
                    error = float(np.max(np.abs(runs[name](x) - reference)))
                    print(f"  max |{name} - predict| at B=1, T={T}: {error:.2e}")
                table[("SimpleRNN litert unrolled", batch, T)] = 1000 * best_seconds(unrolled_run, x, repeats, budget) / T
            print(f"B={batch} T={T}: " + ", ".join(
                f"{name} {table[(name, batch, T)]:.4f}" for name in list(runs) + ["SimpleRNN litert unrolled"]
                if (name, batch, T) in table), flush=True)

    print("\nms per step; flat = ms per step at T / at T=%d (goal: <= 1.2 at T = 4000)" % lengths[0])
    names = list(runs) + ["SimpleRNN litert unrolled"]
    for batch in args.batches:
        print(f"\nbatch {batch}")
        print("| path | " + " | ".join(f"T={T}" for T in lengths) + " | "
              + " | ".join(f"flat {T}" for T in lengths[1:]) + " |")
        print("|---|" + "---|" * (2 * len(lengths) - 1))
        for name in names:
            cells = [table.get((name, batch, T)) for T in lengths]
            flats = [c / cells[0] if cells[0] and c else None for c in cells[1:]]
            print(f"| {name} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells) + " | "
                  + " | ".join("-" if f is None else f"{f:.2f}" for f in flats) + " |")
        for pair in [("rnnzoo predict", "SimpleRNN predict"), ("rnnzoo saved_model", "SimpleRNN saved_model")]:
            print(f"| ratio {pair[0]} / {pair[1]} | " + " | ".join(
                f"{table[(pair[0], batch, T)] / table[(pair[1], batch, T)]:.2f}" for T in lengths) + " |")
        floor = 1000 * MACS_PER_STEP * batch / rate
        for name in paths:
            print(f"| ratio {name} / floor ({floor:.5f} ms) | " + " | ".join(
                f"{table[(name, batch, T)] / floor:.1f}" for T in lengths) + " |")
        if ("SimpleRNN litert unrolled", batch, UNROLLED_T) in table:
            for name in paths:
                print(f"ratio {name} / SimpleRNN litert unrolled at T={UNROLLED_T}: "
                      f"{table[(name, batch, UNROLLED_T)] / table[('SimpleRNN litert unrolled', batch, UNROLLED_T)]:.2f}")
    print(f"\n{platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"tensorflow {tf.__version__}, keras {keras.__version__}")


if __name__ == "__main__":
    main()
