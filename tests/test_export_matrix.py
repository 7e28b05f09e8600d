"""The export matrix: every layer and model of the zoo x {SavedModel, TFLite, ONNX} x this backend.

Each case (`rnnzoo.export.matrix.CASES`, small models of every catalogue entry) is exported
once, in one test, in every format; each artifact is reloaded (SavedModel with
TensorFlow, TFLite in LiteRT, ONNX in onnxruntime) and compared with Keras at unseen batch
sizes and lengths. On JAX the TFLite files are converted from the models in one TensorFlow
process for all cases (as `to_tflite(model)` does on JAX).
The README's table is generated from `docs/export_matrix/<backend>.json`; the tests check that
the committed JSON of this backend is what this run measured, and that the README shows it.

The JAX pass measures the SavedModel and TFLite columns, not ONNX. `to_onnx(model)` on JAX is
`to_onnx` on TensorFlow of the model's `.keras` file reloaded there: the TFLite column proves,
case by case, that the reload gives JAX's numbers and that the TensorFlow SavedModel converts,
the TensorFlow pass converts every case to ONNX, and `tests/test_export.py` runs `to_onnx(model)`
on JAX end to end. Converting all 35 cases to ONNX again made this test 356 s instead of 220 s in
CI (`.ci/run` on 2 cores, 2026-12-05); `python -m rnnzoo.export.matrix` on JAX, which writes the
committed JSON, still converts every case to every format.
"""

import os

import keras
import pytest

from rnnzoo.export import matrix

BACKEND = keras.backend.backend()
MEASURED = matrix.FORMATS if BACKEND == "tensorflow" else ("saved_model", "tflite")  # see above
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def catalogue_models_and_layers():
    """The names of every layer and model in the zoo's catalogue (wherever the registry lives)."""
    try:
        from rnnzoo.app import registry as catalogue
    except ImportError:
        from rnnzoo import zoo as catalogue
    return {e.name for e in catalogue.ENTRIES if e.kind in ("layer", "model")}


def test_every_layer_and_model_of_the_catalogue_has_a_case():
    names = catalogue_models_and_layers()
    covered = {case.entry for case in matrix.CASES.values() if case.entry is not None}
    assert names - covered == set(), "catalogue entries without an export case"
    assert covered - names == set(), "export cases naming no catalogue entry"


# The cases that have no loop: one attention step, one decoder step, and teacher forcing of an
# output-recurrent layer without h -> h (every step's input is known: the book's point in 10.2.1).
WITHOUT_LOOP = {"bahdanau_attention", "attention_decoder_cell", "output_recurrent_rnn", "output_recurrent_tagger"}


@pytest.mark.slow
def test_every_case_exports_in_every_format_with_parity_as_committed():
    # One test, not one per case: under `pytest -n 2` a module fixture would run once per worker.
    results = matrix.run_matrix(formats=MEASURED)
    failures = []
    for name in matrix.CASES:
        row = results[name]
        assert set(row) == set(MEASURED), name
        for fmt, result in row.items():
            if result["status"] != "ok" or not result["max_relative_error"] <= matrix.TOLERANCE:
                failures.append(f"{name} {fmt}: {result.get('error') or result}\n{result.get('traceback', '')[-1500:]}")
        if row["tflite"]["status"] == "ok":  # builtin ops only is checked while running; a loop stays a loop
            assert row["tflite"]["while"] == (name not in WITHOUT_LOOP), name
    assert not failures, "\n".join(failures)

    # The committed results of this backend (the README's table) are what this run measured.
    committed = matrix.load_results(BACKEND, ROOT)
    measured = matrix.strip(results)
    assert set(committed) == set(measured), "regenerate: python -m rnnzoo.export.matrix"
    for name, row in measured.items():
        for fmt in matrix.FORMATS:  # the formats not measured here are committed as passing too
            if fmt in row:
                assert committed[name][fmt]["status"] == row[fmt]["status"], (name, fmt, row[fmt])
            assert committed[name][fmt]["status"] == "ok", (name, fmt)
            assert committed[name][fmt]["max_relative_error"] <= matrix.TOLERANCE, (name, fmt)


def test_readme_table_is_generated_from_both_backends_results():
    table = matrix.format_table({b: matrix.load_results(b, ROOT) for b in matrix.BACKENDS})
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    assert matrix.readme_with_table(readme, table) == readme, "regenerate: python -m rnnzoo.export.matrix --readme"
    for backend in matrix.BACKENDS:  # both backends' files cover every case and format
        committed = matrix.load_results(backend, ROOT)
        assert set(committed) == set(matrix.CASES), backend
        assert all(set(row) == set(matrix.FORMATS) for row in committed.values()), backend


def test_table_marks_failures_and_errors():
    ok = {"status": "ok", "max_relative_error": 2e-7}
    results = {"tensorflow": {"vanilla_rnn": {"saved_model": ok, "tflite": {"status": "fail", "max_relative_error": 0.03},
                                              "onnx": {"status": "error", "error": "x"}}}}
    row = next(line for line in matrix.format_table(results).splitlines() if line.startswith("| `vanilla_rnn` "))
    assert "✓ 2e-07 | ✗ 3e-02 | error | — | — | — |" in row
