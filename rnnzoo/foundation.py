"""What every cell and layer of rnnzoo shares: argument and input validation, the activations
with their derivatives (for explicit gradients), and time-major helpers.

This module sits below the cells and the layers and imports neither, so no cell needs a layer
and no module needs a private name of another.
"""

import keras
from keras import ops

# ---------------------------------------------------------------------------------------------
# Arguments


def validate_units(name, value, layer, allow_none=False):
    """Raises a Keras-style error unless `value` is a positive int (or None if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"`{layer}({name}=...)` must be a positive integer"
            + (" or None" if allow_none else "")
            + f". Received: {name}={value!r}"
        )
    return value


def validate_rate(name, value, layer):
    """A dropout rate: a number in [0, 1). Returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{layer}({name}=...)` must be a number in [0, 1). Received: {name}={value!r}")
    return float(value)


def validate_unroll(unroll, layer):
    """Keras's `unroll` (a bool) or an unroll factor (an int >= 1). Returns it unchanged."""
    if isinstance(unroll, bool) or (isinstance(unroll, int) and unroll >= 1):
        return unroll
    raise ValueError(
        f"`{layer}(unroll=...)` must be a bool (Keras's meaning: unroll the whole loop) or an "
        f"integer >= 1 (steps unrolled per loop iteration). Received: unroll={unroll!r}"
    )


def known_features(input_shape, layer):
    """The feature size (last axis) a cell builds its input kernel for; a Keras-style error if unknown."""
    features = input_shape[-1]
    if features is None:
        raise ValueError(
            f"`{layer}` needs a known feature size (last input axis). Received: input_shape={tuple(input_shape)}"
        )
    return features


def state_sizes(cell):
    """A cell's `state_size` as a list (Keras allows an int for a single state)."""
    sizes = cell.state_size
    return list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]


def output_size(cell):
    """A cell's `output_size`, or its first state's size when it declares none (Keras's rule)."""
    size = getattr(cell, "output_size", None)
    if size is not None:
        return size
    first = state_sizes(cell)[0]
    return first[0] if isinstance(first, (list, tuple)) else first


# ---------------------------------------------------------------------------------------------
# Inputs


def check_sequence_inputs(layer, inputs_shape, inputs_dtype=None, features=None, mask_shape=None):
    """Validates `(batch, time, features)` inputs and their mask; raises Keras-style errors."""
    name = type(layer).__name__
    shape = tuple(inputs_shape)
    if len(shape) != 3:
        raise ValueError(
            f"`{name}` expects inputs of shape (batch, time, features), i.e. rank 3. "
            f"Received: inputs.shape={shape}"
        )
    if inputs_dtype is not None and not (
        keras.backend.is_float_dtype(inputs_dtype) or keras.backend.is_int_dtype(inputs_dtype)
    ):
        raise TypeError(
            f"`{name}` expects numeric inputs (integers are used as numbers, as Keras does; embed token ids "
            f"with `keras.layers.Embedding` instead). Received: inputs.dtype={keras.backend.standardize_dtype(inputs_dtype)}"
        )
    if shape[1] == 0:
        raise ValueError(f"`{name}` needs at least one time step. Received: inputs.shape={shape}")
    if features is not None and shape[2] is not None and shape[2] != features:
        raise ValueError(
            f"`{name}` was built for inputs with {features} features (last axis) but received "
            f"{shape[2]}. Received: inputs.shape={shape}"
        )
    if mask_shape is not None:
        mask_shape = tuple(mask_shape)
        compatible = len(mask_shape) == 2 and all(
            m is None or s is None or m == s for m, s in zip(mask_shape, shape[:2])
        )
        if not compatible:
            raise ValueError(
                f"`{name}` expects a mask of shape (batch, time) = {shape[:2]} matching the "
                f"inputs. Received: mask.shape={mask_shape}, inputs.shape={shape}"
            )


def check_cell_call(cell, inputs, states=None):
    """A cell called by hand (one step): its input's feature size and its states' sizes.

    Checked on static shapes against what the cell was built for (its input kernel `U`, its
    `state_size`), so that a mistake is a Keras-style error instead of a size-incompatible matmul.
    """
    name = type(cell).__name__
    kernel = getattr(cell, "U", None)
    shape = tuple(inputs.shape)
    features = None if kernel is None else kernel.shape[0]
    if features is not None and shape and shape[-1] is not None and shape[-1] != features:
        raise ValueError(
            f"`{name}` was built for inputs with {features} features (last axis) but received "
            f"{shape[-1]}. Received: inputs.shape={shape}"
        )
    if states is None:
        return
    flat = list(states) if isinstance(states, (list, tuple)) else [states]
    for i, (state, size) in enumerate(zip(flat, state_sizes(cell))):
        received = tuple(state.shape)
        if isinstance(size, int) and received and received[-1] is not None and received[-1] != size:
            raise ValueError(
                f"`{name}` expects `states[{i}]` of shape (batch, {size}). Received: states[{i}].shape={received}"
            )


def sequence_output_mask(layer, mask, num_states):
    """What a recurrent layer's `compute_mask` returns: the input mask on the sequence output
    (reversed with `go_backwards`, as the outputs are), None without `return_sequences`, and
    None for each state."""
    output_mask = None
    if layer.return_sequences and mask is not None:
        output_mask = ops.flip(mask, axis=1) if layer.go_backwards else mask
    return [output_mask] + [None] * num_states if layer.return_state else output_mask


# ---------------------------------------------------------------------------------------------
# Activations and their derivatives, written in terms of the activation's output h = f(a), so
# that an explicit backward pass needs only the stored states.

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")


def validate_activation(activation, layer):
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"`{layer}(activation=...)` must be one of {list(ACTIVATIONS)}: the explicit "
            f"gradient needs the activation's derivative. Received: activation={activation!r}"
        )
    return activation


def activate(a, activation):
    """`f(a)` for one of `ACTIVATIONS`, in the dtype of `a`."""
    validate_activation(activation, "activate")
    if activation == "relu":
        return ops.relu(a)
    if activation == "linear":
        return a
    if activation == "sigmoid":
        h = ops.sigmoid(a)
        return h if h.dtype == a.dtype else 1.0 / (1.0 + ops.exp(-a))
    h = ops.tanh(a)
    if h.dtype != a.dtype:
        # Keras's type promotion computes `ops.tanh` of float64 in float32 on JAX. This form
        # of tanh keeps float64 and full precision: tanh|a| = -e / (e + 2), e = expm1(-2|a|).
        e = ops.expm1(-2.0 * ops.abs(a))
        h = ops.sign(a) * (-e) / (e + 2.0)
    return h


def activation_derivative(h, activation):
    """`f'(a)` written in terms of `h = f(a)`: `1 - h^2` (tanh), `[h > 0]` (relu),
    `h (1 - h)` (sigmoid), `1` (linear)."""
    validate_activation(activation, "activation_derivative")
    if activation == "tanh":
        return 1.0 - ops.square(h)
    if activation == "sigmoid":
        return h * (1.0 - h)
    if activation == "linear":
        return ops.ones_like(h)
    return ops.cast(ops.greater(h, 0), h.dtype)  # relu


# ---------------------------------------------------------------------------------------------
# Time-major helpers


def time_major(x):
    """`(batch, time, ...)` <-> `(time, batch, ...)`."""
    return ops.transpose(x, (1, 0) + tuple(range(2, len(x.shape))))


def flatten_time(x):
    """`(time, batch, n)` -> `(time * batch, n)`: a sum over t and the batch becomes one GEMM."""
    return ops.reshape(x, (-1, ops.shape(x)[-1]))


def is_dataset(x):
    """Whether `x` is a `tf.data.Dataset` (checked by class name: TensorFlow need not be loaded)."""
    return any(c.__name__ == "DatasetV2" and c.__module__.startswith("tensorflow.") for c in type(x).__mro__)


class OrderedDatasetFit:
    """Mixin for a `keras.Model`: `fit(dataset)` passes `shuffle=False` unless `shuffle` is given.

    A `tf.data.Dataset` orders itself (the zoo's pipelines take `shuffle` and `seed`), and for one
    Keras warns that its default `shuffle=True` "will be ignored" at every `fit`.
    """

    def fit(self, *args, **kwargs):
        x = args[0] if args else kwargs.get("x")
        if len(args) <= 8 and "shuffle" not in kwargs and is_dataset(x):  # shuffle is fit's 9th argument
            kwargs["shuffle"] = False
        return super().fit(*args, **kwargs)
