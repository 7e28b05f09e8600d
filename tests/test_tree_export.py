"""Export of the tree classifier: SavedModel and TFLite (builtin ops only), trees and nodes dynamic.

Runs on both backends: on TensorFlow the level loop is a `WHILE` with `GATHER`/`SCATTER_ND`;
on JAX (jax2tf) it converts too, with `STABLEHLO_GATHER`/`STABLEHLO_SCATTER` builtins.
"""

import os

import keras
import pytest

from rnnzoo import export
from rnnzoo.data import trees as T
from rnnzoo.models import tree_classifier


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    train = T.random_binary_trees(20, min_nodes=3, max_nodes=31, seed=0)
    vocabulary = T.build_vocabulary(train)
    model = tree_classifier(len(vocabulary), 5, units=8, embedding_dim=4)
    tmp = tmp_path_factory.mktemp("tree_export")
    saved_model = export.to_saved_model(model, str(tmp / "saved_model"))
    tflite = export.to_tflite(saved_model, str(tmp / "tree.tflite"))
    # batches with different numbers of trees, nodes, levels and level widths
    batches = []
    for num_trees, low, high, seed in [(1, 1, 1, 1), (1, 9, 9, 2), (3, 3, 41, 3), (8, 10, 60, 4)]:
        trees = T.random_binary_trees(num_trees, min_nodes=low, max_nodes=high, seed=seed)
        batches.append(T.split_inputs_targets(T.encode_trees(trees, vocabulary))[0])
    # 40 levels: on TensorFlow the inference loop runs them in several blocks (TreeLayer)
    deep = T.Tree(1, (), "a")
    for i in range(40):
        deep = T.Tree(i % 5, (deep, T.Tree(2, (), "b")))
    batches.append(T.split_inputs_targets(T.encode_trees([deep, *trees[:2]], vocabulary))[0])
    return model, saved_model, tflite, batches


@pytest.mark.slow
def test_tflite_uses_builtin_ops_only(exported):
    _, _, tflite, _ = exported
    ops = export.tflite_ops(tflite)
    assert not [op for op in ops if op.startswith("CUSTOM")], ops
    assert "WHILE" in ops, ops  # the level loop, not unrolled


@pytest.mark.slow
def test_parity_with_dynamic_trees_and_nodes(exported):
    model, saved_model, tflite, batches = exported
    shapes = {tuple(b["token_ids"].shape) + tuple(b["schedule"].shape) for b in batches}
    assert len(shapes) == len(batches)  # every batch has another shape
    report = export.parity_report(model, [saved_model, tflite], batches, tolerance=1e-5)
    assert report.passed and report.max_abs_error <= 1e-5, str(report)
    # outputs come back as [node_logits, root_logits] with the batch's own shape
    node_logits, root_logits = export.run_artifact(tflite, batches[-2])
    assert node_logits.shape == batches[-2]["token_ids"].shape + (5,) and root_logits.shape == (8, 5)


@pytest.mark.slow
def test_saved_model_in_fresh_process(exported):
    model, saved_model, _, batches = exported
    report = export.parity_report(model, [saved_model], batches[-1:], tolerance=1e-5, fresh_process=True)
    assert report.passed and report.max_abs_error <= 1e-5, str(report)
    assert os.path.exists(os.path.join(saved_model, "saved_model.pb"))
