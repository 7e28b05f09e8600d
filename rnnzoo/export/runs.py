"""Exporting a model in the zoo's layout: `exports/<model>/<version>/` for TF Serving, TFLite and ONNX files, a manifest."""

import datetime
import json
import math
import os
import shutil
import tempfile
import warnings

import keras

from rnnzoo.export.converters import convert_all_on_tensorflow, onnx_ops, quantized_weights, tflite_ops, to_onnx, to_tflite
from rnnzoo.export.parity import parity_report
from rnnzoo.export.saved_model import to_saved_model

# Every converter (TFLite, ONNX) takes the same quantizations; each gets its own suffix.
FORMATS = {
    "saved_model": None,
    "tflite": {"quantization": None, "suffix": ".tflite", "tolerance": 1e-5},
    "tflite-fp16": {"quantization": "float16", "suffix": "-fp16.tflite", "tolerance": 1e-2},
    "tflite-dynamic-range": {"quantization": "dynamic_range", "suffix": "-dynamic-range.tflite", "tolerance": 1e-1},
    "onnx": {"quantization": None, "suffix": ".onnx", "tolerance": 1e-5},
    "onnx-fp16": {"quantization": "float16", "suffix": "-fp16.onnx", "tolerance": 1e-2},
    "onnx-dynamic-range": {"quantization": "dynamic_range", "suffix": "-dynamic-range.onnx", "tolerance": 1e-1},
}


def _quantization_entry(quantization, path):
    """The manifest's account of a quantization: how many weights it stored in fewer bits."""
    if quantization is None:
        return None
    count = quantized_weights(path)
    return {"method": quantization, "quantized_weights": count,
            "note": ("changed nothing: no weight was stored in fewer bits (dynamic range, and float16 in "
                     "ONNX, skip weights of fewer than 1024 elements); the file computes what the float32 "
                     "one computes") if count == 0 else
                    f"{count} weight tensor(s) stored in fewer bits"}


def _artifact_path(model_dir, version, fmt):
    if fmt == "saved_model":
        return os.path.join(model_dir, str(version))
    return os.path.join(model_dir, f"{version}{FORMATS[fmt]['suffix']}")


PARTIAL_PREFIX = ".partial-"  # temporary siblings: not a number, so TF Serving never loads one


def _common_version(model_dir, formats):
    """The first version free for every format: one export has one version number."""
    version = 1
    while any(os.path.exists(_artifact_path(model_dir, version, fmt)) for fmt in formats):
        version += 1
    return version


def _partial_path(path):
    """A temporary sibling of `path` (same extension), renamed onto it once the artifact is complete."""
    head, tail = os.path.split(path)
    return os.path.join(head, f"{PARTIAL_PREFIX}{os.getpid()}-{tail}")


def _remove_stale_partials(model_dir):
    """Removes the temporary siblings (`PARTIAL_PREFIX`) an export killed midway left."""
    for name in os.listdir(model_dir):
        if name.startswith(PARTIAL_PREFIX):
            path = os.path.join(model_dir, name)
            shutil.rmtree(path, ignore_errors=True) if os.path.isdir(path) else os.remove(path)


def _publish(partial, path):
    """Moves a complete, checked artifact from its temporary sibling to `path` (a rename)."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    os.replace(partial, path)


def _next_version(model_dir, fmt):
    version = 1
    while os.path.exists(_artifact_path(model_dir, version, fmt)):
        version += 1
    return version


def export_model(model, inputs, formats=("saved_model", "tflite"), out="exports", version=None, overwrite=False,
                 tolerance=None, fresh_process=False, metadata=None, polymorphic_shapes=None, saved_model_writer=None):
    """Exports a Keras model in the zoo's layout and checks each artifact against it.

    Layout (TF Serving reads `<model>/<version>/` directly):

        <out>/<model.name>/<version>/                   SavedModel, signature `serving_default`
        <out>/<model.name>/<version>.tflite             TFLite, builtin ops only (also -fp16, -dynamic-range)
        <out>/<model.name>/<version>.onnx               ONNX (also -fp16, -dynamic-range)
        <out>/<model.name>/manifest.json                every artifact: format, signature, size, ops, parity

    The export is atomic: artifacts are written and checked under temporary names
    (`.partial-*`, never a number, so TF Serving ignores them), then renamed, and the manifest
    is written last; an export killed midway leaves no numbered artifact behind (the next
    export removes its temporary files). Killed between two renames, it leaves complete, checked
    files of the new version that the manifest does not list; the SavedModel directory, which a
    server loads, is renamed last.

    Args:
        model: a built `keras.Model`.
        inputs: list of input batches for the parity check (real inputs, several batch sizes
            and lengths).
        formats: keys of `FORMATS`.
        out: the exports root.
        version: int, or None for the first version free for every format in `formats` (one
            export, one version number).
        overwrite: replace existing artifacts of that version.
        tolerance: float or None (the format's default: 1e-5 for float32), the bound on the
            relative error of each example, `max |artifact - keras| / max(1, max |keras|)`.
        fresh_process: run each artifact in a new Python process for the parity check.
        metadata: dict merged into each manifest entry (e.g. the run it came from).
        polymorphic_shapes: as `to_saved_model` (JAX backend: inputs that share a length).
        saved_model_writer: None, or `writer(path)` writing the published SavedModel instead of
            `to_saved_model` (e.g. with more signatures; its `serving_default` must be the
            model's, which the parity check runs). TFLite and ONNX still convert `to_saved_model`'s.

    Returns:
        The list of manifest entries written; each has `path` (relative to `<out>/<model.name>`),
        `bytes`, `tflite_ops` / `onnx_ops`, `quantization` (None, or how many weights it stored in
        fewer bits, with a note when it changed nothing) and `parity` (`max_abs_error`,
        `max_relative_error`, `tolerance`, `passed`).
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"Unknown export format(s) {unknown}. Valid formats: {', '.join(FORMATS)}")
    model_dir = os.path.join(out, model.name)
    entries, published = [], []
    os.makedirs(model_dir, exist_ok=True)
    _remove_stale_partials(model_dir)
    # Atomic: each artifact is written and checked under a temporary name (`path` below); only
    # when all are complete are they renamed to their version paths (`final`), and the manifest
    # is written last. An export killed at any point leaves no numbered artifact behind.
    v = version if version is not None else _common_version(model_dir, formats)
    for fmt in formats:
        final = _artifact_path(model_dir, v, fmt)
        if os.path.exists(final) and not overwrite:
            raise FileExistsError(f"{final} exists. Pass `overwrite=True` to replace it, or another `version`.")
    with tempfile.TemporaryDirectory() as tmp:
        saved_model = None
        converted = set()
        if keras.backend.backend() != "tensorflow":
            # From JAX, TFLite and ONNX are converted from the model on the TensorFlow backend, all
            # in one process: a JAX SavedModel holds StableHLO, which tf2onnx cannot read, and its
            # `lax.scan` loops would run in LiteRT in time quadratic in the length (`to_tflite`).
            jobs = [("to_onnx" if fmt.startswith("onnx") else "to_tflite",
                     _partial_path(_artifact_path(model_dir, v, fmt)), {"quantization": FORMATS[fmt]["quantization"]})
                    for fmt in formats if fmt != "saved_model"]
            if jobs:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # the manifest says what quantization did
                    convert_all_on_tensorflow(model, jobs)
                converted = {fmt for fmt in formats if fmt != "saved_model"}
        for fmt in formats:
            final = _artifact_path(model_dir, v, fmt)
            path = _partial_path(final)
            published.append((path, final))
            quantization = None if fmt == "saved_model" else FORMATS[fmt]["quantization"]
            if fmt in converted:
                lister = onnx_ops if fmt.startswith("onnx") else tflite_ops
                default_tolerance, ops, size = FORMATS[fmt]["tolerance"], lister(path), os.path.getsize(path)
            else:
                if saved_model is None and not (fmt == "saved_model" and saved_model_writer is not None):
                    saved_model = to_saved_model(model, os.path.join(tmp, "saved_model"),
                                                 polymorphic_shapes=polymorphic_shapes)
                if fmt == "saved_model" and saved_model_writer is not None:
                    saved_model_writer(path)
                    default_tolerance, ops, size = 1e-5, None, _size(path)
                elif fmt == "saved_model":
                    shutil.copytree(saved_model, path)
                    default_tolerance, ops, size = 1e-5, None, _size(path)
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)
                        if fmt.startswith("onnx"):
                            to_onnx(saved_model, path, quantization=quantization)
                        else:
                            to_tflite(saved_model, path, quantization=quantization)
                    lister = onnx_ops if fmt.startswith("onnx") else tflite_ops
                    default_tolerance, ops, size = FORMATS[fmt]["tolerance"], lister(path), os.path.getsize(path)
            report = parity_report(model, [path], inputs, tolerance=tolerance or default_tolerance,
                                   fresh_process=fresh_process)
            entries.append({
                "format": fmt,
                "version": v,
                "path": os.path.relpath(final, model_dir),
                "model_name": model.name,
                **(metadata or {}),
                "signatures": {"serving_default": {"inputs": [f"{t.name}: {tuple(t.shape)} {t.dtype}" for t in model.inputs],
                                                   "outputs": [f"{tuple(t.shape)} {t.dtype}" for t in model.outputs]}},
                "bytes": size,
                "tflite_ops": ops if fmt.startswith("tflite") else None,
                "onnx_ops": ops if fmt.startswith("onnx") else None,
                "quantization": _quantization_entry(quantization, path),
                "backend": keras.backend.backend(),
                "parity": {"max_abs_error": _json_number(report.max_abs_error),
                           "max_relative_error": _json_number(report.max_relative_error),
                           "tolerance": report.tolerance,
                           "passed": report.passed, "inputs": [row["shapes"] for row in report.rows]},
                "report": str(report).replace(path, final),
                "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            })
    # The SavedModel directory, which a server watching `model_dir` loads, is renamed last: a kill
    # between two renames leaves at most complete, checked files (.tflite, .onnx) of the new version
    # that the manifest does not list yet, and never a SavedModel whose siblings are missing.
    for path, final in sorted(published, key=lambda pair: os.path.isdir(pair[0])):
        _publish(path, final)
    _update_manifest(model_dir, entries)
    return entries


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _json_number(x):
    """JSON has no NaN or infinity: a non-finite error (a NaN output) is written as null."""
    return x if math.isfinite(x) else None


def _update_manifest(model_dir, entries):
    manifest_path = os.path.join(model_dir, "manifest.json")
    manifest = []
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = json.load(f)
    replaced = {(e["format"], e["version"]) for e in entries}
    manifest = [e for e in manifest if (e["format"], e["version"]) not in replaced] + entries
    with open(f"{manifest_path}.tmp", "w") as f:
        json.dump(manifest, f, indent=2)
    os.replace(f"{manifest_path}.tmp", manifest_path)
