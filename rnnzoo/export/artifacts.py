"""Running exported artifacts: a SavedModel's signature, a `.tflite` file in LiteRT, an `.onnx` file in onnxruntime."""

import os
import subprocess
import sys
import tempfile

import numpy as np

from rnnzoo.gradient_registry import load_saved_model


def _signature_inputs(names, inputs):
    """Maps `inputs` (an array, a list in signature order, or a dict) to the signature's names."""
    if isinstance(inputs, dict):
        missing = sorted(set(names) - set(inputs))
        extra = sorted(set(inputs) - set(names))
        if missing or extra:
            raise ValueError(
                f"The artifact's signature takes inputs {sorted(names)}. Received: "
                f"{sorted(inputs)} (missing {missing}, unexpected {extra})"
            )
        return {name: np.asarray(inputs[name]) for name in names}
    if not isinstance(inputs, (list, tuple)):
        inputs = [inputs]
    if len(inputs) != len(names):
        raise ValueError(
            f"The artifact's signature takes {len(names)} inputs {list(names)}; pass a dict "
            f"keyed by these names. Received: {len(inputs)} inputs"
        )
    return {name: np.asarray(x) for name, x in zip(names, inputs)}


def _ordered_outputs(outputs):
    """A signature's output dict as a single array (one output) or a list ordered by name."""
    # Keras names a model's outputs `output_0, output_1, ...` (numeric order), or by the keys of
    # a dict of outputs (alphabetical order, as `keras.tree.flatten` orders a dict).
    def key(name):
        suffix = name[len("output_"):]
        return (0, int(suffix), "") if name.startswith("output_") and suffix.isdigit() else (1, 0, name)

    names = sorted(outputs, key=key)
    values = [np.asarray(outputs[n]) for n in names]
    return values[0] if len(values) == 1 else values


def _check_spec(name, value, shape, dtype):
    shape = tuple(-1 if s is None else int(s) for s in shape)
    if value.ndim != len(shape) or any(s not in (-1, None) and s != v for s, v in zip(shape, value.shape)):
        raise ValueError(
            f"Input {name!r} of the artifact expects shape {shape} (-1: any size). "
            f"Received: shape={value.shape}"
        )
    empty = [axis for axis in range(1, value.ndim) if value.shape[axis] == 0]
    if empty:  # axis 0, the batch, may be 0: the outputs are then empty too
        raise ValueError(
            f"Input {name!r} of the artifact has size 0 along axis {empty[0]}: a model of the zoo needs at "
            f"least one time step (node, token) in every example; only the batch (axis 0) may be empty. "
            f"Received: shape={value.shape}"
        )
    if np.dtype(value.dtype) != np.dtype(dtype):
        if np.issubdtype(value.dtype, np.number) and np.issubdtype(np.dtype(dtype), np.number):
            return value.astype(dtype)
        raise TypeError(f"Input {name!r} of the artifact expects dtype {np.dtype(dtype)}. Received: dtype={value.dtype}")
    return value


def _tflite_runner(path, signature):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover  (the `litert` extra is not installed)
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    runner = Interpreter(model_path=path).get_signature_runner(signature)
    details = runner.get_input_details()

    def run(inputs):
        feed = _signature_inputs(list(details), inputs)
        feed = {
            name: _check_spec(name, value, details[name]["shape_signature"], details[name]["dtype"])
            for name, value in feed.items()
        }
        if feed and all(value.ndim and value.shape[0] == 0 for value in feed.values()):
            # A batch of 0 gives 0 rows of what one row of zeros gives, as Keras and the SavedModel
            # return an empty batch. The signatures exported now do it themselves; files exported
            # before could not (LiteRT cannot prepare `UNPACK` on a tensor of 0 elements).
            one_row = {name: np.zeros((1,) + value.shape[1:], value.dtype) for name, value in feed.items()}
            return _ordered_outputs({name: np.asarray(out)[:0] for name, out in runner(**one_row).items()})
        return _ordered_outputs(runner(**feed))  # the runner resizes its inputs to each batch's shapes

    return run


_ONNX_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(int32)": "int32",
               "tensor(int64)": "int64", "tensor(bool)": "bool", "tensor(float16)": "float16"}


def _onnx_runner(path, signature):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    details = {i.name: i for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]

    def run(inputs):
        feed = _signature_inputs(list(details), inputs)
        feed = {
            name: _check_spec(name, value, [d if isinstance(d, int) else None for d in details[name].shape],
                              _ONNX_TYPES.get(details[name].type, "float32"))
            for name, value in feed.items()
        }
        return _ordered_outputs(dict(zip(names, session.run(names, feed))))

    return run


def _saved_model_runner(path, signature):
    import tensorflow as tf

    function = load_saved_model(path).signatures[signature]
    specs = function.structured_input_signature[1]

    def run(inputs):
        feed = _signature_inputs(list(specs), inputs)
        feed = {
            name: _check_spec(name, value, specs[name].shape.as_list(), specs[name].dtype.as_numpy_dtype)
            for name, value in feed.items()
        }
        return _ordered_outputs({k: v.numpy() for k, v in function(**feed).items()})

    return run


def load_artifact(path, signature="serving_default"):
    """Loads an exported artifact once; returns `run(inputs)`, which runs it as `run_artifact` does.

    For many batches: `run_artifact` loads the artifact at every call (a SavedModel takes a
    fraction of a second to load).

    Args:
        path: str, a `.tflite` file, an `.onnx` file or a SavedModel directory.
        signature: str, the signature to run (`.onnx` files have one; any name is accepted).

    Returns:
        A function `run(inputs)` -> the output array, or a list of arrays (ordered `output_0,
        output_1, ...`), for inputs of any batch and time size: e.g.
        `run = load_artifact("exports/vanilla_tagger/1.tflite")`, then `run(x)` per batch.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"No exported artifact at {path!r}.")
    if str(path).endswith(".tflite"):
        return _tflite_runner(path, signature)
    if str(path).endswith(".onnx"):
        return _onnx_runner(path, signature)
    if not os.path.exists(os.path.join(path, "saved_model.pb")):
        raise ValueError(f"{path!r} is neither a `.tflite` or `.onnx` file nor a SavedModel directory (no saved_model.pb).")
    return _saved_model_runner(path, signature)


def run_tflite(path, inputs, signature="serving_default"):
    """Runs a `.tflite` file's signature in the LiteRT interpreter (any batch and time size)."""
    return _tflite_runner(path, signature)(inputs)


def run_onnx(path, inputs, signature="serving_default"):
    """Runs an `.onnx` file in onnxruntime (CPU); `signature` is accepted for symmetry (one per file)."""
    return _onnx_runner(path, signature)(inputs)


def run_saved_model(path, inputs, signature="serving_default"):
    """Runs a SavedModel's signature with TensorFlow."""
    return _saved_model_runner(path, signature)(inputs)


def run_artifact(path, inputs, signature="serving_default"):
    """Runs an exported artifact: a `.tflite` or `.onnx` file, or a SavedModel directory.

    Loads it at every call; `load_artifact` loads once for many batches.

    Args:
        path: str, a `.tflite` file, an `.onnx` file or a SavedModel directory.
        inputs: an array (one input), a list of arrays in signature order, or a dict keyed by
            the signature's input names.
        signature: str, the signature to run.

    Returns:
        The output array, or a list of arrays (ordered `output_0, output_1, ...`).
    """
    return load_artifact(path, signature)(inputs)


def load_inputs(path):
    """Reads inputs saved with `numpy.savez`: one array as itself, several as a name->array dict."""
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return next(iter(arrays.values())) if len(arrays) == 1 else arrays


def run_python(code, args, *, timeout, backend=None):
    """Runs `python -c code args...` in a new process that imports this checkout of rnnzoo.

    TensorFlow's logs are silenced; `backend` sets `KERAS_BACKEND`. Returns the
    `subprocess.CompletedProcess` (text output captured).
    """
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": python_path}
    if backend:
        env["KERAS_BACKEND"] = backend
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_artifact_in_fresh_process(path, inputs, signature="serving_default", timeout=600):
    """`run_artifact` in a new Python process, so nothing of the exporting process is reused."""
    with tempfile.TemporaryDirectory() as tmp:
        inputs_path, outputs_path = os.path.join(tmp, "inputs.npz"), os.path.join(tmp, "outputs.npz")
        if isinstance(inputs, dict):
            np.savez(inputs_path, **inputs)
        elif isinstance(inputs, (list, tuple)):  # signature order: arr_0, arr_1, ...
            np.savez(inputs_path, *inputs)
        else:
            np.savez(inputs_path, inputs)
        code = (
            "import sys, numpy as np\n"
            "from rnnzoo.export.artifacts import run_artifact, load_inputs\n"
            "inputs = load_inputs(sys.argv[2])\n"
            "if isinstance(inputs, dict) and sys.argv[5] == 'list':\n"
            "    inputs = [inputs[f'arr_{i}'] for i in range(len(inputs))]\n"
            "out = run_artifact(sys.argv[1], inputs, sys.argv[4])\n"
            "np.savez(sys.argv[3], *(out if isinstance(out, list) else [out]))\n"
        )
        done = run_python(code, [path, inputs_path, outputs_path, signature,
                                 "list" if isinstance(inputs, (list, tuple)) else "other"], timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"Running {path!r} in a fresh process failed:\n{done.stderr[-3000:]}")
        with np.load(outputs_path) as data:
            outputs = [data[f"arr_{i}"] for i in range(len(data.files))]
    return outputs[0] if len(outputs) == 1 else outputs


__all__ = ["load_artifact", "load_inputs", "run_artifact", "run_artifact_in_fresh_process", "run_onnx", "run_saved_model", "run_tflite"]
