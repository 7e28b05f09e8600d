"""Model or SavedModel -> TFLite (builtin ops only) and ONNX, with the same quantization options."""

import os
import tempfile
import warnings

import keras

from rnnzoo.export.artifacts import run_python
from rnnzoo.gradient_registry import released_gradients
from rnnzoo.export.saved_model import to_saved_model  # noqa: F401  (the export package's one entry point)

QUANTIZATIONS = (None, "float16", "dynamic_range")
# Dynamic-range quantization leaves weights of fewer elements in float32 (TFLite's and
# onnxruntime's rule); the ONNX float16 conversion here follows it too (TFLite's float16 stores
# every weight in float16).
MIN_QUANTIZED_ELEMENTS = 1024
ONNX_OPSET = 17


def _check_quantization(name, quantization):
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`{name}(quantization=...)` must be one of {list(QUANTIZATIONS)}. "
            f"Received: quantization={quantization!r}"
        )


def check_format(name, format, formats, quantization=None):
    """Raises a `ValueError` naming `name` for a `format` not in `formats`, or a quantization
    that is not one of `QUANTIZATIONS` or is asked of a SavedModel (which holds float32)."""
    if format not in formats:
        raise ValueError(f"`{name}(format=...)` must be one of {list(formats)}. Received: format={format!r}")
    _check_quantization(name, quantization)
    if format == "saved_model" and quantization is not None:
        quantized = " and ".join({"tflite": "TFLite", "onnx": "ONNX"}[f] for f in formats if f != "saved_model")
        raise ValueError(f"`{name}(quantization=...)` applies to {quantized}, not to a SavedModel. "
                         f"Received: quantization={quantization!r}")


def _warn_if_unchanged(name, quantization, path):
    """Says so when a quantization left every weight in float32 (a small model)."""
    if quantization is None:
        return None
    count = quantized_weights(path)
    if count == 0:
        warnings.warn(
            f"`{name}(quantization={quantization!r})` changed nothing: no weight of {path!r} was stored in "
            f"fewer bits (dynamic range, and float16 in ONNX, skip weights of fewer than {MIN_QUANTIZED_ELEMENTS} "
            "elements). The file "
            "computes what the float32 one computes.",
            UserWarning,
            stacklevel=3,
        )
    return count


def to_tflite(source, path, *, quantization=None):
    """Converts a model, or a SavedModel, to a TFLite flatbuffer with builtin ops only (no Flex, no custom ops).

    Batch and time stay dynamic. A recurrence exported from the TensorFlow backend runs in LiteRT
    in time linear in the sequence length (checkpoints and one batched replay,
    `rnnzoo.recurrence`); a SavedModel written from the JAX backend (jax2tf) holds `lax.scan`,
    whose output buffer LiteRT's `WHILE` copies at every step: time quadratic in the length
    (bench/RESULTS.md). So on JAX, pass the model: it is then saved as a `.keras` file, reloaded
    on the TensorFlow backend in a new process (the same weights and function; the tests prove
    both backends compute the same numbers) and converted there, as `to_onnx` does.

    Args:
        source: a `keras.Model`, or a SavedModel directory (e.g. from `to_saved_model`). A
            SavedModel written from the JAX backend is converted as it is, with a `UserWarning`
            when it holds a loop (quadratic in time in LiteRT; pass the model instead).
        path: str, the `.tflite` file to write.
        quantization: None (float32), `"float16"` (float16 weights) or `"dynamic_range"`
            (int8 weights, float activations).

    Returns:
        `path`. If a quantization stores no weight in fewer bits (dynamic range skips weights of
        fewer than 1024 elements), a `UserWarning` says so; `quantized_weights(path)` counts them.
    """
    _check_quantization("to_tflite", quantization)
    if isinstance(source, keras.Model):
        if keras.backend.backend() != "tensorflow":
            return convert_on_tensorflow(source, "to_tflite", path, quantization=quantization)
        with tempfile.TemporaryDirectory() as tmp:
            saved_model = to_saved_model(source, os.path.join(tmp, "saved_model"))
            return to_tflite(saved_model, path, quantization=quantization)
    if not os.path.exists(os.path.join(str(source), "saved_model.pb")):
        raise ValueError(f"`to_tflite(source=...)` must be a keras.Model or a SavedModel directory. Received: source={source!r}")
    import tensorflow as tf

    with released_gradients():  # the converter loads the SavedModel twice and keeps neither
        converter = tf.lite.TFLiteConverter.from_saved_model(str(source))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization is not None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    if _is_jax_saved_model(str(source)) and "WHILE" in tflite_ops(path):
        warnings.warn(
            f"`to_tflite`: {str(source)!r} was written from the JAX backend (jax2tf), whose loops are `lax.scan` "
            "with a per-step output buffer that LiteRT's WHILE copies at every step: the `.tflite` runs in time "
            "quadratic in the sequence length. For the linear-time loop, pass the Keras model: "
            "`to_tflite(model, path)` (converted on the TensorFlow backend in a new process).",
            UserWarning,
            stacklevel=2,
        )
    _warn_if_unchanged("to_tflite", quantization, path)
    return path


def tflite_ops(path):
    """The sorted operator names in every subgraph of a `.tflite` file, e.g. `["ADD", "WHILE"]`.

    Custom and Flex ops appear as `CUSTOM:<name>` (e.g. `CUSTOM:FlexTensorListReserve`).
    """
    return sorted(tflite_op_counts(path))


def tflite_op_counts(path):
    """How many operators of each name (as `tflite_ops` names them) a `.tflite` file holds, all subgraphs."""
    import collections

    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    counts = collections.Counter()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = code.customCode
                counts["CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom))] += 1
            else:
                counts[builtin_names[builtin]] += 1
    return counts


def quantized_weights(path):
    """How many constant tensors of a `.tflite` or `.onnx` file are stored in fewer than 32 bits.

    0 for a float32 file, and for a quantized one whose weights were all too small to quantize.
    """
    if str(path).endswith(".onnx"):
        import onnx

        low = {onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.BFLOAT16}
        return sum(1 for graph in _onnx_graphs(onnx.load(path).graph) for t in graph.initializer if t.data_type in low)
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    low = {schema.TensorType.FLOAT16, schema.TensorType.INT8}
    return sum(
        1
        for subgraph in model.subgraphs
        for tensor in subgraph.tensors
        if tensor.type in low and model.buffers[tensor.buffer].data is not None and len(model.buffers[tensor.buffer].data)
    )


def _onnx_graphs(graph):
    """A graph and, recursively, the subgraphs of its `Loop`/`If`/`Scan` nodes."""
    import onnx

    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                yield from _onnx_graphs(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                for g in attribute.graphs:
                    yield from _onnx_graphs(g)


def _is_jax_saved_model(saved_model_path):
    """A SavedModel written from the JAX backend holds StableHLO modules (`XlaCallModule` ops)."""
    with open(os.path.join(saved_model_path, "saved_model.pb"), "rb") as f:
        return b"XlaCallModule" in f.read()


def _saved_model_to_onnx(saved_model_path, path, signature, opset):
    import tf2onnx
    from tf2onnx import tf_loader

    from keras.src.export.tf2onnx_lib import patch_tf2onnx  # Keras's fixes of tf2onnx for NumPy 2

    patch_tf2onnx()
    with released_gradients():  # tf2onnx keeps a GraphDef, not the loaded object
        graph_def, inputs, outputs, tables, renames = tf_loader.from_saved_model(
            saved_model_path, None, None, tag="serve", signatures=[signature], return_initialized_tables=True,
            return_tensors_to_rename=True,
        )
    del tables  # string tables (the `translate` signature) do not convert; token signatures have none

    def convert():
        tf2onnx.convert.from_graph_def(graph_def, input_names=inputs, output_names=outputs, opset=opset,
                                       tensors_to_rename=renames, output_path=path)

    # tf2onnx deep-copies the whole graph before each of its ~20 optimizer passes, in every round,
    # to roll back a pass that raises: about half of a conversion's time. Setting
    # TF2ONNX_CATCH_ERRORS turns that off (tf2onnx 1.17 reads any value as "don't catch", see
    # `tf2onnx.convert._convert_common`). A pass that raises then fails the conversion, which is
    # then run again the careful way, so the result is what tf2onnx gives by default.
    variable = "TF2ONNX_CATCH_ERRORS"
    if variable in os.environ:  # the user's choice
        return convert()
    os.environ[variable] = "false"
    try:
        convert()
    except Exception:  # noqa: BLE001 -- whatever failed is retried below, where it raises if it still fails
        os.environ.pop(variable)
        convert()
    finally:
        os.environ.pop(variable, None)


def _float16_weights(path):
    """Stores every float32 initializer of at least 1024 elements as float16, cast back to float32 on use."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(path)
    for graph in _onnx_graphs(model.graph):
        kept, casts = [], []
        for tensor in graph.initializer:
            if tensor.data_type == onnx.TensorProto.FLOAT and np.prod(tensor.dims) >= MIN_QUANTIZED_ELEMENTS:
                half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name + "_float16")
                kept.append(half)
                casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=onnx.TensorProto.FLOAT))
            else:
                kept.append(tensor)
        del graph.initializer[:]
        graph.initializer.extend(kept)
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)
    onnx.save(model, path)


def to_onnx(source, path, *, quantization=None, signature="serving_default", opset=ONNX_OPSET):
    """Converts a model, or a SavedModel signature, to ONNX (tf2onnx), batch and time dynamic.

    Args:
        source: a SavedModel directory written from the TensorFlow backend, or a `keras.Model`.
            A SavedModel written from the JAX backend holds StableHLO, which tf2onnx cannot
            read: pass the model itself, which is then saved as a `.keras` file, reloaded on the
            TensorFlow backend in a new process (the same weights and function; the tests prove
            both backends compute the same numbers) and converted there.
        path: str, the `.onnx` file to write.
        quantization: as `to_tflite`: None, `"float16"` (float16 weights, cast to float32 when
            used) or `"dynamic_range"` (int8 weights of matrix products, onnxruntime's
            `quantize_dynamic`).
        signature: str, the SavedModel signature to convert (one per file).
        opset: int, the ONNX opset.

    Returns:
        `path`. String signatures (`translate`) do not convert (tf2onnx has no string ops).
    """
    _check_quantization("to_onnx", quantization)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if isinstance(source, keras.Model):
        if keras.backend.backend() != "tensorflow":
            return convert_on_tensorflow(source, "to_onnx", path, quantization=quantization, opset=opset)
        with tempfile.TemporaryDirectory() as tmp:
            saved_model = to_saved_model(source, os.path.join(tmp, "saved_model"))
            return to_onnx(saved_model, path, quantization=quantization, signature=signature, opset=opset)
    if not os.path.exists(os.path.join(str(source), "saved_model.pb")):
        raise ValueError(f"`to_onnx(source=...)` must be a keras.Model or a SavedModel directory. Received: source={source!r}")
    if _is_jax_saved_model(source):
        raise ValueError(
            "`to_onnx` cannot convert a SavedModel written from the JAX backend: it holds StableHLO "
            "(`XlaCallModule`), which tf2onnx cannot read. Pass the Keras model instead: "
            f"`to_onnx(model, path)`. Received: source={source!r}"
        )
    _saved_model_to_onnx(str(source), path, signature, opset)
    if quantization == "float16":
        _float16_weights(path)
    elif quantization == "dynamic_range":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with tempfile.TemporaryDirectory() as tmp:
            float32 = os.path.join(tmp, "float32.onnx")
            os.replace(path, float32)
            quantize_dynamic(float32, path, weight_type=QuantType.QInt8)
    _warn_if_unchanged("to_onnx", quantization, path)
    return path


def onnx_ops(path):
    """The sorted operator types of an `.onnx` file, its `Loop` bodies included."""
    import onnx

    return sorted({node.op_type for graph in _onnx_graphs(onnx.load(path).graph) for node in graph.node})


def convert_on_tensorflow(model, function, path, timeout=900, **kwargs):
    """Runs `rnnzoo.export.<function>(model, path, **kwargs)` in a new process on the TensorFlow backend.

    For the conversions that need a TensorFlow graph (ONNX) or its loop (TFLite in linear time)
    when the model lives on the JAX backend: the model goes through a `.keras` file (weights and
    configuration; every zoo model round-trips), so the converted function is the model's.
    """
    return convert_all_on_tensorflow(model, [(function, path, kwargs)], timeout=timeout)[0]


def convert_all_on_tensorflow(model, jobs, timeout=900):
    """`convert_on_tensorflow` for several `(function, path, kwargs)` jobs: one `.keras` file, one process.

    Returns the paths. A quantization that stored no weight in fewer bits warns here, as the
    converters do (the process itself ignores its warnings).
    """
    import json

    with tempfile.TemporaryDirectory() as tmp:
        keras_path = os.path.join(tmp, "model.keras")
        model.save(keras_path)
        code = (
            "import json, sys, warnings, keras\n"
            "import rnnzoo\n"
            "from rnnzoo import export\n"
            "model = keras.saving.load_model(sys.argv[1])\n"
            "for function, path, kwargs in json.loads(sys.argv[2]):\n"
            "    with warnings.catch_warnings():\n"
            "        warnings.simplefilter('ignore', UserWarning)\n"
            "        getattr(export, function)(model, path, **kwargs)\n"
        )
        jobs = [(function, path, dict(kwargs)) for function, path, kwargs in jobs]
        absolute = [(function, os.path.abspath(path), kwargs) for function, path, kwargs in jobs]
        done = run_python(code, [keras_path, json.dumps(absolute)], timeout=timeout, backend="tensorflow")
        if done.returncode != 0:
            names = sorted({function for function, _, _ in jobs})
            hint = ("" if "to_tflite" not in names else
                    " (`to_tflite(to_saved_model(model, directory), path)` converts the jax2tf SavedModel instead, "
                    "in time quadratic in the sequence length)")
            raise RuntimeError(f"`{'`, `'.join(names)}` on the TensorFlow backend failed{hint}:\n{done.stderr[-3000:]}")
    for function, path, kwargs in jobs:
        _warn_if_unchanged(function, kwargs.get("quantization"), path)
    return [path for _, path, _ in jobs]
