"""Bad tree inputs: the readers, the encoder and `TreeLayer` answer with clear errors, never a silent result."""

import numpy as np
import pytest

from rnnzoo.data import trees as T
from rnnzoo.layers.tree_layer import TreeLayer

GOOD_CHILDREN = [[1, 2], [-1, -1], [-1, -1]]  # a root with two leaves
BAD_CHILDREN = {
    "negative index": ([[1, -5], [-1, -1], [-1, -1]], "child indices must be -1"),
    "index out of range": ([[1, 99], [-1, -1], [-1, -1]], "child indices must be -1"),
    "cycle": ([[1, 2], [0, -1], [-1, -1]], "computed before their parents"),
    "self-loop": ([[0, 2], [-1, -1], [-1, -1]], "its own child"),
    "two parents": ([[1, 1], [-1, -1], [-1, -1]], "child of both"),
}


@pytest.mark.parametrize("case", sorted(BAD_CHILDREN))
def test_check_tree_arrays_names_the_fault(case):
    children, words = BAD_CHILDREN[case]
    with pytest.raises(ValueError, match="Received:") as info:
        T.check_tree_arrays(np.array([GOOD_CHILDREN, children]), np.array([[[0]], [[0]]]), where="data.txt, line 7")
    assert words in str(info.value) and "data.txt, line 7: tree 1" in str(info.value)


def test_check_tree_arrays_parent_scheduled_before_child():
    children = np.array([[[1, 2], [3, -1], [-1, -1], [-1, -1]]])
    with pytest.raises(ValueError, match="children must be computed before their parents"):
        T.check_tree_arrays(children, np.array([[[0], [1]]]))  # node 0 at level 0, its child 1 at level 1
    T.check_tree_arrays(children, np.array([[[1], [0]]]))  # the right order passes


@pytest.mark.parametrize("schedule, words", [([[0], [0]], "scheduled twice"), ([[7]], "schedule entries must be")])
def test_check_tree_arrays_bad_schedule(schedule, words):
    with pytest.raises(ValueError, match=words):
        T.check_tree_arrays(np.array([GOOD_CHILDREN]), np.array([schedule]))


@pytest.mark.parametrize("case", sorted(set(BAD_CHILDREN) - {"two parents"}) + ["parent before child"])
def test_tree_layer_rejects_malformed_trees_eagerly(case):
    children, schedule = (BAD_CHILDREN[case][0], [[0]]) if case in BAD_CHILDREN else (GOOD_CHILDREN, [[1]])
    x = np.ones((2, 3, 2), "float32")
    layer = TreeLayer(3)
    with pytest.raises(ValueError, match="malformed tree \\(tree 1 of the batch\\).*Received: children\\[1\\]"):
        layer([x, np.array([GOOD_CHILDREN, children], "int32"), np.array([[[0]], [schedule[0]]], "int32")])


def _traced(layer, training):
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(lambda *a: layer(list(a), training=training))
    import tensorflow as tf

    return tf.function(lambda *a: layer(list(a), training=training), autograph=False)


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("bad", [0, 1], ids=["first-tree-malformed", "second-tree-malformed"])
def test_tree_layer_gives_nan_for_a_malformed_tree_in_a_traced_graph(bad, training):
    # Only the malformed tree: a missing child of another tree reads zeros, not NaN x 0.
    layer = TreeLayer(3)
    x = np.ones((3, 3, 2), "float32")
    trees = [GOOD_CHILDREN, [[1, -1], [-1, -1], [-1, -1]], [[1, 2], [-1, -1], [-1, -1]]]  # tree 1: one child
    trees[bad] = BAD_CHILDREN["cycle"][0]
    schedule = np.array([[[0]], [[0]], [[0]]], "int32")
    root = np.asarray(_traced(layer, training)(x, np.array(trees, "int32"), schedule)[0])
    assert np.isnan(root[bad]).all()
    assert np.isfinite(np.delete(root, bad, axis=0)).all(), root


@pytest.mark.parametrize("schedule", [[[0], [0]], [[0, 0]]], ids=["in-two-levels", "twice-in-one-level"])
def test_tree_layer_refuses_a_node_scheduled_twice(schedule):
    x = np.ones((2, 3, 2), "float32")
    children = np.array([GOOD_CHILDREN, GOOD_CHILDREN], "int32")
    schedule = np.array([[[0, -1], [-1, -1]], np.pad(schedule, [(0, 2 - len(schedule)), (0, 2 - len(schedule[0]))],
                                                     constant_values=-1)], "int32")
    layer = TreeLayer(3)
    with pytest.raises(ValueError, match="malformed tree \\(tree 1 of the batch\\)"):
        layer([x, children, schedule])
    for training in (False, True):  # traced: NaN for that tree alone, never an out-of-range read
        root = np.asarray(_traced(layer, training)(x, children, schedule)[0])
        assert np.isfinite(root[0]).all() and np.isnan(root[1]).all(), root


def test_tree_built_by_hand_with_a_cycle_or_shared_node():
    leaf = T.Tree(1, (), "a")
    shared = T.Tree(2, (leaf, leaf))
    with pytest.raises(ValueError, match="reached twice.*Received:"):
        T.encode_tree(shared, T.Vocabulary(["a"]))
    loop = T.Tree(2, (leaf,))
    loop.children = (leaf, loop)
    with pytest.raises(ValueError, match="reached twice"):
        loop.nodes()  # would never end without the check


@pytest.mark.parametrize("label", [-1, 2**31, 1.5, True])
def test_encode_tree_rejects_bad_labels(label):
    with pytest.raises(ValueError, match=f"integer labels in .*Received: label={label!r}"):
        T.encode_tree(T.Tree(label, (), "a", "x.txt", 3), T.Vocabulary(["a"]))


def test_read_trees_invalid_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"(1 (1 a) (2 b))\n(2 (1 caf\xe9) (2 b))\n")
    with pytest.raises(T.TreeFormatError, match=r"bad.txt, line 2, column 10: not valid utf-8.*Received: bytes"):
        T.read_trees(path)


def test_read_trees_huge_label_names_file_and_line(tmp_path):
    path = tmp_path / "huge.txt"
    path.write_text("(1 (1 a) (2 b))\n(1 (99999999999999999999999 a) (2 b))\n")
    with pytest.raises(T.TreeFormatError, match=r"huge.txt, line 2, column 5: label .* larger than"):
        T.read_trees(path)
