"""The `rnnzoo` command line: thin subcommands over the application (`rnnzoo.app`) and the library.

    rnnzoo list                                   the zoo: layers, models, tasks (no backend loaded)
    rnnzoo train MODEL [--task T | --data FILE | --trees DIR | --pairs FILE] --out RUN_DIR   model.fit, resume
    rnnzoo train char_lm --text FILE              a language model on your text (characters or words)
    rnnzoo evaluate RUN_DIR                       test-split metrics of a finished run
    rnnzoo export RUN_DIR --format tflite ...     exports/<model>/<version>/ + manifest with parity
    rnnzoo predict ARTIFACT --input FILE          run a SavedModel, a .tflite or an .onnx file
    rnnzoo attention MODEL.keras TEXT             attention heatmap of a seq2seq model (section 10.4)
    rnnzoo diagnose MODEL --task T --length N     gradient decay and W's spectrum (section 10.7)

Errors a user can cause (unknown names, bad values, missing, unwritable or corrupt files, inputs
of the wrong shape, a training run whose loss became NaN) end with a one-line message on stderr
and exit status 2, never a traceback; `rnnzoo --debug COMMAND ...` shows the traceback instead.

Start-up: this module imports no backend. `--help`, `list` and argument errors answer without
Keras; a command that needs Keras imports it (and TensorFlow's native start-up messages are
kept off the terminal, see `_quiet_native_logs`).
"""

import argparse
import contextlib
import dataclasses
import json
import os
import re
import sys
import tempfile

# Before anything imports TensorFlow: its C++ logging reads this once, at import.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from rnnzoo import __version__  # noqa: E402
from rnnzoo.app import registry  # noqa: E402
from rnnzoo.app.runs import SUPPORTED_DISTRIBUTE, TrainConfig  # noqa: E402

# Errors a user can cause: wrong values, missing, unwritable or corrupt files (OSError covers
# FileNotFoundError, PermissionError, IsADirectoryError, ...), a diverged training run
# (`runs.NonFiniteLossError`, a FloatingPointError). Printed as one line, exit status 2.
USER_ERRORS = (ValueError, TypeError, OSError, KeyError, FloatingPointError)
EXPORT_FORMATS = ("saved_model", "tflite", "tflite-fp16", "tflite-dynamic-range", "onnx", "onnx-fp16",
                  "onnx-dynamic-range")  # rnnzoo.export.FORMATS, checked by a test

# Native (C++) log lines TensorFlow, XLA and LiteRT write to file descriptor 2 whatever
# TF_CPP_MIN_LOG_LEVEL says (before absl's logging is initialized): absl/glog lines
# ("I0000 00:00:1796202013.842458    4200 port.cc:153] ..."), TensorFlow's own format
# ("2025-09-17 14:44:05.157831: I external/.../cudart_stub.cc:32] ..."), absl's notice about
# them, and LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.".
NATIVE_LOG_LINE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] .*"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] [^\s\]]+:\d+\] .*"
    r"|INFO: .*)$"
)


@contextlib.contextmanager
def _quiet_native_logs():
    """Keeps native log lines off stderr; Python's own stderr (warnings, errors) still shows live.

    File descriptor 2 goes to a temporary file while the command runs and `sys.stderr` to the
    real stderr; at the end, captured lines that are not native log lines are written out.
    """
    try:
        sys.stderr.flush()
        real = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no usable file descriptor 2: nothing to hide
        yield
        return
    python_stderr = sys.stderr
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        sys.stderr = open(real, "w", buffering=1, closefd=False, encoding="utf-8", errors="backslashreplace")
        try:
            yield
        finally:
            sys.stderr.flush()
            sys.stderr = python_stderr
            os.dup2(real, 2)
            os.close(real)
            capture.seek(0)
            kept = [line for line in capture.read().decode("utf-8", "replace").splitlines()
                    if line.strip() and not NATIVE_LOG_LINE.match(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


def _configured_backend():
    """The backend Keras will load (KERAS_BACKEND, else ~/.keras/keras.json), without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _import_keras():
    """Imports Keras without the other backend.

    TensorFlow imports JAX whenever it is installed (`tensorflow/lite/python/util.py`, for
    converting JAX functions, which rnnzoo does not use), which costs about a second: on the
    TensorFlow backend JAX is hidden while Keras and TensorFlow load.
    """
    if "keras" in sys.modules:
        return
    if _configured_backend() != "tensorflow" or "jax" in sys.modules:
        import keras  # noqa: F401

        return
    sys.modules["jax"] = None  # `import jax` raises ImportError, which TensorFlow handles
    try:
        import keras  # noqa: F401, F811
    finally:
        if sys.modules.get("jax", 0) is None:
            del sys.modules["jax"]


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:  # also NaN
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        if value == float("inf"):
            raise argparse.ArgumentTypeError(f"must be finite, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _number(value):
    """Four significant digits: 1.000, 0.001300, 1.200e-05 (never 0.0000 for a small loss)."""
    return f"{value:#.4g}" if isinstance(value, float) else str(value)


def _one_line(error):
    """An exception's message as one line: Keras's multi-line, ANSI-coloured messages joined."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(message))
    message = message.split("\nArguments received by")[0]
    return " ".join(line.strip() for line in message.splitlines() if line.strip()) or type(error).__name__


def _load_keras_model(path):
    """`keras.saving.load_model(path)`, a corrupt or foreign file answered as a `ValueError` naming it."""
    import keras

    import rnnzoo.cells, rnnzoo.layers, rnnzoo.models  # noqa: E401, F401  (register the zoo's classes for load_model)

    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as error:  # a truncated zip, a foreign file, an unknown class: all say the same to a user
        raise ValueError(f"{path!r} cannot be loaded as a Keras model: the file is corrupt or not a `.keras` "
                         f"model saved by rnnzoo ({type(error).__name__}: {_one_line(error)[:300]})") from error


def _list(args):
    print(registry.format_table(args.kind))
    return 0


def _train(args):
    if getattr(args, "pairs", None) is not None:
        if "translation" not in registry.RECIPES[args.model].task_kinds:
            raise ValueError(f"--pairs is for the seq2seq models; {args.model} reads --data FILE. "
                             f"Received: --pairs {args.pairs}")
        args.data = args.pairs
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)})
    config.validate(check_initializer=False)  # before loading a backend: a wrong value answers at once
    _import_keras()
    from rnnzoo.app import runs

    run_dir = args.out or os.path.join("runs", f"{config.model}-{config.source}-seed{config.seed}")
    results = runs.train(config, run_dir, verbose=2 if args.quiet else 1)
    print(f"run: {run_dir}")
    print("evaluation (test split): " + ", ".join(f"{k}={_number(v)}" for k, v in results.items()))
    if os.path.exists(os.path.join(run_dir, "learning_curve.png")):
        print(f"learning curve: {os.path.join(run_dir, 'learning_curve.png')}")
    return 0


def _evaluate(args):
    _import_keras()
    from rnnzoo.app import runs

    print(json.dumps(runs.evaluate(args.run_dir), indent=2))
    return 0


def _error(x):
    return "inf (NaN or infinity in an output)" if x is None else f"{x:.2e}"


def _export(args):
    _import_keras()
    from rnnzoo.app import runs

    try:
        entries = runs.export_run(args.run_dir, args.format, out=args.out, version=args.version,
                                  overwrite=args.overwrite)
    except FileExistsError as error:
        if "overwrite=True" not in str(error):  # an OSError (e.g. a file where a directory should be): as it is
            raise
        raise FileExistsError(f"{str(error).split(' exists')[0]} exists; pass `--overwrite` to replace it or "
                              "`--version N` to choose another version.") from None
    for e in entries:
        parity = e["parity"]
        print(f"{e['format']:<21} {os.path.join(args.out, e['model_name'], e['path']):<44} {e['bytes']:>10,} bytes  "
              f"parity: relative error {_error(parity['max_relative_error'])} (tolerance {parity['tolerance']:g}), "
              f"max |diff| {_error(parity['max_abs_error'])}"
              + ("" if parity.get("tokens_equal") is None else f", tokens equal: {parity['tokens_equal']}")
              + f" {'PASS' if parity['passed'] else 'FAIL'}")
    print(f"manifest: {os.path.join(args.out, entries[0]['model_name'], 'manifest.json')}")
    return 0 if all(e["parity"]["passed"] for e in entries) else 1


def _read_input(path):
    import numpy as np

    if not os.path.exists(path):
        raise FileNotFoundError(f"No input file at {path!r}.")
    if path.endswith(".npz"):
        from rnnzoo.export import load_inputs

        return load_inputs(path)
    if path.endswith(".json"):
        with open(path) as f:
            try:
                value = json.load(f)
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}).") from None
        try:
            return np.asarray(value, dtype="float32")
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: `--input` JSON must be a (nested) list of numbers of one shape. "
                             f"Received: {_one_line(error)}") from None
    if path.endswith(".npy"):
        try:
            return np.load(path)
        except (ValueError, OSError, EOFError) as error:
            raise ValueError(f"{path} is not a readable .npy file (corrupt or truncated): {_one_line(error)}") from None
    raise ValueError(f"`--input` must be a .npy, .npz or .json file. Received: {path!r}")


def _predict(args):
    import numpy as np

    inputs = _read_input(args.input)
    if not os.path.exists(args.artifact):
        raise FileNotFoundError(f"No exported artifact at {args.artifact!r}: pass a SavedModel directory or a .tflite file.")
    if os.path.isdir(args.artifact):  # a SavedModel: TensorFlow (a `.tflite` or `.onnx` file runs without it)
        _import_keras()
    from rnnzoo.export.artifacts import run_artifact
    try:
        outputs = run_artifact(args.artifact, inputs)
    except Exception as error:  # TensorFlow / LiteRT errors from a corrupt or half-written artifact
        if isinstance(error, USER_ERRORS) and "Received" in str(error):  # rnnzoo's own check of the inputs
            raise
        raise ValueError(f"{args.artifact!r} cannot be loaded or run: the artifact is corrupt, incomplete or not an "
                         f"rnnzoo export, or the input does not fit it ({type(error).__name__}: "
                         f"{_one_line(error)[:300]})") from error
    outputs = outputs if isinstance(outputs, list) else [outputs]
    if args.output:
        np.save(args.output, outputs[0]) if len(outputs) == 1 else np.savez(args.output, *outputs)
        print(f"wrote {args.output}")
    with np.printoptions(precision=4, suppress=True, threshold=200):
        for i, value in enumerate(outputs):
            print(f"output_{i} {value.shape} {value.dtype}:\n{value}")
    return 0


def _diagnose(args):
    path = args.model
    if os.path.isdir(path):  # a run directory of `rnnzoo train`
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No saved model at {path!r}: pass a MODEL.keras file or a RUN_DIR holding model.keras.")
    _import_keras()
    from rnnzoo import diagnostics
    from rnnzoo.app import recipes

    model = _load_keras_model(path)
    layer = diagnostics.find_vanilla_rnn(model)
    task = registry.TASKS[args.task]
    features = model.inputs[0].shape[-1] if getattr(model, "inputs", None) else None
    if features is not None and features != task.features:
        raise ValueError(f"Task {args.task!r} has {task.features} input feature(s) per step but {args.model!r} takes "
                         f"{features}; pass a task the model was trained on. Received: --task {args.task}")
    # The task as `rnnzoo train` defines it (e.g. delayed_recall's delay), at the asked length.
    x, y = recipes.generate(args.task, args.batch_size, args.length, seed=args.seed)
    loss = "mse" if registry.TASKS[args.task].kind == "regression" else "sparse_categorical_crossentropy"
    decay = diagnostics.gradient_decay(model, x, y, loss=loss)
    print(f"{args.model}: {type(layer).__name__} {layer.name!r}, {layer.units} units, {layer.activation}; "
          f"{args.task}, batch {args.batch_size}, length {args.length}; {loss} loss {_number(float(decay.loss))}")
    print(f"spectral radius of W: {decay.spectral_radius:.4f}")
    print(diagnostics.format_table(decay))
    output = args.output or f"{path.rsplit('.', 1)[0]}_gradient_decay.png"
    diagnostics.plot_gradient_decay(decay, output, title=f"{args.model}: {args.task}, length {args.length}")
    print(f"wrote {output}")
    return 0


def _attention(args):
    if not os.path.isfile(args.model):
        raise FileNotFoundError(f"No saved model at {args.model!r}: pass a .keras Seq2Seq model (e.g. RUN_DIR/model.keras).")
    _import_keras()
    from rnnzoo.models.seq2seq.seq2seq_plots import attention_matrix, plot_attention

    model = _load_keras_model(args.model)
    if not hasattr(model, "translate") or getattr(model, "attention", None) is not True:
        kind = "a Seq2Seq model without attention" if hasattr(model, "translate") else f"a {type(model).__name__}"
        raise ValueError(f"`rnnzoo attention` needs a Seq2Seq model with attention (`Seq2Seq(attention=True)`); "
                         f"{args.model!r} is {kind}.")
    output = args.output or f"{args.model.rsplit('.', 1)[0]}_attention.png"
    plot_attention(model, args.text, output, method=args.method)
    translation = attention_matrix(model, args.text, method=args.method)[0]
    print(f"{args.text!r} -> {translation!r}\nwrote {output}")
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (none for options without one), keeps the epilog's lines."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or action.default == argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _models_epilog():
    width = max(map(len, registry.RECIPES)) + 2
    lines = ["models and the tasks they train on (the first is the default):"]
    for name, recipe in registry.RECIPES.items():
        data = f"; or --data FILE: {recipe.data_file}" if recipe.data_file else ""
        data += f"; or --trees DIR: {recipe.trees_dir}" if recipe.trees_dir else ""
        lines.append(f"  {name:<{width}}{', '.join(registry.tasks_for(name))}{data}")
    return "\n".join(lines)


def build_parser():
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    parser = argparse.ArgumentParser(
        prog="rnnzoo",
        description="The recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"rnnzoo {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error instead of one line")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name, help, run):
        p = commands.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter)
        p.set_defaults(run=run)
        return p

    p = command("list", "list the zoo's layers, models, tasks and tools, with their book sections", _list)
    p.add_argument("--kind", choices=registry.KINDS, help="only this kind")

    p = command("train", "train a model on a generated task or a data file (resumable)", _train)
    p.epilog = _models_epilog()
    p.add_argument("model", choices=list(registry.RECIPES), metavar="MODEL", help="the model (see below)")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--task", choices=list(registry.TASKS), metavar="TASK",
                        help="a generated task (default: the model's first task below)")
    source.add_argument("--data", metavar="FILE", help="a data file instead (tree, seq2seq and char_lm models, see "
                                                       "below); lines split 80/10/10 into train/validation/test "
                                                       "(char_lm: the text cut 90/5/5 by position)")
    source.add_argument("--trees", metavar="DIR", help="a treebank directory instead (tree models): train.txt, "
                                                       "dev.txt, test.txt used as train/validation/test")
    source.add_argument("--pairs", metavar="FILE", help="seq2seq models: a tab-separated parallel text file "
                                                        "(Anki/Tatoeba `source<TAB>target[<TAB>...]`), as --data")
    source.add_argument("--text", metavar="FILE", dest="data", help="char_lm: a plain UTF-8 text file, or a directory of train.txt, valid.txt, "
                                                            "test.txt (the same as --data)")
    p.add_argument("--epochs", type=_positive(int), default=defaults["epochs"], help="most epochs")
    p.add_argument("--batch-size", type=_positive(int), default=defaults["batch_size"], help="examples per step")
    p.add_argument("--learning-rate", type=_positive(float), default=defaults["learning_rate"], help="Adam's step size, in (0, 1]")
    p.add_argument("--clipnorm", type=_positive(float), default=defaults["clipnorm"],
                   help="clip the global gradient norm to this (Pascanu et al. 2013); default: no clipping")
    p.add_argument("--units", type=_positive(int), default=defaults["units"],
                   help="size of the recurrent state (hidden_dim of the seq2seq models)")
    p.add_argument("--embedding-dim", type=_positive(int), default=defaults["embedding_dim"],
                   help="tree, seq2seq and char_lm models: size of the token embeddings (default: 16 for trees, 32 "
                        "for the others)")
    p.add_argument("--recurrent-initializer", default=defaults["recurrent_initializer"],
                   help="initializer of W: a Keras name (orthogonal, glorot_uniform, ...) or NAME:GAIN, "
                        "e.g. identity:1.0 (IRNN, Le et al. 2015); the vanilla-cell models only")
    p.add_argument("--seed", type=int, default=defaults["seed"], help="weights, data and its order")
    p.add_argument("--patience", type=_positive(int), default=defaults["patience"], help="early-stopping patience (epochs)")
    p.add_argument("--split", choices=["character", "word", "subword"], default=defaults["split"],
                   help="seq2seq models and char_lm: tokens are characters (default) or words (seq2seq: "
                        "punctuation apart; char_lm: split at whitespace); seq2seq models also subword (byte-pair "
                        "pieces of words); vocabularies come from the training split")
    p.add_argument("--max-tokens", type=_positive(int), default=defaults["max_tokens"],
                   help="seq2seq models: the most vocabulary ids per side (4 special tokens included); "
                        "rarer tokens become <unk> (subword: default 4000)")
    p.add_argument("--distribute", choices=SUPPORTED_DISTRIBUTE, default=defaults["distribute"],
                   help="mirrored: tf.distribute (TensorFlow backend; MultiWorkerMirrored with TF_CONFIG); "
                        "data_parallel: keras.distribution.DataParallel (JAX backend)")
    p.add_argument("--sequence-length", type=_positive(int), default=defaults["sequence_length"],
                   help="char_lm: steps per window of truncated BPTT (the state carries over between windows)")
    p.add_argument("--out", metavar="RUN_DIR",
                   help="the run directory (default runs/MODEL-TASK-seedN); repeat a command to resume it")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")

    p = command("evaluate", "test-split metrics of a finished run (JSON)", _evaluate)
    p.add_argument("run_dir", metavar="RUN_DIR")

    p = command("export", "export a run for serving: SavedModel, TFLite and/or ONNX, with parity", _export)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--format", action="append", choices=EXPORT_FORMATS, required=True,
                   help="repeat for several formats (seq2seq and char_lm runs: saved_model, tflite)")
    p.add_argument("--out", default="exports", help="the exports root")
    p.add_argument("--version", type=_positive(int), help="version number (default: the next free one)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing artifact of that version")

    p = command("predict", "run a SavedModel directory, a .tflite or an .onnx file on inputs", _predict)
    p.add_argument("artifact", metavar="ARTIFACT")
    p.add_argument("--input", required=True, help=".npy, .npz (one array per signature input) or .json")
    p.add_argument("--output", help="save the outputs (.npy, or .npz for several)")

    p = command("diagnose", "gradient decay ||grad_h(t) L|| vs tau - t and W's spectrum (10.7)", _diagnose)
    p.add_argument("model", metavar="MODEL", help="a saved .keras model with one VanillaRNN layer, or a RUN_DIR")
    p.add_argument("--task", required=True, choices=[n for n, t in registry.TASKS.items() if t.features],
                   help="generates the batch; regression tasks: mse loss, the others: softmax cross-entropy")
    p.add_argument("--length", type=_positive(int), required=True, help="sequence length tau of the batch")
    p.add_argument("--batch-size", type=_positive(int), default=64, help="examples in the batch")
    p.add_argument("--seed", type=int, default=0, help="of the batch")
    p.add_argument("--output", help="the PNG (default: MODEL_gradient_decay.png beside the model)")

    p = command("attention", "heatmap of a Seq2Seq model's attention weights for one input (10.4)", _attention)
    p.add_argument("model", metavar="MODEL", help="a saved .keras Seq2Seq model with attention")
    p.add_argument("text", metavar="TEXT", help="the input string")
    p.add_argument("--method", choices=["greedy", "beam"], default="greedy", help="decoding")
    p.add_argument("--output", help="the PNG (default: MODEL_attention.png beside the model)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _quiet_native_logs():
            return args.run(args)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"rnnzoo {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `rnnzoo list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
