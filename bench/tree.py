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


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--anchor-trees", type=int, default=16, help="trees per timing for the slow anchors")
    args = parser.parse_args()

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
