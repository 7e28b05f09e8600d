"""Time per generated token of rnnzoo's graph decoders (greedy, beam search) as `max_length` grows, CPU.

The decoder is a small recurrent step with dot-product attention over per-sequence annotations
(vocabulary 64, state 64, 20 source positions); its `<end>` logit is pinned low, so every
sequence runs to `max_length`. For greedy decoding and beam search (4 beams), batch 1 and 8, and
max_length = 250, 1000, 4000 the script times both loops each decoder has, in one process (the
fastest of a few calls after a warm-up call):

- `generate`: `rnnzoo.recurrence.generate` (checkpoints and a batched replay; no history carried),
  which the decoders use from `max_length = LINEAR_FROM` on (8192 greedy, 512 beam);
- `buffers`: one while loop carrying `(batch, max_length, ...)` histories, rewritten (and for beam
  search reordered) at every step, used below it; timed up to `--max-buffers-length` (it is
  quadratic, slow at 4000 steps of beam search);

each on two paths:

- `graph`: the decoder in a `tf.function` with batch and source length dynamic (what a SavedModel
  signature runs);
- `litert`: that function's SavedModel converted to TFLite (builtin ops only), in `ai_edge_litert`.

It prints ms per token (time / max_length), the flatness the goal of issue 16 is stated in (ms
per token at max_length / ms per token at the first length; at most 1.2 means linear), and the
ratio generate / buffers. Results are recorded in bench/RESULTS.md.

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


def decoder(method, max_length, loop):
    import importlib

    import tensorflow as tf

    from rnnzoo.decoding import beam_search, greedy_search

    for module in ("rnnzoo.decoding.greedy", "rnnzoo.decoding.beam_search"):  # read when traced, below
        importlib.import_module(module).LINEAR_FROM = 1 if loop == "generate" else 10**9

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

    decode.get_concrete_function()  # traced now, with this loop
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
    parser.add_argument("--max-buffers-length", type=int, default=2000)
    parser.add_argument("--chunk", type=int, help="rnnzoo.recurrence.GENERATE_CHUNK (steps per chunk)")
    args = parser.parse_args()
    if args.chunk:
        from rnnzoo import recurrence

        recurrence.GENERATE_CHUNK = args.chunk
    rng = np.random.default_rng(1)
    table, loops = {}, ("generate", "buffers")
    with tempfile.TemporaryDirectory() as directory:
        for method in args.methods:
            for T in args.lengths:
                for loop in loops:
                    if loop == "buffers" and T > args.max_buffers_length:
                        continue
                    decode = decoder(method, T, loop)
                    lite = to_litert(decode, tempfile.mkdtemp(dir=directory))
                    for batch in args.batches:
                        state = rng.normal(size=(batch, UNITS)).astype("float32")
                        annotations = rng.normal(size=(batch, SOURCE, UNITS)).astype("float32")
                        graph_out = decode(state, annotations)
                        assert np.all(np.asarray(graph_out["lengths"]) == T), "a sequence ended before max_length"
                        same = np.array_equal(np.asarray(graph_out["tokens"]), lite(state, annotations)["tokens"])
                        for path, fn in (("graph", decode), ("litert", lite)):
                            table[(method, loop, path, batch, T)] = 1000 * best_seconds(fn, (state, annotations)) / T
                        print(f"{method} {loop} B={batch} T={T}: graph {table[(method, loop, 'graph', batch, T)]:.4f}, "
                              f"litert {table[(method, loop, 'litert', batch, T)]:.4f} ms per token; LiteRT tokens = "
                              f"graph's: {same}", flush=True)

    def cell(v):
        return "-" if v is None else f"{v:.4f}"

    def ratio(a, b):
        return "-" if a is None or b is None else f"{a / b:.2f}"

    print(f"\nms per token (flat = at T / at T={args.lengths[0]})\n")
    for batch in args.batches:
        print(f"batch {batch}\n\n| decoder | " + " | ".join(f"T={T}" for T in args.lengths) + " | "
              + " | ".join(f"flat {T}" for T in args.lengths[1:]) + " |")
        print("|---" * (2 * len(args.lengths)) + "|")
        for method in args.methods:
            for loop in loops:
                for path in ("graph", "litert"):
                    row = [table.get((method, loop, path, batch, T)) for T in args.lengths]
                    print(f"| {method} {loop} {path} | " + " | ".join(cell(v) for v in row) + " | "
                          + " | ".join(ratio(v, row[0]) for v in row[1:]) + " |")
        print()
        for method in args.methods:
            for path in ("graph", "litert"):
                print(f"ratio {method} {path} generate / buffers, batch {batch}: " + ", ".join(
                    f"T={T} " + ratio(table.get((method, "generate", path, batch, T)),
                                      table.get((method, "buffers", path, batch, T))) for T in args.lengths))
        print()


if __name__ == "__main__":
    main()
