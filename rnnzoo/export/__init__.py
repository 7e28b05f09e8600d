"""Export: SavedModel and TFLite (builtin ops only), running artifacts, and parity reports.

The only part of the library, with the `tf.data` pipelines, that imports TensorFlow, and
only inside functions: `import rnnzoo.export` works without it.
"""

from rnnzoo.export.artifacts import load_inputs, run_artifact, run_artifact_in_fresh_process
from rnnzoo.export.converters import QUANTIZATIONS, to_saved_model, to_tflite, tflite_ops
from rnnzoo.export.parity import ParityReport, parity_report
from rnnzoo.export.runs import FORMATS, export_model

__all__ = [
    "FORMATS",
    "export_model",
    "QUANTIZATIONS",
    "ParityReport",
    "load_inputs",
    "parity_report",
    "run_artifact",
    "run_artifact_in_fresh_process",
    "tflite_ops",
    "to_saved_model",
    "to_tflite",
]
