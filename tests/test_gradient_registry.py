"""Tracing, saving, loading and converting a layer with the explicit BPTT keeps nothing behind.

`tf.custom_gradient` in graph mode and `tf.saved_model.load` register gradient functions in
TensorFlow's global registry and never remove them; each one holds a whole graph.
`rnnzoo.gradient_registry` ties each to its owner (the graph, the loaded object). These tests
hold that to what a user sees: the graphs are freed, nothing they registered is left in the registry, and the
gradients still work while their owner lives.
"""

import gc
import weakref

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow


def _custom_gradients(collect=False):
    """The custom gradients in TensorFlow's registry; `collect=True` first frees what is garbage
    already (earlier tests' graphs), so that the set is a baseline that only this test moves.
    Garbage freed later can only shrink the set, so tests assert "nothing new is left"."""
    if collect:
        gc.collect()
    from tensorflow.python.framework import ops as tf_ops

    return {name for name in tf_ops._gradient_registry.list() if name.startswith("CustomGradient-")}


def _layer_and_inputs(seed=0):
    import tensorflow as tf

    from rnnzoo.layers import VanillaRNN

    layer = VanillaRNN(4, return_sequences=True, bias_initializer="random_normal")
    x = tf.constant(np.random.default_rng(seed).normal(size=(2, 5, 3)).astype("float32"))
    layer(x)
    return layer, x


def _eager_gradients(layer, x):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x) ** 2)
    return tape.gradient(loss, [x] + layer.trainable_variables)


def test_traced_graphs_are_freed_and_their_gradients_work_while_they_live():
    import tensorflow as tf

    before = _custom_gradients(collect=True)
    layer, x = _layer_and_inputs()

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) ** 2)
        return tape.gradient(loss, [x] + layer.trainable_variables)

    concrete = gradients.get_concrete_function(x)
    assert len(_custom_gradients() - before) == 1  # one trace of the layer
    for graph_gradient, eager in zip(concrete(x), _eager_gradients(layer, x)):
        np.testing.assert_allclose(graph_gradient.numpy(), eager.numpy(), atol=1e-6)
    # The traced function differentiated from outside, after tracing (TensorFlow builds that
    # gradient lazily, from the registry).
    forward = tf.function(lambda x: layer(x)).get_concrete_function(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(forward(x) ** 2)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), _eager_gradients(layer, x)[0].numpy(), atol=1e-6)

    graph = weakref.ref(concrete.graph)
    del gradients, concrete, forward
    gc.collect()
    assert graph() is None, "the traced graph is still alive"
    assert _custom_gradients() <= before


def test_predict_and_export_leave_the_registry_as_they_found_it(tmp_path):
    from rnnzoo.export import run_artifact, to_saved_model, to_tflite
    from rnnzoo.models import sequence_classifier

    x = np.random.default_rng(0).normal(size=(3, 6, 2)).astype("float32")
    before = _custom_gradients(collect=True)
    for i in range(2):
        model = sequence_classifier(num_classes=2, features=2, units=5)
        expected = model.predict(x, verbose=0)
        saved = to_saved_model(model, str(tmp_path / f"saved_{i}"))
        tflite = to_tflite(saved, str(tmp_path / f"model_{i}.tflite"))
        for artifact in (saved, tflite):
            np.testing.assert_allclose(run_artifact(artifact, x), expected, atol=1e-5)
        del model
        gc.collect()
        assert _custom_gradients() <= before, i


def test_a_loaded_saved_model_is_differentiable_until_it_is_freed(tmp_path):
    import tensorflow as tf

    from rnnzoo.gradient_registry import load_saved_model

    layer, x = _layer_and_inputs()
    module = tf.Module()
    module.layer = layer
    module.run = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec((None, None, 3))])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    del module
    gc.collect()

    before = _custom_gradients(collect=True)
    loaded = load_saved_model(str(tmp_path / "saved"))
    assert len(_custom_gradients() - before) >= 1  # the saved explicit BPTT, registered by the load
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(loaded.run(x) ** 2)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), _eager_gradients(layer, x)[0].numpy(), atol=1e-6)
    del loaded, tape
    gc.collect()
    assert _custom_gradients() <= before
