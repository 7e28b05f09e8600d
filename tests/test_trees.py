"""Trees as data: parsing, errors naming file and line, vocabulary, encoding, tf.data."""

import os
import subprocess
import sys

import numpy as np
import pytest

from rnnzoo.data import trees as T

SST_EXAMPLE = "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 lovely)) (2 film))) (2 .)))"


def test_parse_sst_example():
    tree = T.parse_tree(SST_EXAMPLE)
    assert tree.label == 3
    assert tree.leaves() == ["It", "'s", "a", "lovely", "film", "."]
    assert [n.label for n in tree.nodes()] == [3, 2, 4, 4, 2, 4, 3, 2, 4, 2, 2]
    assert tree.num_nodes == 11 and tree.height == 5
    assert str(tree) == SST_EXAMPLE  # round trip


@pytest.mark.parametrize(
    "text, message",
    [
        ("(3 (2 a) (4 b)", "unbalanced brackets: '\\(' is never closed"),
        ("(3 (2 a) (4 b)))", "text after the end"),
        (")(2 a)", "'\\)' without a matching"),
        ("(3 ((2 a) (4 b)))", "node without a label"),
        ("()", "empty node"),
        ("   ", "empty tree"),
        ("(3)", "no word and no children"),
        ("(x (2 a) (4 b))", "non-integer label 'x'"),
        ("(3 (2.5 a) (4 b))", "non-integer label '2.5'"),
        ("(3 (2 a b))", "more than one word"),
        ("(3 a (2 b))", "both a word and children"),
        ("(3 (2 a) b)", "both a word and children"),
        ("(1 (1 (1 (1 a))))", "deeper than max_depth=3"),
    ],
    ids=["open", "extra-close", "close-first", "no-label", "empty-node", "empty", "label-only",
         "label-word", "label-float", "two-words", "word-then-child", "child-then-word", "too-deep"],
)
def test_malformed_trees_raise_clear_errors(text, message):
    with pytest.raises(T.TreeFormatError, match=message) as info:
        T.parse_tree(text, max_depth=3, source="mine.txt", line=7)
    assert "mine.txt, line 7, column" in str(info.value)


def test_read_trees_names_file_and_line(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("(3 (2 a) (4 good))\n\n(1 (2 a) (0 bad))\n(2 (2 a) (4 good)\n")
    with pytest.raises(T.TreeFormatError, match=f"{path}, line 4, column 1: unbalanced"):
        T.read_trees(path)
    path.write_text("(3 (2 a) (4 good))\n\n(1 (2 a) (0 bad))\n")
    trees = T.read_trees(path)
    assert [t.label for t in trees] == [3, 1] and [t.line for t in trees] == [1, 3]
    assert trees[1].source == str(path)


def test_deep_trees_parse_without_recursion_limit():
    depth = 3000
    tree = T.parse_tree("(1 " * depth + "a" + ")" * depth, max_depth=depth)
    assert tree.height == depth - 1 and T.encode_tree(tree, T.Vocabulary(["a"]))["schedule"].shape == (depth - 1, 1)


def test_vocabulary_unknown_min_count_and_save(tmp_path):
    trees = T.parse_trees("(1 (1 not) (2 good))\n(2 (2 good) (1 Film))")
    vocabulary = T.build_vocabulary(trees, min_count=2)
    assert vocabulary.tokens == ["<pad>", "<unk>", "good"]
    assert vocabulary.lookup(["good", "not", "never-seen"]) == [2, 1, 1]
    lower = T.build_vocabulary(trees, lowercase=True)
    assert lower.token_id("FILM") == lower.token_id("film") > 1
    vocabulary.save(tmp_path / "vocab.txt")
    assert T.Vocabulary.load(tmp_path / "vocab.txt").tokens == vocabulary.tokens
    with pytest.raises(ValueError, match="unknown_token"):
        T.Vocabulary([], unknown_token="<pad>")


def _check_schedule(children, schedule, num_nodes):
    """Every internal node appears exactly once, after all of its children."""
    level_of = {}
    for level, row in enumerate(schedule):
        for node in row[row >= 0]:
            assert node not in level_of
            level_of[int(node)] = level + 1
    for node in range(num_nodes):
        kids = children[node][children[node] >= 0]
        if len(kids):
            assert all(level_of.get(int(k), 0) < level_of[node] for k in kids)
        else:
            assert node not in level_of


def test_encode_trees_padding_and_schedule():
    trees = T.random_binary_trees(6, min_nodes=1, max_nodes=31, seed=3)
    vocabulary = T.build_vocabulary(trees)
    batch = T.encode_trees(trees, vocabulary)
    n = max(t.num_nodes for t in trees)
    assert batch["token_ids"].shape == (6, n) and batch["children"].shape == (6, n, 2)
    assert batch["schedule"].shape[1] == max(t.height for t in trees)
    for b, tree in enumerate(trees):
        m = tree.num_nodes
        assert batch["labels"][b, :m].tolist() == [node.label for node in tree.nodes()]
        assert (batch["labels"][b, m:] == -1).all() and (batch["children"][b, m:] == -1).all()
        leaves = [i for i, node in enumerate(tree.nodes()) if node.is_leaf]
        assert batch["token_ids"][b, leaves].tolist() == vocabulary.lookup(tree.leaves())
        _check_schedule(batch["children"][b], batch["schedule"][b], m)


def test_single_leaf_gets_one_empty_level():
    batch = T.encode_trees(T.parse_trees("(2 good)\n(1 film)"), T.Vocabulary(["good"]))
    assert batch["schedule"].tolist() == [[[-1]], [[-1]]] and batch["children"].tolist() == [[[-1, -1]], [[-1, -1]]]
    assert batch["token_ids"].tolist() == [[2], [1]] and batch["labels"].tolist() == [[2], [1]]


def test_encode_rejects_too_many_children_and_empty_batch():
    tree = T.parse_tree("(1 (1 a) (1 b) (1 c))", source="nary.txt", line=4)
    with pytest.raises(ValueError, match="nary.txt, line 4: a node has 3 children but `max_children=2`"):
        T.encode_trees([tree], T.Vocabulary(["a"]))
    assert T.encode_trees([tree], T.Vocabulary(["a"]), max_children=None)["children"].shape == (1, 4, 3)
    with pytest.raises(ValueError, match="at least one tree"):
        T.encode_trees([], T.Vocabulary([]))


def test_tree_dataset_batches_match_encode_trees():
    trees = T.random_binary_trees(7, min_nodes=1, max_nodes=25, seed=5)
    vocabulary = T.build_vocabulary(trees)
    batches = list(T.tree_dataset(trees, vocabulary, batch_size=3).as_numpy_iterator())
    assert len(batches) == 3
    for i, (inputs, targets) in enumerate(batches):
        expected_inputs, expected_targets = T.split_inputs_targets(T.encode_trees(trees[3 * i: 3 * i + 3], vocabulary))
        for key in expected_inputs:
            np.testing.assert_array_equal(inputs[key], expected_inputs[key])
        for key in expected_targets:
            np.testing.assert_array_equal(targets[key], expected_targets[key])
    with pytest.raises(ValueError, match="batch_size"):
        T.tree_dataset(trees, vocabulary, batch_size=0)


def test_negation_task_follows_its_grammar_and_needs_structure():
    trees = T.negation_sentiment_trees(300, seed=0)

    def value(node):  # the grammar, written again
        if node.is_leaf:
            return {**{w: 1 for w in T.POSITIVE_WORDS}, **{w: -1 for w in T.NEGATIVE_WORDS}}.get(node.word, 0)
        left, right = node.children
        if left.is_leaf and left.word == T.NEGATION_WORD:
            return -value(right)
        return int(np.sign(value(left) + value(right)))

    assert all(node.label == value(node) + 1 for tree in trees for node in tree.nodes())
    assert np.bincount([t.label for t in trees]).min() > 50  # balanced enough
    a, b = T.parse_tree("(0 (0 (1 not) (2 good)) (0 bad))"), T.parse_tree("(1 (1 not) (1 (2 good) (0 bad)))")
    assert a.leaves() == b.leaves() and value(a) != value(b)


def test_import_does_not_import_tensorflow():
    code = ("import sys, rnnzoo, rnnzoo.data.trees; rnnzoo.data.trees.parse_trees('(1 a)')\n"
            "print('tensorflow' in sys.modules, 'tensorflow_datasets' in sys.modules)")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False False", done.stderr[-2000:]


def test_zoo_lists_the_tree_entries():
    import importlib

    from rnnzoo.app import registry as zoo

    names = {e.name: e for e in zoo.entries()}
    for name in ("tree_layer", "tree_cell", "tree_classifier", "negation_sentiment"):
        entry = names[name]
        module, _, attribute = entry.symbol.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attribute)) and entry.section == "10.6"


# -- real treebanks: Unicode inside words, skipping bad lines, files into tf.data -------------------

NBSP = "\u00a0"  # SST's train.txt has the leaves `8 1\/2` and `2 1\/2` with a no-break space inside


def test_only_ascii_whitespace_separates_tokens():
    text = f"(3 (2 (2 8{NBSP}1\\/2) (2 hours)) (4\t(4 caf\u00e9\u2028bar)))"
    tree = T.parse_tree(text)
    assert tree.leaves() == [f"8{NBSP}1\\/2", "hours", "caf\u00e9\u2028bar"] and tree.num_nodes == 6
    assert T.parse_tree(str(tree)).leaves() == tree.leaves()  # the round trip keeps the words
    # U+0085 and U+2028 are line breaks to `str.splitlines`, not to a treebank
    trees = T.parse_trees(f"(2 a\u0085b)\n(1 c{NBSP})\r\n\n")
    assert [t.leaves() for t in trees] == [["a\u0085b"], [f"c{NBSP}"]] and [t.line for t in trees] == [1, 2]
    with pytest.raises(T.TreeFormatError, match="line 1, column 8: leaf with more than one word"):
        T.parse_tree(f"(2 a{NBSP}b c)")  # columns count characters: the NBSP is one
    with pytest.raises(T.TreeFormatError, match="column 1: word"):
        T.parse_tree(f"{NBSP}(2 a)")  # a no-break space is a character, not a separator, outside a word too


def test_read_trees_skips_bad_lines_with_one_warning(tmp_path):
    import warnings

    path = tmp_path / "train.txt"
    path.write_bytes(f"(3 (2 a) (4 good))\n(2 (2 a b))\n(1 (0 bad) (2 8{NBSP}1\\/2))\n(2 caf\xe9\n".encode()
                     + b"(2 (1 caf\xe9) (2 b))\n(4 (4 fun)\n")
    with pytest.raises(T.TreeFormatError, match=f"{path}, line 2, column 9: leaf with more than one word"):
        T.read_trees(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trees = T.read_trees(path, on_error="skip")
    assert [t.line for t in trees] == [1, 3] and trees[1].leaves() == ["bad", f"8{NBSP}1\\/2"]
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    # lines 2 (two words), 4 (never closed), 5 (not UTF-8) and 6 (never closed)
    assert f"{path}: skipped 4 malformed lines (2 trees read); the first: {path}, line 2, column 9" in message
    assert caught[0].filename == __file__  # the warning points at the caller
    with pytest.raises(ValueError, match=r"`read_trees\(on_error=...\)` must be 'raise' or 'skip'. Received: on_error='ignore'"):
        T.read_trees(path, on_error="ignore")
    with pytest.warns(UserWarning, match="skipped 1 malformed line "):
        assert len(T.parse_trees("(1 a)\n(1 a b)", on_error="skip")) == 1


def test_tree_dataset_reads_a_treebank_file(tmp_path):
    trees = T.random_binary_trees(5, min_nodes=1, max_nodes=15, seed=7)
    path = tmp_path / "dev.txt"
    path.write_text("\n".join(map(str, trees)) + "\n(1 (1 a) b)\n", encoding="utf-8")
    vocabulary = T.build_vocabulary(trees)
    with pytest.raises(T.TreeFormatError, match="dev.txt, line 6"):
        T.tree_dataset(path, vocabulary, batch_size=2)
    with pytest.warns(UserWarning, match="skipped 1 malformed line"):
        dataset = T.tree_dataset(str(path), vocabulary, batch_size=2, on_error="skip")
    assert int(dataset.cardinality()) == 3  # known: `fit` needs no first epoch to count the batches
    for i, (inputs, targets) in enumerate(dataset.as_numpy_iterator()):
        expected_inputs, expected_targets = T.split_inputs_targets(T.encode_trees(trees[2 * i: 2 * i + 2], vocabulary))
        for key in expected_inputs:
            np.testing.assert_array_equal(inputs[key], expected_inputs[key])
        np.testing.assert_array_equal(targets["node_logits"], expected_targets["node_logits"])
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(ValueError, match="at least one tree"):
        T.tree_dataset(tmp_path / "empty.txt", vocabulary, batch_size=2)
