"""Parity reports: every exported artifact against the Keras model on real inputs."""

import dataclasses

import numpy as np
from keras import tree

from rnnzoo.export.artifacts import run_artifact, run_artifact_in_fresh_process


@dataclasses.dataclass
class ParityReport:
    """Max absolute difference between each artifact and Keras, per input batch.

    Attributes:
        rows: list of dicts `{"artifact", "shapes", "max_abs_error"}`.
        tolerance: float, the bound `passed` checks.
    """

    rows: list
    tolerance: float

    @property
    def max_abs_error(self):
        return max(row["max_abs_error"] for row in self.rows)

    @property
    def passed(self):
        return self.max_abs_error <= self.tolerance

    def __str__(self):
        lines = [f"{'artifact':<48} {'input shapes':<28} {'max |artifact - keras|':>22}"]
        for row in self.rows:
            lines.append(f"{row['artifact']:<48} {row['shapes']:<28} {row['max_abs_error']:>22.3e}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"parity {verdict}: max error {self.max_abs_error:.3e} (tolerance {self.tolerance:g})")
        return "\n".join(lines)


def _max_abs_error(a, b):
    a, b = tree.flatten(a), tree.flatten(b)
    if len(a) != len(b):
        raise ValueError(f"The artifact returned {len(a)} outputs, Keras {len(b)}.")
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b))


def parity_report(model, artifacts, inputs, *, tolerance=1e-5, fresh_process=False):
    """Runs each artifact and `model` on each input batch and reports the largest difference.

    Args:
        model: the `keras.Model` that was exported.
        artifacts: list of paths (SavedModel directories and/or `.tflite` files).
        inputs: list of input batches (each an array, list or dict as `run_artifact` takes),
            ideally of several batch and time sizes.
        tolerance: float, the largest accepted absolute difference.
        fresh_process: bool, run each artifact in a new Python process.

    Returns:
        A `ParityReport`; `print` it for a table.
    """
    run = run_artifact_in_fresh_process if fresh_process else run_artifact
    rows = []
    for batch in inputs:
        expected = model(batch, training=False)
        expected = tree.map_structure(np.asarray, expected)
        shapes = " ".join(str(tuple(np.shape(x))) for x in tree.flatten(batch))
        for path in artifacts:
            got = run(path, batch)
            rows.append({"artifact": str(path), "shapes": shapes, "max_abs_error": _max_abs_error(got, expected)})
    return ParityReport(rows, tolerance)
