"""The `rnnzoo` command line: thin subcommands over the library (the library never imports it).

    rnnzoo list                                   the zoo: layers, models, tasks
    rnnzoo train MODEL --task TASK --out RUN_DIR  model.fit with checkpoints, TensorBoard, resume
    rnnzoo evaluate RUN_DIR                       test-split metrics of a finished run
    rnnzoo export RUN_DIR --format tflite ...     exports/<model>/<version>/ + manifest with parity
    rnnzoo predict ARTIFACT --input FILE          run a SavedModel, a .tflite or an .onnx file
    rnnzoo attention MODEL.keras TEXT             attention heatmap of a seq2seq model (section 10.4)
    rnnzoo diagnose MODEL --task T --length N     gradient decay and W's spectrum (section 10.7)

Errors a user can cause (unknown names, bad values, missing or corrupt files, inputs of the
wrong shape) end with a one-line message and exit status 2, never a traceback.
"""

import argparse
import json
import os
import sys

from rnnzoo import __version__, zoo

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError)


def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _list(args):
    print(zoo.format_table(args.kind))
    return 0


def _train(args):
    from rnnzoo import training

    recipe = training.get_recipe(args.model)
    config = training.TrainConfig(
        model=args.model, task=args.task or recipe.default_task, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, clipnorm=args.clipnorm, units=args.units,
        recurrent_initializer=args.recurrent_initializer, seed=args.seed, distribute=args.distribute,
        patience=args.patience,
    )
    run_dir = args.out or os.path.join("runs", f"{config.model}-{config.task}-seed{config.seed}")
    results = training.train(config, run_dir, verbose=2 if args.quiet else 1)
    print(f"run: {run_dir}")
    print("evaluation (test split): " + ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                                  for k, v in results.items()))
    print(f"learning curve: {os.path.join(run_dir, 'learning_curve.png')}")
    return 0


def _evaluate(args):
    from rnnzoo import training

    results = training.evaluate(args.run_dir)
    print(json.dumps(results, indent=2))
    return 0


def _error(x):
    return "inf (NaN or infinity in an output)" if x is None else f"{x:.2e}"


def _export(args):
    from rnnzoo import export

    entries = export.export_run(args.run_dir, args.format, out=args.out, version=args.version, overwrite=args.overwrite)
    for e in entries:
        parity = e["parity"]
        print(f"{e['format']:<21} {os.path.join(args.out, e['model_name'], e['path']):<44} {e['bytes']:>10,} bytes  "
              f"parity: relative error {_error(parity['max_relative_error'])} (tolerance {parity['tolerance']:g}), "
              f"max |diff| {_error(parity['max_abs_error'])} "
              f"{'PASS' if parity['passed'] else 'FAIL'}")
    print(f"manifest: {os.path.join(args.out, entries[0]['model_name'], 'manifest.json')}")
    return 0 if all(e["parity"]["passed"] for e in entries) else 1


def _read_input(path):
    import numpy as np

    if not os.path.exists(path):
        raise FileNotFoundError(f"No input file at {path!r}.")
    if path.endswith(".npz"):
        from rnnzoo.export import load_inputs

        return load_inputs(path)
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith(".json"):
        with open(path) as f:
            return np.asarray(json.load(f), dtype="float32")
    raise ValueError(f"`--input` must be a .npy, .npz or .json file. Received: {path!r}")


def _predict(args):
    import numpy as np

    from rnnzoo.export import run_artifact

    outputs = run_artifact(args.artifact, _read_input(args.input))
    outputs = outputs if isinstance(outputs, list) else [outputs]
    if args.output:
        np.save(args.output, outputs[0]) if len(outputs) == 1 else np.savez(args.output, *outputs)
        print(f"wrote {args.output}")
    with np.printoptions(precision=4, suppress=True, threshold=200):
        for i, value in enumerate(outputs):
            print(f"output_{i} {value.shape} {value.dtype}:\n{value}")
    return 0


def _diagnose(args):
    # Imported here: `rnnzoo list` stays fast and needs no backend.
    import keras

    from rnnzoo import diagnostics, training

    path = args.model
    if os.path.isdir(path):  # a run directory of `rnnzoo train`
        path = os.path.join(path, "model.keras")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No saved model at {path!r}: pass a MODEL.keras file or a RUN_DIR holding model.keras.")
    model = keras.saving.load_model(path, compile=False)
    layer = diagnostics.find_vanilla_rnn(model)
    # The task as `rnnzoo train` defines it (e.g. delayed_recall's delay), at the asked length.
    x, y = training.get_task(args.task).generate(args.batch_size, args.length, seed=args.seed)
    loss = "mse" if args.task == "adding_problem" else "sparse_categorical_crossentropy"
    decay = diagnostics.gradient_decay(model, x, y, loss=loss)
    print(f"{args.model}: {type(layer).__name__} {layer.name!r}, {layer.units} units, {layer.activation}; "
          f"{args.task}, batch {args.batch_size}, length {args.length}; {loss} loss {decay.loss:.4f}")
    print(f"spectral radius of W: {decay.spectral_radius:.4f}")
    print(diagnostics.format_table(decay))
    output = args.output or f"{path.rsplit('.', 1)[0]}_gradient_decay.png"
    diagnostics.plot_gradient_decay(decay, output, title=f"{args.model}: {args.task}, length {args.length}")
    print(f"wrote {output}")
    return 0


def _attention(args):
    import keras

    from rnnzoo.models.seq2seq.seq2seq_plots import attention_matrix, plot_attention

    model = keras.saving.load_model(args.model, compile=False)
    output = args.output or f"{args.model.rsplit('.', 1)[0]}_attention.png"
    plot_attention(model, args.text, output, method=args.method)
    translation = attention_matrix(model, args.text, method=args.method)[0]
    print(f"{args.text!r} -> {translation!r}\nwrote {output}")
    return 0


def build_parser():
    from rnnzoo.training import MODELS, TASKS
    from rnnzoo.export.runs import FORMATS

    parser = argparse.ArgumentParser(
        prog="rnnzoo",
        description="The recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"rnnzoo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("list", help="list the zoo's layers, models and tasks")
    p.add_argument("--kind", choices=["layer", "model", "task"], help="only this kind")
    p.set_defaults(run=_list)

    p = commands.add_parser("train", help="train a model on a generated task (resumable)")
    p.add_argument("model", choices=sorted(MODELS), help="the model")
    p.add_argument("--task", choices=sorted(TASKS), help="the task (default: the model's own)")
    p.add_argument("--epochs", type=_positive(int), default=10)
    p.add_argument("--batch-size", type=_positive(int), default=64)
    p.add_argument("--learning-rate", type=_positive(float), default=0.01)
    p.add_argument("--clipnorm", type=_positive(float), default=None, help="clip the global gradient norm to this (Pascanu et al. 2013)")
    p.add_argument("--units", type=_positive(int), default=32)
    p.add_argument("--recurrent-initializer", default="orthogonal",
                   help="initializer of W: a Keras name (orthogonal, glorot_uniform, ...) or NAME:GAIN, "
                        "e.g. identity:1.0 (IRNN, Le et al. 2015) or orthogonal:1.2")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=_positive(int), default=5, help="early-stopping patience (epochs)")
    p.add_argument("--distribute", choices=["mirrored", "data_parallel"],
                   help="mirrored: tf.distribute (TensorFlow backend; MultiWorkerMirrored with TF_CONFIG); "
                        "data_parallel: keras.distribution.DataParallel (JAX backend)")
    p.add_argument("--out", help="the run directory (default runs/MODEL-TASK-seedN); repeat a command to resume")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(run=_train)

    p = commands.add_parser("evaluate", help="test-split metrics of a finished run")
    p.add_argument("run_dir")
    p.set_defaults(run=_evaluate)

    p = commands.add_parser("export", help="export a run for serving: SavedModel, TFLite and/or ONNX, with parity")
    p.add_argument("run_dir")
    p.add_argument("--format", action="append", choices=list(FORMATS), required=True,
                   help="repeat for several formats")
    p.add_argument("--out", default="exports", help="the exports root (default exports/)")
    p.add_argument("--version", type=_positive(int), help="version number (default: the next free one)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing artifact of that version")
    p.set_defaults(run=_export)

    p = commands.add_parser("predict", help="run a SavedModel directory, a .tflite or an .onnx file on inputs")
    p.add_argument("artifact")
    p.add_argument("--input", required=True, help=".npy, .npz (one array per signature input) or .json")
    p.add_argument("--output", help="save the outputs (.npy, or .npz for several)")
    p.set_defaults(run=_predict)

    p = commands.add_parser("diagnose", help="gradient decay ||grad_h(t) L|| vs tau - t and W's spectrum (10.7)")
    p.add_argument("model", metavar="MODEL", help="a saved .keras model with one VanillaRNN layer, or a RUN_DIR")
    p.add_argument("--task", required=True, choices=["adding_problem", "delayed_recall", "running_parity"],
                   help="generates the batch; adding_problem: mse loss, the others: softmax cross-entropy")
    p.add_argument("--length", type=_positive(int), required=True, help="sequence length tau of the batch")
    p.add_argument("--batch-size", type=_positive(int), default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", help="the PNG (default: MODEL_gradient_decay.png beside the model)")
    p.set_defaults(run=_diagnose)

    p = commands.add_parser("attention", help="heatmap of a Seq2Seq model's attention weights for one input (10.4)")
    p.add_argument("model", metavar="MODEL", help="a saved .keras Seq2Seq model with attention")
    p.add_argument("text", metavar="TEXT", help="the input string")
    p.add_argument("--method", choices=["greedy", "beam"], default="greedy")
    p.add_argument("--output", help="the PNG (default: MODEL_attention.png beside the model)")
    p.set_defaults(run=_attention)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        print(f"rnnzoo {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
