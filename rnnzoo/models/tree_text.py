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

With `input_format="bracketed"`, `BracketedTree` replaces step 1: each string is one bracketed
tree (an SST line), parsed in the graph into the same arrays as `parse_tree` + `encode_trees`.

The same sentence through `rnnzoo.data.trees.sentence_tree` + `encode_trees` gives the same
arrays (tested), so the node numbering is `encode_trees`' pre-order: for `binarization="left"`
the internal nodes `0 .. n - 2` (the root 0) then the words at `n - 1 .. 2n - 2`; for `"right"`
node `2i` joins word `i` (node `2i + 1`) with the rest, the last word at `2n - 2`.

The string layer runs TensorFlow string ops (as Keras's `StringLookup` does), so the text
model runs and exports on the TensorFlow backend; on JAX (where its `.keras` file loads but
raises when called), encode sentences with `rnnzoo.data.trees.sentence_tree` and call the
numeric model (`TextTreeClassifier.tree_model`).
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


class _WordLookup(keras.layers.Layer):
    """The vocabulary part shared by `SentenceTree` and `BracketedTree`: words -> ids as `Vocabulary`."""

    def __init__(self, vocabulary, unknown_token=UNKNOWN_TOKEN, lowercase=False, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if isinstance(vocabulary, str) or not all(isinstance(t, str) for t in vocabulary):
            raise TypeError(f"`{name}(vocabulary=...)` must be a list of str (`Vocabulary.tokens[2:]`). "
                            f"Received: vocabulary={str(vocabulary)[:80]}")
        self.vocabulary = list(vocabulary)
        bad = [t for t in self.vocabulary if t in (PAD_TOKEN, unknown_token)]
        if bad:
            raise ValueError(f"`{name}(vocabulary=...)` holds the words only, without {PAD_TOKEN!r} and the "
                             f"unknown token (`Vocabulary.tokens[2:]`). Received: {bad!r} in vocabulary")
        self.unknown_token = unknown_token
        self.lowercase = bool(lowercase)
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary, mask_token=PAD_TOKEN,
                                                oov_token=unknown_token, num_oov_indices=1, output_mode="int",
                                                name="string_lookup")

    @property
    def vocabulary_size(self):
        return len(self.vocabulary) + 2

    def build(self, input_shape):
        self.lookup.build((None, None))
        self.built = True

    def word_ids(self, words):
        """String words (any shape) -> int32 ids, lowercased first if `lowercase` (TensorFlow)."""
        import tensorflow as tf

        if self.lowercase:
            words = tf.strings.lower(words, encoding="utf-8")
        return tf.cast(self.lookup(words), tf.int32)

    @staticmethod
    def _text(text):
        import tensorflow as tf

        text = tf.convert_to_tensor(text, tf.string)
        if text.shape.rank == 2:  # (batch, 1), as `keras.Input(shape=(1,), dtype="string")` gives
            text = tf.squeeze(text, -1)
        return text

    def get_config(self):
        return {**super().get_config(), "vocabulary": self.vocabulary, "unknown_token": self.unknown_token,
                "lowercase": self.lowercase}


@keras.saving.register_keras_serializable(package="rnnzoo")
class SentenceTree(_WordLookup):
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
        _check_binarization(binarization, "SentenceTree")
        super().__init__(vocabulary, unknown_token=unknown_token, lowercase=lowercase, **kwargs)
        self.binarization = binarization

    @classmethod
    def from_vocabulary(cls, vocabulary, binarization="left", **kwargs):
        """A `SentenceTree` mapping words as `vocabulary` (a `rnnzoo.data.trees.Vocabulary`) does."""
        return cls(vocabulary.tokens[2:], unknown_token=vocabulary.unknown_token, lowercase=vocabulary.lowercase,
                   binarization=binarization, **kwargs)

    def call(self, text):
        import tensorflow as tf  # string ops (the layer runs on the TensorFlow backend)

        words = tf.strings.split(self._text(text))  # ASCII whitespace only, as `rnnzoo.data.trees.split_sentence`
        lengths = tf.maximum(tf.cast(words.row_lengths(), tf.int32), 1)  # no word: one empty word
        words = tf.pad(words.to_tensor(""), [[0, 0], [0, 1]])  # (batch, T + 1), "" beyond each sentence
        inputs = sentence_tree_inputs(self.word_ids(words), lengths, self.binarization)
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
        return {**super().get_config(), "binarization": self.binarization}


def _shift(tokens, offset):
    """`tokens[:, k + offset]` at every `k` (TensorFlow strings `(batch, M)`), "" beyond either end."""
    import tensorflow as tf

    if offset > 0:
        return tf.concat([tokens[:, offset:], tf.fill([tf.shape(tokens)[0], offset], "")], axis=1)
    return tf.concat([tf.fill([tf.shape(tokens)[0], -offset], ""), tokens[:, :offset]], axis=1)


@keras.saving.register_keras_serializable(package="rnnzoo")
class BracketedTree(_WordLookup):
    """Bracketed trees (SST lines) -> the inputs of a `tree_classifier` and the gold labels, in the graph.

    Parses `(3 (2 a) (4 good))` with TensorFlow ops: tokens as `rnnzoo.data.trees.parse_tree`
    finds them (brackets, and runs of anything but brackets and ASCII whitespace: U+00A0 is part
    of a word), nodes in pre-order (the order of their `(`), each node's parent (the nearest
    earlier node one level up), its child slot, its height and the level schedule, and each
    leaf's word looked up as `Vocabulary.token_id` does (ids by `keras.layers.StringLookup`). The
    result equals `encode_trees([parse_tree(text)], vocabulary, max_children=num_children)`
    (tested). Memory is quadratic in the number of nodes of a tree (pairwise comparisons).

    A string `parse_tree` (or `encode_tree`'s arity check) rejects is not an error here but an
    invalid tree: `valid` False, no nodes (`num_nodes` 0, labels -1), and the model's logits NaN
    (`TreeLabels`). Checked: balanced brackets and one root, an integer label (at most
    2**31 - 1) after every `(`, a word or children (not both) in every node, one word per
    leaf, at most `num_children` children. Not checked: `parse_tree`'s `max_depth`.

    Args:
        vocabulary, unknown_token, lowercase: as `SentenceTree`.
        num_children: int, K, the most children of a node (2 for SST).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        text: `(batch,)` string, one bracketed tree each.

    Returns:
        dict of int32: `token_ids` `(batch, N)`, `children` `(batch, N, K)`, `schedule`
        `(batch, L, W)`, `labels` `(batch, N)` (the labels in the string, -1 at padding),
        `num_nodes` `(batch,)`, and `valid` `(batch,)` bool.
    """

    def __init__(self, vocabulary, unknown_token=UNKNOWN_TOKEN, lowercase=False, num_children=2, **kwargs):
        if isinstance(num_children, bool) or not isinstance(num_children, int) or num_children < 1:
            raise ValueError(f"`BracketedTree(num_children=...)` must be a positive integer. "
                             f"Received: num_children={num_children!r}")
        super().__init__(vocabulary, unknown_token=unknown_token, lowercase=lowercase, **kwargs)
        self.num_children = num_children

    @classmethod
    def from_vocabulary(cls, vocabulary, num_children=2, **kwargs):
        """A `BracketedTree` mapping words as `vocabulary` (a `rnnzoo.data.trees.Vocabulary`) does."""
        return cls(vocabulary.tokens[2:], unknown_token=vocabulary.unknown_token, lowercase=vocabulary.lowercase,
                   num_children=num_children, **kwargs)

    def call(self, text):
        import tensorflow as tf  # string ops (the layer runs on the TensorFlow backend)

        k = self.num_children
        tokens = tf.strings.split(tf.strings.regex_replace(self._text(text), r"([()])", r" \1 "))
        count = tf.cast(tokens.row_lengths(), tf.int32)  # (batch,)
        tokens = tokens.to_tensor("")  # (batch, M)
        batch, m = tf.shape(tokens)[0], tf.shape(tokens)[1]
        position = tf.range(m)[tf.newaxis]
        real = position < count[:, tf.newaxis]
        is_open, is_close = tf.equal(tokens, "("), tf.equal(tokens, ")")
        depth = tf.cumsum(tf.cast(is_open, tf.int32) - tf.cast(is_close, tf.int32), axis=1)  # after each token
        before, after, before2 = _shift(tokens, -1), _shift(tokens, 1), _shift(tokens, -2)
        last = tf.equal(position, count[:, tf.newaxis] - 1)
        # One root: depth >= 1 after every token but the last, 0 after the last.
        balanced = tf.reduce_all(tf.where(real & ~last, depth >= 1, True), axis=1) & tf.reduce_any(
            last & tf.equal(depth, 0), axis=1)
        is_label = tf.equal(before, "(")
        digits = tf.strings.regex_full_match(tokens, "[0-9]{1,10}")
        value = tf.strings.to_number(tf.where(digits, tokens, "0"), tf.int64)
        label_ok = digits & (value <= 2**31 - 1) & tf.not_equal(after, ")")  # a label, then a word or a child
        is_word = real & ~is_open & ~is_close & ~is_label
        word_ok = tf.equal(before2, "(") & tf.equal(after, ")")  # `(label word)`: one word, no children
        well_formed = balanced & tf.reduce_all(tf.where(is_label, label_ok, True), axis=1) & tf.reduce_all(
            tf.where(is_word, word_ok, True), axis=1)

        # Nodes, in pre-order: the positions of their "(".
        num_nodes = tf.reduce_sum(tf.cast(is_open & real, tf.int32), axis=1)
        width = tf.maximum(tf.reduce_max(num_nodes), 1)
        opens = tf.ragged.boolean_mask(tf.broadcast_to(position, tf.shape(tokens)), is_open & real)
        at = opens.to_tensor(-1, shape=tf.stack([tf.cast(batch, tf.int64), tf.cast(width, tf.int64)]))  # (batch, N)
        node = at >= 0
        at = tf.maximum(at, 0)
        level = tf.gather(depth, at, batch_dims=1)  # (batch, N), the root 1
        ids = tf.range(width)
        earlier = ids[tf.newaxis, tf.newaxis, :] < ids[tf.newaxis, :, tf.newaxis]  # [., n, m]: m < n
        later = ids[tf.newaxis, tf.newaxis, :] > ids[tf.newaxis, :, tf.newaxis]
        other = node[:, tf.newaxis, :]
        parent = tf.reduce_max(tf.where(earlier & other & tf.equal(level[:, tf.newaxis, :], level[:, :, tf.newaxis] - 1),
                                        ids[tf.newaxis, tf.newaxis, :], -1), axis=2)  # the nearest earlier one level up
        slot = tf.reduce_sum(tf.cast(earlier & other & tf.equal(parent[:, tf.newaxis, :], parent[:, :, tf.newaxis]),
                                     tf.int32), axis=2)
        has_parent = node & (parent >= 0)
        arity_ok = ~tf.reduce_any(has_parent & (slot >= k), axis=1)
        # Height: the deepest node before the first later node at the same level or above.
        end = tf.reduce_min(tf.where(later & other & (level[:, tf.newaxis, :] <= level[:, :, tf.newaxis]),
                                     ids[tf.newaxis, tf.newaxis, :], width), axis=2)
        inside = later & other & (ids[tf.newaxis, tf.newaxis, :] < end[:, :, tf.newaxis])
        height = tf.reduce_max(tf.where(inside, level[:, tf.newaxis, :] - level[:, :, tf.newaxis], 0), axis=2)

        valid = well_formed & arity_ok
        keep = node & valid[:, tf.newaxis]  # an invalid tree keeps no node
        internal = keep & (height > 0)
        rank = tf.reduce_sum(tf.cast(earlier & internal[:, tf.newaxis, :]
                                     & tf.equal(height[:, tf.newaxis, :], height[:, :, tf.newaxis]), tf.int32), axis=2)
        where_child = tf.where(keep & has_parent)  # (P, 2): [tree, node]
        children = tf.tensor_scatter_nd_update(
            tf.fill([batch, width, k], -1),
            tf.stack([where_child[:, 0], tf.cast(tf.gather_nd(parent, where_child), tf.int64),
                      tf.cast(tf.gather_nd(slot, where_child), tf.int64)], axis=1),
            tf.cast(where_child[:, 1], tf.int32))
        where_internal = tf.where(internal)
        levels = tf.maximum(tf.reduce_max(tf.where(internal, height, 0)), 1)
        level_width = tf.maximum(tf.reduce_max(tf.where(internal, rank + 1, 0)), 1)
        schedule = tf.tensor_scatter_nd_update(
            tf.fill([batch, levels, level_width], -1),
            tf.stack([where_internal[:, 0], tf.cast(tf.gather_nd(height, where_internal) - 1, tf.int64),
                      tf.cast(tf.gather_nd(rank, where_internal), tf.int64)], axis=1),
            tf.cast(where_internal[:, 1], tf.int32))
        words = tf.gather(tokens, tf.minimum(at + 2, m - 1), batch_dims=1)
        leaf = keep & ~internal
        token_ids = tf.where(leaf, self.word_ids(words), 0)
        labels = tf.gather(tf.cast(value, tf.int32), tf.minimum(at + 1, m - 1), batch_dims=1)
        return {"token_ids": token_ids, "children": children, "schedule": schedule,
                "labels": tf.where(keep, labels, -1), "num_nodes": tf.where(valid, num_nodes, 0), "valid": valid}

    def compute_output_spec(self, text):
        batch = text.shape[0]
        return {
            "token_ids": keras.KerasTensor((batch, None), "int32"),
            "children": keras.KerasTensor((batch, None, self.num_children), "int32"),
            "schedule": keras.KerasTensor((batch, None, None), "int32"),
            "labels": keras.KerasTensor((batch, None), "int32"),
            "num_nodes": keras.KerasTensor((batch,), "int32"),
            "valid": keras.KerasTensor((batch,), "bool"),
        }

    def get_config(self):
        return {**super().get_config(), "num_children": self.num_children}


@keras.saving.register_keras_serializable(package="rnnzoo")
class TreeLabels(keras.layers.Layer):
    """Argmax labels of node and root logits.

    Call arguments:
        inputs: `[node_logits, root_logits, num_nodes]`, or with a fourth `valid` `(batch,)`
            bool (`BracketedTree`): an invalid tree's logits become NaN and its labels -1.

    Returns:
        dict: `node_logits`, `root_logits` (as given, NaN for invalid trees), `node_labels`
        `(batch, N)` int32 (-1 at padding nodes), `root_label` `(batch,)` int32 (-1 if invalid).
    """

    def call(self, inputs):
        node_logits, root_logits, num_nodes = inputs[:3]
        node_labels = ops.cast(ops.argmax(node_logits, axis=-1), "int32")
        real = ops.expand_dims(ops.arange(ops.shape(node_labels)[1], dtype="int32"), 0) < ops.expand_dims(num_nodes, -1)
        root_label = ops.cast(ops.argmax(root_logits, axis=-1), "int32")
        if len(inputs) == 4:
            valid = ops.cast(inputs[3], "bool")
            root_label = ops.where(valid, root_label, -1)
            nan = ops.cast(float("nan"), node_logits.dtype)
            node_logits = ops.where(ops.reshape(valid, (-1, 1, 1)), node_logits, nan)
            root_logits = ops.where(ops.reshape(valid, (-1, 1)), root_logits, nan)
        return {"node_logits": node_logits, "root_logits": root_logits,
                "node_labels": ops.where(real, node_labels, -1), "root_label": root_label}

    def compute_output_spec(self, inputs):
        node_logits, root_logits = inputs[:2]
        return {"node_logits": keras.KerasTensor(node_logits.shape, node_logits.dtype),
                "root_logits": keras.KerasTensor(root_logits.shape, root_logits.dtype),
                "node_labels": keras.KerasTensor(node_logits.shape[:2], "int32"),
                "root_label": keras.KerasTensor(node_logits.shape[:1], "int32")}


INPUT_FORMATS = ("sentence", "bracketed")


@keras.saving.register_keras_serializable(package="rnnzoo")
class TextTreeClassifier(keras.Model):
    """The functional model `tree_classifier_for_text` returns: strings in, node and root labels out.

    A plain functional model (saving, export); `predict` pads the node axis of batches of
    different sizes (NaN logits, label -1) instead of failing to concatenate them, and
    `tree_model` / `text_layer` give the wrapped numeric model and the string layer.
    """

    def __call__(self, *args, **kwargs):
        if keras.backend.backend() != "tensorflow":  # a `.keras` file loads on any backend; strings run on TF
            raise RuntimeError(f"`TextTreeClassifier` runs on the TensorFlow backend (string ops); on "
                               f"{keras.backend.backend()}, call its `tree_model` on `rnnzoo.data.trees.encode_trees` "
                               f"arrays. Received backend: {keras.backend.backend()}")
        return super().__call__(*args, **kwargs)

    @property
    def tree_model(self):
        """The numeric tree classifier inside (its weights are this model's)."""
        return next(layer for layer in self.layers if isinstance(layer, keras.Model))

    @property
    def text_layer(self):
        """The `SentenceTree` or `BracketedTree` layer (vocabulary, lowercasing, binarization)."""
        return next(layer for layer in self.layers if isinstance(layer, _WordLookup))

    def predict(self, x, batch_size=32, verbose="auto", steps=None, callbacks=None):
        """Outputs for a list (or 1-D array) of strings, `batch_size` at a time, as NumPy.

        Returns:
            dict: `node_logits` `(num_texts, max_nodes, num_classes)` (NaN at padding nodes),
            `node_labels` `(num_texts, max_nodes)` (-1 at padding), `root_logits`, `root_label`,
            `num_nodes` (text `i` has nodes `0 .. num_nodes[i] - 1`); for bracketed trees also
            `labels` (-1 at padding) and `valid`.
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
        for key in parts[0]:
            values = []
            for p in parts:
                value = p[key]
                if key == "node_logits":
                    value = value.astype("float32")
                    value[p["node_labels"] < 0] = np.nan
                if key in ("node_logits", "node_labels", "labels"):
                    pad = [(0, 0), (0, width - value.shape[1])] + [(0, 0)] * (value.ndim - 2)
                    value = np.pad(value, pad, constant_values=np.nan if key == "node_logits" else -1)
                values.append(value)
            result[key] = np.concatenate(values)
        return result


def as_vocabulary(vocabulary, name="tree_classifier_for_text"):
    """A `rnnzoo.data.trees.Vocabulary` from itself or from its `tokens` list (`"<pad>"`, unknown, words)."""
    if isinstance(vocabulary, Vocabulary):
        return vocabulary
    if isinstance(vocabulary, (list, tuple)) and len(vocabulary) >= 2 and vocabulary[0] == PAD_TOKEN:
        return Vocabulary(vocabulary[2:], unknown_token=vocabulary[1])  # `Vocabulary.tokens` (a run's data.json)
    raise TypeError(f"`{name}(vocabulary=...)` must be a `rnnzoo.data.trees.Vocabulary` or its "
                    f"`tokens` list ('{PAD_TOKEN}' first). Received: vocabulary={str(vocabulary)[:80]}")


def tree_classifier_for_text(model, vocabulary, binarization="left", *, input_format="sentence", name=None):
    """Wraps a numeric `tree_classifier` into a model that takes strings (TensorFlow backend).

    The returned model shares `model`'s weights (training one trains the other); its string
    layer holds the vocabulary, so the `.keras` file and the SavedModel of
    `rnnzoo.export.export_tree_classifier` take strings.

    Args:
        model: a `tree_classifier` (binary trees: `num_children=2`, or `combine="sum"`).
        vocabulary: the `rnnzoo.data.trees.Vocabulary` the model was trained with, or its
            `tokens` list (`"<pad>"`, the unknown token, the words; a run's `data.json`).
        binarization: `"left"` (default) or `"right"`, the tree built over a sentence's words
            (see `rnnzoo.data.trees.binarize`); not used for bracketed trees.
        input_format: `"sentence"` (default; `SentenceTree`) or `"bracketed"`, one bracketed
            tree per string such as an SST line (`BracketedTree`; its labels are returned as
            `labels`, not used by the model).
        name: str, default `model.name + "_text"`.

    Returns:
        A `TextTreeClassifier` taking `text` `(batch,)` string and returning `{"node_logits":
        (batch, N, num_classes), "root_logits": (batch, num_classes), "node_labels": (batch, N)
        int32 (-1 at padding nodes), "root_label": (batch,) int32, "num_nodes": (batch,)
        int32}`, nodes numbered as `encode_trees` numbers `sentence_tree(text, binarization)`
        (or `parse_tree(text)`); bracketed trees also give `labels` `(batch, N)` int32 and
        `valid` `(batch,)` bool (an invalid string gets NaN logits and label -1).
    """
    if input_format not in INPUT_FORMATS:
        raise ValueError(f"`tree_classifier_for_text(input_format=...)` must be one of {list(INPUT_FORMATS)}. "
                         f"Received: input_format={input_format!r}")
    _check_binarization(binarization, "tree_classifier_for_text")
    vocabulary = as_vocabulary(vocabulary)
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError("`tree_classifier_for_text` needs the TensorFlow backend (string ops); on "
                           f"{keras.backend.backend()}, encode sentences with `rnnzoo.data.trees.sentence_tree` and "
                           f"`encode_trees`, and call the numeric model. Received backend: {keras.backend.backend()}")
    inputs = getattr(model, "input", None)
    if not isinstance(model, keras.Model) or not isinstance(inputs, dict) or set(inputs) != set(INPUT_KEYS):
        raise TypeError("`tree_classifier_for_text(model=...)` must be a `tree_classifier` model (inputs "
                        f"{list(INPUT_KEYS)}). Received: model={type(model).__name__}")
    num_children = inputs["children"].shape[-1]
    if input_format == "sentence" and num_children not in (None, 2):
        raise ValueError("`tree_classifier_for_text` builds binary trees from sentences; the model takes "
                         f"{num_children} children per node. Use `num_children=2` or `combine='sum'`. "
                         f"Received: children shape {inputs['children'].shape}")
    embedding = next((layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)), None)
    if embedding is not None and embedding.input_dim != len(vocabulary):
        raise ValueError("`tree_classifier_for_text` needs the vocabulary the model was trained with: the model "
                         f"embeds {embedding.input_dim} ids, the vocabulary has {len(vocabulary)}. "
                         f"Received: len(vocabulary)={len(vocabulary)}")
    text = keras.Input(shape=(), dtype="string", name="text")
    if input_format == "sentence":
        trees = SentenceTree.from_vocabulary(vocabulary, binarization, name="sentence_tree")(text)
    else:
        trees = BracketedTree.from_vocabulary(vocabulary, num_children=num_children or 2, name="bracketed_tree")(text)
    outputs = model({key: trees[key] for key in INPUT_KEYS})
    valid = [trees["valid"]] if "valid" in trees else []
    outputs = TreeLabels(name="tree_labels")([outputs["node_logits"], outputs["root_logits"], trees["num_nodes"],
                                              *valid])
    outputs = {**outputs, "num_nodes": trees["num_nodes"]}
    if valid:
        outputs.update(labels=trees["labels"], valid=trees["valid"])
    return TextTreeClassifier(text, outputs, name=name or f"{model.name}_text")
