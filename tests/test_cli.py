"""The `rnnzoo` command as a user runs it: subprocesses, exit codes, messages, files."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import keras
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


def native_log_lines(stderr):
    from rnnzoo.app.cli import NATIVE_LOG_LINE

    return [line for line in stderr.splitlines() if NATIVE_LOG_LINE.match(line) or "absl" in line]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    done = rnnzoo("train", "vanilla_tagger", "--task", "delayed_recall", "--epochs", "3", "--units", "16",
                  "--out", "runs/quick", "--quiet", cwd=root)
    assert done.returncode == 0, done.stderr[-3000:]
    # TensorFlow was imported, and its start-up lines (oneDNN, CUDA, absl) did not reach the terminal.
    assert not native_log_lines(done.stderr), done.stderr[-2000:]
    return root, done.stdout


@pytest.mark.slow
def test_train_evaluate_export_predict(trained_run):
    root, train_stdout = trained_run
    run = root / "runs" / "quick"
    assert "evaluation (test split)" in train_stdout
    # Four significant digits: a small loss is not printed as 0.0000.
    line = next(line for line in train_stdout.splitlines() if line.startswith("evaluation (test split)"))
    assert "accuracy=1.000" in line and "=0.0000" not in line, line
    loss = line.split("loss=")[1].split(",")[0]
    assert 0 < float(loss) < 0.1 and re.fullmatch(r"0\.0*[1-9]\d{3}|[1-9]\.\d{3}e-\d+", loss), line
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
    assert not native_log_lines(done.stderr), done.stderr[-2000:]

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
    # A `.tflite` or `.onnx` file runs without Keras or TensorFlow (a fraction of a second, not an import of TF).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from rnnzoo.app.cli import main\n"
         "for f in sys.argv[1:]: assert main(['predict', f, '--input', 'x.npy']) == 0\n"
         "print(sorted({m.split('.')[0] for m in sys.modules} & {'keras', 'tensorflow', 'jax'}))",
         "exports/vanilla_tagger/1.tflite", "exports/vanilla_tagger/1.onnx"],
        capture_output=True, text=True, cwd=root, env=ENV, timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip().endswith("[]"), (loaded.stdout[-500:], loaded.stderr[-2000:])

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
    backup_epoch = json.loads((tmp_path / "interrupted" / "backup" / "training_metadata.json").read_text())["epoch"]
    assert backup_epoch == 2

    done = rnnzoo(*args, "--out", "interrupted", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Epoch 1/4" not in done.stdout and "Epoch 3/4" in done.stdout  # it resumed, not restarted
    assert "resuming after epoch 2 of 4, from the backup in interrupted/backup" in done.stdout, done.stdout
    straight = keras.saving.load_model(tmp_path / "straight" / "model.keras")
    resumed = keras.saving.load_model(tmp_path / "interrupted" / "model.keras")
    for a, b in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    history = json.loads((tmp_path / "interrupted" / "history.json").read_text())
    assert history["epoch"] == [0, 1, 2, 3]
    rows = (tmp_path / "interrupted" / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows] == ["epoch", "0", "1", "2", "3"]  # one row per epoch


def test_rerunning_with_another_configuration_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"model": "vanilla_tagger", "task": "running_parity"}))
    done = rnnzoo("train", "vanilla_tagger", "--task", "delayed_recall", "--out", "run", cwd=tmp_path)
    assert done.returncode == 2 and "holds a run with another configuration" in done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vanilla_regressor", "bidirectional_tagger", "deep_transition_tagger",
                                   "sequence_classifier"])
def test_every_recipe_trains_evaluates_and_exports(tmp_path, model):
    from rnnzoo.app import registry, runs

    config = runs.TrainConfig(model=model, epochs=2, units=16)
    assert config.task == registry.RECIPES[model].default_task
    results = runs.train(config, str(tmp_path / "run"), verbose=0, log=lambda line: None)
    assert results["test_examples"] == registry.TASKS[config.task].sizes[2]
    (entry,) = runs.export_run(str(tmp_path / "run"), ["tflite"], out=str(tmp_path / "exports"))
    assert entry["parity"]["passed"] and entry["parity"]["max_abs_error"] <= 1e-5, entry["parity"]
    assert not any(op.startswith("CUSTOM") for op in entry["tflite_ops"])


TREES = """(2 (1 not) (0 bad))
(0 (1 not) (2 (2 very) (2 good)))
(2 (2 good) (1 film))
(0 (0 bad) (1 (1 a) (1 film)))
(1 (1 a) (1 film))
(0 (1 not) (2 good))
(2 (2 (2 very) (2 good)) (1 film))
(1 (1 not) (1 (1 a) (1 film)))
(2 (0 bad) (2 (1 not) (0 bad)))
(0 (2 good) (0 (1 not) (2 good)))
"""


@pytest.mark.slow
def test_tree_classifier_from_a_tree_file_trains_evaluates_exports_and_resumes(tmp_path, capsys, monkeypatch):
    from rnnzoo.app.cli import main

    (tmp_path / "trees.txt").write_text(TREES)
    args = ["train", "tree_classifier", "--data", "trees.txt", "--epochs", "2", "--units", "8", "--out", "run", "--quiet"]
    done = rnnzoo(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not native_log_lines(done.stderr), done.stderr[-2000:]
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["task"] == "trees.txt" and evaluation["test_examples"] == 1  # 10 trees: 8 / 1 / 1
    assert 0 <= evaluation["root_logits_accuracy"] <= 1
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["num_classes"] == 3 and {"not", "good", "bad"} <= set(data["tokens"])

    # The same commands in this process (the subprocesses above checked the start-up and the logs).
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["export", "run", "--format", "saved_model", "--format", "tflite"]) == 0
    assert capsys.readouterr().out.count(" PASS\n") == 2
    manifest = json.loads((tmp_path / "exports" / "tree_classifier" / "manifest.json").read_text())
    assert [e["format"] for e in manifest] == ["saved_model", "tflite"]
    assert all(e["parity"]["passed"] and e["parity"]["max_relative_error"] <= 1e-5 for e in manifest), manifest
    vocabulary = json.loads((tmp_path / "exports" / "tree_classifier" / "1.vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary["tokens"] == data["tokens"] and vocabulary["binarization"] == "left"
    import tensorflow as tf  # the SavedModel also takes sentences (`classify`), as the text model does

    served = tf.saved_model.load(str(tmp_path / "exports" / "tree_classifier" / "1"))
    texts = ["not good", "", "a very bad film"]
    classified = served.signatures["classify"](text=tf.constant(texts))
    assert classified["num_nodes"].numpy().tolist() == [3, 1, 7]
    from rnnzoo.data import trees as T

    encoded = T.encode_trees([T.sentence_tree(t) for t in texts], T.Vocabulary(data["tokens"][2:]))
    run_model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    expected = run_model.predict_on_batch(T.split_inputs_targets(encoded)[0])["root_logits"]
    np.testing.assert_allclose(classified["root_logits"].numpy(), expected, atol=1e-5)

    assert main(args) == 0  # a finished run: no second training, no new history rows
    out = capsys.readouterr().out
    assert "run: training finished earlier (2 epochs in history.csv)" in out and "Epoch 1/" not in out
    assert len((tmp_path / "run" / "history.csv").read_text().splitlines()) == 3


def test_tree_classifier_from_a_treebank_directory_uses_its_splits(tmp_path, capsys, monkeypatch):
    """`--trees DIR`: train.txt, dev.txt and test.txt as they are (SST's layout), not an 80/10/10 split."""
    from rnnzoo.app import recipes, runs
    from rnnzoo.app.cli import main

    lines = TREES.splitlines()
    treebank = tmp_path / "sst"
    treebank.mkdir()
    (treebank / "train.txt").write_text("\n".join(lines[:6]) + "\n(2 (2 8\u00a01\\/2) (1 film))\n", encoding="utf-8")
    (treebank / "dev.txt").write_text("\n".join(lines[6:8]) + "\n", encoding="utf-8")
    (treebank / "test.txt").write_text("\n".join(lines[8:]) + "\n(4 (4 great) (1 film))\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    args = ["train", "tree_classifier", "--trees", "sst", "--epochs", "1", "--units", "4", "--out", "run", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["task"] == "sst" and evaluation["test_examples"] == 3  # test.txt's 3 trees
    data = json.loads((tmp_path / "run" / "data.json").read_text())
    assert data["num_classes"] == 5 and "8\u00a01\\/2" in data["tokens"]  # one word, from train.txt only
    assert "great" not in data["tokens"]
    config = runs.TrainConfig(**json.loads((tmp_path / "run" / "run.json").read_text()))
    splits = recipes.load_data(config)
    assert [len(part[1]["root_logits"]) for part in (splits.train, splits.validation, splits.test)] == [7, 2, 3]
    assert splits.test[1]["root_logits"].tolist() == [2, 0, 4]  # test.txt in its order


@pytest.mark.slow
def test_seq2seq_from_a_pairs_file_trains_evaluates_and_exports(tmp_path, capsys, monkeypatch):
    from rnnzoo.app.cli import main

    rng = np.random.default_rng(0)
    words = [" ".join("".join(rng.choice(list("abcdé"), size=rng.integers(1, 5))) for _ in range(rng.integers(1, 3)))
             for _ in range(60)]
    # An Anki-style file: a third (attribution) column, ignored.
    (tmp_path / "pairs.tsv").write_text("".join(f"{w}\t{w[::-1]}\tCC-BY 2.0\n" for w in words), encoding="utf-8")
    done = rnnzoo("train", "seq2seq_fixed_context", "--pairs", "pairs.tsv", "--split", "subword", "--max-tokens", "16",
                  "--epochs", "1", "--units", "8", "--embedding-dim", "6", "--out", "run", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "jit_compile" not in done.stderr  # no "Model doesn't support `jit_compile=True`" warning
    model = keras.saving.load_model(str(tmp_path / "run" / "model.keras"))
    assert (model.embedding_dim, model.hidden_dim, model.split) == (6, 8, "subword")
    assert len(model.source_tokenizer) <= 16 and any(len(piece) > 1 for piece in model.source_vocabulary)
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["test_examples"] == 6 and 0 <= evaluation["exact_match"] <= 1
    done = rnnzoo("export", "run", "--format", "saved_model", "--format", "tflite", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not native_log_lines(done.stderr), done.stderr[-2000:]
    manifest = json.loads((tmp_path / "exports" / "seq2seq_fixed_context" / "manifest.json").read_text())
    for entry in manifest:
        assert entry["parity"]["passed"] and entry["parity"]["tokens_equal"], entry["parity"]
    assert manifest[0]["parity"]["translations_equal"] and set(manifest[0]["signatures"]) == {
        "translate", "translate_beam", "greedy", "beam_search"}
    assert not any(op.startswith("CUSTOM") or op.startswith("FLEX") for op in manifest[1]["tflite_ops"])

    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.tsv").write_text("abc\tcba\nno tab here\n")
    capsys.readouterr()
    assert main(["train", "seq2seq_attention", "--data", "bad.tsv", "--out", "bad"]) == 2  # --data still works
    err = capsys.readouterr().err
    assert "bad.tsv:2: expected a source and a target separated by a tab" in err and err.count("\n") == 1, err
    assert main(["train", "tree_classifier", "--pairs", "bad.tsv", "--out", "bad"]) == 2
    assert "--pairs is for the seq2seq models" in capsys.readouterr().err
