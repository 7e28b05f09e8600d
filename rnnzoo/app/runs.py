"""Training runs: a reproducible, resumable `train`, `evaluate` and `export_run` over a run directory.

A run directory holds everything about one training run:

    RUN_DIR/run.json             what was trained: model, task or data file, hyperparameters, seed
    RUN_DIR/data.json            what the model was built for: classes, vocabulary, alphabets, lengths
    RUN_DIR/model.keras          the final model (save/load without custom_objects), written when
                                 training ends; a run directory with it is finished
    RUN_DIR/checkpoints/         the best model so far (`ModelCheckpoint`, on validation loss)
    RUN_DIR/backup/              `BackupAndRestore` state, after every epoch until training ends:
                                 train again into the same directory to resume from it (early
                                 stopping's patience count restarts at a resume)
    RUN_DIR/logs/                TensorBoard logs
    RUN_DIR/history.csv          per-epoch metrics, one row per epoch, also across interruptions
    RUN_DIR/history.json         the same as JSON
    RUN_DIR/learning_curve.png   loss (and accuracy) per epoch, train and validation
    RUN_DIR/evaluation.json      metrics on the held-out test split

Keras and the backend are imported inside the functions: `TrainConfig` is plain data, so the
command line can read its defaults without loading a backend.
"""

import dataclasses
import json
import math
import os

from rnnzoo.app.registry import RECIPES, TASKS, TREEBANK_FILES, tasks_for
from rnnzoo.gradient_registry import load_saved_model

SUPPORTED_DISTRIBUTE = ("mirrored", "data_parallel")
MAX_LEARNING_RATE = 1.0  # Adam's step per weight is about the learning rate: above 1 it only diverges


class NonFiniteLossError(FloatingPointError):
    """Training stopped because the loss became NaN or infinite (see `train`)."""


def _choose(kind, name, options):
    if name not in options:
        raise ValueError(f"Unknown {kind} {name!r}. Valid {kind}s: {', '.join(sorted(options))}. "
                         f"Received: {kind}={name!r}")
    return options[name]


@dataclasses.dataclass
class TrainConfig:
    """Everything `train` needs; saved as RUN_DIR/run.json.

    Args:
        model: str, a model of `rnnzoo.app.registry.RECIPES`.
        task: str or None, a task it trains on (`tasks_for(model)`); None: its default task,
            unless `data` or `trees` is given.
        data: str or None, a data file instead of a generated task (tree and seq2seq models:
            `RECIPES[model].data_file` says what it holds), split 80/10/10 by `seed`; stored as
            an absolute path.
        trees: str or None, a directory holding `train.txt`, `dev.txt` and `test.txt` of
            bracketed trees (the Stanford Sentiment Treebank's layout), used as the train,
            validation and test splits as they are (tree models: `RECIPES[model].trees_dir`);
            stored as an absolute path.
        epochs, batch_size, learning_rate: `model.fit` and Adam; `learning_rate` must be finite,
            > 0 and at most `MAX_LEARNING_RATE` (1.0).
        clipnorm: float or None, clip the global gradient norm to this (Pascanu et al. 2013).
        units: int, the recurrent state size (`hidden_dim` of the seq2seq models).
        embedding_dim: int or None, the size of the token embeddings of the models that embed
            tokens (tree, seq2seq and char_lm models); None: the recipe's (16 for trees, 32 for
            the others).
        recurrent_initializer: str, initializer of W: a Keras name or `NAME:GAIN`, e.g.
            `identity:1.0` (IRNN, Le et al. 2015); not used by the tree and seq2seq models.
        seed: int, the weights, the data and its order.
        distribute: None, "mirrored" (tf.distribute, TensorFlow backend) or "data_parallel"
            (keras.distribution, JAX backend).
        patience: int, early-stopping patience in epochs.
        split: None, "character", "word" or "subword": the tokens of the seq2seq models and of
            `char_lm` (None: characters; words: the seq2seq tokenizer separates punctuation,
            `char_lm` splits at whitespace; subword: byte-pair pieces of words, seq2seq models
            only). For seq2seq, "word", "subword" (or `max_tokens`) builds the vocabularies from
            the training split.
        max_tokens: int or None, the seq2seq vocabularies' most ids (4 special tokens included;
            with `split="subword"`, None means `recipes.SUBWORD_MAX_TOKENS`).
        sequence_length: int, steps per window of truncated BPTT (`char_lm` only).
    """

    model: str
    task: str = None
    data: str = None
    trees: str = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.01
    clipnorm: float = None
    units: int = 32
    embedding_dim: int = None
    recurrent_initializer: str = "orthogonal"
    seed: int = 0
    distribute: str = None
    patience: int = 5
    split: str = None
    max_tokens: int = None
    sequence_length: int = 100

    def __post_init__(self):
        if self.data is not None:
            self.data = os.path.abspath(self.data)
        if self.trees is not None:
            self.trees = os.path.abspath(self.trees)
        if self.data is None and self.trees is None and self.task is None and self.model in RECIPES:
            self.task = RECIPES[self.model].default_task

    def validate(self, check_initializer=True):
        """Raises `ValueError` (or `FileNotFoundError` for a missing data file) for a bad configuration.

        `check_initializer=False` skips resolving `recurrent_initializer`, which imports Keras.
        """
        recipe = _choose("model", self.model, RECIPES)
        if self.trees is not None:
            if self.task is not None or self.data is not None:
                raise ValueError(f"`TrainConfig` takes one of `task`, `data` or `trees`. "
                                 f"Received: task={self.task!r}, data={self.data!r}, trees={self.trees!r}")
            if not recipe.trees_dir:
                raise ValueError(f"Model {self.model!r} does not read a treebank directory (`trees`); tree models do. "
                                 f"Received: trees={self.trees!r}")
            if not os.path.isdir(self.trees):
                raise FileNotFoundError(f"No treebank directory at {self.trees!r}; {self.model} reads {recipe.trees_dir}.")
            missing = [name for name in TREEBANK_FILES if not os.path.isfile(os.path.join(self.trees, name))]
            if missing:
                raise FileNotFoundError(f"{self.trees!r} lacks {', '.join(missing)}; {self.model} reads "
                                        f"{recipe.trees_dir}.")
        elif self.data is not None:
            if self.task is not None:
                raise ValueError(f"`TrainConfig` takes a `task` or a `data` file, not both. "
                                 f"Received: task={self.task!r}, data={self.data!r}")
            if not recipe.data_file:
                raise ValueError(f"Model {self.model!r} trains on generated tasks only ({', '.join(tasks_for(self.model))}), "
                                 f"not on a data file. Received: data={self.data!r}")
            text_directory = os.path.isdir(self.data) and recipe.task_kinds == ("language_model",)
            if not os.path.isfile(self.data) and not text_directory:
                raise FileNotFoundError(f"No data file at {self.data!r}; {self.model} reads {recipe.data_file}.")
        else:
            _choose("task", self.task, TASKS)
            if self.task not in tasks_for(self.model):
                raise ValueError(f"Model {self.model!r} cannot be trained on task {self.task!r}. "
                                 f"Valid tasks for it: {', '.join(sorted(tasks_for(self.model)))}")
        for name in ("epochs", "batch_size", "units", "patience", "sequence_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"`TrainConfig({name}=...)` must be an integer >= 1. Received: {name}={value!r}")
        if isinstance(self.learning_rate, bool) or not isinstance(self.learning_rate, (int, float)) or not (
            0 < self.learning_rate <= MAX_LEARNING_RATE
        ):
            raise ValueError(f"`TrainConfig(learning_rate=...)` must be a number in (0, {MAX_LEARNING_RATE}] (Adam moves "
                             "every weight by about the learning rate per step, so a larger one only diverges). "
                             f"Received: learning_rate={self.learning_rate!r}")
        if self.clipnorm is not None and (
            isinstance(self.clipnorm, bool) or not isinstance(self.clipnorm, (int, float))
            or not 0 < self.clipnorm < math.inf
        ):
            raise ValueError(f"`TrainConfig(clipnorm=...)` must be a finite number > 0, or None. "
                             f"Received: clipnorm={self.clipnorm!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"`TrainConfig(seed=...)` must be an integer. Received: seed={self.seed!r}")
        if self.distribute not in (None, *SUPPORTED_DISTRIBUTE):
            raise ValueError(f"`TrainConfig(distribute=...)` must be 'mirrored' (TensorFlow) or 'data_parallel' (JAX) "
                             f"or None. Received: distribute={self.distribute!r}")
        if self.split not in (None, "character", "word", "subword"):
            raise ValueError(f"`TrainConfig(split=...)` must be None, 'character', 'word' or 'subword'. "
                             f"Received: split={self.split!r}")
        if self.split == "subword" and "translation" not in recipe.task_kinds:
            raise ValueError(f"`TrainConfig(split='subword')` applies to the seq2seq models; {self.model!r} splits "
                             f"into characters or words. Received: split={self.split!r}")
        if self.max_tokens is not None and (isinstance(self.max_tokens, bool) or not isinstance(self.max_tokens, int)
                                            or self.max_tokens <= 4):
            raise ValueError(f"`TrainConfig(max_tokens=...)` must be None or an integer > 4 (the 4 special tokens "
                             f"count). Received: max_tokens={self.max_tokens!r}")
        if self.split is not None and not {"translation", "language_model"} & set(recipe.task_kinds):
            raise ValueError(f"`TrainConfig(split=...)` applies to the seq2seq models and char_lm, not to "
                             f"{self.model!r}. Received: split={self.split!r}")
        if self.embedding_dim is not None:
            if isinstance(self.embedding_dim, bool) or not isinstance(self.embedding_dim, int) or self.embedding_dim < 1:
                raise ValueError(f"`TrainConfig(embedding_dim=...)` must be None or an integer >= 1. "
                                 f"Received: embedding_dim={self.embedding_dim!r}")
            if not {"tree_labels", "translation", "language_model"} & set(recipe.task_kinds):
                raise ValueError(f"`TrainConfig(embedding_dim=...)` applies to the models that embed tokens (tree, "
                                 f"seq2seq and char_lm models), not to {self.model!r}, which reads feature vectors. "
                                 f"Received: embedding_dim={self.embedding_dim!r}")
        if self.max_tokens is not None and "translation" not in recipe.task_kinds:
            raise ValueError(f"`TrainConfig(max_tokens=...)` applies to the seq2seq models, not to "
                             f"{self.model!r}. Received: max_tokens={self.max_tokens!r}")
        if check_initializer:
            from rnnzoo.initializers import recurrent_initializer

            recurrent_initializer(self.recurrent_initializer)
        return self

    @property
    def source(self):
        """The task name, or the data file's or treebank directory's name."""
        return self.task or os.path.basename(self.data or self.trees)


def _strategy_scope(distribute):
    """The context to build, compile and fit the model in, for `distribute`."""
    import contextlib

    import keras

    backend = keras.backend.backend()
    if distribute is None:
        return contextlib.nullcontext()
    if distribute == "mirrored":
        if backend != "tensorflow":
            raise ValueError(f"`TrainConfig(distribute='mirrored')` needs the TensorFlow backend. Received: backend={backend}")
        import tensorflow as tf

        if os.environ.get("TF_CONFIG"):
            return tf.distribute.MultiWorkerMirroredStrategy().scope()
        return tf.distribute.MirroredStrategy().scope()
    if backend != "jax":
        raise ValueError(f"`TrainConfig(distribute='data_parallel')` needs the JAX backend. Received: backend={backend}")
    return keras.distribution.DataParallel().scope()


def build_model(config, info=None):
    """The compiled model of a `TrainConfig` (`info`: `Data.info`, loaded if not given)."""
    from rnnzoo.app import recipes

    return recipes.build_model(config, info if info is not None else recipes.load_data(config).info)


def _write_json(path, value):
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(tmp, path)


def _check_run_file(config, run_dir):
    run_file = os.path.join(run_dir, "run.json")
    if os.path.exists(run_file):
        with open(run_file) as f:
            try:
                previous = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"{run_file}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); "
                                 "the file is corrupt: train into another run directory.") from None
        try:
            same = dataclasses.asdict(TrainConfig(**previous)) == dataclasses.asdict(config)
        except TypeError:
            same = False
        if not same:
            raise ValueError(
                f"{run_dir!r} holds a run with another configuration ({previous}); train into another run "
                "directory, or repeat the same configuration to resume."
            )
    _write_json(run_file, dataclasses.asdict(config))


def _backup_epoch(run_dir):
    """The number of epochs the backup in RUN_DIR/backup holds (0 if none)."""
    path = os.path.join(run_dir, "backup", "training_metadata.json")
    if not os.path.exists(path):
        return 0
    try:
        with open(path) as f:
            return int(json.load(f)["epoch"])
    except (ValueError, KeyError, TypeError):
        return 0


def _keep_history_rows(run_dir, num_epochs):
    """Rewrites RUN_DIR/history.csv with its rows of epochs < `num_epochs`, once each."""
    import csv

    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, {}
        for row in reader:
            try:
                epoch = int(row["epoch"])
            except (KeyError, TypeError, ValueError):
                continue
            if epoch < num_epochs:
                rows[epoch] = row  # a repeated epoch keeps its last row
    if not rows:
        os.remove(path)
        return
    with open(f"{path}.tmp", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows[e] for e in sorted(rows))
    os.replace(f"{path}.tmp", path)


def _stop_on_non_finite_loss(run_dir):
    """A callback that raises `NonFiniteLossError` at the first NaN or infinite loss.

    Like `keras.callbacks.TerminateOnNaN`, but it raises at once instead of letting the epoch
    end: so no callback after it sees NaN weights (no backup, no checkpoint, no model.keras
    is written with them) and the run directory still holds the last good epoch.
    """
    import keras
    import numpy as np

    class StopOnNonFiniteLoss(keras.callbacks.Callback):
        def _check(self, logs, where):
            for key in ("loss", "val_loss"):
                if logs and key in logs and not np.isfinite(float(np.asarray(logs[key]))):
                    raise NonFiniteLossError(
                        f"Training stopped: `{key}` became {float(np.asarray(logs[key]))} at {where}; no weights "
                        f"of that step were saved ({run_dir!r} keeps the last good epoch). Train into another run "
                        "directory with a smaller learning rate or with gradient clipping (`clipnorm`)."
                    )

        def on_train_batch_end(self, batch, logs=None):
            self._check(logs, f"epoch {self._epoch + 1}, batch {batch + 1}")

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_epoch_end(self, epoch, logs=None):
            self._check(logs, f"the end of epoch {epoch + 1}")

    return StopOnNonFiniteLoss()


def _final_model_saver(run_dir):
    """A callback that writes RUN_DIR/model.keras when `fit` ends, before the backup is deleted."""
    import keras

    class SaveFinalModel(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            path = os.path.join(run_dir, "model.keras")
            self.model.save(f"{path}.tmp.keras")
            os.replace(f"{path}.tmp.keras", path)

    return SaveFinalModel()


def train(config, run_dir, *, verbose=1, callbacks=(), log=print):
    """Trains `config.model` into `run_dir`, resuming or finishing an earlier attempt there.

    A run directory without `model.keras` is resumed from its backup (the epochs after the
    last completed one are trained; `history.csv` keeps one row per epoch); one with it has
    finished training, and only the steps after training (history, learning curve,
    evaluation) are redone. `log` receives one line saying which of these happened.

    Returns:
        The evaluation dict on the test split (also written to RUN_DIR/evaluation.json).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite; training stops at once and nothing
            of that step is saved (see `_stop_on_non_finite_loss`).
    """
    config.validate()
    os.makedirs(run_dir, exist_ok=True)
    _check_run_file(config, run_dir)

    import keras

    from rnnzoo.app import recipes

    model_file = os.path.join(run_dir, "model.keras")
    if os.path.exists(model_file):
        epochs = len(read_history(run_dir).get("epoch", []))
        log(f"{run_dir}: training finished earlier ({epochs} epochs in history.csv); not training again, "
            "only finishing the steps after it")
        if os.path.isdir(os.path.join(run_dir, "backup")):  # interrupted between the final save and its removal
            import shutil

            shutil.rmtree(os.path.join(run_dir, "backup"))
    else:
        done = _backup_epoch(run_dir)
        _keep_history_rows(run_dir, done)
        if done:
            log(f"{run_dir}: resuming after epoch {done} of {config.epochs}, from the backup in "
                f"{os.path.join(run_dir, 'backup')}")
        keras.utils.set_random_seed(config.seed)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()
        data = recipes.load_data(config)
        _write_json(os.path.join(run_dir, "data.json"), data.info)
        callbacks = [
            _stop_on_non_finite_loss(run_dir),  # before all the others: they must never see NaN weights
            _final_model_saver(run_dir),  # first: it must run before BackupAndRestore deletes the backup
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
            model = recipes.build_model(config, data.info)
            if data.family == "language_model":  # tf.data windows, in order; the model resets its state
                model.fit(data.train[0], epochs=config.epochs, validation_data=data.validation[0],
                          callbacks=callbacks, verbose=verbose)
            elif data.family == "translation":  # padded per batch, by length buckets; the same order every epoch
                # (Distributed: full batches only, which split evenly across the devices.)
                train = model.dataset(data.train, config.batch_size, shuffle=False,
                                      drop_remainder=config.distribute is not None)
                model.fit(train, epochs=config.epochs,
                          validation_data=data.validation, validation_batch_size=config.batch_size,
                          callbacks=callbacks, verbose=verbose)
            else:
                model.fit(*data.train, batch_size=config.batch_size, epochs=config.epochs, shuffle=False,
                          validation_data=data.validation, callbacks=callbacks, verbose=verbose)
    history = read_history(run_dir)
    _write_json(os.path.join(run_dir, "history.json"), history)
    plot_learning_curve(history, os.path.join(run_dir, "learning_curve.png"),
                        title=f"{config.model} on {config.source}", log=log)
    return evaluate(run_dir)


def _best_so_far(run_dir, metric):
    if not os.path.exists(os.path.join(run_dir, "history.csv")):
        return None
    values = read_history(run_dir).get(metric)
    return min(values) if values else None


def read_history(run_dir):
    """Per-epoch metrics from RUN_DIR/history.csv (complete across interruptions)."""
    import csv

    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            rows[int(row["epoch"])] = {k: float(v) for k, v in row.items() if k != "epoch" and v != ""}
    return {"epoch": sorted(rows), **{k: [rows[e][k] for e in sorted(rows)] for k in rows[min(rows)]}} if rows else {}


def plot_learning_curve(history, path, title="", log=print):
    """Writes a PNG of loss (and accuracy or MAE) per epoch, train and validation.

    Returns `path`, or None (saying why through `log`) when there is no history or matplotlib
    cannot be imported.
    """
    metrics = [m for m in ("loss", "accuracy", "mae", "root_logits_accuracy", "bits_per_character", "bits_per_word")
               if m in history]
    if not metrics:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        log(f"learning curve not plotted ({error}); `pip install matplotlib` to get {path}")
        return None
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
                                "(an interrupted run resumes when it is trained again with the same configuration).")
    import keras

    import rnnzoo.cells, rnnzoo.layers, rnnzoo.models  # noqa: E401, F401  (register the zoo's classes for load_model)

    try:
        with open(run_file) as f:
            config = TrainConfig(**json.load(f))
        model = keras.saving.load_model(model_file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{run_file}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); "
                         "the file is corrupt.") from error
    except Exception as error:  # a corrupt file: say which, without a traceback
        message = " ".join(str(error).split())[:300]
        raise ValueError(f"The run in {run_dir!r} cannot be read: {run_file} or {model_file} is corrupt or was not "
                         f"written by rnnzoo ({type(error).__name__}: {message}).") from error
    return config, model


def evaluate(run_dir, verbose=0):
    """Evaluates a finished run on its test split; writes and returns RUN_DIR/evaluation.json.

    Seq2seq runs also report `exact_match`, the fraction of test sources translated exactly
    (greedy decoding). Language models report `bits_per_character` (or `bits_per_word`) and
    `perplexity` over every predicted token of the test text (`test_tokens`), from a zeroed state.
    """
    from rnnzoo.app import recipes

    config, model = load_run(run_dir)
    data = recipes.load_data(config)
    if data.family == "language_model":
        results = model.evaluate(data.test[0], return_dict=True, verbose=verbose)
        results = {"model": config.model, "task": config.source, "test_tokens": data.info["tokens"]["test"],
                   **{k: float(v) for k, v in results.items()}}
        _write_json(os.path.join(run_dir, "evaluation.json"), results)
        return results
    x_test, y_test = data.test
    results = model.evaluate(x_test, y_test, batch_size=256, return_dict=True, verbose=verbose)
    num_examples = len(y_test["root_logits"] if isinstance(y_test, dict) else y_test)
    results = {"model": config.model, "task": config.source, "test_examples": num_examples,
               **{k: float(v) for k, v in results.items()}}
    if data.family == "translation":
        from rnnzoo.models.seq2seq import exact_match

        results["exact_match"], _ = exact_match(model, *data.test_texts)
    _write_json(os.path.join(run_dir, "evaluation.json"), results)
    return results


def export_run(run_dir, formats, out="exports", version=None, overwrite=False):
    """Exports the model of a finished run with `rnnzoo.export.export_model`, checked on its test data.

    Parity is measured on real test inputs at several batch sizes (and, for sequences, a
    longer length than trained on). Seq2seq runs export their SavedModel with `translate`,
    `translate_beam` (strings), `greedy` and `beam_search` signatures, and a greedy-decoding `.tflite`; their
    parity requires the same tokens as Keras's greedy decoding and scores within the tolerance.
    Returns the manifest entries written.
    """
    from rnnzoo.app import recipes
    from rnnzoo.export import export_model

    config, model = load_run(run_dir)
    data = recipes.load_data(config)
    metadata = {"run_dir": os.path.abspath(run_dir), "model": config.model, "task": config.source}
    inputs = recipes.parity_inputs(config, data)
    if data.family == "language_model":
        return _export_language_model(model, inputs, formats, out, version, overwrite, metadata)
    if data.family == "translation":
        return _export_seq2seq(model, inputs, data, formats, out, version, overwrite, metadata)
    if data.family == "tree":
        return _export_tree_classifier(model, inputs, data, formats, out, version, overwrite, metadata)
    return export_model(model, inputs, formats, out=out, version=version, overwrite=overwrite, metadata=metadata)


def _export_tree_classifier(model, inputs, data, formats, out, version, overwrite, metadata):
    """`export_run` for a tree classifier: `export_model`, with the SavedModel's `classify` signature
    (sentences in, TensorFlow backend; `rnnzoo.export.export_tree_classifier`) and the vocabulary file
    `<version>.vocabulary.json` beside the artifacts."""
    import keras

    from rnnzoo.export import export_model
    from rnnzoo.export.tree_classifier import tree_saved_model_writer, write_tree_vocabulary

    tokens = data.info["tokens"]
    writer = tree_saved_model_writer(model, tokens) if keras.backend.backend() == "tensorflow" else None
    entries = export_model(model, inputs, formats, out=out, version=version, overwrite=overwrite, metadata=metadata,
                           saved_model_writer=writer)
    from rnnzoo.data.trees import Vocabulary

    model_dir = os.path.join(out, model.name)
    for entry in entries:  # one file per version (`1/` and `1.tflite` share `1.vocabulary.json`)
        write_tree_vocabulary(Vocabulary(tokens[2:], unknown_token=tokens[1]), "left",
                              os.path.join(model_dir, entry["path"]))
    return entries


def _relative_error(got, expected):
    import numpy as np

    got, expected = np.asarray(got, "float64"), np.asarray(expected, "float64")
    if got.shape != expected.shape:
        return math.inf, math.inf
    difference = np.abs(got - expected).reshape(len(got), -1).max(axis=1)
    scale = np.maximum(1.0, np.abs(expected).reshape(len(expected), -1).max(axis=1))
    return float(difference.max()), float((difference / scale).max())


def _export_seq2seq(model, inputs, data, formats, out, version, overwrite, metadata, tolerance=1e-5):
    import datetime

    import keras
    import numpy as np

    from rnnzoo.export import runs as export_runs
    from rnnzoo.export import tflite_ops
    from rnnzoo.export import export_greedy_tflite, export_translator, run_artifact

    unsupported = [f for f in formats if f not in ("saved_model", "tflite")]
    if unsupported or not formats:
        raise ValueError(f"A seq2seq run exports as 'saved_model' and/or 'tflite'. Received: formats={list(formats)}")
    if keras.backend.backend() != "tensorflow":
        raise ValueError("Exporting a seq2seq run needs the TensorFlow backend (its `translate` signature uses "
                         f"TensorFlow string ops). Received: backend={keras.backend.backend()}")
    import tensorflow as tf

    model_dir = os.path.join(out, model.name)
    sources = list(data.test_texts[0][:8])
    entries, published = [], []
    os.makedirs(model_dir, exist_ok=True)
    export_runs._remove_stale_partials(model_dir)
    # Atomic, as `rnnzoo.export.export_model`: one version for all formats, written and checked
    # under temporary names, renamed when all are complete, the manifest last.
    v = version if version is not None else export_runs._common_version(model_dir, formats)
    expected_outputs = [model.generate(ids) for ids in inputs]  # Keras's, once for every format
    for fmt in formats:
        final = export_runs._artifact_path(model_dir, v, fmt)
        if os.path.exists(final) and not overwrite:
            raise FileExistsError(f"{final} exists. Pass `overwrite=True` to replace it, or another `version`.")
        path = export_runs._partial_path(final)
        published.append((path, final))
        if fmt == "saved_model":
            export_translator(model, path)
            loaded = load_saved_model(path)

            def greedy(ids, loaded=loaded):
                return {k: v.numpy() for k, v in loaded.signatures["greedy"](source=tf.constant(ids)).items()}

            translations = [t.decode("utf-8") for t in
                            loaded.signatures["translate"](text=tf.constant(sources))["translation"].numpy()]
            beam_translations = [t.decode("utf-8") for t in
                                 loaded.signatures["translate_beam"](text=tf.constant(sources))["translation"].numpy()]
            strings_equal = (translations == model.translate(sources)
                             and beam_translations == model.translate(sources, method="beam"))
            size, ops = export_runs._size(path), None
        else:
            export_greedy_tflite(model, path)

            def greedy(ids, path=path):  # outputs come in the alphabetical order of their names
                names = sorted(expected_outputs[0])
                return dict(zip(names, run_artifact(path, {"source": np.asarray(ids, "int32")}, signature="greedy")))

            strings_equal, size, ops = True, os.path.getsize(path), tflite_ops(path)
        worst_abs = worst_rel = 0.0
        tokens_equal = True
        for ids, expected in zip(inputs, expected_outputs):
            got = greedy(ids)
            tokens_equal &= bool(np.array_equal(expected["tokens"], got["tokens"]))
            absolute, relative = _relative_error(got["scores"], expected["scores"])
            worst_abs, worst_rel = max(worst_abs, absolute), max(worst_rel, relative)
        passed = tokens_equal and strings_equal and worst_rel <= tolerance
        entries.append({
            "format": fmt,
            "version": v,
            "path": os.path.relpath(final, model_dir),
            "model_name": model.name,
            **metadata,
            "signatures": ({"translate": "text (batch,) string -> translation, truncated",
                            "translate_beam": "text (batch,) string -> translation, truncated, scores (beam search)",
                            "greedy": "source (batch, time) int32 -> tokens, scores, lengths, attention_weights",
                            "beam_search": "source (batch, time) int32 -> best and all beams"}
                           if fmt == "saved_model" else
                           {"greedy": "source (batch, time) int32 -> tokens, scores, lengths, attention_weights"}),
            "bytes": size,
            "tflite_ops": ops,
            "parity": {"max_abs_error": export_runs._json_number(worst_abs),
                       "max_relative_error": export_runs._json_number(worst_rel),
                       "tolerance": tolerance, "passed": passed, "tokens_equal": tokens_equal,
                       "translations_equal": strings_equal,
                       "inputs": [str(tuple(np.shape(ids))) for ids in inputs]},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })
    for path, final in published:
        export_runs._publish(path, final)
    export_runs._update_manifest(model_dir, entries)
    return entries


def _export_language_model(model, inputs, formats, out, version, overwrite, metadata, tolerance=1e-5):
    """`export_run` for a language model: `rnnzoo.export.language_model`, checked by `language_model_parity`."""
    import datetime

    import keras

    from rnnzoo.export import runs as export_runs
    from rnnzoo.export import tflite_ops
    from rnnzoo.export.language_model import export_language_model, language_model_parity

    unsupported = [f for f in formats if f not in ("saved_model", "tflite")]
    if unsupported or not formats:
        raise ValueError(f"A language-model run exports as 'saved_model' and/or 'tflite'. Received: formats={list(formats)}")
    model_dir = os.path.join(out, model.name)
    os.makedirs(model_dir, exist_ok=True)
    export_runs._remove_stale_partials(model_dir)
    v = version if version is not None else export_runs._common_version(model_dir, formats)
    entries, published = [], []
    for fmt in formats:  # written and checked under temporary names, renamed when all are complete
        final = export_runs._artifact_path(model_dir, v, fmt)
        if os.path.exists(final) and not overwrite:
            raise FileExistsError(f"{final} exists. Pass `overwrite=True` to replace it, or another `version`.")
        path = export_runs._partial_path(final)
        published.append((path, final))
        export_language_model(model, path, format=fmt)
        parity = language_model_parity(model, path, inputs)
        passed = (parity["max_relative_error"] <= tolerance and parity["tokens_equal"]
                  and parity["texts_equal"] is not False)
        signatures = {"step": "ids (batch, time) int32, state (batch, units) -> logits, next_state",
                      "sample": "prompt_ids, noise (batch, steps, vocabulary), temperature -> tokens"}
        if fmt == "saved_model" and keras.backend.backend() == "tensorflow":
            signatures = {"generate": "prompt (batch,) string, num_steps, temperature, seed -> text, tokens",
                          **signatures}
        entries.append({
            "format": fmt, "version": v, "path": os.path.relpath(final, model_dir), "model_name": model.name,
            **metadata, "signatures": signatures,
            "vocabulary": os.path.basename(os.path.splitext(final)[0] + ".vocabulary.json"),
            "bytes": os.path.getsize(path) if os.path.isfile(path) else export_runs._size(path), "tflite_ops": tflite_ops(path) if fmt == "tflite" else None,
            "parity": {"max_abs_error": export_runs._json_number(parity["max_abs_error"]),
                       "max_relative_error": export_runs._json_number(parity["max_relative_error"]),
                       "tolerance": tolerance, "passed": bool(passed), "tokens_equal": parity["tokens_equal"],
                       "texts_equal": parity["texts_equal"], "inputs": [str(tuple(x.shape)) for x in inputs]},
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        })
    for path, final in published:
        export_runs._publish(path, final)
        vocabulary = os.path.splitext(path)[0] + ".vocabulary.json"  # one file for the formats of a version
        if os.path.exists(vocabulary):
            os.replace(vocabulary, os.path.splitext(final)[0] + ".vocabulary.json")
    export_runs._update_manifest(model_dir, entries)
    return entries
