"""Export: SavedModel, TFLite (builtin ops only) and ONNX, from either backend, with parity reports.

The only part of the library, with the `tf.data` pipelines, that imports TensorFlow, and
only inside functions: `import rnnzoo.export` works without it.

* `to_saved_model`, `to_tflite`, `to_onnx`: one model to one artifact; every converter takes
  `quantization=None | "float16" | "dynamic_range"`.
* `export_translator`, `export_decoder`: a `Seq2Seq`'s string and token signatures.
* `export_language_model`: a `LanguageModel`'s prompt-to-text and numeric (`step`, `sample`) signatures.
* `export_tree_classifier`: a tree classifier's sentence-to-labels (`classify`) and numeric signatures.
* `run_artifact`, `load_artifact`, `parity_report`: run any artifact (once, or loaded once for many
  batches), compare it with Keras.
* `export_model`: all formats at once, in the `exports/` layout, with a manifest.
* `rnnzoo.export.matrix`: every zoo entry in every format (the README's export matrix).
"""

import importlib

# Each public name and its module, imported on first use: `rnnzoo.export.artifacts` (what
# `rnnzoo predict` runs a `.tflite` or `.onnx` file with) then loads without Keras or TensorFlow.
_MODULES = {
    "artifacts": ("load_artifact", "load_inputs", "run_artifact", "run_artifact_in_fresh_process"),
    "converters": ("QUANTIZATIONS", "onnx_ops", "quantized_weights", "tflite_op_counts", "tflite_ops", "to_onnx", "to_tflite"),
    "language_model": ("export_language_model",),
    "parity": ("ParityReport", "parity_report"),
    "runs": ("FORMATS", "export_model"),
    "saved_model": ("to_saved_model",),
    "tree_classifier": ("export_tree_classifier",),
    "seq2seq": ("export_decoder", "export_decoder_tflite", "export_greedy_tflite", "export_translator"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}

_SUBMODULES = (*_MODULES, "matrix", "vocabulary")

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name in _SUBMODULES:  # `rnnzoo.export.converters` after `import rnnzoo.export`
        return importlib.import_module(f"rnnzoo.export.{name}")
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'rnnzoo.export' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"rnnzoo.export.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
