"""Parity reports: every exported artifact against the Keras model on real inputs."""

import dataclasses

import numpy as np
from keras import tree

from rnnzoo.export.artifacts import load_artifact, run_artifact_in_fresh_process


@dataclasses.dataclass
class ParityReport:
    """How far each artifact is from Keras, per input batch.

    The check is on the normwise relative error of each example (each index of an output's
    first axis), with a floor of 1 under the norm:

        max |artifact - keras|  <=  tolerance * max(1, max |keras|)

    where both maxima run over that example's output elements. For outputs within [-1, 1]
    (states, probabilities) that is the absolute bound `tolerance`. For larger outputs, such
    as logits, it grows with them, as float32 rounding does: an output's rounding error comes
    from the rounding of the states it is computed from, times the weights that make the
    outputs large, so it scales with the size of the example's outputs, not of each element
    (a logit near 0 carries the same error as one of 6). Integer outputs (tokens, lengths) are
    held to the absolute bound, so they must be equal; any NaN fails.

    Why not absolute: on the trained deep-transition tagger of `examples/deep_rnn.py` (logits
    up to 6.7, 33 steps, TF backend) TFLite and Keras differ by 1.35e-5, while Keras is itself
    8.25e-6 and TFLite 1.43e-5 from the exact float64 answer, which the example prints. `max_abs_error` is
    reported as well.

    Attributes:
        rows: list of dicts `{"artifact", "shapes", "max_abs_error", "max_relative_error"}`.
        tolerance: float, the bound on `max_relative_error` that `passed` checks.
    """

    rows: list
    tolerance: float

    @property
    def max_abs_error(self):
        return max(row["max_abs_error"] for row in self.rows)

    @property
    def max_relative_error(self):
        return max(row["max_relative_error"] for row in self.rows)

    @property
    def passed(self):
        return self.max_relative_error <= self.tolerance

    def __str__(self):
        lines = [f"{'artifact':<48} {'input shapes':<28} {'max |artifact - keras|':>22} {'relative':>10}"]
        for row in self.rows:
            lines.append(f"{row['artifact']:<48} {row['shapes']:<28} {row['max_abs_error']:>22.3e} "
                         f"{row['max_relative_error']:>10.3e}")
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(f"parity {verdict}: relative error {self.max_relative_error:.3e} (tolerance {self.tolerance:g}), "
                     f"max |artifact - keras| {self.max_abs_error:.3e}")
        return "\n".join(lines)


def _per_example_max(v):
    """The max over all axes but the first (the example axis); a scalar is one example."""
    return np.max(v.reshape(len(v), -1), axis=1) if v.ndim else v


def _errors(got, expected):
    """(max |got - expected|, the largest normwise relative error of an example; see `ParityReport`)."""
    got, expected = tree.flatten(got), tree.flatten(expected)
    if len(got) != len(expected):
        raise ValueError(f"The artifact returned {len(got)} outputs, Keras {len(expected)}.")
    absolute, relative = 0.0, 0.0
    for a, b in zip(got, expected):
        integer = np.issubdtype(np.asarray(b).dtype, np.integer) or np.asarray(b).dtype == bool
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if a.shape != b.shape:
            raise ValueError(f"The artifact returned an output of shape {a.shape}, Keras {b.shape}.")
        if a.size == 0:
            continue
        with np.errstate(invalid="ignore"):  # inf - inf
            difference = np.where(a == b, 0.0, np.abs(a - b))  # equal infinities agree
        difference = np.where(np.isnan(difference), np.inf, difference)  # any NaN fails
        worst = _per_example_max(difference)
        # Tokens and lengths must be equal: off by one is an error of 1, whatever their size.
        scale = 1.0 if integer else np.maximum(1.0, _per_example_max(np.where(np.isfinite(b), np.abs(b), 0.0)))
        absolute = max(absolute, float(np.max(worst)))
        relative = max(relative, float(np.max(worst / scale)))
    return absolute, relative


def parity_report(model, artifacts, inputs, *, tolerance=1e-5, fresh_process=False):
    """Runs each artifact and `model` on each input batch and reports the largest differences.

    Args:
        model: the `keras.Model` that was exported.
        artifacts: list of paths (SavedModel directories and/or `.tflite` files).
        inputs: list of input batches (each an array, list or dict as `run_artifact` takes),
            ideally of several batch and time sizes.
        tolerance: float, the largest accepted relative error of an example, `max |artifact -
            keras| / max(1, max |keras|)` (see `ParityReport`).
        fresh_process: bool, run each artifact in a new Python process.

    Returns:
        A `ParityReport`; `print` it for a table.
    """
    if fresh_process:
        runners = {path: (lambda batch, path=path: run_artifact_in_fresh_process(path, batch)) for path in artifacts}
    else:
        runners = {path: load_artifact(path) for path in artifacts}  # each loaded once for every batch
    rows = []
    for batch in inputs:
        expected = model(batch, training=False)
        expected = tree.map_structure(np.asarray, expected)
        shapes = " ".join(str(tuple(np.shape(x))) for x in tree.flatten(batch))
        for path in artifacts:
            got = runners[path](batch)
            absolute, relative = _errors(got, expected)
            rows.append({"artifact": str(path), "shapes": shapes, "max_abs_error": absolute,
                         "max_relative_error": relative})
    return ParityReport(rows, tolerance)
