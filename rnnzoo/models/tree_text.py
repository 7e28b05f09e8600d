"""Strings in, labels out: a trained tree classifier that reads plain sentences (section 10.6).

`tree_classifier` takes encoded trees (token ids, children, a level schedule), which
`rnnzoo.data.trees` makes in Python. `tree_classifier_for_text(model, vocabulary)` wraps a
trained one, sharing its weights, into a model that takes a batch of sentences `(batch,)`
string and returns a label at every node and at the root. Everything between is in the
graph, so the `.keras` file and the exported SavedModel take strings:

1. `SentenceTree` splits each sentence at ASCII whitespace (`tf.strings.split`; a U+00A0
   inside `8 1/2` is part of the word), lowercases the words if the vocabulary does
   (`tf.strings.lower(encoding="utf-8")`), looks them up with a `keras.layers.StringLookup`
   built from the training `Vocabulary` (0 `<pad>`, 1 the unknown token, then its words: the
   ids `Vocabulary.token_id` gives), and builds a binary tree over the words by a fixed
   rule (`binarization`, see `rnnzoo.data.trees.binarize`): the children and the level
   schedule are computed from the number of words `n` by `sentence_tree_inputs` (`keras.ops`).
2. The numeric model computes the node and root logits; `TreeLabels` adds the argmax labels.

The same sentence through `rnnzoo.data.trees.sentence_tree` + `encode_trees` gives the same
arrays (tested), so the node numbering is `encode_trees`' pre-order: for `binarization="left"`
the internal nodes `0 .. n - 2` (the root 0) then the words at `n - 1 .. 2n - 2`; for `"right"`
node `2i` joins word `i` (node `2i + 1`) with the rest, the last word at `2n - 2`.

The string layer runs TensorFlow string ops (as Keras's `StringLookup` does), so the text
model runs and exports on the TensorFlow backend; on JAX, encode sentences with
`rnnzoo.data.trees.sentence_tree` and call the numeric model.
"""

import keras
import numpy as np
from keras import ops

from rnnzoo.data.trees import BINARIZATIONS, INPUT_KEYS, PAD_TOKEN, UNKNOWN_TOKEN, Vocabulary


def _check_binarization(binarization, name):
    if binarization not in BINARIZATIONS:
        raise ValueError(f"`{name}(binarization=...)` must be one of {list(BINARIZATIONS)}. "
                         f"Received: binarization={binarization!r}")


def sentence_tree_inputs(word_ids, lengths, binarization="left"):
    """The tree classifier's inputs for sentences of `lengths` words, binarized by a fixed rule.

    Pure `keras.ops` (any backend; lengths must be concrete on JAX, since they set the shapes).

    Args:
        word_ids: int `(batch, T)`, the word ids of each sentence, left-aligned (`T` at least
            the longest length).
        lengths: int `(batch,)`, each sentence's number of words, at least 1.
        binarization: `"left"` or `"right"` (see `rnnzoo.data.trees.binarize`).

    Returns:
        dict of int32 tensors as `encode_trees` makes them for `binarize(words, binarization)`:
        `token_ids` `(batch, N)`, `children` `(batch, N, 2)`, `schedule` `(batch, L, 1)`, with
        `N = 2 max(lengths) - 1` and `L = max(max(lengths) - 1, 1)`, padded with 0 / -1.

    Example:

    >>> out = sentence_tree_inputs(np.array([[7, 8, 9]]), np.array([3]), "left")
    >>> [ops.convert_to_numpy(out[k]).tolist() for k in ("token_ids", "children", "schedule")]
    [[[0, 0, 7, 8, 9]], [[[1, 4], [2, 3], [-1, -1], [-1, -1], [-1, -1]]], [[[1], [0]]]]
    """
    _check_binarization(binarization, "sentence_tree_inputs")
    word_ids = ops.cast(word_ids, "int32")
    lengths = ops.cast(lengths, "int32")
    longest = ops.max(lengths)
    n = ops.expand_dims(lengths, -1)  # (batch, 1)
    nodes = ops.expand_dims(ops.arange(2 * longest - 1, dtype="int32"), 0) + 0 * n  # (batch, N)
    levels = ops.expand_dims(ops.arange(ops.maximum(longest - 1, 1), dtype="int32"), 0)  # (1, L)
    if binarization == "left":  # internal nodes 0 .. n-2 (node j has height n-1-j), then the words
        internal = nodes < n - 1
        child = ops.stack([nodes + 1, 2 * n - 2 - nodes], axis=-1)  # (batch, N, 2)
        is_word = (nodes >= n - 1) & (nodes < 2 * n - 1)
        word = nodes - (n - 1)
        scheduled = n - 2 - levels  # height l + 1: node n - 2 - l
    else:  # node 2i joins word i (node 2i + 1) with node 2i + 2; the last word is node 2n - 2
        internal = (nodes % 2 == 0) & (nodes < 2 * n - 2)
        child = ops.stack([nodes + 1, nodes + 2], axis=-1)
        is_word = ((nodes % 2 == 1) & (nodes < 2 * n - 2)) | (nodes == 2 * n - 2)
        word = ops.where(nodes == 2 * n - 2, n - 1, (nodes - 1) // 2)
        scheduled = 2 * (n - 2 - levels)
    children = ops.where(ops.expand_dims(internal, -1), child, -1)
    word = ops.clip(word, 0, ops.shape(word_ids)[1] - 1)
    token_ids = ops.where(is_word, ops.take_along_axis(word_ids, word, axis=1), 0)
    schedule = ops.expand_dims(ops.where(levels < n - 1, scheduled, -1), -1)
    return {"token_ids": token_ids, "children": children, "schedule": schedule}


@keras.saving.register_keras_serializable(package="rnnzoo")
class SentenceTree(keras.layers.Layer):
    """Plain sentences -> the inputs of a `tree_classifier`: words, ids and a binary tree, in the graph.

    Each sentence is split at ASCII whitespace (space, tab, newline, CR, VT, FF; any other
    character, U+00A0 included, belongs to a word), lowercased if `lowercase`
    (`tf.strings.lower(encoding="utf-8")`, Unicode), looked up by a `keras.layers.StringLookup`
    (`mask_token="<pad>"` id 0, `oov_token=unknown_token` id 1, then `vocabulary`), and
    binarized by `binarization` (`sentence_tree_inputs`). A sentence with no word is one leaf
    whose word is the empty string. It maps exactly as `rnnzoo.data.trees.sentence_tree` then
    `encode_trees` with `Vocabulary(vocabulary, unknown_token, lowercase)` (tested), up to where
    Python's `str.lower` and TensorFlow's Unicode lowercasing differ (`lowercase=True` only; see
    docs/trees.md).

    TensorFlow string ops: the layer runs on the TensorFlow backend.

    Args:
        vocabulary: list of str, the words (`Vocabulary.tokens[2:]`), id 2 onwards.
        unknown_token: str, the token of id 1 (`Vocabulary.unknown_token`).
        lowercase: bool, lowercase words before the lookup (`Vocabulary.lowercase`).
        binarization: `"left"` or `"right"` (see `rnnzoo.data.trees.binarize`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        text: `(batch,)` string.

    Returns:
        dict of int32: `token_ids` `(batch, N)`, `children` `(batch, N, 2)`, `schedule`
        `(batch, L, 1)` (as `encode_trees`) and `num_nodes` `(batch,)`, each tree's `2n - 1`.
    """

    def __init__(self, vocabulary, unknown_token=UNKNOWN_TOKEN, lowercase=False, binarization="left", **kwargs):
        super().__init__(**kwargs)
        _check_binarization(binarization, "SentenceTree")
        if isinstance(vocabulary, str) or not all(isinstance(t, str) for t in vocabulary):
            raise TypeError(f"`SentenceTree(vocabulary=...)` must be a list of str (`Vocabulary.tokens[2:]`). "
                            f"Received: vocabulary={str(vocabulary)[:80]}")
        self.vocabulary = list(vocabulary)
        bad = [t for t in self.vocabulary if t in (PAD_TOKEN, unknown_token)]
        if bad:
            raise ValueError(f"`SentenceTree(vocabulary=...)` holds the words only, without {PAD_TOKEN!r} and the "
                             f"unknown token (`Vocabulary.tokens[2:]`). Received: {bad!r} in vocabulary")
        self.unknown_token = unknown_token
        self.lowercase = bool(lowercase)
        self.binarization = binarization
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, mask_token=PAD_TOKEN,
                                                oov_token=unknown_token, num_oov_indices=1, output_mode="int",
                                                name="string_lookup")

    @classmethod
    def from_vocabulary(cls, vocabulary, binarization="left", **kwargs):
        """A `SentenceTree` mapping words as `vocabulary` (a `rnnzoo.data.trees.Vocabulary`) does."""
        return cls(vocabulary.tokens[2:], unknown_token=vocabulary.unknown_token, lowercase=vocabulary.lowercase,
                   binarization=binarization, **kwargs)

    @property
    def vocabulary_size(self):
        return len(self.vocabulary) + 2

    def build(self, input_shape):
        self.lookup.build((None, None))
        self.built = True

    def call(self, text):
        import tensorflow as tf  # string ops (the layer runs on the TensorFlow backend)

        text = tf.convert_to_tensor(text, tf.string)
        if text.shape.rank == 2:  # (batch, 1), as `keras.Input(shape=(1,), dtype="string")` gives
            text = tf.squeeze(text, -1)
        words = tf.strings.split(text)  # ASCII whitespace only, as `rnnzoo.data.trees.split_sentence`
        lengths = tf.maximum(tf.cast(words.row_lengths(), tf.int32), 1)  # no word: one empty word
        words = tf.pad(words.to_tensor(""), [[0, 0], [0, 1]])  # (batch, T + 1), "" beyond each sentence
        if self.lowercase:
            words = tf.strings.lower(words, encoding="utf-8")
        word_ids = tf.cast(self.lookup(words), tf.int32)
        inputs = sentence_tree_inputs(word_ids, lengths, self.binarization)
        return {**inputs, "num_nodes": 2 * lengths - 1}

    def compute_output_spec(self, text):
        batch = text.shape[0]
        return {
            "token_ids": keras.KerasTensor((batch, None), "int32"),
            "children": keras.KerasTensor((batch, None, 2), "int32"),
            "schedule": keras.KerasTensor((batch, None, 1), "int32"),
            "num_nodes": keras.KerasTensor((batch,), "int32"),
        }

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "unknown_token": self.unknown_token,
                "lowercase": self.lowercase, "binarization": self.binarization}


@keras.saving.register_keras_serializable(package="rnnzoo")
class TreeLabels(keras.layers.Layer):
    """Argmax labels of node and root logits: `[node_logits, root_logits, num_nodes]` ->
    `{"node_labels": (batch, N) int32, -1 at padding nodes; "root_label": (batch,) int32}`."""

    def call(self, inputs):
        node_logits, root_logits, num_nodes = inputs
        node_labels = ops.cast(ops.argmax(node_logits, axis=-1), "int32")
        real = ops.expand_dims(ops.arange(ops.shape(node_labels)[1], dtype="int32"), 0) < ops.expand_dims(num_nodes, -1)
        return {"node_labels": ops.where(real, node_labels, -1),
                "root_label": ops.cast(ops.argmax(root_logits, axis=-1), "int32")}

    def compute_output_spec(self, inputs):
        node_logits = inputs[0]
        return {"node_labels": keras.KerasTensor(node_logits.shape[:2], "int32"),
                "root_label": keras.KerasTensor(node_logits.shape[:1], "int32")}


TEXT_OUTPUTS = ("node_logits", "root_logits", "node_labels", "root_label", "num_nodes")


@keras.saving.register_keras_serializable(package="rnnzoo")
class TextTreeClassifier(keras.Model):
    """The functional model `tree_classifier_for_text` returns: sentences in, node and root labels out.

    A plain functional model (saving, export); `predict` pads the node axis of batches of
    different sentence lengths (NaN logits, label -1) instead of failing to concatenate them,
    and `tree_model` / `sentence_tree` give the wrapped numeric model and the string layer.
    """

    @property
    def tree_model(self):
        """The numeric tree classifier inside (its weights are this model's)."""
        return next(layer for layer in self.layers if isinstance(layer, keras.Model))

    @property
    def sentence_tree(self):
        """The `SentenceTree` layer (vocabulary, lowercasing, binarization)."""
        return next(layer for layer in self.layers if isinstance(layer, SentenceTree))

    def predict(self, x, batch_size=32, verbose="auto", steps=None, callbacks=None):
        """Outputs for a list (or 1-D array) of sentences, `batch_size` at a time, as NumPy.

        Returns:
            dict: `node_logits` `(num_sentences, max_nodes, num_classes)` (NaN at padding
            nodes), `node_labels` `(num_sentences, max_nodes)` (-1 at padding), `root_logits`,
            `root_label`, `num_nodes` (sentence `i` has nodes `0 .. num_nodes[i] - 1`).
        """
        if steps is not None or callbacks:
            raise ValueError("`TextTreeClassifier.predict` takes sentences and `batch_size` only. "
                             f"Received: steps={steps!r}, callbacks={callbacks!r}")
        texts = np.asarray(x, dtype=object).reshape(-1)
        if not all(isinstance(t, (str, bytes)) for t in texts):
            raise TypeError(f"`TextTreeClassifier.predict` takes strings. Received: x={str(x)[:80]}")
        parts = []
        for start in range(0, len(texts), batch_size):
            outputs = self.predict_on_batch(np.asarray(texts[start: start + batch_size].tolist()))
            parts.append({k: np.asarray(v) for k, v in outputs.items()})
        if not parts:
            raise ValueError("`TextTreeClassifier.predict` needs at least one sentence. Received: x=[]")
        width = max(p["node_labels"].shape[1] for p in parts)
        result = {}
        for key in TEXT_OUTPUTS:
            values = []
            for p in parts:
                value = p[key]
                if key == "node_logits":
                    value = value.astype("float32")
                    value[p["node_labels"] < 0] = np.nan
                if key in ("node_logits", "node_labels"):
                    pad = [(0, 0), (0, width - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
                    value = np.pad(value, pad, constant_values=np.nan if key == "node_logits" else -1)
                values.append(value)
            result[key] = np.concatenate(values)
        return result


def _as_vocabulary(vocabulary):
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    if isinstance(vocabulary, (list, tuple)) and len(vocabulary) >= 2 and vocabulary[0] == PAD_TOKEN:
        return Vocabulary(vocabulary[2:], unknown_token=vocabulary[1])  # `Vocabulary.tokens` (a run's data.json)
    raise TypeError("`tree_classifier_for_text(vocabulary=...)` must be a `rnnzoo.data.trees.Vocabulary` or its "
                    f"`tokens` list ('{PAD_TOKEN}' first). Received: vocabulary={str(vocabulary)[:80]}")


def tree_classifier_for_text(model, vocabulary, binarization="left", *, name=None):
    """Wraps a numeric `tree_classifier` into a model that takes plain sentences (TensorFlow backend).

    The returned model shares `model`'s weights (training one trains the other); its
    `SentenceTree` layer holds the vocabulary, so the `.keras` file and the SavedModel of
    `rnnzoo.export.export_tree_classifier` take strings.

    Args:
        model: a `tree_classifier` (binary trees: `num_children=2`, or `combine="sum"`).
        vocabulary: the `rnnzoo.data.trees.Vocabulary` the model was trained with, or its
            `tokens` list (`"<pad>"`, the unknown token, the words; a run's `data.json`).
        binarization: `"left"` (default) or `"right"`, the tree built over the words (see
            `rnnzoo.data.trees.binarize`).
        name: str, default `model.name + "_text"`.

    Returns:
        A `TextTreeClassifier` taking `text` `(batch,)` string and returning `{"node_logits":
        (batch, N, num_classes), "root_logits": (batch, num_classes), "node_labels": (batch, N)
        int32 (-1 at padding nodes), "root_label": (batch,) int32, "num_nodes": (batch,)
        int32}`, nodes numbered as `encode_trees(sentence_tree(text, binarization))` numbers them.
    """
    _check_binarization(binarization, "tree_classifier_for_text")
    vocabulary = _as_vocabulary(vocabulary)
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("`tree_classifier_for_text` needs the TensorFlow backend (string ops); on "
                           f"{keras.backend.backend()}, encode sentences with `rnnzoo.data.trees.sentence_tree` and "
                           f"`encode_trees`, and call the numeric model. Received backend: {keras.backend.backend()}")
    inputs = getattr(model, "input", None)
    if not isinstance(model, keras.Model) or not isinstance(inputs, dict) or set(inputs) != set(INPUT_KEYS):
        raise TypeError("`tree_classifier_for_text(model=...)` must be a `tree_classifier` model (inputs "
                        f"{list(INPUT_KEYS)}). Received: model={type(model).__name__}")
    if inputs["children"].shape[-1] not in (None, 2):
        raise ValueError("`tree_classifier_for_text` builds binary trees; the model takes "
                         f"{inputs['children'].shape[-1]} children per node. Use `num_children=2` or `combine='sum'`. "
                         f"Received: children shape {inputs['children'].shape}")
    embedding = next((layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)), None)
    if embedding is not None and embedding.input_dim != len(vocabulary):
        raise ValueError("`tree_classifier_for_text` needs the vocabulary the model was trained with: the model "
                         f"embeds {embedding.input_dim} ids, the vocabulary has {len(vocabulary)}. "
                         f"Received: len(vocabulary)={len(vocabulary)}")
    text = keras.Input(shape=(), dtype="string", name="text")
    trees = SentenceTree.from_vocabulary(vocabulary, binarization, name="sentence_tree")(text)
    outputs = model({key: trees[key] for key in INPUT_KEYS})
    labels = TreeLabels(name="tree_labels")([outputs["node_logits"], outputs["root_logits"], trees["num_nodes"]])
    outputs = {"node_logits": outputs["node_logits"], "root_logits": outputs["root_logits"], **labels,
               "num_nodes": trees["num_nodes"]}
    return TextTreeClassifier(text, outputs, name=name or f"{model.name}_text")
