"""Time per generated token of rnnzoo's graph decoders (greedy, beam search) as `max_length` grows, CPU.

The decoder is a small recurrent step with dot-product attention over per-sequence annotations
(vocabulary 64, state 64, 20 source positions); its `<end>` logit is pinned low, so every
sequence runs to `max_length`. For greedy decoding and beam search (4 beams), batch 1 and 8, and
max_length = 250, 1000, 4000 the script times, in one process (the fastest of a few calls after a
warm-up call):

- `graph`: the decoder in a `tf.function` with batch and source length dynamic (what a SavedModel
  signature runs);
- `litert`: that function's SavedModel converted to TFLite (builtin ops only), in `ai_edge_litert`.

It prints ms per token (time / max_length) and the flatness the goal of issue 16 is stated in (ms
per token at max_length / ms per token at 250; at most 1.2 means linear). A decoder whose loop
carries a `(batch, max_length, ...)` history and writes it at every step costs O(max_length) per
token, i.e. grows with max_length. Results are recorded in bench/RESULTS.md.

Run (about 3 minutes on 2 cores):

    python bench/decoding.py
    python bench/decoding.py --lengths 250 1000 --batches 1
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

VOCABULARY, UNITS, SOURCE = 64, 64, 20
START, END = 1, 2


def make_step_fn():
    from keras import ops

    rng = np.random.default_rng(0)
    embed = rng.normal(size=(VOCABULARY, UNITS)).astype("float32")
    recurrent = (rng.normal(size=(UNITS, UNITS)) / np.sqrt(UNITS)).astype("float32")
    out = rng.normal(size=(UNITS, VOCABULARY)).astype("float32")
    never_end = np.where(np.arange(VOCABULARY) == END, -1e4, 0.0).astype("float32")

    def step_fn(tokens, state, constants):
        (annotations,) = constants
        h = ops.tanh(ops.take(embed, tokens, axis=0) + ops.matmul(state, recurrent))
        weights = ops.softmax(ops.sum(annotations * ops.expand_dims(h, 1), -1), axis=-1)
        h = h + 0.3 * ops.sum(ops.expand_dims(weights, -1) * annotations, 1)
        return ops.matmul(h, out) + never_end, h, weights

    return step_fn


def decoder(method, max_length):
    import tensorflow as tf

    from rnnzoo.decoding import beam_search, greedy_search

    step_fn = make_step_fn()
    spec = [tf.TensorSpec((None, UNITS), name="state"), tf.TensorSpec((None, None, UNITS), name="annotations")]

    @tf.function(input_signature=spec)
    def decode(state, annotations):
        kwargs = dict(start_token=START, end_token=END, max_length=max_length)
        if method == "greedy":
            out = greedy_search(step_fn, state, (annotations,), **kwargs)
        else:
            out = beam_search(step_fn, state, (annotations,), beam_width=4, **kwargs)
        return {"tokens": out["tokens"], "lengths": out["lengths"]}

    return decode


def to_litert(decode, directory):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    module = tf.Module()
    module.decode = decode
    saved = os.path.join(directory, "saved_model")
    tf.saved_model.save(module, saved, signatures={"serving_default": decode})
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = os.path.join(directory, "decoder.tflite")
    with open(path, "wb") as f:
        f.write(converter.convert())
    runner = Interpreter(model_path=path).get_signature_runner("serving_default")
    return lambda state, annotations: runner(state=state, annotations=annotations)


def best_seconds(fn, args, repeats=5, budget=20.0):
    fn(*args)  # warm-up
    times, start = [], time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget and len(times) >= 2:
            break
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[250, 1000, 4000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--methods", nargs="+", default=["greedy", "beam"], choices=["greedy", "beam"])
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    table = {}
    with tempfile.TemporaryDirectory() as directory:
        for method in args.methods:
            for T in args.lengths:
                decode = decoder(method, T)
                lite = to_litert(decode, tempfile.mkdtemp(dir=directory))
                for batch in args.batches:
                    state = rng.normal(size=(batch, UNITS)).astype("float32")
                    annotations = rng.normal(size=(batch, SOURCE, UNITS)).astype("float32")
                    graph_out = decode(state, annotations)
                    lite_out = lite(state, annotations)
                    assert np.all(np.asarray(graph_out["lengths"]) == T), "a sequence ended before max_length"
                    same = np.array_equal(np.asarray(graph_out["tokens"]), lite_out["tokens"])
                    for path, fn in (("graph", decode), ("litert", lite)):
                        table[(method, path, batch, T)] = 1000 * best_seconds(fn, (state, annotations)) / T
                    print(f"{method} B={batch} T={T}: graph {table[(method, 'graph', batch, T)]:.4f}, litert "
                          f"{table[(method, 'litert', batch, T)]:.4f} ms per token; LiteRT tokens = graph's: {same}",
                          flush=True)
    first = args.lengths[0]
    print(f"\nms per token (flat = at T / at T={first})\n")
    for batch in args.batches:
        header = " | ".join(f"T={T}" for T in args.lengths)
        flats = " | ".join(f"flat {T}" for T in args.lengths[1:])
        print(f"batch {batch}\n\n| decoder | {header} | {flats} |")
        print("|---" * (1 + 2 * len(args.lengths) - 1) + "|")
        for method in args.methods:
            for path in ("graph", "litert"):
                row = [table[(method, path, batch, T)] for T in args.lengths]
                print(f"| {method} {path} | " + " | ".join(f"{v:.4f}" for v in row) + " | "
                      + " | ".join(f"{v / row[0]:.2f}" for v in row[1:]) + " |")
        print()


if __name__ == "__main__":
    main()
