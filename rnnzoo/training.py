"""Runs: the zoo's trainable (model, task) recipes and a reproducible, resumable `train`.

A run directory holds everything about one training run:

    RUN_DIR/run.json             what was trained: model, task, hyperparameters, seed
    RUN_DIR/model.keras          the final model (save/load without custom_objects)
    RUN_DIR/checkpoints/         the best model so far (`ModelCheckpoint`, on validation loss)
    RUN_DIR/backup/              `BackupAndRestore` state: run the same command again to resume
                                 (early stopping's patience count restarts at a resume)
    RUN_DIR/logs/                TensorBoard logs
    RUN_DIR/history.json         per-epoch metrics
    RUN_DIR/learning_curve.png   loss (and accuracy) per epoch, train and validation
    RUN_DIR/evaluation.json      metrics on the held-out test split

`rnnzoo train`, `rnnzoo evaluate` and `rnnzoo export` are thin commands over this module.
"""

import dataclasses
import json
import os

import keras
import numpy as np

from rnnzoo.data import tasks as task_generators
from rnnzoo.initializers import recurrent_initializer
from rnnzoo.layers.vanilla_rnn import VanillaRNN
from rnnzoo.models.vanilla_tagger import vanilla_tagger


@dataclasses.dataclass(frozen=True)
class Task:
    """A generated task: how to make its splits and how to score a model on it."""

    name: str
    generate: callable  # (num_examples, length, seed) -> (x, y)
    kind: str  # "per_step_classification", "sequence_classification" or "regression"
    num_classes: int
    features: int
    length: int
    sizes: tuple = (4000, 500, 1000)  # train, validation, test

    def split(self, split, length=None, num_examples=None, seed=0):
        index = ("train", "validation", "test").index(split)
        count = num_examples or self.sizes[index]
        # Each split has its own stream: the test data is never seen in training.
        return self.generate(count, length or self.length, seed=1000 * seed + index)

    def loss(self):
        if self.kind == "regression":
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def metrics(self):
        return ["mae"] if self.kind == "regression" else ["accuracy"]


TASKS = {
    "delayed_recall": Task("delayed_recall", lambda n, t, seed: task_generators.delayed_recall(n, t, delay=4, seed=seed),
                           "per_step_classification", 2, 1, 24),
    "running_parity": Task("running_parity", task_generators.running_parity, "per_step_classification", 2, 1, 12),
    "adding_problem": Task("adding_problem", task_generators.adding_problem, "regression", 1, 2, 20),
    "future_recall": Task("future_recall", lambda n, t, seed: task_generators.future_recall(n, t, advance=2, seed=seed),
                          "per_step_classification", 2, 1, 10),
    "majority_bit": Task("majority_bit", lambda n, t, seed: task_generators.majority_bit(n, t, min_length=3, seed=seed),
                         "sequence_classification", 2, 1, 9),
}


def _vanilla_tagger(task, units, recurrent_initializer):
    return vanilla_tagger(task.num_classes, task.features, units, recurrent_initializer=recurrent_initializer)


def _vanilla_regressor(task, units, recurrent_initializer):
    inputs = keras.Input((None, task.features), name="x")
    outputs = VanillaRNN(units, output_units=task.num_classes, recurrent_initializer=recurrent_initializer,
                         name="vanilla_rnn")(inputs)
    return keras.Model(inputs, outputs, name="vanilla_regressor")


def _bidirectional_tagger(task, units, recurrent_initializer):
    from rnnzoo.layers.bidirectional import Bidirectional

    inputs = keras.Input((None, task.features), name="x")
    h = Bidirectional(VanillaRNN(units, return_sequences=True, recurrent_initializer=recurrent_initializer,
                                 name="vanilla_rnn"))(inputs)
    return keras.Model(inputs, keras.layers.Dense(task.num_classes, name="logits")(h), name="bidirectional_tagger")


def _deep_transition_tagger(task, units, recurrent_initializer):
    from rnnzoo.cells.deep_transition_cell import DeepTransitionCell
    from rnnzoo.layers.recurrent import Recurrent

    inputs = keras.Input((None, task.features), name="x")
    cell = DeepTransitionCell(units, transition_depth=2, skip_connection=True, recurrent_initializer=recurrent_initializer)
    h = Recurrent(cell, return_sequences=True, name="deep_transition")(inputs)
    return keras.Model(inputs, keras.layers.Dense(task.num_classes, name="logits")(h), name="deep_transition_tagger")


def _sequence_classifier(task, units, recurrent_initializer):
    from rnnzoo.models.sequence_classifier import sequence_classifier

    return sequence_classifier(task.num_classes, task.features, units, mask_value=-1.0,
                               recurrent_initializer=recurrent_initializer)


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    build: callable  # (task, units, recurrent_initializer) -> keras.Model
    task_kinds: tuple
    default_task: str


MODELS = {
    "vanilla_tagger": Recipe("vanilla_tagger", _vanilla_tagger, ("per_step_classification",), "delayed_recall"),
    "vanilla_regressor": Recipe("vanilla_regressor", _vanilla_regressor, ("regression",), "adding_problem"),
    "bidirectional_tagger": Recipe("bidirectional_tagger", _bidirectional_tagger, ("per_step_classification",),
                                   "future_recall"),
    "deep_transition_tagger": Recipe("deep_transition_tagger", _deep_transition_tagger, ("per_step_classification",),
                                     "delayed_recall"),
    "sequence_classifier": Recipe("sequence_classifier", _sequence_classifier, ("sequence_classification",),
                                  "majority_bit"),
}


def _choose(kind, name, options):
    if name not in options:
        raise ValueError(f"Unknown {kind} {name!r}. Valid {kind}s: {', '.join(sorted(options))}")
    return options[name]


def get_task(name):
    return _choose("task", name, TASKS)


def get_recipe(name):
    return _choose("model", name, MODELS)


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs; saved as RUN_DIR/run.json."""

    model: str
    task: str
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.01
    clipnorm: float = None
    units: int = 32
    recurrent_initializer: str = "orthogonal"
    seed: int = 0
    distribute: str = None
    patience: int = 5

    def validate(self):
        recipe, task = get_recipe(self.model), get_task(self.task)
        if task.kind not in recipe.task_kinds:
            compatible = sorted(n for n, t in TASKS.items() if t.kind in recipe.task_kinds)
            raise ValueError(f"Model {self.model!r} cannot be trained on task {self.task!r}. "
                             f"Valid tasks for it: {', '.join(compatible)}")
        for name in ("epochs", "batch_size", "units"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1. Received: {name}={getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ValueError(f"`learning_rate` must be > 0. Received: learning_rate={self.learning_rate}")
        if self.clipnorm is not None and not self.clipnorm > 0:
            raise ValueError(f"`clipnorm` must be > 0. Received: clipnorm={self.clipnorm}")
        if self.distribute not in (None, "mirrored", "data_parallel"):
            raise ValueError(f"`distribute` must be 'mirrored' (TensorFlow) or 'data_parallel' (JAX). "
                             f"Received: distribute={self.distribute!r}")
        recurrent_initializer(self.recurrent_initializer)
        return self


def _strategy_scope(distribute):
    """The context to build, compile and fit the model in, for `--distribute`."""
    import contextlib

    backend = keras.backend.backend()
    if distribute is None:
        return contextlib.nullcontext()
    if distribute == "mirrored":
        if backend != "tensorflow":
            raise ValueError(f"`--distribute mirrored` needs the TensorFlow backend. Received: backend={backend}")
        import tensorflow as tf

        if os.environ.get("TF_CONFIG"):
            return tf.distribute.MultiWorkerMirroredStrategy().scope()
        return tf.distribute.MirroredStrategy().scope()
    if backend != "jax":
        raise ValueError(f"`--distribute data_parallel` needs the JAX backend. Received: backend={backend}")
    return keras.distribution.DataParallel().scope()


def build_model(config):
    """The compiled model of a `TrainConfig` (inside the distribution strategy's scope, if any)."""
    recipe, task = get_recipe(config.model), get_task(config.task)
    model = recipe.build(task, config.units, recurrent_initializer(config.recurrent_initializer))
    model.compile(
        # Pascanu et al. (2013) rescale the whole gradient when its norm exceeds the threshold:
        # Keras's `global_clipnorm` (its `clipnorm` would clip each weight separately).
        optimizer=keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm),
        loss=task.loss(),
        metrics=task.metrics(),
    )
    return model


def _shuffled(x, y, seed):
    # One fixed order, so that a resumed run sees exactly the batches an uninterrupted one sees.
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order], y[order]


def train(config, run_dir, *, verbose=1, callbacks=()):
    """Trains `config.model` on `config.task` into `run_dir`; resumes if `run_dir` has a backup.

    Returns:
        The evaluation dict on the test split (also written to RUN_DIR/evaluation.json).
    """
    config.validate()
    os.makedirs(run_dir, exist_ok=True)
    run_file = os.path.join(run_dir, "run.json")
    if os.path.exists(run_file):
        with open(run_file) as f:
            previous = json.load(f)
        if previous != dataclasses.asdict(config):
            raise ValueError(
                f"{run_dir!r} holds a run with another configuration ({previous}); choose a new `--out` "
                "directory, or repeat the same command to resume."
            )
    with open(run_file, "w") as f:
        json.dump(dataclasses.asdict(config), f, indent=2)

    keras.utils.set_random_seed(config.seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    task = get_task(config.task)
    x_train, y_train = _shuffled(*task.split("train", seed=config.seed), seed=config.seed)
    validation = task.split("validation", seed=config.seed)
    callbacks = [
        keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup")),
        # On resume, the best validation loss so far comes from the history of the earlier epochs
        # (BackupAndRestore restores the weights and the epoch, not the callbacks' state).
        keras.callbacks.ModelCheckpoint(os.path.join(run_dir, "checkpoints", "best.keras"), save_best_only=True,
                                        initial_value_threshold=_best_so_far(run_dir, "val_loss")),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs")),
        keras.callbacks.EarlyStopping(patience=config.patience, restore_best_weights=False),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
        *callbacks,
    ]
    with _strategy_scope(config.distribute):
        model = build_model(config)
        model.fit(x_train, y_train, batch_size=config.batch_size, epochs=config.epochs, shuffle=False,
                  validation_data=validation, callbacks=callbacks, verbose=verbose)
    model.save(os.path.join(run_dir, "model.keras"))
    history = read_history(run_dir)
    with open(os.path.join(run_dir, "history.json"), "w") as f:
        json.dump(history, f, indent=2)
    plot_learning_curve(history, os.path.join(run_dir, "learning_curve.png"), title=f"{config.model} on {config.task}")
    return evaluate(run_dir)


def _best_so_far(run_dir, metric):
    if not os.path.exists(os.path.join(run_dir, "history.csv")):
        return None
    values = read_history(run_dir).get(metric)
    return min(values) if values else None


def read_history(run_dir):
    """Per-epoch metrics from RUN_DIR/history.csv (complete across interruptions)."""
    import csv

    rows = {}
    with open(os.path.join(run_dir, "history.csv")) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = {k: float(v) for k, v in row.items() if k != "epoch" and v != ""}
    return {"epoch": sorted(rows), **{k: [rows[e][k] for e in sorted(rows)] for k in rows[min(rows)]}} if rows else {}


def plot_learning_curve(history, path, title=""):
    """Writes a PNG of loss (and accuracy or MAE) per epoch, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in ("loss", "accuracy", "mae") if m in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = [e + 1 for e in history["epoch"]]
        ax.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def load_run(run_dir):
    """`(config, model)` of a run directory, with clear errors for a missing or broken one."""
    run_file, model_file = os.path.join(run_dir, "run.json"), os.path.join(run_dir, "model.keras")
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(f"No run directory at {run_dir!r}.")
    if not os.path.exists(run_file) or not os.path.exists(model_file):
        raise FileNotFoundError(f"{run_dir!r} is not a finished run: it lacks run.json or model.keras "
                                "(train it with `rnnzoo train ... --out DIR`; an interrupted run resumes "
                                "when the same command is repeated).")
    try:
        with open(run_file) as f:
            config = TrainConfig(**json.load(f))
        model = keras.saving.load_model(model_file)
    except Exception as error:  # a corrupt file: say which, without a traceback
        raise ValueError(f"The run in {run_dir!r} cannot be read ({type(error).__name__}: {error}).") from error
    return config, model


def evaluate(run_dir, verbose=0):
    """Evaluates a finished run on its task's test split; writes and returns RUN_DIR/evaluation.json."""
    config, model = load_run(run_dir)
    x_test, y_test = get_task(config.task).split("test", seed=config.seed)
    results = model.evaluate(x_test, y_test, batch_size=256, return_dict=True, verbose=verbose)
    results = {"model": config.model, "task": config.task, "test_examples": len(x_test),
               **{k: float(v) for k, v in results.items()}}
    with open(os.path.join(run_dir, "evaluation.json"), "w") as f:
        json.dump(results, f, indent=2)
    return results
