"""The `rnnzoo` command as a user runs it: subprocesses, exit codes, messages, files."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

# The subprocesses use the TensorFlow backend (export needs it anyway): run these once, in the
# TensorFlow pass.
pytestmark = pytest.mark.tensorflow

ENV = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


def rnnzoo(*args, cwd=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "rnnzoo", *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=timeout)


def test_list_shows_models_and_tasks():
    done = rnnzoo("list")
    assert done.returncode == 0, done.stderr
    for name in ("vanilla_rnn", "vanilla_tagger", "adding_problem"):
        assert name in done.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "no_such_model"], "invalid choice: 'no_such_model' (choose from"),
        (["train", "vanilla_tagger", "--task", "no_such_task"], "invalid choice: 'no_such_task'"),
        (["train", "vanilla_tagger", "--epochs", "0"], "must be > 0, got 0"),
        (["train", "vanilla_tagger", "--learning-rate", "fast"], "expected a float, got 'fast'"),
        (["export", "runs/x", "--format", "caffe"], "invalid choice: 'caffe'"),
    ],
    ids=["unknown-model", "unknown-task", "zero-epochs", "non-numeric-rate", "unknown-format"],
)
def test_bad_arguments_are_argparse_errors(args, message):
    done = rnnzoo(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_incompatible_model_and_task_lists_valid_tasks(tmp_path):
    done = rnnzoo("train", "vanilla_regressor", "--task", "delayed_recall", "--out", str(tmp_path / "run"))
    assert done.returncode == 2
    assert "cannot be trained on task 'delayed_recall'. Valid tasks for it: adding_problem" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["evaluate", "export"], ids=["evaluate", "export"])
def test_missing_and_corrupt_run_directories(tmp_path, command):
    extra = ["--format", "tflite"] if command == "export" else []
    done = rnnzoo(command, str(tmp_path / "nowhere"), *extra)
    assert done.returncode == 2 and "No run directory" in done.stderr and "Traceback" not in done.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "run.json").write_text(json.dumps({"model": "vanilla_tagger", "task": "delayed_recall"}))
    (broken / "model.keras").write_text("not a zip file")
    done = rnnzoo(command, str(broken), *extra)
    assert done.returncode == 2 and "cannot be read" in done.stderr and "Traceback" not in done.stderr


def test_predict_rejects_missing_artifact_and_input(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 1), "float32"))
    done = rnnzoo("predict", str(tmp_path / "none.tflite"), "--input", str(tmp_path / "x.npy"))
    assert done.returncode == 2 and "No exported artifact" in done.stderr and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    done = rnnzoo("train", "vanilla_tagger", "--task", "delayed_recall", "--epochs", "3", "--units", "16",
                  "--out", "runs/quick", "--quiet", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root, done.stdout


@pytest.mark.slow
def test_train_evaluate_export_predict(trained_run):
    root, train_stdout = trained_run
    run = root / "runs" / "quick"
    assert "evaluation (test split)" in train_stdout
    for name in ("run.json", "model.keras", "history.json", "learning_curve.png", "evaluation.json", "checkpoints",
                 "logs", "backup"):
        assert (run / name).exists() or name == "backup", name  # the backup is deleted after a finished run
    assert json.loads((run / "evaluation.json").read_text())["accuracy"] >= 0.99
    assert (run / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"

    done = rnnzoo("evaluate", "runs/quick", cwd=root)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["accuracy"] >= 0.99

    done = rnnzoo("export", "runs/quick", "--format", "saved_model", "--format", "tflite", "--format", "onnx", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    model_dir = root / "exports" / "vanilla_tagger"
    assert (model_dir / "1" / "saved_model.pb").exists() and (model_dir / "1.tflite").exists()
    assert (model_dir / "1.onnx").exists()
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert {e["format"] for e in manifest} == {"saved_model", "tflite", "onnx"}
    for entry in manifest:
        parity = entry["parity"]
        assert parity["passed"] and parity["max_relative_error"] <= 1e-5 and parity["max_abs_error"] <= 1e-5
    assert not any(op.startswith("CUSTOM") for op in manifest[1]["tflite_ops"])

    again = rnnzoo("export", "runs/quick", "--format", "tflite", "--version", "1", cwd=root)
    assert again.returncode == 2 and "exists; pass `--overwrite`" in again.stderr

    x = np.random.default_rng(0).integers(0, 2, size=(2, 9, 1)).astype("float32")
    np.save(root / "x.npy", x)
    outputs = {}
    for artifact in ("exports/vanilla_tagger/1", "exports/vanilla_tagger/1.tflite", "exports/vanilla_tagger/1.onnx"):
        out = root / f"out{len(outputs)}.npy"
        done = rnnzoo("predict", artifact, "--input", "x.npy", "--output", str(out), cwd=root)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs[artifact] = np.load(out)
    a, b, c = outputs.values()
    assert a.shape == (2, 9, 2) and np.abs(a - b).max() <= 1e-5 and np.abs(a - c).max() <= 1e-5

    np.save(root / "bad.npy", np.zeros((2, 9, 3), "float32"))
    done = rnnzoo("predict", "exports/vanilla_tagger/1.tflite", "--input", "bad.npy", cwd=root)
    assert done.returncode == 2 and "expects shape (-1, -1, 1)" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_weights(tmp_path):
    import keras

    import rnnzoo.layers as registered_layers  # noqa: F401  (registers the layers for load_model)

    args = ["train", "vanilla_tagger", "--task", "running_parity", "--epochs", "4", "--units", "16", "--quiet"]
    done = rnnzoo(*args, "--out", "straight", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]

    # Start the same run elsewhere and kill it hard once epoch 2 has ended (its backup is written
    # before the progress line of epoch 3 appears).
    process = subprocess.Popen([sys.executable, "-m", "rnnzoo", *args, "--out", "interrupted"], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    seen = []
    deadline = time.time() + 300
    for line in process.stdout:
        seen.append(line)
        if line.startswith("Epoch 3/4") or time.time() > deadline:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert any(line.startswith("Epoch 3/4") for line in seen), "".join(seen)[-2000:]
    assert not (tmp_path / "interrupted" / "model.keras").exists()

    done = rnnzoo(*args, "--out", "interrupted", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Epoch 1/4" not in done.stdout and "Epoch 3/4" in done.stdout  # it resumed, not restarted
    straight = keras.saving.load_model(tmp_path / "straight" / "model.keras")
    resumed = keras.saving.load_model(tmp_path / "interrupted" / "model.keras")
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    history = json.loads((tmp_path / "interrupted" / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2, 3]


def test_rerunning_with_another_configuration_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"model": "vanilla_tagger", "task": "running_parity"}))
    done = rnnzoo("train", "vanilla_tagger", "--task", "delayed_recall", "--out", "run", cwd=tmp_path)
    assert done.returncode == 2 and "holds a run with another configuration" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vanilla_regressor", "bidirectional_tagger", "deep_transition_tagger",
                                   "sequence_classifier"])
def test_every_recipe_trains_evaluates_and_exports(tmp_path, model):
    from rnnzoo import export, training

    recipe = training.get_recipe(model)
    config = training.TrainConfig(model=model, task=recipe.default_task, epochs=2, units=16)
    results = training.train(config, str(tmp_path / "run"), verbose=0)
    assert results["test_examples"] == training.get_task(recipe.default_task).sizes[2]
    (entry,) = export.export_run(str(tmp_path / "run"), ["tflite"], out=str(tmp_path / "exports"))
    assert entry["parity"]["passed"] and entry["parity"]["max_abs_error"] <= 1e-5, entry["parity"]
    assert not any(op.startswith("CUSTOM") for op in entry["tflite_ops"])
