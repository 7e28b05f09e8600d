"""The CLI and the run directory at their boundaries: every user error is one line on stderr, exit 2.

In-process (`main([...])`) to keep it fast; one tiny trained run is shared by the module.
"""

import json
import os

import numpy as np
import pytest

from rnnzoo.app import runs
from rnnzoo.app.cli import main

pytestmark = pytest.mark.tensorflow  # the CLI's export and predict need TensorFlow; run once, in its pass


def run_main(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.err


def assert_one_line_error(code, err, *words):
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.startswith("rnnzoo ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("errors_cli") / "run")
    config = runs.TrainConfig("vanilla_tagger", task="delayed_recall", epochs=1, units=4, batch_size=256)
    runs.train(config, run_dir, verbose=0, log=lambda line: None)
    return run_dir


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("learning_rate", float("inf"), "learning_rate=inf"),
        ("learning_rate", float("nan"), "learning_rate=nan"),
        ("learning_rate", 0.0, "learning_rate=0.0"),
        ("learning_rate", -0.1, "learning_rate=-0.1"),
        ("learning_rate", 1e6, "learning_rate=1000000.0"),
        ("learning_rate", "0.1", "learning_rate='0.1'"),
        ("clipnorm", float("inf"), "clipnorm=inf"),
        ("clipnorm", float("nan"), "clipnorm=nan"),
        ("clipnorm", 0, "clipnorm=0"),
        ("seed", 1.5, "seed=1.5"),
    ],
)
def test_train_config_rejects_bad_hyperparameters(field, value, words):
    config = runs.TrainConfig("vanilla_tagger", **{field: value})
    with pytest.raises(ValueError, match=f"`TrainConfig\\({field}=...\\)`") as info:
        config.validate(check_initializer=False)
    assert f"Received: {words}" in str(info.value)


def test_train_config_takes_subwords_for_seq2seq_only(capsys, tmp_path):
    runs.TrainConfig("seq2seq_attention", split="subword").validate(check_initializer=False)
    with pytest.raises(ValueError, match=r"split='subword'.*seq2seq models; 'char_lm' splits into characters or words"):
        runs.TrainConfig("char_lm", split="subword").validate(check_initializer=False)
    with pytest.raises(ValueError, match=r"'character', 'word' or 'subword'. Received: split='bpe'"):
        runs.TrainConfig("seq2seq_attention", split="bpe").validate(check_initializer=False)
    assert main(["train", "char_lm", "--split", "subword", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "splits into characters or words" in err and "Traceback" not in err and not os.path.exists(tmp_path / "r")


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "0", "1e6"])
def test_cli_rejects_bad_learning_rates(capsys, tmp_path, value):
    with pytest.raises(SystemExit) as info:  # argparse: non-finite or <= 0
        main(["train", "vanilla_tagger", "--learning-rate", value, "--out", str(tmp_path / "r")])
        raise SystemExit(2)  # 1e6 passes argparse and is refused by TrainConfig.validate with status 2
    err = capsys.readouterr().err
    assert info.value.code in (2, None) and "Traceback" not in err
    assert ("must be > 0, got" in err) or ("must be finite, got" in err) or ("must be a number in (0, 1.0]" in err), err
    assert not os.path.exists(tmp_path / "r")


def test_nan_loss_stops_training_and_saves_nothing_of_it(tmp_path, tiny_run):
    import keras

    class PoisonWeights(keras.callbacks.Callback):  # weights become NaN in the second epoch
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                for w in self.model.trainable_weights:
                    w.assign(np.full(w.shape, np.nan, w.dtype))

    run_dir = str(tmp_path / "nan")
    config = runs.TrainConfig("vanilla_tagger", task="delayed_recall", epochs=3, units=4, batch_size=256)
    with pytest.raises(runs.NonFiniteLossError, match="`loss` became nan at epoch 2, batch 2"):
        runs.train(config, run_dir, verbose=0, callbacks=[PoisonWeights()], log=lambda line: None)
    assert not os.path.exists(os.path.join(run_dir, "model.keras"))
    best = keras.saving.load_model(os.path.join(run_dir, "checkpoints", "best.keras"), compile=False)
    assert all(np.isfinite(np.asarray(w)).all() for w in best.weights)
    assert runs._backup_epoch(run_dir) == 1  # the backup holds the last good epoch


def test_cli_reports_a_diverged_run_in_one_line(capsys, monkeypatch, tmp_path):
    def diverge(config, run_dir, **kwargs):
        raise runs.NonFiniteLossError("Training stopped: `loss` became nan at epoch 1, batch 3; ...")

    monkeypatch.setattr(runs, "train", diverge)
    code, err = run_main(capsys, "train", "vanilla_tagger", "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "`loss` became nan")


def test_out_is_a_file_or_read_only(capsys, tmp_path, tiny_run):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    code, err = run_main(capsys, "train", "vanilla_tagger", "--out", str(a_file / "run"))
    assert_one_line_error(code, err, "Not a directory")
    code, err = run_main(capsys, "export", tiny_run, "--format", "saved_model", "--out", str(a_file))
    assert_one_line_error(code, err, str(a_file))


def test_out_in_a_read_only_directory(capsys, monkeypatch, tmp_path):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    os.chmod(read_only, 0o500)
    if os.access(read_only, os.W_OK):
        # Root ignores permissions: the file system answers as it would answer anyone else.
        def refuse(make):
            def make_unless_read_only(path, *args, **kwargs):
                if str(path).startswith(str(read_only)):
                    raise PermissionError(13, "Permission denied", str(path))
                return make(path, *args, **kwargs)
            return make_unless_read_only

        for name in ("mkdir", "makedirs"):
            monkeypatch.setattr(os, name, refuse(getattr(os, name)))
    try:
        code, err = run_main(capsys, "train", "vanilla_tagger", "--out", str(read_only / "run"))
        assert_one_line_error(code, err, "Permission denied", str(read_only / "run"))
    finally:
        os.chmod(read_only, 0o700)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "evaluate", str(tmp_path / "nowhere")])


@pytest.mark.parametrize(
    "name, content, words",
    [
        ("x.json", "[[1, 2], [3", ["x.json, line 1, column", "not valid JSON"]),
        ("x.json", '[[1, 2], [3]]', ["x.json", "list of numbers of one shape"]),
        ("x.npy", "garbage", ["x.npy is not a readable .npy file"]),
    ],
)
def test_predict_bad_input_files(capsys, tmp_path, name, content, words):
    (tmp_path / name).write_text(content)
    (tmp_path / "m.tflite").write_bytes(b"")
    code, err = run_main(capsys, "predict", str(tmp_path / "m.tflite"), "--input", str(tmp_path / name))
    assert_one_line_error(code, err, *words)


@pytest.mark.parametrize("artifact", ["empty.tflite", "saved_model_0_bytes", "saved_model_corrupt_variables"])
def test_predict_corrupt_artifacts(capsys, tmp_path, artifact):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 1), "float32"))
    path = tmp_path / artifact
    if artifact.endswith(".tflite"):
        path.write_bytes(b"")
    else:
        (path / "variables").mkdir(parents=True)
        pb = b"" if artifact.endswith("0_bytes") else b"\x08\x01garbage"
        (path / "saved_model.pb").write_bytes(pb)
        (path / "variables" / "variables.index").write_bytes(b"corrupt")
    code, err = run_main(capsys, "predict", str(path), "--input", str(tmp_path / "x.npy"))
    assert_one_line_error(code, err, "cannot be loaded or run", "corrupt")


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_json_run"])
def test_corrupt_run_files(capsys, tmp_path, tiny_run, damage):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    model_file = run_dir / "model.keras"
    if damage == "truncated":
        model_file.write_bytes(model_file.read_bytes()[:500])
    elif damage == "empty":
        model_file.write_bytes(b"")
    else:
        (run_dir / "run.json").write_text("{not json")
    code, err = run_main(capsys, "evaluate", str(run_dir))
    words = ["run.json, line 1, column 2", "not valid JSON"] if damage == "not_json_run" else ["is corrupt"]
    assert_one_line_error(code, err, *words)


def test_diagnose_on_the_wrong_task_and_attention_without_attention(capsys, tiny_run):
    code, err = run_main(capsys, "diagnose", tiny_run, "--task", "adding_problem", "--length", "5")
    assert_one_line_error(code, err, "'adding_problem' has 2 input feature(s)", "takes 1")
    code, err = run_main(capsys, "attention", os.path.join(tiny_run, "model.keras"), "abc")
    assert_one_line_error(code, err, "needs a Seq2Seq model with attention", "is a ")


def test_attention_and_diagnose_on_a_corrupt_model(capsys, tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes(b"PK\x03\x04 truncated")
    for args in (["attention", str(path), "abc"], ["diagnose", str(path), "--task", "delayed_recall", "--length", "3"]):
        code, err = run_main(capsys, *args)
        assert_one_line_error(code, err, "the file is corrupt")


def test_treebank_directory_errors(capsys, tmp_path):
    treebank = tmp_path / "sst"
    treebank.mkdir()
    (treebank / "train.txt").write_text("(1 (1 a) (2 b))\n")
    (treebank / "test.txt").write_text("(1 (1 a) (2 b))\n")
    code, err = run_main(capsys, "train", "tree_classifier", "--trees", str(treebank), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "lacks dev.txt", "train.txt, dev.txt and test.txt")
    code, err = run_main(capsys, "train", "tree_classifier", "--trees", str(tmp_path / "none"), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "No treebank directory at", "none")
    code, err = run_main(capsys, "train", "vanilla_tagger", "--trees", str(treebank), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "does not read a treebank directory", "Received: trees=")
    (treebank / "dev.txt").write_text("(1 (1 a) (2 b)\n")
    code, err = run_main(capsys, "train", "tree_classifier", "--trees", str(treebank), "--out", str(tmp_path / "r"))
    assert_one_line_error(code, err, "dev.txt, line 1, column 1: unbalanced brackets")
    with pytest.raises(SystemExit) as info:  # argparse: one of --task, --data, --trees
        main(["train", "tree_classifier", "--trees", str(treebank), "--data", "x.txt"])
    assert info.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
