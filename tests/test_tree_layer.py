"""TreeLayer / TreeCell / tree_classifier: the recursive definition, batching, Keras contract, learning."""

import keras
import numpy as np
import pytest

from rnnzoo.cells import TreeCell
from rnnzoo.data import trees as T
from rnnzoo.layers import TreeLayer
from rnnzoo.layers.tree_layer import recursive_tree_states
from rnnzoo.models import MaskedSparseCategoricalAccuracy, compile_tree_classifier, tree_classifier
from rnnzoo.testing import run_layer_test

FEATURES = 3


def _nary_trees(num_trees, seed):
    """Random trees with 1 to 4 children per internal node (for `combine="sum"`)."""
    rng = np.random.default_rng(seed)

    def grow(budget):
        if budget <= 1 or rng.random() < 0.3:
            return T.Tree(0, (), f"w{rng.integers(9)}")
        arity = int(rng.integers(1, 5))
        return T.Tree(0, tuple(grow(budget // arity) for _ in range(arity)))

    return [grow(int(rng.integers(2, 14))) for _ in range(num_trees)]


def _batch(trees, max_children=2, seed=0):
    vocabulary = T.Vocabulary([f"w{i}" for i in range(100)])
    batch = T.encode_trees(trees, vocabulary, max_children=max_children)
    table = np.random.default_rng(seed).normal(size=(len(vocabulary), FEATURES)).astype("float32")
    x = table[batch["token_ids"]]
    x[batch["token_ids"] == 0] = 0.0  # no input at internal nodes, as in a treebank
    return x, batch["children"], batch["schedule"]


@pytest.mark.parametrize(
    "combine, make_trees, max_children",
    [
        ("concat", lambda: T.random_binary_trees(5, min_nodes=1, max_nodes=25, seed=1), 2),
        ("sum", lambda: _nary_trees(5, seed=2), None),
    ],
    ids=["binary-concat", "nary-childsum"],
)
def test_layer_equals_plain_recursion(combine, make_trees, max_children):
    trees = make_trees()
    x, children, schedule = _batch(trees, max_children)
    layer = TreeLayer(4, combine=combine, bias_initializer="random_normal")
    root, nodes = layer([x, children, schedule])
    root, nodes = np.asarray(root), np.asarray(nodes)
    assert len({t.num_nodes for t in trees}) > 1 and schedule.shape[1] > 1
    for b, tree in enumerate(trees):
        m = tree.num_nodes
        expected = recursive_tree_states(layer.cell, x[b, :m], children[b, :m])
        np.testing.assert_allclose(nodes[b, :m], expected, atol=1e-6)
        np.testing.assert_allclose(root[b], expected[0], atol=1e-6)



def _chain(depth, arity=2):
    """A tree of `depth` levels: each internal node has one internal child and `arity - 1` leaves."""
    tree = T.Tree(0, (), "w1")
    for i in range(depth):
        tree = T.Tree(0, (tree,) + tuple(T.Tree(0, (), f"w{(i + j) % 9 + 2}") for j in range(arity - 1)))
    return tree


@pytest.mark.parametrize("combine", ["concat", "sum"])
def test_inference_loop_in_blocks_equals_the_training_loop_and_the_recursion(combine):
    # On TensorFlow, inference runs the levels in blocks of max(16, ceil(sqrt(levels))): 40 and
    # 300 levels make several blocks, the last one partial; short and one-leaf trees share the batch.
    trees = [_chain(40, 2 if combine == "concat" else 3), T.Tree(0, (), "w3"), _chain(300),
             *T.random_binary_trees(3, min_nodes=1, max_nodes=25, seed=5)]
    if combine == "sum":
        trees += _nary_trees(3, seed=6)
    x, children, schedule = _batch(trees, max_children=2 if combine == "concat" else None)
    assert schedule.shape[1] == 300
    layer = TreeLayer(4, combine=combine, bias_initializer="random_normal")
    inference = [np.asarray(t) for t in layer([x, children, schedule], training=False)]
    training = [np.asarray(t) for t in layer([x, children, schedule], training=True)]
    for got, want in zip(inference, training):
        np.testing.assert_allclose(got, want, atol=1e-6)
    for b, tree in enumerate(trees):
        m = tree.num_nodes
        expected = recursive_tree_states(layer.cell, x[b, :m], children[b, :m])
        np.testing.assert_allclose(inference[1][b, :m], expected, atol=1e-5)
    if keras.backend.backend() == "tensorflow":  # traced with every shape dynamic, as exported
        import tensorflow as tf

        spec = [tf.TensorSpec((None, None, FEATURES)), tf.TensorSpec((None, None, children.shape[-1] if combine == "concat"
                                                                           else None), tf.int32),
                tf.TensorSpec((None, None, None), tf.int32)]
        traced = tf.function(lambda *a: layer(list(a), training=False), input_signature=spec)
        for got, want in zip(traced(x, children, schedule), inference):
            np.testing.assert_allclose(np.asarray(got), want, atol=1e-6)
        # one tree and no internal node at all; an empty batch
        for args in (_batch([T.Tree(0, (), "w3")], max_children=children.shape[-1]), (x[:0], children[:0], schedule[:0])):
            for got, want in zip(traced(*args), layer(list(args), training=True)):
                np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)

def test_tree_alone_equals_tree_in_batch():
    trees = T.random_binary_trees(6, min_nodes=1, max_nodes=41, seed=4)
    layer = TreeLayer(5)
    x, children, schedule = _batch(trees)
    root, nodes = (np.asarray(t) for t in layer([x, children, schedule]))
    for b, tree in enumerate(trees):
        alone_root, alone_nodes = (np.asarray(t) for t in layer(list(_batch([tree]))))
        m = tree.num_nodes
        assert alone_nodes.shape[1] == m  # no padding at all when alone
        np.testing.assert_allclose(alone_nodes[0], nodes[b, :m], atol=1e-6)
        np.testing.assert_allclose(alone_root[0], root[b], atol=1e-6)


def test_tree_cell_hand_computed():
    cell = TreeCell(2, bias_initializer="ones")
    x = np.array([[1.0, -1.0, 0.5]], "float32")
    kids = np.array([[[0.1, 0.2], [0.3, -0.4]]], "float32")
    out = np.asarray(cell(x, kids))
    U, W, b = (np.asarray(w) for w in (cell.U, cell.W, cell.b))
    np.testing.assert_allclose(out, np.tanh(b + kids.reshape(1, 4) @ W + x @ U), atol=1e-6)
    assert W.shape == (4, 2)
    summed = TreeCell(2, combine="sum")
    out = np.asarray(summed(x, kids))
    np.testing.assert_allclose(out, np.tanh(kids.sum(1) @ np.asarray(summed.W) + x @ np.asarray(summed.U)), atol=1e-6)


def test_layer_keras_contract():
    x, children, schedule = _batch(T.random_binary_trees(4, min_nodes=3, max_nodes=15, seed=6))
    layer = TreeLayer(4, name="tree")
    run_layer_test(layer, [x, children, schedule], expected_num_trainable_weights=3)
    assert keras.saving.get_registered_name(TreeLayer) == "rnnzoo>TreeLayer"
    assert keras.saving.get_registered_name(TreeCell) == "rnnzoo>TreeCell"
    assert TreeLayer.from_config(layer.get_config()).get_config() == layer.get_config()


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"units": 0}, ValueError, "units=0"),
        ({"units": 4, "combine": "max"}, ValueError, "combine='max'"),
        ({"units": 4, "activation": "softmax"}, ValueError, "activation='softmax'"),
        ({"units": 4, "num_children": 0}, ValueError, "num_children=0"),
    ],
    ids=["units", "combine", "activation", "num-children"],
)
def test_bad_configurations(kwargs, error, message):
    with pytest.raises(error, match=message):
        TreeLayer(**kwargs)


def test_bad_inputs():
    x, children, schedule = _batch(T.random_binary_trees(2, min_nodes=3, max_nodes=9, seed=7))
    with pytest.raises(ValueError, match=r"expects `children` of shape \(batch, nodes, 2\)"):
        TreeLayer(4)([x, np.concatenate([children, children], -1), schedule])
    with pytest.raises(ValueError, match="list of three tensors"):
        TreeLayer(4)([x, children])
    with pytest.raises(ValueError, match="rank 3"):
        TreeLayer(4)([x, children, schedule[:, 0]])
    with pytest.raises(TypeError, match="integer `children`"):
        TreeLayer(4)([x, children.astype("float32"), schedule])
    with pytest.raises(TypeError, match="floating-point `x`"):
        TreeLayer(4)([x.astype("int32"), children, schedule])
    with pytest.raises(ValueError, match="agree on the nodes axis"):
        TreeLayer(4)([x[:, :-1], children, schedule])


def _sst_like(num_trees, seed):
    trees = T.negation_sentiment_trees(num_trees, seed=seed)
    return trees, T.build_vocabulary(T.negation_sentiment_trees(200, seed=99))


def test_masked_node_loss_and_accuracies_ignore_padding():
    trees, vocabulary = _sst_like(6, seed=3)
    model = compile_tree_classifier(tree_classifier(len(vocabulary), 3, units=8, embedding_dim=4))  # the defaults
    inputs, targets = T.split_inputs_targets(T.encode_trees(trees, vocabulary))
    # the same trees with 10 more padding nodes
    padded = {k: np.pad(v, [(0, 0), (0, 10)] + [(0, 0)] * (v.ndim - 2), constant_values=0 if k == "token_ids" else -1)
              for k, v in inputs.items() if k != "schedule"}
    padded["schedule"] = inputs["schedule"]
    padded_targets = {"node_logits": np.pad(targets["node_logits"], [(0, 0), (0, 10)], constant_values=-1),
                      "root_logits": targets["root_logits"]}
    a = model.evaluate(inputs, targets, batch_size=6, verbose=0, return_dict=True)
    b = model.evaluate(padded, padded_targets, batch_size=6, verbose=0, return_dict=True)
    for key in ("loss", "node_logits_accuracy", "root_logits_accuracy"):
        assert abs(a[key] - b[key]) < 1e-5, (key, a, b)
    # against NumPy: by default, the cross-entropy averaged over real nodes (each node counting the
    # same, the root as one of them) plus the embedding's L2 penalty, and no separate root loss
    out = model.predict(inputs, verbose=0)
    logits, labels = out["node_logits"], targets["node_logits"]
    valid = labels >= 0
    assert out["num_nodes"].tolist() == [t.num_nodes for t in trees] and np.isnan(logits[~valid]).all()
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    node_loss = -log_probs[valid, labels[valid]].mean()
    root_loss = -log_probs[np.arange(6), 0, targets["root_logits"]].mean()
    l2 = 1e-4 * np.sum(np.square(model.get_layer("embedding").embeddings.numpy()))
    assert abs(a["loss"] - (node_loss + l2)) < 1e-4, (a, node_loss, l2)
    assert abs(a["node_logits_accuracy"] - (logits.argmax(-1) == labels)[valid].mean()) < 1e-6
    assert abs(a["root_logits_accuracy"] - (logits[:, 0].argmax(-1) == targets["root_logits"]).mean()) < 1e-6
    # the root weight, an option: the roots then count 1 + root_loss_weight times
    compile_tree_classifier(model, root_loss_weight=2.0)
    weighted = model.evaluate(inputs, targets, batch_size=6, verbose=0, return_dict=True)
    assert abs(weighted["loss"] - (node_loss + 2.0 * root_loss + l2)) < 1e-4, (weighted, node_loss, root_loss)


def test_masked_accuracy_metric():
    metric = MaskedSparseCategoricalAccuracy()
    metric.update_state(np.array([[1, 0, -1]]), np.array([[[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]]], "float32"))
    assert abs(float(metric.result()) - 0.5) < 1e-6
    assert MaskedSparseCategoricalAccuracy.from_config(metric.get_config()).ignore_class == -1


def test_node_accuracy_counts_each_node_once_over_batches_of_different_sizes():
    """An epoch of batches padded to 3, 11 and 1 nodes: correct nodes / real nodes, counted by hand."""
    rng = np.random.default_rng(0)
    metric, correct, count, per_batch = MaskedSparseCategoricalAccuracy(), 0, 0, []
    for batch, nodes, real in [(2, 3, [3, 1]), (3, 11, [11, 2, 5]), (4, 1, [1, 1, 1, 1])]:
        labels = np.full((batch, nodes), -1)
        logits = rng.normal(size=(batch, nodes, 3)).astype("float32")
        batch_correct = 0
        for b, n in enumerate(real):
            labels[b, :n] = rng.integers(0, 3, n)
            batch_correct += int((logits[b, :n].argmax(-1) == labels[b, :n]).sum())
        correct, count = correct + batch_correct, count + sum(real)
        per_batch.append((batch_correct / nodes, sum(real) / nodes))  # what a 1/N-weighted mean adds up
        metric.update_state(labels, logits)
    assert count == 26 and abs(float(metric.result()) - correct / count) < 1e-6, (float(metric.result()), correct)
    weighted_by_batch = sum(c for c, _ in per_batch) / sum(n for _, n in per_batch)
    assert abs(weighted_by_batch - correct / count) > 0.01  # the test tells the two countings apart
    # with a weight per tree (e.g. Keras's sample weights), each node of a tree gets its tree's weight
    weighted = MaskedSparseCategoricalAccuracy()
    weighted.update_state(np.array([[1, 1, -1], [0, -1, -1]]), np.array([[[0, 1], [1, 0], [1, 0]], [[1, 0], [0, 1], [0, 1]]],
                                                                          "float32"), sample_weight=np.array([1.0, 3.0]))
    assert abs(float(weighted.result()) - (1 + 3) / (2 + 3)) < 1e-6


def test_predict_and_evaluate_on_a_tree_dataset():
    """`predict` gives per-tree results, `evaluate` counts each node once, over batches of different sizes."""
    from rnnzoo.models import predict_trees

    trees, vocabulary = _sst_like(10, seed=4)
    model = compile_tree_classifier(tree_classifier(len(vocabulary), 3, units=6, embedding_dim=4))
    ordered = T.tree_dataset(trees, vocabulary, batch_size=5)
    sizes = [x["token_ids"].shape[1] for x, _ in ordered.as_numpy_iterator()]
    assert len(set(sizes)) == 2, sizes  # two batches padded to different node counts
    out = model.predict(ordered, verbose=0)
    assert out["node_logits"].shape == (10, max(sizes), 3) and out["root_logits"].shape == (10, 3)
    assert out["num_nodes"].tolist() == [t.num_nodes for t in trees]
    # the reference: all ten trees in one batch (a tree's outputs do not depend on its batch)
    whole = model.predict_on_batch(T.split_inputs_targets(T.encode_trees(trees, vocabulary))[0])
    per_tree = predict_trees(model, trees, vocabulary, batch_size=5)
    correct = count = 0
    for i, tree in enumerate(trees):
        n = tree.num_nodes
        np.testing.assert_allclose(out["node_logits"][i, :n], whole["node_logits"][i, :n], atol=1e-5)
        np.testing.assert_allclose(per_tree[i]["node_logits"], whole["node_logits"][i, :n], atol=1e-5)
        np.testing.assert_allclose(out["root_logits"][i], whole["root_logits"][i], atol=1e-5)
        assert np.isnan(out["node_logits"][i, n:]).all() and per_tree[i]["root_label"] == whole["root_logits"][i].argmax()
        labels = np.array([node.label for node in tree.nodes()])
        correct, count = correct + int((per_tree[i]["node_labels"] == labels).sum()), count + n
    result = model.evaluate(ordered, verbose=0, return_dict=True)
    assert abs(result["node_logits_accuracy"] - correct / count) < 1e-6, (result, correct, count)


@pytest.mark.tensorflow  # Keras's own Dropout and L2 regulariser: once, in the TensorFlow pass (eager JAX is slow)
def test_dropout_and_embedding_l2():
    trees, vocabulary = _sst_like(4, seed=5)
    inputs = T.split_inputs_targets(T.encode_trees(trees, vocabulary))[0]
    model = tree_classifier(len(vocabulary), 3, units=8, embedding_dim=4, dropout=0.5, embedding_l2=0.01)
    inference = np.asarray(model(inputs)["node_logits"])
    training = [np.asarray(model(inputs, training=True)["node_logits"]) for _ in range(2)]
    assert not np.allclose(training[0], training[1]) and not np.allclose(training[0], inference)
    penalty = 0.01 * np.sum(np.square(model.get_layer("embedding").embeddings.numpy()))
    assert abs(float(sum(np.asarray(loss) for loss in model.losses)) - penalty) < 1e-6
    plain = tree_classifier(len(vocabulary), 3, dropout=0, embedding_l2=0)
    assert not plain.losses and not [layer for layer in plain.layers if isinstance(layer, keras.layers.Dropout)]
    for kwargs, message in [({"dropout": 1.0}, "dropout=1.0"), ({"embedding_l2": -1e-3}, "embedding_l2=-0.001"),
                            ({"embedding_l2": float("nan")}, "embedding_l2=nan")]:
        with pytest.raises(ValueError, match=f"`tree_classifier\\({next(iter(kwargs))}=...\\)`.*Received: {message}"):
            tree_classifier(len(vocabulary), 3, **kwargs)
    with pytest.raises(ValueError, match="root_loss_weight=-1"):
        compile_tree_classifier(plain, root_loss_weight=-1)


# graph mode is TensorFlow's (on JAX, jit_compile=False is op-by-op eager: slow, not a mode to test)
@pytest.mark.parametrize(
    "jit_compile", [pytest.param(False, marks=pytest.mark.tensorflow), True], ids=["graph", "jit"]
)
def test_fit_graph_and_jit_learns(jit_compile):
    import warnings

    trees, vocabulary = _sst_like(256, seed=0)
    # not reshuffled: a new order each epoch would pad new batch shapes, each compiled again under jit
    dataset = T.tree_dataset(trees, vocabulary, batch_size=32)
    keras.utils.set_random_seed(0)
    model = compile_tree_classifier(
        # no dropout: its random bits make each of the 8 batch shapes' compilation slower on JAX
        tree_classifier(len(vocabulary), 3, units=16, embedding_dim=8, dropout=0),
        optimizer=keras.optimizers.Adam(0.02), jit_compile=jit_compile,
    )
    assert model.jit_compile == jit_compile  # (Keras silently turns XLA off under op determinism)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(dataset, epochs=10, verbose=0).history
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    # `fit(shuffle=True)` (its default) on a dataset would warn "`shuffle=True` was passed, but will be
    # ignored"; a dataset of unknown length, "Your input ran out of data" at the end of epoch 1
    assert not messages, messages
    assert history["loss"][-1] < 0.5 * history["loss"][0], history["loss"]
    labels = np.concatenate([[n.label for n in t.nodes()] for t in trees])
    majority = np.bincount(labels).max() / len(labels)  # about 0.5: predicting "neutral" everywhere
    assert history["node_logits_accuracy"][-1] > majority + 0.2, (majority, history)
    assert history["root_logits_accuracy"][-1] > 0.6, history  # chance: 1/3



@pytest.mark.tensorflow  # JAX compiles every path with XLA already (the tests above)
def test_validation_evaluate_and_predict_compile_with_xla():
    # Under `jit_compile=True` inference runs the scatter loop (XLA updates its buffer in place;
    # the blocks of `_levels_in_blocks` have sizes from the data, which XLA cannot compile).
    trees, vocabulary = _sst_like(16, seed=1)
    dataset = T.tree_dataset(trees, vocabulary, batch_size=8)
    keras.utils.set_random_seed(0)
    model = compile_tree_classifier(tree_classifier(len(vocabulary), 3, units=8, embedding_dim=4, dropout=0),
                                    jit_compile=True)
    assert model.jit_compile is True  # (Keras silently turns it off under op determinism)
    history = model.fit(dataset, epochs=1, verbose=0, validation_data=dataset).history
    assert np.isfinite(history["val_loss"][0])
    plain = compile_tree_classifier(tree_classifier(len(vocabulary), 3, units=8, embedding_dim=4, dropout=0),
                                    jit_compile=False)
    plain.set_weights(model.get_weights())
    for got, want in zip(keras.tree.flatten(model.predict(dataset, verbose=0)),
                         keras.tree.flatten(plain.predict(dataset, verbose=0))):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    evaluated = model.evaluate(dataset, verbose=0, return_dict=True)
    np.testing.assert_allclose(evaluated["loss"], plain.evaluate(dataset, verbose=0, return_dict=True)["loss"], rtol=1e-5)

def test_tree_model_beats_bag_of_words_and_sequence_model():
    """Item 5: the negation task needs the tree; same data, same epochs, similar sizes."""
    train, test = T.negation_sentiment_trees(1500, seed=0), T.negation_sentiment_trees(400, seed=1)
    vocabulary = T.build_vocabulary(train)
    (x, y), (xv, yv) = (T.split_inputs_targets(T.encode_trees(t, vocabulary)) for t in (train, test))
    keras.utils.set_random_seed(0)
    tree = compile_tree_classifier(tree_classifier(len(vocabulary), 3, embedding_dim=16, units=32),
                                   optimizer=keras.optimizers.Adam(0.01))
    tree.fit(x, y, batch_size=64, epochs=8, verbose=0)
    tree_accuracy = tree.evaluate(xv, yv, verbose=0, return_dict=True)["root_logits_accuracy"]

    def baseline(kind):
        keras.utils.set_random_seed(0)
        tokens = keras.Input((None,), dtype="int32")
        e = keras.layers.Embedding(len(vocabulary), 16, mask_zero=True)(tokens)
        if kind == "bow":
            h = keras.layers.Dense(64, activation="tanh")(keras.layers.GlobalAveragePooling1D()(e))
        else:
            h = keras.layers.GRU(24)(e)
        model = keras.Model(tokens, keras.layers.Dense(3)(h))
        model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        model.fit(T.leaf_sequences(train, vocabulary), y["root_logits"], batch_size=64, epochs=8, verbose=0)
        accuracy = model.evaluate(T.leaf_sequences(test, vocabulary), yv["root_logits"], verbose=0, return_dict=True)
        return accuracy["accuracy"], model.count_params()

    (bow_accuracy, bow_size), (gru_accuracy, gru_size) = baseline("bow"), baseline("gru")
    assert 0.5 < gru_size / tree.count_params() < 2 and 0.5 < bow_size / tree.count_params() < 2
    assert tree_accuracy > 0.95, tree_accuracy
    assert tree_accuracy > gru_accuracy + 0.15 and tree_accuracy > bow_accuracy + 0.3, (
        tree_accuracy, gru_accuracy, bow_accuracy)
