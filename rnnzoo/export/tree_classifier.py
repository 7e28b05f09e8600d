"""Serving a tree classifier: sentences in (SavedModel), encoded trees in (every format), the vocabulary beside.

`export_tree_classifier(model, path, format=...)` writes:

* `"saved_model"`: on the TensorFlow backend, a SavedModel with two signatures (stock
  TensorFlow ops; the `StringLookup` table is saved with it):
  - `classify`: `text` `(batch,)` string -> `node_logits` `(batch, N, num_classes)`,
    `root_logits` `(batch, num_classes)`, `node_labels` `(batch, N)` int32 (-1 at padding
    nodes), `root_label` `(batch,)` int32, `num_nodes` `(batch,)` int32: the
    `rnnzoo.models.tree_text.tree_classifier_for_text` model (split at ASCII whitespace,
    lookup, binarization, all in the graph; or, for a model made with
    `input_format="bracketed"`, one bracketed tree per string, also returning `labels` and `valid`);
  - `serving_default`: the numeric signature `rnnzoo.export.to_saved_model` writes for a
    `tree_classifier`: `token_ids`, `children`, `schedule` -> `node_logits`, `root_logits`.
  On the JAX backend (no string ops through jax2tf) the SavedModel holds `serving_default` only.
* `"tflite"`: `serving_default` only (builtin ops only, every axis but K dynamic), from either backend.

The vocabulary is written beside the artifact (`<path>.vocabulary.json`, see
`rnnzoo.export.vocabulary`): `tokens` (id = index: `<pad>` 0, the unknown token 1, then the
words), `unknown_token`, `lowercase`, `binarization`, `split` (`"ascii_whitespace"`) and
`special_ids`, so a client of the numeric signature builds the same inputs as
`rnnzoo.data.trees.sentence_tree` + `encode_trees` (or parses a bracketed tree) and looks words up
as the `classify` signature does.
"""

import os
import tempfile

import keras

from rnnzoo.export.converters import check_format, to_tflite
from rnnzoo.export.saved_model import _check_target, default_input_signature, to_saved_model, write_saved_model
from rnnzoo.export.vocabulary import write_vocabulary_file

TREE_FORMATS = ("saved_model", "tflite")


def _numeric_endpoint(numeric):
    def serve(inputs):
        return numeric(inputs, training=False)

    return {"serving_default": (serve, default_input_signature(numeric), None)}


def _parts(model, vocabulary, binarization):
    """`(numeric model, text model or None, Vocabulary, binarization)` of what the caller gave."""
    from rnnzoo.models.tree_text import TextTreeClassifier, as_vocabulary, tree_classifier_for_text

    if isinstance(model, TextTreeClassifier):
        if vocabulary is not None:
            raise ValueError("`export_tree_classifier(vocabulary=...)` is for a numeric `tree_classifier`; a text model "
                             "holds its own. Received: a `TextTreeClassifier` and a vocabulary")
        layer = model.text_layer
        from rnnzoo.data.trees import Vocabulary

        words = Vocabulary(layer.vocabulary, unknown_token=layer.unknown_token, lowercase=layer.lowercase)
        return model.tree_model, model, words, getattr(layer, "binarization", None)
    if vocabulary is None:
        raise ValueError("`export_tree_classifier` needs the vocabulary of a numeric `tree_classifier` (or a model "
                         "from `tree_classifier_for_text`). Received: vocabulary=None")
    vocabulary = as_vocabulary(vocabulary, "export_tree_classifier")
    text_model = tree_classifier_for_text(model, vocabulary, binarization) if keras.backend.backend() == "tensorflow" \
        else None
    return model, text_model, vocabulary, binarization


def write_tree_vocabulary(vocabulary, binarization, path):
    """Writes `<path>.vocabulary.json` for a tree classifier (see the module docstring); returns its path.

    `binarization` None: the `classify` signature takes bracketed trees (`input_format="bracketed"`)."""
    return write_vocabulary_file(path, {"tokens": vocabulary.tokens, "unknown_token": vocabulary.unknown_token,
                                        "lowercase": vocabulary.lowercase,
                                        "input_format": "sentence" if binarization else "bracketed",
                                        "binarization": binarization,
                                        "split": "ascii_whitespace", "special_ids": {"pad": 0, "unk": 1}})


def export_tree_classifier(model, path, *, vocabulary=None, binarization="left", format=None, quantization=None):
    """Exports a tree classifier for serving (see the module docstring for the signatures).

    Args:
        model: a `TextTreeClassifier` (`rnnzoo.models.tree_text.tree_classifier_for_text`, or
            its `.keras` file loaded), or a numeric `tree_classifier` with `vocabulary`.
        path: str, a new (or empty) SavedModel directory, or the `.tflite` file.
        vocabulary: with a numeric model, its `rnnzoo.data.trees.Vocabulary` (or `tokens` list).
        binarization: with a numeric model, the `classify` signature's rule (`"left"`, `"right"`).
        format: `"saved_model"` or `"tflite"`; None (default): `"tflite"` for a path ending in
            `.tflite`, else `"saved_model"`.
        quantization: as `rnnzoo.export.to_tflite` (TFLite only).

    Returns:
        `path`; the vocabulary is at `<path without extension>.vocabulary.json`.
    """
    if format is None:
        format = "tflite" if os.fspath(path).endswith(".tflite") else "saved_model"
    check_format("export_tree_classifier", format, TREE_FORMATS, quantization)
    _check_target(path, "export_tree_classifier")
    numeric, text_model, vocabulary, binarization = _parts(model, vocabulary, binarization)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if format == "saved_model":
        _write_saved_model(numeric, text_model, path)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            saved_model = to_saved_model(numeric, os.path.join(tmp, "saved_model"))  # the numeric signature
            to_tflite(saved_model, path, quantization=quantization)
    write_tree_vocabulary(vocabulary, binarization, path)
    return path


def _write_saved_model(numeric, text_model, path):
    endpoints, track = _numeric_endpoint(numeric), ()
    if text_model is not None:
        import tensorflow as tf

        def classify(text):
            return text_model(text, training=False)

        endpoints["classify"] = (classify, [tf.TensorSpec((None,), tf.string, name="text")], None)
        track = (text_model.text_layer.lookup,)
    return write_saved_model(path, numeric, endpoints, name="export_tree_classifier", track=track)


def tree_saved_model_writer(model, vocabulary, binarization="left"):
    """`writer(path)`: writes `export_tree_classifier`'s SavedModel (no vocabulary file) at `path`.

    For `rnnzoo.export.export_model(saved_model_writer=...)`, which checks and publishes it.
    """
    numeric, text_model, _, _ = _parts(model, vocabulary, binarization)
    return lambda path: _write_saved_model(numeric, text_model, path)
