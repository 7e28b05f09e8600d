"""Exporting a training run: `exports/<model>/<version>/` for TF Serving, TFLite files, a manifest."""

import datetime
import json
import os
import shutil
import tempfile

from rnnzoo.export.converters import to_saved_model, to_tflite, tflite_ops
from rnnzoo.export.parity import parity_report

FORMATS = {
    "saved_model": None,
    "tflite": {"quantization": None, "suffix": ".tflite", "tolerance": 1e-5},
    "tflite-fp16": {"quantization": "float16", "suffix": "-fp16.tflite", "tolerance": 1e-2},
    "tflite-dynamic-range": {"quantization": "dynamic_range", "suffix": "-dynamic-range.tflite", "tolerance": 1e-1},
}


def _artifact_path(model_dir, version, fmt):
    if fmt == "saved_model":
        return os.path.join(model_dir, str(version))
    return os.path.join(model_dir, f"{version}{FORMATS[fmt]['suffix']}")


def _next_version(model_dir, fmt):
    version = 1
    while os.path.exists(_artifact_path(model_dir, version, fmt)):
        version += 1
    return version


def _parity_inputs(run_dir):
    from rnnzoo.training import get_task, load_run

    config, _ = load_run(run_dir)
    task = get_task(config.task)
    x, _ = task.split("test", seed=config.seed)
    x_long, _ = task.split("test", length=task.length + 8, num_examples=2, seed=config.seed)  # longer than trained on
    return [x[:1], x[1:4], x[4:12], x_long]


def export_run(run_dir, formats, out="exports", version=None, overwrite=False):
    """Exports the model of `run_dir` in each of `formats` and records it in a manifest.

    Layout (TF Serving reads `<model>/<version>/` directly):

        <out>/<model>/<version>/                   SavedModel, signature `serving_default`
        <out>/<model>/<version>.tflite             TFLite, builtin ops only (also -fp16, -dynamic-range)
        <out>/<model>/manifest.json                every artifact: format, signatures, size, ops, parity

    Parity is measured against the Keras model on real test inputs of the run's task, at several
    batch sizes and at a longer length than trained on.

    Args:
        run_dir: a finished run directory (`rnnzoo train --out`).
        formats: list of keys of `FORMATS`.
        out: the exports root.
        version: int, or None for the next free version.
        overwrite: replace existing artifacts of that version.

    Returns:
        The list of manifest entries written.
    """
    from rnnzoo.training import load_run

    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"Unknown export format(s) {unknown}. Valid formats: {', '.join(FORMATS)}")
    config, model = load_run(run_dir)
    model_dir = os.path.join(out, model.name)
    entries = []
    inputs = _parity_inputs(run_dir)
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = None
        for fmt in formats:
            v = version if version is not None else _next_version(model_dir, fmt)
            path = _artifact_path(model_dir, v, fmt)
            if os.path.exists(path):
                if not overwrite:
                    raise FileExistsError(f"{path} exists; pass `--overwrite` to replace it or `--version` to choose another.")
                shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
            if saved_model is None:
                saved_model = to_saved_model(model, os.path.join(tmp, "saved_model"))
            if fmt == "saved_model":
                shutil.copytree(saved_model, path)
                tolerance, ops, size = 1e-5, None, _size(path)
            else:
                to_tflite(saved_model, path, quantization=FORMATS[fmt]["quantization"])
                tolerance, ops, size = FORMATS[fmt]["tolerance"], tflite_ops(path), os.path.getsize(path)
            report = parity_report(model, [path], inputs, tolerance=tolerance)
            entry = {
                "format": fmt,
                "version": v,
                "path": os.path.relpath(path, model_dir),
                "model_name": model.name,
                "run_dir": os.path.abspath(run_dir),
                "model": config.model,
                "task": config.task,
                "signatures": {"serving_default": {"inputs": [f"{t.name}: {tuple(t.shape)} {t.dtype}" for t in model.inputs],
                                                   "outputs": [f"output_0: {tuple(model.outputs[0].shape)}"]}},
                "bytes": size,
                "tflite_ops": ops,
                "parity": {"max_abs_error": report.max_abs_error, "tolerance": tolerance, "passed": report.passed,
                           "inputs": [row["shapes"] for row in report.rows]},
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            }
            entries.append(entry)
    _update_manifest(model_dir, entries)
    return entries


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _update_manifest(model_dir, entries):
    manifest_path = os.path.join(model_dir, "manifest.json")
    manifest = []
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    replaced = {(e["format"], e["version"]) for e in entries}
    manifest = [e for e in manifest if (e["format"], e["version"]) not in replaced] + entries
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2)
