"""Keras model -> SavedModel, from the TensorFlow or the JAX backend, with named endpoints.

On TensorFlow the SavedModel is Keras's (`keras.export.ExportArchive`). On both backends every
numeric signature is wrapped in a guard for sizes 0 (`_guard_shapes`): a batch of 0 returns an
empty batch, also from the `.tflite` file in a bare LiteRT interpreter, and an empty time (node,
token) axis is an error. On JAX the SavedModel is written here with `jax2tf`, for reasons Keras's
JAX export cannot serve:

* Keras's exported function re-assigns every non-trainable variable after each call. Keras's
  own cells (`GRUCell`, `LSTMCell`, `SimpleRNNCell`) own a `uint32` seed-generator state, so
  the SavedModel then writes a `uint32` variable, which the TFLite converter rejects
  (`'tfl.assign_variable' ... tensor<2xui32>`), even with dropout 0. Here a variable is
  written back only if the call changed it (a `stateful` layer's state does; a seed that
  inference never draws from does not).
* With a symbolic batch or length, JAX (0.10) lowers plain slicing such as `x[:, 4:8]` (Keras's
  `GRUCell` splits its gates so) or `x[:, :-1]` to a `dynamic_gather`, which the TFLite
  converter rejects (`'vhlo.dynamic_gather_v1' op is not part of the vhlo support yet`).
  While the export traces, such slices (integers, slices of step 1, `...`, `None`) become
  `lax.slice`, which converts; anything else is indexed by JAX as usual.
* JAX lowers `lax.top_k` (beam search) to a `composite` op that TensorFlow 2.21's
  `XlaCallModule` cannot load. While the export traces, `top_k` over a static last axis is
  computed by k rounds of selection (max, then the lowest index reaching it), which gives the
  same values and indices (ties to the lowest index, as `top_k`).
* Keras gives every dynamic axis of every input its own symbol, so two inputs that must share
  their length (a sequence and its labels) cannot be exported. `polymorphic_shapes` declares
  the shared symbol once, e.g. `{"x": "(batch, time, 1)", "labels": "(batch, time)"}`.
"""

import contextlib
import functools
import itertools
import os
import string

import keras
from keras import tree


def _check_target(path, name):
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(
            f"`{name}` will not overwrite {path!r}; remove it or choose another path."
        )


def _traced_as_saved():
    """A context in which `tf.function`s trace as `tf.saved_model.save` (default options) traces them.

    TensorFlow keys a function's traces by the save context's variable policy, so a function
    traced before `save` (by `ExportArchive`'s search for variables, or for a signature) is
    traced again inside it: twice the tracing, most of the time of exporting a loop. Traced in
    this context, `save` finds the trace. The context is TensorFlow's private `save_context`;
    should it move, exports stay correct and trace twice. Not under a distribution strategy
    (whose variables a save context changes), nor inside a save.
    """
    import tensorflow as tf

    try:
        from tensorflow.python.saved_model import save_context

        if save_context.in_save_context() or tf.distribute.has_strategy():
            return contextlib.nullcontext()
        return save_context.save_context(tf.saved_model.SaveOptions())
    except (ImportError, AttributeError):
        return contextlib.nullcontext()


def export_archive():
    """A `keras.export.ExportArchive` that traces each endpoint once (see `_traced_as_saved`), not twice."""
    archive = keras.export.ExportArchive()
    find_variables = getattr(archive, "_filter_and_track_resources", None)  # where Keras traces, before `save`
    if find_variables is not None:

        def traced_as_saved():
            with _traced_as_saved():
                find_variables()

        archive._filter_and_track_resources = traced_as_saved
    return archive


def default_input_signature(model):
    """The `tf.TensorSpec` structure of a functional model's inputs (batch and `None` axes dynamic).

    Returns a list of one element, the model's input structure (a spec, a list or a dict).
    Named after the model's inputs (dict keys for a dict of inputs).
    """
    import tensorflow as tf

    structure = None
    if isinstance(model, keras.Model) and model.built:
        try:
            structure = model.input
        except AttributeError:  # a `Sequential` built from `keras.Input` has `inputs`, and no `input` until called
            inputs = getattr(model, "inputs", None) or None
            structure = inputs[0] if inputs is not None and len(inputs) == 1 else inputs
    try:
        flat = tree.flatten(structure) if structure is not None else []
    except (AttributeError, ValueError):  # a subclassed model without symbolic inputs
        flat = []
    if not flat or not all(isinstance(x, keras.KerasTensor) for x in flat):
        raise ValueError(
            f"`to_saved_model` cannot tell the inputs of {type(model).__name__} {getattr(model, 'name', '')!r}: "
            "it is not a functional model. Pass `input_signature=[...]` (a list of `tf.TensorSpec` "
            "structures, one per positional argument of the model's `call`), or, for `Seq2Seq`, use "
            "`rnnzoo.export.export_translator` or `export_decoder`. "
            f"Received: model={type(model).__name__}"
        )

    def spec(x, name):
        return tf.TensorSpec((None,) + tuple(x.shape[1:]), x.dtype, name=name)

    if isinstance(structure, dict):
        return [{k: spec(v, k) for k, v in structure.items()}]
    if isinstance(structure, (list, tuple)):
        return [[spec(x, x.name) for x in structure]]
    return [spec(structure, structure.name)]


def default_polymorphic_shapes(input_signature):
    """jax2tf polymorphic shapes: `batch` for axis 0, a new symbol for every other `None` axis."""
    symbols = itertools.chain(string.ascii_lowercase, ("".join(p) for p in itertools.product(string.ascii_lowercase, repeat=2)))

    def shape(spec):
        dims = ["batch" if i == 0 and d is None else (next(symbols) if d is None else str(d))
                for i, d in enumerate(spec.shape)]
        return f"({', '.join(dims)})"

    return tree.map_structure(shape, list(input_signature))


def _check_polymorphic_shapes(polymorphic_shapes, input_signature):
    try:
        tree.assert_same_structure(list(polymorphic_shapes), list(input_signature))
    except (ValueError, TypeError):
        raise ValueError(
            "`to_saved_model(polymorphic_shapes=...)` must have the structure of the input signature "
            f"{tree.map_structure(lambda s: tuple(s.shape), list(input_signature))} (one string such as "
            f"'(batch, time, 3)' per input). Received: polymorphic_shapes={polymorphic_shapes!r}"
        )


def _static_slice(array, index):
    """`array[index]` with `lax.slice` when `index` is static and `array` has a symbolic axis; else None."""
    import numpy as np
    from jax import lax

    shape = array.shape
    if all(isinstance(d, int) for d in shape):
        return None  # JAX slices concrete shapes itself
    index = index if isinstance(index, tuple) else (index,)

    def static_int(x):
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    for item in index:
        if item is None or item is Ellipsis or static_int(item):
            continue
        if not isinstance(item, slice) or item.step not in (None, 1):
            return None
        if not all(x is None or static_int(x) for x in (item.start, item.stop)):
            return None
    consumed = sum(1 for item in index if item is not None and item is not Ellipsis)
    if consumed > len(shape) or index.count(Ellipsis) > 1:
        return None
    expanded = []
    for item in index:
        expanded += [slice(None)] * (len(shape) - consumed) if item is Ellipsis else [item]
    if Ellipsis not in index:
        expanded += [slice(None)] * (len(shape) - consumed)
    starts, limits, squeezed, new_axes, axis, out_axis = [], [], [], [], 0, 0
    for item in expanded:
        if item is None:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        size = shape[axis]
        if isinstance(item, slice):
            if isinstance(size, int):
                start, stop, _ = item.indices(size)
                stop = max(start, stop)
            else:  # a symbolic axis: negative bounds count from its end; a valid program stays inside
                start = 0 if item.start is None else (item.start if item.start >= 0 else size + item.start)
                stop = size if item.stop is None else (item.stop if item.stop >= 0 else size + item.stop)
            out_axis += 1
        else:
            item = int(item)
            start = item if item >= 0 else size + item
            stop = start + 1
            squeezed.append(axis)
        starts.append(start)
        limits.append(stop)
        axis += 1
    try:
        out = lax.slice(array, starts, limits)
    except Exception:  # noqa: BLE001  (bounds JAX cannot prove for every size, e.g. 1:3 of a symbolic axis)
        return None  # left to JAX's own indexing
    if squeezed:
        out = lax.squeeze(out, squeezed)
    for position in new_axes:
        out = lax.expand_dims(out, (position,))
    return out


def _top_k_by_selection(operand, k):
    """`lax.top_k(operand, k)` as k rounds of max and lowest-index selection (no composite op)."""
    import jax.numpy as jnp

    n = operand.shape[-1]
    positions = jnp.arange(n, dtype=jnp.int32)
    taken = jnp.zeros(operand.shape, dtype=bool)
    values, indices = [], []
    for _ in range(k):
        remaining = jnp.where(taken, -jnp.inf, operand)
        best = jnp.max(remaining, axis=-1, keepdims=True)
        index = jnp.min(jnp.where((remaining == best) & ~taken, positions, n), axis=-1, keepdims=True)
        index = jnp.minimum(index, n - 1)  # NaN rows: any valid index
        values.append(best)
        indices.append(index)
        taken = taken | (positions == index)
    return jnp.concatenate(values, axis=-1).astype(operand.dtype), jnp.concatenate(indices, axis=-1)


@contextlib.contextmanager
def _convertible_jax():
    """While tracing an export on JAX: static slices of symbolically shaped arrays use `lax.slice`,
    and `top_k` over a static axis is a selection (see the module docstring)."""
    try:
        import jax
        from jax._src.numpy import indexing
    except ImportError:  # pragma: no cover  (another JAX layout: trace as JAX does)
        yield
        return
    original_take, original_top_k = indexing.rewriting_take, jax.lax.top_k

    def rewriting_take(array, index, **kwargs):
        out = _static_slice(array, index) if not kwargs or set(kwargs) <= {"indices_are_sorted", "unique_indices"} else None
        return original_take(array, index, **kwargs) if out is None else out

    def top_k(operand, k, **kwargs):
        if kwargs or not isinstance(operand.shape[-1], int) or not isinstance(k, int):
            return original_top_k(operand, k, **kwargs)
        return _top_k_by_selection(operand, k)

    indexing.rewriting_take, jax.lax.top_k = rewriting_take, top_k
    try:
        yield
    finally:
        indexing.rewriting_take, jax.lax.top_k = original_take, original_top_k


def _with_constant_dims(input_signature, polymorphic_shapes):
    """The signature with the axes that `polymorphic_shapes` gives as numbers fixed to them (jax2tf requires it)."""
    import tensorflow as tf

    def fix(spec, shape):
        dims = [d.strip() for d in shape.strip().strip("()").split(",") if d.strip()]
        if len(dims) != len(spec.shape):
            raise ValueError(
                f"`to_saved_model(polymorphic_shapes=...)`: {shape!r} has {len(dims)} axes, the input "
                f"{spec.name!r} {len(spec.shape)}. Received: polymorphic_shapes={polymorphic_shapes!r}"
            )
        fixed = [int(d) if d.isdigit() and s is None else s for d, s in zip(dims, spec.shape)]
        return tf.TensorSpec(fixed, spec.dtype, name=spec.name)

    return tree.map_structure(fix, list(input_signature), list(polymorphic_shapes))


def _dimension_names(shape):
    """`'(batch, time, 3)'` -> `['batch', 'time', '3']`."""
    return [d.strip() for d in shape.strip().strip("()").split(",") if d.strip()]


def _guard_shapes(args, input_signature, polymorphic_shapes):
    """Makes a signature behave as the Keras model at sizes 0, also in a bare LiteRT interpreter.

    Used by every numeric signature, from both backends. `polymorphic_shapes` names the axes
    (jax2tf's shapes; from TensorFlow `default_polymorphic_shapes`: `batch` for a dynamic axis 0).

    * A batch of 0 (axis 0 of every non-scalar input, one symbol) runs as one row of zeros, and
      `_keep_rows` keeps 0 rows of the outputs: Keras returns an empty batch, jax2tf assumes every
      symbolic dimension is at least 1, and LiteRT cannot prepare some ops (`UNPACK`) on tensors
      of 0 elements. The row is concatenated only when the batch is 0 (cost: one copy of the input).
    * Any other dynamic axis of size 0 (0 time steps, nodes, tokens) is an error: in TensorFlow an
      assertion that says so; the TFLite converter drops assertions, so the signature also gathers
      element 1 of a 1-element vector then, which makes LiteRT fail (`gather index out of bounds`,
      `GATHER` failed to invoke) before any op of the model runs, instead of returning the initial
      state as if the sequence had been read.

    Signatures with string inputs are left as they are (they do not convert to TFLite). Returns
    `(args, batch or None)`, `batch` the number of rows received when a row may have been added.
    """
    import tensorflow as tf

    flat_args = tree.flatten(list(args))
    flat_specs = tree.flatten(list(input_signature))
    names = [_dimension_names(s) for s in tree.flatten(list(polymorphic_shapes))]
    if len(names) != len(flat_args) or any(tf.as_dtype(s.dtype) == tf.string for s in flat_specs):
        return args, None
    checks, empty_axes = [], []
    for x, spec, dims in zip(flat_args, flat_specs, names):
        for axis, dim in enumerate(dims[1:], 1):
            if not dim.isdigit():
                size = tf.shape(x)[axis]
                checks.append(tf.debugging.assert_positive(
                    size,
                    message=f"Input {spec.name!r} of the signature has size 0 along axis {axis} ({dim}): the model "
                            f"needs at least one time step (node, token) per example. Received: 0"))
                empty_axes.append(1 - tf.minimum(size, 1))
    one = None
    if empty_axes:
        with tf.control_dependencies(checks):  # TensorFlow: the assertion's message comes first
            # (Adds, not `add_n`: ONNX's `Sum` takes no integers.)
            one = tf.gather(tf.ones([1], tf.int32), functools.reduce(tf.add, empty_axes))  # 1, or out of range
    batched = [i for i, dims in enumerate(names) if dims]
    batch_names = {names[i][0] for i in batched}
    batch = None
    if batched and len(batch_names) == 1 and not next(iter(batch_names)).isdigit():
        batch = tf.shape(flat_args[batched[0]])[0]
        missing = 1 - tf.minimum(batch, 1)
        if one is not None:
            missing = missing * one
        for i in batched:
            x = flat_args[i]
            flat_args[i] = tf.concat([x, tf.zeros(tf.concat([[missing], tf.shape(x)[1:]], 0), x.dtype)], 0)
    elif one is not None:  # no batch to pad: the check still runs before the model
        x = flat_args[batched[0]]
        checked = tf.reshape(x, tf.shape(x) * one)
        checked.set_shape(x.shape)  # (`tf.ensure_shape` does not convert to TFLite)
        flat_args[batched[0]] = checked
    with tf.control_dependencies(checks):
        flat_args = [tf.identity(x) for x in flat_args]
    return tree.pack_sequence_as(list(args), flat_args), batch


def _keep_rows(outputs, batch):
    """The outputs of a signature guarded by `_guard_shapes`: 0 rows of each when `batch` was 0."""
    import tensorflow as tf

    if batch is None:
        return outputs

    def keep(y):
        if not y.shape.rank:
            return y
        # A gather, not a slice: LiteRT's Python interpreter cannot read an output of 0 elements
        # that a slice with a computed size made (`ValueError: Invalid tensor size.`), and can
        # read one that a gather made.
        return tf.gather(y, tf.range(tf.where(tf.equal(batch, 0), 0, tf.shape(y)[0])))

    return tree.map_structure(keep, outputs)


def _guarded(fn, input_signature):
    """`fn` (TensorFlow backend) with `_guard_shapes` around it: batch 0 and empty axes as on JAX."""
    polymorphic_shapes = default_polymorphic_shapes(input_signature)

    def serve(*args):
        args, batch = _guard_shapes(args, input_signature, polymorphic_shapes)
        return _keep_rows(fn(*args), batch)

    return serve


def _jax_endpoint(variables, tf_variables, fn, input_signature, polymorphic_shapes):
    """`fn` (JAX) as a `tf.function` over `tf_variables`, writing back only the variables it changes."""
    import tensorflow as tf
    from jax.experimental import jax2tf

    changed = []

    def stateless(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))) as scope:
            before = [scope.get_current_value(v) for v in variables]
            outputs = fn(*args)
            after = [scope.get_current_value(v) for v in variables]
        changed[:] = [i for i, (a, b) in enumerate(zip(before, after)) if a is not b]
        return outputs, [after[i] for i in changed]

    variable_shapes = [f"({', '.join(str(d) for d in v.shape)}{',' if len(v.shape) == 1 else ''})" for v in variables]
    converted = jax2tf.convert(stateless, polymorphic_shapes=[variable_shapes, *polymorphic_shapes],
                               with_gradient=False)

    def serve(*args):
        args, batch = _guard_shapes(args, input_signature, polymorphic_shapes)
        with _convertible_jax():
            outputs, updates = converted(list(tf_variables), *args)
        for i, value in zip(changed, updates):
            tf_variables[i].assign(tf.cast(value, tf_variables[i].dtype))
        return _keep_rows(outputs, batch)  # a batch of 0 ran as one row of zeros: keep none of it

    return tf.function(serve, input_signature=list(input_signature), autograph=False)


def write_saved_model(path, model, endpoints, *, name="to_saved_model", track=()):
    """Writes a SavedModel with several signatures, from either backend.

    Args:
        path: str, a new (or empty) directory.
        model: the `keras.Model` (or layer) whose variables the endpoints use.
        endpoints: dict `signature name -> (fn, input_signature, polymorphic_shapes or None)`;
            `fn` takes one positional argument per element of `input_signature`.
        name: the public function named in errors.
        track: layers whose resources the SavedModel must hold besides the variables the
            endpoints use (TensorFlow backend: a `StringLookup`'s table).

    Returns:
        `path`.
    """
    _check_target(path, name)
    import tensorflow as tf

    if keras.backend.backend() == "tensorflow":
        archive = export_archive()
        # The model is not `track`ed: its weights are found through the endpoints, and tracking a
        # subclassed model with dict inputs makes TensorFlow trace a default signature it cannot call.
        for layer in track:
            archive.track(layer)
        for signature, (fn, input_signature, _) in endpoints.items():
            archive.add_endpoint(signature, _guarded(fn, list(input_signature)), input_signature=list(input_signature))
        archive.write_out(path, verbose=False)
        return path
    if keras.backend.backend() != "jax":
        raise RuntimeError(
            f"`{name}` exports from the TensorFlow or the JAX backend. Received backend: {keras.backend.backend()}"
        )
    variables = list(model.variables)
    module = tf.Module()
    module.keras_variables = [
        tf.Variable(keras.ops.convert_to_numpy(v.value), trainable=v.trainable, name=v.path.replace("/", "_"))
        for v in variables
    ]
    signatures = {}
    for signature, (fn, input_signature, polymorphic_shapes) in endpoints.items():
        if polymorphic_shapes is None:
            polymorphic_shapes = default_polymorphic_shapes(input_signature)
        _check_polymorphic_shapes(polymorphic_shapes, input_signature)
        input_signature = _with_constant_dims(input_signature, polymorphic_shapes)
        function = _jax_endpoint(variables, module.keras_variables, fn, input_signature, list(polymorphic_shapes))
        setattr(module, signature, function)
        with _traced_as_saved():
            signatures[signature] = function.get_concrete_function()
    tf.saved_model.save(module, path, signatures=signatures)
    return path


def to_saved_model(model, path, *, input_signature=None, polymorphic_shapes=None):
    """Exports `model` as a SavedModel with a `serving_default` signature, batch and time dynamic.

    Works on the TensorFlow backend (`model.export`) and on the JAX backend (`jax2tf`, loops
    exported without their gradient, which dynamic trip counts need; see the module docstring).

    Args:
        model: a built `keras.Model`.
        path: str, the SavedModel directory (must not exist yet, or be empty).
        input_signature: optional, a list of `tf.TensorSpec` structures, one per positional
            argument of `model`'s call; by default the functional model's inputs with the batch
            and every `None` axis dynamic.
        polymorphic_shapes: optional (JAX backend; the TensorFlow backend needs none), the
            jax2tf shape of each input, in the structure of `input_signature`, e.g.
            `[{"x": "(batch, time, 1)", "labels": "(batch, time)"}]` to declare that both inputs
            have the same length. By default every dynamic axis has its own symbol.

    Returns:
        `path`.
    """
    _check_target(path, "to_saved_model")
    if input_signature is None:
        input_signature = default_input_signature(model)
    if polymorphic_shapes is not None:
        _check_polymorphic_shapes(polymorphic_shapes, input_signature)

    def serve(*args):
        return model(args[0] if len(args) == 1 else list(args), training=False)

    if keras.backend.backend() == "tensorflow" and isinstance(model, keras.Model) and not _is_subclassed(model):
        # What `model.export` writes (the model tracked, its call as `serve`, also `serving_default`),
        # with the size guard of `write_saved_model` around the call.
        archive = export_archive()
        archive.track(model)
        archive.add_endpoint("serve", _guarded(serve, list(input_signature)), input_signature=list(input_signature))
        archive.write_out(path, verbose=False)
        return path

    return write_saved_model(path, model, {"serving_default": (serve, input_signature, polymorphic_shapes)})


def _is_subclassed(model):
    """A model without symbolic inputs (neither functional nor `Sequential`)."""
    try:
        return not all(isinstance(x, keras.KerasTensor) for x in tree.flatten(model.input))
    except (AttributeError, ValueError, TypeError):
        return True


__all__ = ["default_input_signature", "default_polymorphic_shapes", "to_saved_model", "write_saved_model"]
