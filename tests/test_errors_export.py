"""Faults during an export: a killed `export_model` leaves nothing a server or `predict` would pick up."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]  # subprocesses on the TensorFlow backend

SCRIPT = r"""
import os, signal, sys
import numpy as np, keras
import rnnzoo.export.runs as export_runs
from rnnzoo.layers import VanillaRNN

out, mode = sys.argv[1], sys.argv[2]
keras.utils.set_random_seed(0)
inputs = keras.Input((None, 2))
model = keras.Model(inputs, keras.layers.Dense(2)(VanillaRNN(3)(inputs)), name="tiny")
if mode == "kill":  # SIGKILL in the middle: the SavedModel is complete, the TFLite conversion starts
    export_runs.to_tflite = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
if mode == "kill_between_renames":  # SIGKILL after the first of the two renames
    publish = export_runs._publish
    def publish_once(*args):
        publish(*args)
        export_runs._publish = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
    export_runs._publish = publish_once
entries = export_runs.export_model(model, [np.ones((2, 4, 2), "float32")], ("saved_model", "tflite"), out=out)
print([(e["format"], e["version"], e["parity"]["passed"]) for e in entries])
"""


def export(out, kill):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3"}
    mode = kill if isinstance(kill, str) else ("kill" if kill else "run")
    return subprocess.run([sys.executable, "-c", SCRIPT, str(out), mode], capture_output=True,
                          text=True, env=env, timeout=600)


def numbered(model_dir):
    return sorted(name for name in os.listdir(model_dir) if name[0].isdigit())


def test_export_killed_midway_leaves_no_artifact(tmp_path):
    model_dir = tmp_path / "tiny"
    done = export(tmp_path, kill=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "('saved_model', 1, True), ('tflite', 1, True)" in done.stdout
    manifest = (model_dir / "manifest.json").read_text()

    done = export(tmp_path, kill=True)
    assert done.returncode == -9, done.stderr[-2000:]
    # The SavedModel of version 2 was written (under a temporary name) but nothing numbered 2 exists,
    # and the manifest is untouched: TF Serving, `predict` and the manifest see only version 1.
    assert numbered(model_dir) == ["1", "1.tflite"]
    leftovers = [n for n in os.listdir(model_dir) if n.startswith(".partial-")]
    assert leftovers and os.path.exists(model_dir / leftovers[0] / "saved_model.pb")
    assert (model_dir / "manifest.json").read_text() == manifest

    done = export(tmp_path, kill=False)  # the next export: one version for both formats, leftovers removed
    assert done.returncode == 0, done.stderr[-2000:]
    assert "('saved_model', 2, True), ('tflite', 2, True)" in done.stdout
    assert numbered(model_dir) == ["1", "1.tflite", "2", "2.tflite"]
    assert not [n for n in os.listdir(model_dir) if n.startswith(".partial-")]
    entries = json.loads((model_dir / "manifest.json").read_text())
    assert [(e["format"], e["version"], e["path"]) for e in entries] == [
        ("saved_model", 1, "1"), ("tflite", 1, "1.tflite"), ("saved_model", 2, "2"), ("tflite", 2, "2.tflite")]
    # The published artifacts compute what the model computes (parity, measured after reloading them).
    assert all(e["parity"]["passed"] and e["parity"]["max_relative_error"] <= 1e-5 for e in entries)
    assert ".partial-" not in entries[-1]["report"]

    # Killed between the renames of one export: the complete, checked .tflite of version 3 is there,
    # the SavedModel (what a server watching the directory loads) is renamed last so it is not, and
    # the manifest is untouched.
    manifest = (model_dir / "manifest.json").read_text()
    done = export(tmp_path, kill="kill_between_renames")
    assert done.returncode == -9, done.stderr[-2000:]
    assert numbered(model_dir) == ["1", "1.tflite", "2", "2.tflite", "3.tflite"]
    assert (model_dir / "manifest.json").read_text() == manifest
