"""A tree classifier with a label at every node and at the root, as for the Stanford Sentiment
Treebank (section 10.6)."""

import keras
from keras import ops

from rnnzoo.layers.tree_layer import TreeLayer

IGNORE_LABEL = -1


@keras.saving.register_keras_serializable(package="rnnzoo")
class MaskedSparseCategoricalAccuracy(keras.metrics.Mean):
    """Sparse categorical accuracy over the entries whose label is not `ignore_class`.

    With node labels `(batch, nodes)` padded with -1 it is the accuracy over all real nodes of
    all trees (not the mean of per-batch accuracies: each node counts once).

    Args:
        ignore_class: int, the label of entries to skip (padding).
        name: str.
    """

    def __init__(self, ignore_class=IGNORE_LABEL, name="accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_class = ignore_class

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, self.ignore_class), self.dtype)
        correct = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), self.dtype)
        if sample_weight is not None:
            valid = valid * ops.cast(sample_weight, self.dtype)
        return super().update_state(correct, sample_weight=valid)

    def get_config(self):
        return {**super().get_config(), "ignore_class": self.ignore_class}


def tree_classifier(
    vocabulary_size,
    num_classes,
    *,
    embedding_dim=32,
    units=64,
    num_children=2,
    combine="concat",
    name="tree_classifier",
    **layer_kwargs,
):
    """Builds words-at-leaves trees -> class logits at every node and at the root.

    `x(n)` is the embedding of the node's word (`token_ids`; id 0, the "no word" of internal
    nodes, has its own learned embedding), a `TreeLayer` computes every node's state `h(n)`
    level by level, and one shared softmax layer `o(n) = c + V h(n)` classifies every node;
    the root's logits are also returned on their own. Compile it with
    `compile_tree_classifier`.

    Args:
        vocabulary_size: int, `len(vocabulary)` (`rnnzoo.data.trees.Vocabulary`).
        num_classes: int, number of node labels (5 for SST fine-grained).
        embedding_dim: int, size of `x(n)`.
        units: int, size of `h(n)`.
        num_children: int, K (`combine="concat"`).
        combine: `"concat"` or `"sum"`.
        name: str.
        **layer_kwargs: more `TreeLayer` arguments.

    Returns:
        A functional `keras.Model` taking a dict `{"token_ids": (batch, nodes), "children":
        (batch, nodes, K), "schedule": (batch, levels, width)}` (int32, every axis but K
        dynamic) and returning `{"node_logits": (batch, nodes, num_classes), "root_logits":
        (batch, num_classes)}`.

    Example:

    >>> from rnnzoo.data import trees
    >>> batch = trees.encode_trees(trees.parse_trees("(3 (2 a) (4 good))"), trees.Vocabulary(["a", "good"]))
    >>> model = tree_classifier(vocabulary_size=4, num_classes=5, units=8)
    >>> out = model({k: batch[k] for k in ("token_ids", "children", "schedule")})
    >>> tuple(out["node_logits"].shape), tuple(out["root_logits"].shape)
    ((1, 3, 5), (1, 5))
    """
    k = num_children if combine == "concat" else None
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    children = keras.Input((None, k), dtype="int32", name="children")
    schedule = keras.Input((None, None), dtype="int32", name="schedule")
    x = keras.layers.Embedding(vocabulary_size, embedding_dim, name="embedding")(token_ids)
    root_states, node_states = TreeLayer(
        units, num_children=num_children, combine=combine, name="tree_layer", **layer_kwargs
    )([x, children, schedule])
    classifier = keras.layers.Dense(num_classes, name="classifier")
    outputs = {
        "node_logits": classifier(node_states),
        "root_logits": classifier(root_states),
    }
    inputs = {"token_ids": token_ids, "children": children, "schedule": schedule}
    return keras.Model(inputs, outputs, name=name)


def compile_tree_classifier(model, optimizer="adam", *, root_loss_weight=1.0, **compile_kwargs):
    """Compiles a `tree_classifier` with a masked node loss and node/root accuracies.

    The node loss is the cross-entropy averaged over real nodes only (labels -1, the padding,
    are ignored); the root loss is the cross-entropy of the roots. Metrics:
    `node_logits_accuracy` (all nodes) and `root_logits_accuracy` (roots only).
    """
    model.compile(
        optimizer=optimizer,
        loss={
            "node_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=IGNORE_LABEL),
            "root_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        },
        loss_weights={"node_logits": 1.0, "root_logits": root_loss_weight},
        metrics={
            "node_logits": [MaskedSparseCategoricalAccuracy(name="accuracy")],
            "root_logits": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        },
        **compile_kwargs,
    )
    return model
