"""Train-step time of `rnnzoo.layers.VanillaRNN` (explicit BPTT) against `keras.layers.SimpleRNN`.

Both models are `Input -> recurrent layer (return_sequences) -> Dense(16) per step`, trained with
sparse softmax cross-entropy and SGD by `model.train_on_batch`, compiled as `model.fit` would
(`jit_compile="auto"`: XLA on JAX and on TF with a GPU, TF graph mode on a CPU). The two
models run in the same process, interleaved, and the script prints the median time of each
and the ratio (VanillaRNN / SimpleRNN; below 1.0 means rnnzoo is faster).

Run (CPU, each backend):

    KERAS_BACKEND=tensorflow python bench/vanilla_rnn.py
    KERAS_BACKEND=jax python bench/vanilla_rnn.py

Options: `--shapes B,T,D,H ...`, `--repeats N` (default 15), `--warmup N` (default 3),
`--unroll N` (VanillaRNN on JAX). Results are recorded in bench/RESULTS.md.
"""

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rnnzoo  # noqa: E402

CPU_SHAPES = [(32, 100, 32, 128), (64, 200, 64, 256), (1, 500, 16, 64), (128, 50, 128, 512)]
NUM_CLASSES = 16


def build(kind, time_steps, features, units, unroll):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((time_steps, features))
    if kind == "rnnzoo":
        h = rnnzoo.layers.VanillaRNN(units, return_sequences=True, unroll=unroll)(inputs)
    else:
        h = keras.layers.SimpleRNN(units, return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(h))
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def block(value):
    # Wait for asynchronous backends (JAX dispatch) before stopping the clock.
    if hasattr(value, "block_until_ready"):
        value.block_until_ready()
    return float(np.asarray(value))


def time_shape(shape, repeats, warmup, unroll):
    batch, time_steps, features, units = shape
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, time_steps, features)).astype("float32")
    y = rng.integers(0, NUM_CLASSES, size=(batch, time_steps)).astype("int32")
    models = {kind: build(kind, time_steps, features, units, unroll) for kind in ("rnnzoo", "keras")}
    for model in models.values():
        for _ in range(warmup):
            block(model.train_on_batch(x, y))
    times = {kind: [] for kind in models}
    for _ in range(repeats):  # interleaved, so both see the same machine load
        for kind, model in models.items():
            start = time.perf_counter()
            block(model.train_on_batch(x, y))
            times[kind].append(time.perf_counter() - start)
    return {kind: statistics.median(t) * 1000 for kind, t in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", help="B,T,D,H ...")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--unroll", type=int, default=1)
    args = parser.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else CPU_SHAPES
    print(f"backend={keras.backend.backend()} keras={keras.__version__} python={platform.python_version()} "
          f"machine={platform.machine()} cpus={os.cpu_count()} unroll={args.unroll}")
    print(f"{'B, T, D, H':<22} {'VanillaRNN ms':>14} {'SimpleRNN ms':>13} {'ratio':>7}")
    ratios = []
    for shape in shapes:
        ms = time_shape(shape, args.repeats, args.warmup, args.unroll)
        ratio = ms["rnnzoo"] / ms["keras"]
        ratios.append(ratio)
        print(f"{str(shape):<22} {ms['rnnzoo']:>14.2f} {ms['keras']:>13.2f} {ratio:>7.3f}", flush=True)
    geomean = float(np.exp(np.mean(np.log(ratios))))
    print(f"geometric mean ratio {geomean:.3f}, worst {max(ratios):.3f}")


if __name__ == "__main__":
    main()
