"""TensorFlow's custom gradients without the leak: each released with what needs it.

`tf.custom_gradient` in graph mode (every trace of a layer with the explicit BPTT: `predict`,
`fit`, an export, Keras's symbolic call) registers its gradient function in TensorFlow's global
gradient registry under a new name (`CustomGradient-<uid>`) and never removes it; the function
closes over the traced graph's tensors, so every graph ever traced stays in memory. Loading a
SavedModel that holds custom gradients (`tf.saved_model.load`, each TFLite conversion) does
the same with the loaded gradient functions. Measured (TF 2.21, a small `sequence_classifier`):
about 15,000 Python objects kept per export to a SavedModel and 30,000 more per TFLite
conversion, and TensorFlow's converter runs `gc.collect()` at every conversion, over all of them.

Here a registered gradient lives as long as its owner: a traced gradient is moved onto the
graph that holds the op (the registry keeps a small function that looks it up there, removed
when the graph is collected); a loaded one is removed when the loaded object is collected, or
at once when nothing is kept. Private TensorFlow state is touched only here; if it ever changes
shape, nothing is released (TensorFlow's own behaviour).
"""

import contextlib
import weakref

_PREFIX = "CustomGradient-"


def _registry():
    """TensorFlow's gradient registry as a dict `name -> {"type": function, ...}`, or None."""
    try:
        from tensorflow.python.framework import ops as tf_ops

        registry = tf_ops._gradient_registry._registry
    except (ImportError, AttributeError):
        return None
    return registry if isinstance(registry, dict) else None


def _remove(registry, names):
    for name in names:
        registry.pop(name, None)


def release_with_graph(tensor):
    """Ties the custom gradient of the op that produced `tensor` to that op's graph.

    Call it on an output of a `keras.ops.custom_gradient` function (TensorFlow backend). In
    eager mode (no registration) and on other backends it does nothing.
    """
    op, graph = getattr(tensor, "op", None), getattr(tensor, "graph", None)
    registry = None if op is None or graph is None else _registry()
    if registry is None:
        return
    try:
        name = op.get_attr("_gradient_op_type").decode()
        entry = registry[name]
        graph.add_to_collection(name, entry["type"])  # the graph's own storage (a graph has no __dict__)
        weakref.finalize(graph, _remove, registry, [name])
    except (AttributeError, KeyError, TypeError, ValueError):
        return
    entry["type"] = _graph_gradient(weakref.ref(graph), name)


def _graph_gradient(graph, name):
    # Holds no tensor, and the graph weakly (the SavedModel writer calls it with `op=None`).
    def gradient(op, *output_gradients):
        return graph().get_collection(name)[0](op, *output_gradients)

    gradient.on_graph = True  # `released_gradients` leaves these to their graph
    return gradient


@contextlib.contextmanager
def released_gradients():
    """Gradients registered inside (SavedModel loads) are released when the owner set on the
    yielded list is collected (`owners.append(loaded)`), or at the exit if none is.

        with released_gradients() as owners:
            loaded = tf.saved_model.load(path)
            owners.append(loaded)
    """
    registry = _registry()
    before = set(registry) if registry is not None else set()
    owners = []
    try:
        yield owners
    finally:
        if registry is not None:
            names = [n for n in set(registry) - before
                     if n.startswith(_PREFIX) and not getattr(registry[n]["type"], "on_graph", False)]
            if owners:
                weakref.finalize(owners[0], _remove, registry, names)
            else:
                _remove(registry, names)


def load_saved_model(path):
    """`tf.saved_model.load(path)`, its custom gradients released when the loaded object is."""
    import tensorflow as tf

    with released_gradients() as owners:
        loaded = tf.saved_model.load(path)
        owners.append(loaded)
    return loaded
