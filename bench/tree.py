"""Trees per second: the level-batched `TreeLayer` against per-node recursion and one graph per tree.

Run (TensorFlow backend, CPU):

    KERAS_BACKEND=tensorflow CUDA_VISIBLE_DEVICES= python3 bench/tree.py

Random full binary trees of 10-60 nodes, `x` 32 features at the leaves, 64 units, concat
(the book's binary node). Three ways to compute every node state, same weights:

* `level-batched`: `TreeLayer` in a `tf.function` (dynamic shapes, traced once), batches of
  1..256 trees: one matrix product per height for the whole batch.
* `naive recursion`: the plain recursive definition (`recursive_tree_states`), eager, one
  `TreeCell` call per node.
* `graph per tree`: the same recursion traced into one `tf.function` per tree structure,
  then called once per tree (tracing time excluded: the anchor's best case).

Each measurement is the median of `--repeats` interleaved runs; the script prints trees per
second and the ratios. Goal: >= 20x the naive recursion at batch 256.

`--scaling`: time per node as one tree grows, for inference (`TreeLayer(training=False)`, the
loop in blocks of levels) in a `tf.function` and in LiteRT, beside the loop that carries the
buffer of all states from level to level (`training=True`, the scatter loop; in TFLite through
a wrapper layer), in the same process, same weights, interleaved call by call: chains (n nodes,
(n - 1) / 2 levels), balanced trees (log2 levels) and batches of random trees of 10-60 nodes.
Prints microseconds per node (fastest of at least `--repeats` calls, up to 200 for small trees)
and the ratios; goal: per-node time
flat as n grows (the largest tree at most 1.2x the smallest, per path).
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # the per-tree graphs retrace on purpose

from rnnzoo.data import trees as T  # noqa: E402
from rnnzoo.layers import TreeLayer  # noqa: E402
from rnnzoo.layers.tree_layer import recursive_tree_states  # noqa: E402

FEATURES, UNITS = 32, 64


def encoded(trees, vocabulary, table):
    batch = T.encode_trees(trees, vocabulary)
    x = table[batch["token_ids"]]
    return [tf.constant(x), tf.constant(batch["children"]), tf.constant(batch["schedule"])]


def graph_for_tree(cell, children):
    """A `tf.function` with the tree's structure unrolled into the graph (one graph per tree)."""

    @tf.function
    def run(x):
        states = {}

        def visit(node):
            kids = [visit(int(c)) if c >= 0 else tf.zeros((1, UNITS)) for c in children[node]]
            states[node] = cell(x[node: node + 1], tf.stack(kids, axis=1))
            return states[node]

        return visit(0)

    return run


def chain(levels):
    """A tree of `levels` levels: each internal node has one internal child and one leaf."""
    tree = T.Tree(0, (), "w0")
    for i in range(levels):
        tree = T.Tree(0, (tree, T.Tree(0, (), f"w{i % 50 + 1}")))
    return tree


def balanced(depth, i=0):
    return T.Tree(0, (), f"w{i % 50}") if depth == 0 else T.Tree(0, (balanced(depth - 1, 2 * i), balanced(depth - 1, 2 * i + 1)))


@keras.saving.register_keras_serializable(package="bench_tree")
class ScatterLoop(keras.layers.Layer):
    """The anchor: `TreeLayer`'s training loop (a buffer of all states carried by the loop), at inference too."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs, training=True)[1]


def scaling(repeats):
    import sys
    import tempfile

    from ai_edge_litert.interpreter import Interpreter

    from rnnzoo.export import to_tflite

    keras.utils.set_random_seed(0)
    layer = TreeLayer(UNITS)
    inputs = [keras.Input((None, FEATURES), name="x"), keras.Input((None, 2), dtype="int32", name="children"),
              keras.Input((None, None), dtype="int32", name="schedule")]
    models = {"blocks": keras.Model(inputs, layer(inputs)[1]), "scatter loop": keras.Model(inputs, ScatterLoop(layer)(inputs))}
    signature = [tf.TensorSpec((None, None, FEATURES)), tf.TensorSpec((None, None, 2), tf.int32),
                 tf.TensorSpec((None, None, None), tf.int32)]
    graphs = {name: tf.function(lambda x, c, s, m=m: m([x, c, s]), input_signature=signature) for name, m in models.items()}
    tmp = tempfile.mkdtemp()
    lite = {}
    for name, model in models.items():
        path = to_tflite(model, os.path.join(tmp, name.replace(" ", "_") + ".tflite"))
        lite[name] = Interpreter(path).get_signature_runner()
    vocabulary = T.Vocabulary([f"w{i}" for i in range(51)])
    table = np.random.default_rng(0).normal(size=(len(vocabulary), FEATURES)).astype("float32")
    workloads = [(f"chain, {2 * m + 1} nodes", [chain(m)]) for m in (50, 200, 800, 3200)]
    workloads += [(f"balanced, {2 ** (d + 1) - 1} nodes", [balanced(d)]) for d in (5, 7, 9, 11)]
    workloads += [(f"{b} random trees of 10-60 nodes", T.random_binary_trees(b, min_nodes=10, max_nodes=60, seed=b))
                  for b in (1, 16, 256)]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; python "
          f"{platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}")
    print(f"{FEATURES} features, {UNITS} units; us per node, fastest of >= {repeats} interleaved calls\n")
    print("| workload | levels | tf.function blocks | tf.function scatter loop | ratio | LiteRT blocks | LiteRT scatter loop | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    per_node = {}
    for label, trees in workloads:
        x, children, schedule = encoded(trees, vocabulary, table)
        nodes = sum(t.num_nodes for t in trees)
        arrays = {"x": x.numpy(), "children": children.numpy(), "schedule": schedule.numpy()}
        runs = {("tf.function", n): (lambda g=g: g(x, children, schedule).numpy()) for n, g in graphs.items()}
        runs.update({("LiteRT", n): (lambda r=r: r(**arrays)) for n, r in lite.items()})
        reference = runs[("tf.function", "scatter loop")]()
        for (path, name), run in runs.items():
            got = run()
            got = got if path == "tf.function" else next(iter(got.values()))
            np.testing.assert_allclose(got, reference, atol=1e-5, err_msg=f"{label}: {path} {name}")
        best = {key: timed(run) for key, run in runs.items()}
        calls = max(repeats, min(200, int(0.2 / max(best.values()))))  # small trees: more calls
        for _ in range(calls - 1):
            for key, run in runs.items():
                best[key] = min(best[key], timed(run))
        us = {key: t / nodes * 1e6 for key, t in best.items()}
        per_node[label] = us
        print(f"| {label} | {schedule.shape[1]} | {us[('tf.function', 'blocks')]:.2f} | {us[('tf.function', 'scatter loop')]:.2f} | "
              f"{best[('tf.function', 'blocks')] / best[('tf.function', 'scatter loop')]:.2f} | {us[('LiteRT', 'blocks')]:.2f} | "
              f"{us[('LiteRT', 'scatter loop')]:.2f} | {best[('LiteRT', 'blocks')] / best[('LiteRT', 'scatter loop')]:.2f} |")
        sys.stdout.flush()
    print()
    for family, small, large in (("chain", "chain, 101 nodes", "chain, 6401 nodes"),
                                 ("balanced", "balanced, 63 nodes", "balanced, 4095 nodes")):
        for key in per_node[small]:
            growth = per_node[large][key] / per_node[small][key]
            print(f"{family} {key[0]} {key[1]}: per node, {large.split(', ')[1]} / {small.split(', ')[1]} = {growth:.2f}"
                  + (f" (goal <= 1.2: {'met' if growth <= 1.2 else 'NOT met'})" if key[1] == "blocks" else ""))


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--anchor-trees", type=int, default=16, help="trees per timing for the slow anchors")
    parser.add_argument("--scaling", action="store_true", help="time per node as trees grow (inference, LiteRT)")
    args = parser.parse_args()
    if args.scaling:
        return scaling(args.repeats)

    trees = T.random_binary_trees(256, min_nodes=10, max_nodes=60, seed=0)
    vocabulary = T.build_vocabulary(trees)
    table = np.random.default_rng(0).normal(size=(len(vocabulary), FEATURES)).astype("float32")
    table[0] = 0.0  # no input at internal nodes
    layer = TreeLayer(UNITS)
    signature = [tf.TensorSpec((None, None, FEATURES)), tf.TensorSpec((None, None, 2), tf.int32),
                 tf.TensorSpec((None, None, None), tf.int32)]
    batched = tf.function(lambda x, c, s: layer([x, c, s])[1], input_signature=signature)

    batch_sizes = [1, 4, 16, 64, 256]
    inputs = {b: [encoded(trees[i: i + b], vocabulary, table) for i in range(0, 256, b)] for b in batch_sizes}
    batched(*inputs[256][0])  # build + trace once
    anchor = trees[: args.anchor_trees]
    anchor_inputs = [T.encode_tree(t, vocabulary) for t in anchor]
    anchor_inputs = [(table[e["token_ids"]], e["children"]) for e in anchor_inputs]
    graphs = [graph_for_tree(layer.cell, c) for _, c in anchor_inputs]
    trace_time = timed(lambda: [g(tf.constant(x)) for g, (x, _) in zip(graphs, anchor_inputs)])

    # correctness first: all three agree on the anchor trees
    nodes = batched(*encoded(anchor, vocabulary, table)).numpy()
    for b, (x, children) in enumerate(anchor_inputs[:4]):
        reference = recursive_tree_states(layer.cell, x, children)
        np.testing.assert_allclose(nodes[b, : len(x)], reference, atol=1e-5)
        np.testing.assert_allclose(graphs[b](tf.constant(x)).numpy()[0], reference[0], atol=1e-5)

    times = {f"level-batched, batch {b}": [] for b in batch_sizes}
    times["naive recursion (eager)"], times["graph per tree"] = [], []
    for _ in range(args.repeats):  # interleaved
        for b in batch_sizes:
            seconds = timed(lambda: [batched(*i).numpy() for i in inputs[b]])
            times[f"level-batched, batch {b}"].append(256 / seconds)
        seconds = timed(lambda: [recursive_tree_states(layer.cell, x, c) for x, c in anchor_inputs])
        times["naive recursion (eager)"].append(len(anchor) / seconds)
        seconds = timed(lambda: [g(tf.constant(x)).numpy() for g, (x, _) in zip(graphs, anchor_inputs)])
        times["graph per tree"].append(len(anchor) / seconds)

    rates = {name: statistics.median(v) for name, v in times.items()}
    naive, per_tree = rates["naive recursion (eager)"], rates["graph per tree"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; python "
          f"{platform.python_version()}, tensorflow {tf.__version__}, keras {keras.__version__}")
    print(f"random binary trees of 10-60 nodes (mean {np.mean([t.num_nodes for t in trees]):.1f}), "
          f"{FEATURES} features, {UNITS} units; median of {args.repeats}")
    print(f"\n| method | trees/s | x naive recursion | x graph per tree |\n|---|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:,.0f} | {rate / naive:.1f} | {rate / per_tree:.1f} |")
    print(f"\n(graph per tree: tracing {len(anchor)} graphs took {trace_time:.1f} s, "
          f"{trace_time / len(anchor) * 1000:.0f} ms per tree, not counted above)")
    ratio = rates["level-batched, batch 256"] / naive
    print(f"goal >= 20x naive recursion at batch 256: {'MET' if ratio >= 20 else 'NOT MET'} ({ratio:.1f}x)")


if __name__ == "__main__":
    main()
