"""Strings in, labels out: `SentenceTree`, `tree_classifier_for_text`, `export_tree_classifier`.

The in-graph tree (children, schedule, token ids) must be exactly what the Python encoder
(`sentence_tree` + `encode_trees`) makes, so that one vocabulary and one numbering serve both.
"""

import json

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo.data import trees as T
from rnnzoo.models import tree_classifier
from rnnzoo.models.tree_text import sentence_tree_inputs

SENTENCES = [
    "a good film",
    "8\u00a01/2 hours of  Été\tfun",  # U+00A0 inside a word; two spaces; a tab
    "an unseen word",  # `unseen`, `an`: unknown
    "",  # no word: one leaf, the empty word
    "good",
    " x\u2028y\x1cz ",  # Unicode separators that Python's str.split would split at
]
TREEBANK = "(3 (2 a) (4 (4 good) (2 film)))\n(2 (2 8\u00a01/2) (2 (2 hours) (2 (2 of) (3 (2 Été) (4 fun)))))\n(1 (2 word) (2 the))"


def _encoded(sentences, vocabulary, binarization):
    trees = [T.sentence_tree(s, binarization) for s in sentences]
    return T.split_inputs_targets(T.encode_trees(trees, vocabulary))[0], [t.num_nodes for t in trees]


def _numpy(outputs):
    return {k: np.asarray(ops.convert_to_numpy(v)) for k, v in outputs.items()}


@pytest.mark.parametrize("binarization", ["left", "right"])
def test_sentence_tree_inputs_equal_the_python_encoder(binarization):
    lengths = [1, 2, 3, 6, 4]
    words = [[f"w{i}" for i in range(n)] for n in lengths]
    vocabulary = T.Vocabulary([w for row in words for w in row])
    expected = T.split_inputs_targets(T.encode_trees([T.binarize(row, binarization) for row in words], vocabulary))[0]
    word_ids = np.zeros((len(lengths), 7), "int32")  # wider than the longest: padding is ignored
    for b, row in enumerate(words):
        word_ids[b, : len(row)] = vocabulary.lookup(row)
    got = _numpy(sentence_tree_inputs(word_ids, np.array(lengths), binarization))
    for key in T.INPUT_KEYS:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_binarize_rules_and_errors():
    assert str(T.binarize(["a", "b", "c", "d"], "left")) == "(0 (0 (0 (0 a) (0 b)) (0 c)) (0 d))"
    assert str(T.binarize(["a", "b", "c", "d"], "right", label=2)) == "(2 (2 a) (2 (2 b) (2 (2 c) (2 d))))"
    assert T.split_sentence("8\u00a01/2\u3000x \x0by") == ["8\u00a01/2\u3000x", "y"]
    with pytest.raises(ValueError, match=r"`binarize\(binarization=...\)` must be one of .*Received: binarization='middle'"):
        T.binarize(["a"], "middle")
    with pytest.raises(ValueError, match="at least one word"):
        T.binarize([])
    with pytest.raises(ValueError, match=r"sentence_tree_inputs\(binarization"):
        sentence_tree_inputs(np.zeros((1, 1), "int32"), np.ones(1, "int32"), "balanced")


@pytest.mark.jax
def test_text_model_needs_tensorflow():
    vocabulary = T.Vocabulary(["a"])
    model = tree_classifier(len(vocabulary), 3, units=4, embedding_dim=2)
    from rnnzoo.models import tree_classifier_for_text

    with pytest.raises(RuntimeError, match="needs the TensorFlow backend"):
        tree_classifier_for_text(model, vocabulary)


@pytest.mark.tensorflow  # string ops
@pytest.mark.parametrize("lowercase", [False, True], ids=["cased", "lowercase"])
def test_sentence_tree_maps_as_the_python_encoder(lowercase):
    from rnnzoo.models import SentenceTree

    vocabulary = T.build_vocabulary(T.parse_trees(TREEBANK), lowercase=lowercase)
    sentences = SENTENCES + ["A GOOD ÉTÉ", "<pad> <unk> the"]  # case; the special tokens as words
    for binarization in ("left", "right"):
        layer = SentenceTree.from_vocabulary(vocabulary, binarization)
        got = _numpy(layer(np.array(sentences)))
        expected, num_nodes = _encoded(sentences, vocabulary, binarization)
        for key in T.INPUT_KEYS:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"{binarization} {key}")
        np.testing.assert_array_equal(got["num_nodes"], num_nodes)
    ids = got["token_ids"]
    assert vocabulary.token_id("8\u00a01/2") in ids[1] and vocabulary.token_id("8\u00a01/2") > 1
    assert 1 in ids[2]  # unknown words
    assert (vocabulary.token_id("été") > 1) == lowercase  # `Été` -> `été` only when lowercasing
    with pytest.raises(ValueError, match="without '<pad>' and the unknown token"):
        SentenceTree(["a", "<unk>"])


@pytest.mark.slow
@pytest.mark.tensorflow  # the string signature is TensorFlow's; LiteRT keeps the numeric one
def test_text_model_saves_exports_and_equals_the_numeric_model(tmp_path):
    from rnnzoo import export
    from rnnzoo.models import TextTreeClassifier, tree_classifier_for_text

    vocabulary = T.build_vocabulary(T.parse_trees(TREEBANK))
    model = tree_classifier(len(vocabulary), 5, units=8, embedding_dim=4)
    text_model = tree_classifier_for_text(model, vocabulary, "right")
    got = _numpy(text_model(np.array(SENTENCES)))
    inputs, num_nodes = _encoded(SENTENCES, vocabulary, "right")
    expected = model.predict_on_batch(inputs)
    np.testing.assert_array_equal(got["num_nodes"], num_nodes)
    for b, n in enumerate(num_nodes):  # the numeric model on the Python encoding, node by node
        np.testing.assert_allclose(got["node_logits"][b, :n], expected["node_logits"][b, :n], atol=1e-6)
        assert (got["node_labels"][b, :n] == expected["node_logits"][b, :n].argmax(-1)).all()
        assert (got["node_labels"][b, n:] == -1).all()
    np.testing.assert_allclose(got["root_logits"], expected["root_logits"], atol=1e-6)
    np.testing.assert_array_equal(got["root_label"], expected["root_logits"].argmax(-1))
    predicted = text_model.predict(SENTENCES[:4] + SENTENCES[:1], batch_size=2)  # batches of other widths
    assert predicted["node_logits"].shape == (5, 9, 5) and np.isnan(predicted["node_logits"][0, 5:]).all()
    np.testing.assert_allclose(predicted["root_logits"], got["root_logits"][[0, 1, 2, 3, 0]], atol=1e-6)

    text_model.save(tmp_path / "text.keras")
    loaded = keras.saving.load_model(tmp_path / "text.keras")  # no custom_objects
    assert isinstance(loaded, TextTreeClassifier) and loaded.text_layer.binarization == "right"
    reloaded = _numpy(loaded(np.array(SENTENCES)))
    for key in got:
        np.testing.assert_array_equal(reloaded[key], got[key], err_msg=key)

    import tensorflow as tf

    saved_model = export.export_tree_classifier(loaded, str(tmp_path / "1"))
    tflite = export.export_tree_classifier(loaded, str(tmp_path / "1.tflite"))
    served = tf.saved_model.load(saved_model)
    classified = served.signatures["classify"](text=tf.constant(SENTENCES))
    for key in got:
        np.testing.assert_allclose(classified[key].numpy(), got[key], atol=1e-6, err_msg=key)
    numeric = served.signatures["serving_default"](**{k: tf.constant(v) for k, v in inputs.items()})
    np.testing.assert_allclose(numeric["root_logits"].numpy(), expected["root_logits"], atol=1e-6)
    node_logits, root_logits = export.run_artifact(tflite, inputs)  # LiteRT: the numeric signature
    np.testing.assert_allclose(root_logits, expected["root_logits"], atol=1e-5)
    np.testing.assert_allclose(node_logits, expected["node_logits"], atol=1e-5)
    for name in ("1.vocabulary.json",):
        written = json.loads((tmp_path / name).read_text(encoding="utf-8"))
        assert written["tokens"] == vocabulary.tokens and written["binarization"] == "right"
        assert written["lowercase"] is False and written["split"] == "ascii_whitespace"


@pytest.mark.tensorflow
def test_text_model_errors():
    from rnnzoo.models import tree_classifier_for_text

    vocabulary = T.Vocabulary(["a", "b"])
    model = tree_classifier(len(vocabulary) + 1, 3, units=4, embedding_dim=2)
    with pytest.raises(ValueError, match=r"embeds 5 ids, the vocabulary has 4.*Received: len\(vocabulary\)=4"):
        tree_classifier_for_text(model, vocabulary)
    with pytest.raises(TypeError, match=r"`tree_classifier_for_text\(vocabulary=...\)` must be"):
        tree_classifier_for_text(model, ["a", "b"])
    ternary = tree_classifier(len(vocabulary), 3, units=4, embedding_dim=2, num_children=3)
    with pytest.raises(ValueError, match="builds binary trees"):
        tree_classifier_for_text(ternary, vocabulary)
    # a run's `data.json` tokens work as well as the `Vocabulary`
    text_model = tree_classifier_for_text(tree_classifier(4, 3, units=4, embedding_dim=2), vocabulary.tokens)
    assert text_model.text_layer.vocabulary == ["a", "b"]


GOOD_LINES = [
    "(3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 lovely)) (2 film))) (2 .)))",
    "(2 8\u00a01\\/2)",  # one leaf; U+00A0 inside the word
    "(1 (2 a) (0 (1 Not) (4 Été)))",
    " ( 4  (3 unseen)(2 a) ) ",  # spacing, an unknown word
    "(0 (1 (2 (3 (4 good) (4 good)) (1 a)) (2 film)) (3 It))",
]
BAD_LINES = ["", "(3 (2 a)", "(3 (2 a)))", "(3 a b)", "(3 a (2 b))", "(3 (2 a) b)", "(x (2 a))", "(3 )", "()",
             "(2 a) (2 b)", "a", "(3 (2 a) (2 b) (2 c))", "(99999999999 a)", ")(", "(3 ((2 a)))"]


@pytest.mark.slow
@pytest.mark.tensorflow  # string ops
def test_bracketed_trees_parse_in_the_graph_as_in_python(tmp_path):
    from rnnzoo import export
    from rnnzoo.models import BracketedTree, tree_classifier_for_text

    trees = [T.parse_tree(line) for line in GOOD_LINES]
    for line in BAD_LINES:  # each is rejected by the Python reader or encoder too
        with pytest.raises(ValueError):
            T.encode_trees([T.parse_tree(line)], T.Vocabulary([]))
    vocabulary = T.build_vocabulary(trees[:3])
    got = _numpy(BracketedTree.from_vocabulary(vocabulary)(np.array(GOOD_LINES + BAD_LINES)))
    expected = T.encode_trees(trees, vocabulary)
    for key in ("token_ids", "children", "schedule", "labels"):  # good trees first: the same widths
        np.testing.assert_array_equal(got[key][: len(trees)], expected[key], err_msg=key)
    assert got["valid"].tolist() == [True] * len(trees) + [False] * len(BAD_LINES)
    assert got["num_nodes"].tolist() == [t.num_nodes for t in trees] + [0] * len(BAD_LINES)
    assert (got["labels"][len(trees):] == -1).all() and (got["children"][len(trees):] == -1).all()

    model = tree_classifier(len(vocabulary), 5, units=8, embedding_dim=4)
    text_model = tree_classifier_for_text(model, vocabulary, input_format="bracketed")
    out = _numpy(text_model(np.array(GOOD_LINES + BAD_LINES)))
    numeric = model.predict_on_batch(T.split_inputs_targets(expected)[0])
    np.testing.assert_allclose(out["root_logits"][: len(trees)], numeric["root_logits"], atol=1e-6)
    assert np.isnan(out["root_logits"][len(trees):]).all() and (out["root_label"][len(trees):] == -1).all()
    text_model.save(tmp_path / "bracketed.keras")
    saved_model = export.export_tree_classifier(keras.saving.load_model(tmp_path / "bracketed.keras"),
                                                str(tmp_path / "1"))
    import tensorflow as tf

    served = tf.saved_model.load(saved_model).signatures["classify"](text=tf.constant(GOOD_LINES + BAD_LINES))
    np.testing.assert_allclose(served["root_logits"].numpy(), out["root_logits"], atol=1e-6)  # NaN where NaN
    np.testing.assert_array_equal(served["labels"].numpy(), out["labels"])
    written = json.loads((tmp_path / "1.vocabulary.json").read_text(encoding="utf-8"))
    assert written["input_format"] == "bracketed" and written["binarization"] is None
