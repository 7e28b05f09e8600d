"""The vocabulary file written beside an exported artifact, for clients of its numeric signatures.

String signatures (SavedModel, TensorFlow backend) hold their lookup tables, but TFLite and
ONNX keep numeric signatures only: a client maps text to ids itself, with the JSON file
`<artifact path without extension>.vocabulary.json` (`1.tflite` -> `1.vocabulary.json`, a
SavedModel directory `1/` -> `1.vocabulary.json`). Each exporter (`export_language_model`,
`export_decoder`, `export_tree_classifier`) says what its file holds; they all write it here.
"""

import json
import os


def vocabulary_path(path):
    """`<path without extension>.vocabulary.json`, the vocabulary file of the artifact at `path`."""
    return os.path.splitext(os.fspath(path).rstrip(os.sep))[0] + ".vocabulary.json"


def write_vocabulary_file(path, payload):
    """Writes `payload` (JSON-able, UTF-8, non-ASCII kept as is) beside the artifact at `path`; returns the file."""
    target = vocabulary_path(path)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=1, ensure_ascii=False)
    return target
