"""Keras model -> SavedModel -> TFLite with builtin ops only."""

import os

import keras

QUANTIZATIONS = (None, "float16", "dynamic_range")


def to_saved_model(model, path, *, input_signature=None):
    """Exports `model` with `model.export(path, format="tf_saved_model")`.

    The SavedModel has a `serving_default` signature with the batch and every `None` axis of
    the model's inputs dynamic. On the JAX backend the loops are exported without their
    gradient (`jax2tf_kwargs={"with_gradient": False}`), which dynamic trip counts need.

    Args:
        model: a built `keras.Model`.
        path: str, the SavedModel directory (must not exist yet, or be empty).
        input_signature: optional, as for `keras.Model.export`.

    Returns:
        `path`.
    """
    if os.path.exists(path) and os.listdir(path):
        raise FileExistsError(
            f"`to_saved_model` will not overwrite the non-empty directory {path!r}; remove it "
            "or choose another path."
        )
    kwargs = {}
    if keras.backend.backend() == "jax":
        kwargs["jax2tf_kwargs"] = {"with_gradient": False}
    model.export(path, format="tf_saved_model", input_signature=input_signature, verbose=False, **kwargs)
    return path


def to_tflite(saved_model_path, path, *, quantization=None):
    """Converts a SavedModel to a TFLite flatbuffer with builtin ops only (no Flex, no custom ops).

    Args:
        saved_model_path: str, a SavedModel directory (e.g. from `to_saved_model`).
        path: str, the `.tflite` file to write.
        quantization: None (float32), `"float16"` (float16 weights) or `"dynamic_range"`
            (int8 weights, float activations).

    Returns:
        `path`.
    """
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"`to_tflite(quantization=...)` must be one of {list(QUANTIZATIONS)}. "
            f"Received: quantization={quantization!r}"
        )
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_path)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    flatbuffer = converter.convert()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return path


def tflite_ops(path):
    """The sorted operator names in every subgraph of a `.tflite` file, e.g. `["ADD", "WHILE"]`.

    Custom and Flex ops appear as `CUSTOM:<name>` (e.g. `CUSTOM:FlexTensorListReserve`).
    """
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    with open(path, "rb") as f:
        model = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    builtin_names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin == schema.BuiltinOperator.CUSTOM:
                custom = code.customCode
                names.add("CUSTOM:" + (custom.decode() if isinstance(custom, bytes) else str(custom)))
            else:
                names.add(builtin_names[builtin])
    return sorted(names)
