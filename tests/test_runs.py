"""Run directories: a rerun after any interruption resumes, says from where, and keeps one history row per epoch.

In-process and backend-agnostic (both passes); `tests/test_cli.py` kills a real `rnnzoo train`.
"""

import csv
import json

import keras
import pytest

from rnnzoo.app import runs


def epochs_in_history(run_dir):
    with open(run_dir / "history.csv") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


class Interrupt(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Stops `fit` when epoch `epoch` (0-based) begins, after the earlier epochs' backup."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            raise Interrupt(f"interrupted at epoch {epoch}")


CONFIG = dict(model="vanilla_tagger", task="running_parity", units=4, batch_size=256)


@pytest.mark.slow
def test_resume_after_an_interruption_keeps_one_row_per_epoch(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(Interrupt):
        runs.train(runs.TrainConfig(**CONFIG, epochs=3), str(run_dir), verbose=0, callbacks=[InterruptAt(2)])
    assert epochs_in_history(run_dir) == [0, 1] and not (run_dir / "model.keras").exists()
    # As if the process died after CSVLogger wrote epoch 2's row but before the backup of epoch 2
    # (and a copy of an earlier row, as an old append-on-rerun would have left).
    lines = (run_dir / "history.csv").read_text().splitlines()
    (run_dir / "history.csv").write_text("\n".join([*lines, lines[1], "2" + lines[2][1:]]) + "\n")

    said = []
    results = runs.train(runs.TrainConfig(**CONFIG, epochs=3), str(run_dir), verbose=0, log=said.append)
    assert said == [f"{run_dir}: resuming after epoch 2 of 3, from the backup in {run_dir / 'backup'}"]
    assert epochs_in_history(run_dir) == [0, 1, 2]
    assert json.loads((run_dir / "history.json").read_text())["epoch"] == [0, 1, 2]
    assert results["test_examples"] == 1000 and not (run_dir / "backup").exists()


@pytest.mark.slow
def test_a_finished_run_is_not_trained_again(tmp_path):
    run_dir = tmp_path / "run"
    runs.train(runs.TrainConfig(**CONFIG, epochs=2), str(run_dir), verbose=0, log=lambda line: None)
    weights = (run_dir / "model.keras").read_bytes()
    # As if the steps after training had failed (the missing matplotlib).
    for name in ("evaluation.json", "learning_curve.png", "history.json"):
        (run_dir / name).unlink()

    said = []
    results = runs.train(runs.TrainConfig(**CONFIG, epochs=2), str(run_dir), verbose=0, log=said.append)
    assert said == [f"{run_dir}: training finished earlier (2 epochs in history.csv); not training again, "
                    "only finishing the steps after it"]
    assert epochs_in_history(run_dir) == [0, 1] and (run_dir / "model.keras").read_bytes() == weights
    assert (run_dir / "learning_curve.png").exists() and json.loads((run_dir / "evaluation.json").read_text()) == results


def test_another_configuration_in_the_same_directory_is_refused(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"model": "vanilla_tagger", "task": "delayed_recall"}))
    with pytest.raises(ValueError, match="holds a run with another configuration") as error:
        runs.train(runs.TrainConfig(**CONFIG), str(tmp_path))
    assert "--" not in str(error.value)


def test_missing_matplotlib_is_one_line_and_the_run_goes_on(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    said = []
    assert runs.plot_learning_curve({"epoch": [0], "loss": [1.0]}, str(tmp_path / "c.png"), log=said.append) is None
    assert len(said) == 1 and said[0].startswith("learning curve not plotted") and "pip install matplotlib" in said[0]
