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

from rnnzoo.export.artifacts import load_artifact, load_inputs, run_artifact, run_artifact_in_fresh_process
from rnnzoo.export.converters import (
    QUANTIZATIONS,
    onnx_ops,
    quantized_weights,
    tflite_ops,
    to_onnx,
    to_tflite,
)
from rnnzoo.export.language_model import export_language_model
from rnnzoo.export.parity import ParityReport, parity_report
from rnnzoo.export.runs import FORMATS, export_model
from rnnzoo.export.saved_model import to_saved_model
from rnnzoo.export.tree_classifier import export_tree_classifier
from rnnzoo.export.seq2seq import export_decoder, export_decoder_tflite, export_greedy_tflite, export_translator

__all__ = [
    "FORMATS",
    "QUANTIZATIONS",
    "ParityReport",
    "export_decoder",
    "export_decoder_tflite",
    "export_language_model",
    "export_greedy_tflite",
    "export_model",
    "export_translator",
    "export_tree_classifier",
    "load_artifact",
    "load_inputs",
    "onnx_ops",
    "parity_report",
    "quantized_weights",
    "run_artifact",
    "run_artifact_in_fresh_process",
    "tflite_ops",
    "to_onnx",
    "to_saved_model",
    "to_tflite",
]
