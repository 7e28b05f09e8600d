"""A tree classifier with a label at every node and at the root, as for the Stanford Sentiment
Treebank (section 10.6)."""

import math

import keras
import numpy as np
from keras import ops

from rnnzoo import losses
from rnnzoo.foundation import OrderedDatasetFit, is_dataset
from rnnzoo.layers.tree_layer import TreeLayer

IGNORE_LABEL = -1


@keras.saving.register_keras_serializable(package="rnnzoo")
class MaskedSparseCategoricalAccuracy(keras.metrics.Metric):
    """Sparse categorical accuracy over the entries whose label is not `ignore_class`.

    With node labels `(batch, nodes)` padded with -1 it is the accuracy over all real nodes of
    all trees seen since the last reset (a whole epoch in `fit`): the number of correct nodes
    over the number of real nodes, so each node counts once, whatever the size of its batch
    (Keras's `Mean` with a `(batch, nodes)` weight would weigh each batch by 1 / its padded
    node count). Counts are float32 (exact up to 2**24 nodes per epoch).

    Args:
        ignore_class: int, the label of entries to skip (padding).
        name: str.
        dtype: the dtype of the counts and the result.

    Example:

    >>> metric = MaskedSparseCategoricalAccuracy()
    >>> metric.update_state(np.array([[1, 0, -1]]), np.array([[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]]))
    >>> metric.update_state(np.array([[1]]), np.array([[[0.0, 1.0]]]))
    >>> float(metric.result())  # 2 of the 3 real nodes, not the mean of 1/2 and 1/1
    0.6666666...
    """

    def __init__(self, ignore_class=IGNORE_LABEL, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = ignore_class
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, self.ignore_class), self.dtype)
        if sample_weight is not None:
            weight = ops.cast(sample_weight, self.dtype)
            while len(weight.shape) < len(valid.shape):  # one weight per tree: the same for its nodes
                weight = ops.expand_dims(weight, -1)
            valid = valid * weight
        predicted = ops.cast(ops.argmax(y_pred, axis=-1), "int32")
        correct = ops.cast(ops.equal(predicted, y_true), self.dtype) * valid
        self.correct.assign_add(ops.sum(correct))
        self.count.assign_add(ops.sum(valid))

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def result(self):
        return ops.divide_no_nan(self.correct, self.count)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}


def num_real_nodes(inputs):
    """The number of real (not padding) nodes of each tree of an encoded batch, `(batch,)` int32.

    Padding nodes are the ones with no word (`token_ids` 0) and no children (`children` all
    -1); nodes are numbered in pre-order with the padding last, so tree `b` is nodes
    `0 .. num_real_nodes(inputs)[b] - 1`.
    """
    token_ids, children = np.asarray(inputs["token_ids"]), np.asarray(inputs["children"])
    real = (token_ids != 0) | (children >= 0).any(axis=-1)
    return real.sum(axis=1).astype("int32")


@keras.saving.register_keras_serializable(package="rnnzoo")
class TreeClassifier(OrderedDatasetFit, keras.Model):
    """The functional model `tree_classifier` returns, with `fit` and `predict` made for trees.

    It is a plain functional model (same inputs, outputs, weights, saving and export); two
    methods differ from `keras.Model`'s:

    * `fit(dataset)` on a `tf.data.Dataset` (e.g. `rnnzoo.data.trees.tree_dataset`) passes
      `shuffle=False` unless `shuffle` is given: a dataset orders itself
      (`tree_dataset(..., shuffle=True)`), and Keras would warn that `shuffle=True` is ignored.
    * `predict(x)` returns per-tree results without padding confusion (see `predict`).
    """

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Node and root logits of every tree, with the padding nodes masked.

        Args:
            x: an encoded batch (`{"token_ids", "children", "schedule"}` arrays, e.g.
                `split_inputs_targets(encode_trees(trees, vocabulary))[0]`) or a
                `tf.data.Dataset` of such inputs or of `(inputs, targets)` (`tree_dataset`),
                whose batches may have different numbers of nodes.
            batch_size, verbose, steps: as `keras.Model.predict` (`batch_size` for arrays only;
                `steps` takes that many batches of a dataset).
            callbacks: as `keras.Model.predict`, for arrays only.

        Returns:
            dict of NumPy arrays, one row per tree in input order:
            `root_logits` `(num_trees, num_classes)`; `node_logits` `(num_trees, max_nodes,
            num_classes)`, nodes in pre-order (node 0 is the root), NaN at padding nodes;
            `num_nodes` `(num_trees,)` int32, so tree `i`'s nodes are
            `node_logits[i, :num_nodes[i]]`. `predict_trees` gives a list with one entry per
            tree instead.
        """
        if not is_dataset(x):
            outputs = super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
            return _masked(outputs, num_real_nodes(x))
        if callbacks:
            raise ValueError("`TreeClassifier.predict` takes `callbacks` with array inputs only, not with a "
                             f"`tf.data.Dataset`. Received: callbacks={callbacks!r}")
        dataset = x.take(steps) if steps is not None else x
        total = int(dataset.cardinality())
        progress = keras.utils.Progbar(total if total >= 0 else None, verbose=1 if verbose == "auto" else verbose)
        batches = []
        for step, element in enumerate(dataset.as_numpy_iterator()):
            inputs = element[0] if isinstance(element, tuple) else element
            outputs = self.predict_on_batch(inputs)
            batches.append(_masked(outputs, num_real_nodes(inputs)))
            progress.update(step + 1)
        if not batches:
            raise ValueError("`TreeClassifier.predict` got an empty dataset. Received: x with 0 batches")
        width = max(b["node_logits"].shape[1] for b in batches)
        node_logits = [np.pad(b["node_logits"], [(0, 0), (0, width - b["node_logits"].shape[1]), (0, 0)],
                              constant_values=np.nan) for b in batches]
        return {"root_logits": np.concatenate([b["root_logits"] for b in batches]),
                "node_logits": np.concatenate(node_logits),
                "num_nodes": np.concatenate([b["num_nodes"] for b in batches])}


def _masked(outputs, num_nodes):
    node_logits = np.array(outputs["node_logits"], dtype="float32")
    padding = np.arange(node_logits.shape[1])[None, :] >= num_nodes[:, None]
    node_logits[padding] = np.nan
    return {"root_logits": np.asarray(outputs["root_logits"]), "node_logits": node_logits, "num_nodes": num_nodes}


def predict_trees(model, trees, vocabulary, *, batch_size=64, max_children=2):
    """Predictions for a list of `Tree`s, one dict per tree (NumPy; no `tf.data` needed).

    Args:
        model: a `tree_classifier` model (any model with its inputs and outputs).
        trees: list of `rnnzoo.data.trees.Tree` (their labels are not used).
        vocabulary: the `rnnzoo.data.trees.Vocabulary` the model was trained with.
        batch_size: int, trees per forward pass.
        max_children: int, as in `encode_trees` (the model's `num_children`).

    Returns:
        list, one dict per tree in order: `root_logits` `(num_classes,)`, `node_logits`
        `(num_nodes, num_classes)` (pre-order, node 0 the root), `root_label` (int, the argmax)
        and `node_labels` `(num_nodes,)`.

    Example:

    >>> from rnnzoo.data import trees as T
    >>> batch = T.parse_trees("(3 (2 a) (4 good))\\n(2 film)")
    >>> vocabulary = T.build_vocabulary(batch)
    >>> model = tree_classifier(len(vocabulary), 5, units=4, embedding_dim=2)
    >>> [p["node_logits"].shape for p in predict_trees(model, batch, vocabulary)]
    [(3, 5), (1, 5)]
    """
    from rnnzoo.data import trees as T

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`predict_trees(batch_size=...)` must be a positive integer. Received: batch_size={batch_size!r}")
    results = []
    for start in range(0, len(trees), batch_size):
        chunk = trees[start: start + batch_size]
        inputs = T.split_inputs_targets(T.encode_trees(chunk, vocabulary, max_children=max_children))[0]
        outputs = model.predict_on_batch(inputs)
        node_logits, root_logits = np.asarray(outputs["node_logits"]), np.asarray(outputs["root_logits"])
        for b, tree in enumerate(chunk):
            nodes = node_logits[b, : tree.num_nodes]
            results.append({"root_logits": root_logits[b], "node_logits": nodes,
                            "root_label": int(root_logits[b].argmax()), "node_labels": nodes.argmax(-1)})
    return results


def _non_negative(value):
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def tree_classifier(
    vocabulary_size,
    num_classes,
    *,
    embedding_dim=32,
    units=64,
    num_children=2,
    combine="concat",
    dropout=0.2,
    embedding_l2=1e-4,
    name="tree_classifier",
    **layer_kwargs,
):
    """Builds words-at-leaves trees -> class logits at every node and at the root.

    `x(n)` is the embedding of the node's word (`token_ids`; id 0, the "no word" of internal
    nodes, has its own learned embedding), a `TreeLayer` computes every node's state `h(n)`
    level by level, and one shared softmax layer `o(n) = c + V h(n)` classifies every node;
    the root's logits are also returned on their own. Compile it with
    `compile_tree_classifier`.

    Regularisation (SST's vocabulary makes the embedding most of the weights): in training,
    dropout on `x(n)` and on `h(n)` before the softmax, and an L2 penalty on the embedding
    matrix (`embedding_l2 * sum(E ** 2)` added to the loss). Neither acts at inference or in
    an export.

    Args:
        vocabulary_size: int, `len(vocabulary)` (`rnnzoo.data.trees.Vocabulary`).
        num_classes: int, number of node labels (5 for SST fine-grained).
        embedding_dim: int, size of `x(n)`.
        units: int, size of `h(n)`.
        num_children: int, K (`combine="concat"`).
        combine: `"concat"` or `"sum"`.
        dropout: float in [0, 1), the dropout rate of `x(n)` and of `h(n)` before the softmax
            (0 turns it off).
        embedding_l2: float >= 0, the L2 penalty of the embedding matrix (0 turns it off).
        name: str.
        **layer_kwargs: more `TreeLayer` arguments.

    Returns:
        A `TreeClassifier` (a functional `keras.Model`) taking a dict `{"token_ids": (batch,
        nodes), "children": (batch, nodes, K), "schedule": (batch, levels, width)}` (int32,
        every axis but K dynamic) and returning `{"node_logits": (batch, nodes, num_classes),
        "root_logits": (batch, num_classes)}`; its `predict` masks padding nodes.

    Example:

    >>> from rnnzoo.data import trees
    >>> batch = trees.encode_trees(trees.parse_trees("(3 (2 a) (4 good))"), trees.Vocabulary(["a", "good"]))
    >>> model = tree_classifier(vocabulary_size=4, num_classes=5, units=8)
    >>> out = model({k: batch[k] for k in ("token_ids", "children", "schedule")})
    >>> tuple(out["node_logits"].shape), tuple(out["root_logits"].shape)
    ((1, 3, 5), (1, 5))
    """
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"`tree_classifier(dropout=...)` must be a number in [0, 1). Received: dropout={dropout!r}")
    if not _non_negative(embedding_l2):
        raise ValueError("`tree_classifier(embedding_l2=...)` must be a finite number >= 0. "
                         f"Received: embedding_l2={embedding_l2!r}")
    k = num_children if combine == "concat" else None
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    children = keras.Input((None, k), dtype="int32", name="children")
    schedule = keras.Input((None, None), dtype="int32", name="schedule")
    regularizer = keras.regularizers.L2(embedding_l2) if embedding_l2 else None
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, embeddings_regularizer=regularizer,
                               name="embedding")(token_ids)
    if dropout:
        x = keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    root_states, node_states = TreeLayer(
        units, num_children=num_children, combine=combine, name="tree_layer", **layer_kwargs
    )([x, children, schedule])
    if dropout:
        state_dropout = keras.layers.Dropout(dropout, name="state_dropout")
        root_states, node_states = state_dropout(root_states), state_dropout(node_states)
    classifier = keras.layers.Dense(num_classes, name="classifier")
    outputs = {
        "node_logits": classifier(node_states),
        "root_logits": classifier(root_states),
    }
    inputs = {"token_ids": token_ids, "children": children, "schedule": schedule}
    return TreeClassifier(inputs, outputs, name=name)


def compile_tree_classifier(model, optimizer="adam", *, root_loss_weight=0.0, **compile_kwargs):
    """Compiles a `tree_classifier` with a masked node loss and node/root accuracies.

    The loss is the cross-entropy averaged over the real nodes of the batch, each node counting
    the same (the root is one of the nodes; padding labels -1 are ignored), as Socher et al.
    (2013) trained on SST, plus `root_loss_weight` times the cross-entropy of the roots alone,
    plus the model's regularisation (`tree_classifier(embedding_l2=...)`).

    Args:
        model: a `tree_classifier` model.
        optimizer: a Keras optimizer or its name.
        root_loss_weight: float >= 0, default 0 (off). A positive weight counts each root
            `1 + root_loss_weight` times and every other node once. On the real SST, weight 1
            made the model memorise the training roots (reported in rnnzoo's issue 15, with the
            earlier model without dropout or L2: train root accuracy 99%, development 31-37%,
            test 34.3% fine-grained, against 40.8% with weight 0); consider it only when few
            nodes besides the root carry labels.
        **compile_kwargs: more `model.compile` arguments (e.g. `jit_compile`).

    Metrics: `node_logits_accuracy`, the accuracy over all real nodes, each node counting once
    over the epoch (`MaskedSparseCategoricalAccuracy`), and `root_logits_accuracy` (roots only).
    """
    if not _non_negative(root_loss_weight):
        raise ValueError("`compile_tree_classifier(root_loss_weight=...)` must be a finite number >= 0. "
                         f"Received: root_loss_weight={root_loss_weight!r}")
    model.compile(
        optimizer=optimizer,
        loss={
            "node_logits": losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_LABEL),
            "root_logits": losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"node_logits": 1.0, "root_logits": float(root_loss_weight)},
        metrics={
            "node_logits": [MaskedSparseCategoricalAccuracy(name="accuracy")],
            "root_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        },
        **compile_kwargs,
    )
    return model
