"""Losses that refuse what Keras's silently accept.

`SparseCategoricalCrossentropy` is Keras's, plus a check of the labels: on the JAX backend
Keras's loss turns a label outside `[0, num_classes)` into an all-zero one-hot row, a loss of 0,
and trains on it without a word (a label of 7 for 2 classes: `loss: 0.0`); on TensorFlow it fails
deep in `SparseSoftmaxCrossEntropyWithLogits`. Here both fail with a `ValueError` (eagerly) or an
error raised from the compiled step (`InvalidArgumentError` on TF, `JaxRuntimeError` on JAX)
whose message names the label, the number of classes and the loss. `rnnzoo train` and
`compile_tree_classifier` use it; it serializes as `rnnzoo>SparseCategoricalCrossentropy`.
"""

import keras
import numpy as np
from keras import ops


def _message(bad, num_classes, ignore_class):
    ignored = f" (or the ignored class {ignore_class})" if ignore_class is not None else ""
    return (f"`SparseCategoricalCrossentropy`: labels must be in [0, {num_classes}), the number of classes of the "
            f"logits{ignored}. Received: a label of {bad}")


def _first_bad(labels, num_classes, ignore_class):
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if ignore_class is not None:
        bad &= labels != ignore_class
    return labels[bad].flat[0] if bad.any() else None


def check_labels(labels, num_classes, ignore_class=None):
    """Raises if a label is outside `[0, num_classes)` (other than `ignore_class`); returns `labels`.

    Eagerly a `ValueError`; inside a compiled function the check runs with the step: a TF
    assertion, or a JAX host callback that raises.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            labels = tf.convert_to_tensor(labels)
            valid = tf.logical_and(labels >= 0, labels < num_classes)
            if ignore_class is not None:
                valid = tf.logical_or(valid, tf.equal(labels, ignore_class))
            check = tf.debugging.Assert(tf.reduce_all(valid), [
                f"`SparseCategoricalCrossentropy`: labels must be in [0, {num_classes}), the number of classes of "
                f"the logits. Received labels:", tf.boolean_mask(labels, tf.logical_not(valid))[:3]])
            with tf.control_dependencies([check]):
                return tf.identity(labels)
    if backend == "jax":
        import jax

        if isinstance(labels, jax.core.Tracer):
            jax.debug.callback(lambda values: _raise_if_bad(values, num_classes, ignore_class), labels)
            return labels
    _raise_if_bad(ops.convert_to_numpy(labels), num_classes, ignore_class)
    return labels


def _raise_if_bad(labels, num_classes, ignore_class):
    bad = _first_bad(labels, num_classes, ignore_class)
    if bad is not None:
        raise ValueError(_message(bad, num_classes, ignore_class))


@keras.saving.register_keras_serializable(package="rnnzoo")
class SparseCategoricalCrossentropy(keras.losses.SparseCategoricalCrossentropy):
    """`keras.losses.SparseCategoricalCrossentropy` that refuses a label outside `[0, num_classes)`.

    Same arguments and numbers as Keras's loss; `num_classes` is the last axis of the logits.
    A label equal to `ignore_class` is allowed (it is ignored, as in Keras).
    """

    def call(self, y_true, y_pred):
        num_classes = y_pred.shape[self._fn_kwargs.get("axis", -1)]
        if num_classes is not None:
            y_true = check_labels(y_true, int(num_classes), self.ignore_class)
        return super().call(y_true, y_pred)
