"""Generating a sequence y conditioned on a fixed vector x (section 10.2.4, fig. 10.9)."""

import keras
from keras import ops

from rnnzoo.cells.output_recurrence_cell import greedy_one_hot
from rnnzoo.foundation import validate_units
from rnnzoo.layers.output_recurrent_rnn import OutputRecurrentRNN

LAYER_NAME = "output_recurrent_rnn"


def one_hot_to_ids(one_hot):
    """`(..., n)` one-hot -> `(...)` int32 ids, without `argmax` (Flex on TFLite)."""
    ids = ops.arange(ops.shape(one_hot)[-1], dtype=one_hot.dtype)
    return ops.cast(ops.sum(one_hot * ids, axis=-1), "int32")


@keras.saving.register_keras_serializable(package="rnnzoo")
class ContextOverTime(keras.layers.Layer):
    """Repeats a context vector at every step: `(batch, d)` -> `(batch, time, d)`.

    The number of steps is `time_steps` if set, else the length of the `like` call argument
    (`(batch, time, ...)`), so both the training graph (time from the labels) and the
    fixed-length generation graph stay free of shape-from-value ops (they export).

    Args:
        time_steps: int or None.
    """

    def __init__(self, time_steps=None, **kwargs):
        super().__init__(**kwargs)
        validate_units("time_steps", time_steps, "ContextOverTime", allow_none=True)
        self.time_steps = time_steps

    def call(self, context, like=None):
        context = ops.expand_dims(context, 1)  # (batch, 1, d)
        if self.time_steps is not None:
            return ops.repeat(context, self.time_steps, axis=1)
        if like is None:
            raise ValueError("`ContextOverTime(time_steps=None)` needs `like`, a (batch, time, ...) tensor. Received: like=None")
        zeros = ops.zeros_like(ops.cast(ops.expand_dims(like, -1) if len(like.shape) == 2 else like[..., :1],
                                        context.dtype))
        return zeros[..., :1] + context  # (batch, time, d)

    def compute_output_shape(self, context_shape, like_shape=None):
        time = self.time_steps if self.time_steps is not None else (like_shape[1] if like_shape else None)
        return (context_shape[0], time, context_shape[-1])

    def get_config(self):
        return {**super().get_config(), "time_steps": self.time_steps}


def _check_flags(context_as_input, context_as_initial_state):
    for name, value in (("context_as_input", context_as_input), ("context_as_initial_state", context_as_initial_state)):
        if not isinstance(value, bool):
            raise TypeError(f"`conditional_generator({name}=...)` must be a bool. Received: {name}={value!r}")
    if not (context_as_input or context_as_initial_state):
        raise ValueError(
            "`conditional_generator` must feed the context somewhere: set `context_as_input` or "
            "`context_as_initial_state` (or both). Received: context_as_input=False, context_as_initial_state=False"
        )


def conditional_generator(vocabulary_size, context_dim, units=32, *, context_as_input=True,
                          context_as_initial_state=False, name="conditional_generator", **layer_kwargs):
    """Builds the teacher-forced training model of a generator of `y(1..tau)` given a vector `x`.

    Fig. 10.9: an RNN with output recurrence (`h(t)` is fed `y(t-1)` and `h(t-1)`) and the
    fixed context `x` as an extra input at every step (`context_as_input`, `x(t) = x`), and/or
    as the initial state `h(0) = tanh(P x + p)` (`context_as_initial_state`). Train with
    `model.fit({"context": x, "labels": y}, y)` (teacher forcing) and generate with
    `conditional_generation_model(model, max_length)`.

    Args:
        vocabulary_size: int, number of symbols `y(t)` can take.
        context_dim: int, size of `x`.
        units: int, size of `h(t)`.
        context_as_input: bool, feed `x` at every step.
        context_as_initial_state: bool, set `h(0)` from `x`.
        name: str.
        **layer_kwargs: more `OutputRecurrentRNN` arguments.

    Returns:
        A functional `keras.Model`, `{"context": (batch, context_dim) float32, "labels":
        (batch, time) int32}` -> `(batch, time, vocabulary_size)` logits.

    Example:

    >>> model = conditional_generator(vocabulary_size=5, context_dim=3, units=8)
    >>> out = model({"context": np.zeros((2, 3), "float32"), "labels": np.zeros((2, 6), "int32")})
    >>> tuple(out.shape)
    (2, 6, 5)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.2.4, fig. 10.9.
    """
    _check_flags(context_as_input, context_as_initial_state)
    validate_units("context_dim", context_dim, "conditional_generator")
    context = keras.Input((context_dim,), name="context")
    labels = keras.Input((None,), dtype="int32", name="labels")
    logits = _generator_graph(context, labels, None, vocabulary_size, units, context_as_input,
                              context_as_initial_state, layer_kwargs)
    return keras.Model({"context": context, "labels": labels}, logits, name=name)


def _generator_graph(context, labels, max_length, vocabulary_size, units, context_as_input,
                     context_as_initial_state, layer_kwargs, layers=None):
    layers = layers or {}
    rnn = layers.get("rnn") or OutputRecurrentRNN(units, vocabulary_size, hidden_recurrence=True, name=LAYER_NAME,
                                                  **layer_kwargs)
    over_time = ContextOverTime(max_length, name="context_over_time" if max_length is None else "context_repeat")
    if context_as_input:
        x = over_time(context, like=labels) if max_length is None else over_time(context)
    else:  # no per-step input: a zero feature keeps `x(t)` well-defined (U multiplies zeros)
        x = over_time(keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros", trainable=False,
                                         name="no_input")(context), **({"like": labels} if max_length is None else {}))
    h0 = None
    if context_as_initial_state:
        initial = layers.get("initial_state") or keras.layers.Dense(units, activation="tanh", name="initial_state")
        h0 = initial(context)
    if labels is not None:
        return rnn(x, labels=labels, initial_state=h0)
    return rnn(x, initial_state=h0)


def conditional_generation_model(model, max_length, name=None):
    """The greedy generator of a `conditional_generator`: `x -> y(1..max_length)`, closed loop in the graph.

    Shares the weights of `model`. At each step the one-hot of `argmax o(t)` is fed back
    (greedy decoding: deterministic, exports to TFLite builtins with a dynamic batch).

    Args:
        model: a model built by `conditional_generator`.
        max_length: int, the number of steps generated.
        name: str or None.

    Returns:
        A functional `keras.Model`, `(batch, context_dim)` -> `{"tokens": (batch, max_length)
        int32, "logits": (batch, max_length, vocabulary_size)}`.

    Example:

    >>> model = conditional_generator(vocabulary_size=5, context_dim=3, units=8)
    >>> out = conditional_generation_model(model, max_length=4)(np.zeros((2, 3), "float32"))
    >>> tuple(out["tokens"].shape), tuple(out["logits"].shape)
    ((2, 4), (2, 4, 5))
    """
    validate_units("max_length", max_length, "conditional_generation_model")
    try:
        rnn = model.get_layer(LAYER_NAME)
    except ValueError:
        rnn = None
    if not isinstance(rnn, OutputRecurrentRNN):
        raise ValueError(
            "`conditional_generation_model` needs a model built by `conditional_generator`. "
            f"Received: model={model.name!r}"
        )
    names = {layer.name for layer in model.layers}
    context_as_initial_state = "initial_state" in names
    context_as_input = "no_input" not in names
    layers = {"rnn": rnn}
    if context_as_initial_state:
        layers["initial_state"] = model.get_layer("initial_state")
    context = keras.Input((model.input["context"].shape[-1],), name="context")
    logits = _generator_graph(context, None, max_length, rnn.num_classes, rnn.units, context_as_input,
                              context_as_initial_state, {}, layers)
    tokens = GreedyTokens(name="greedy_tokens")(logits)  # (batch, max_length)
    return keras.Model(context, {"tokens": tokens, "logits": logits}, name=name or f"{model.name}_generate")


@keras.saving.register_keras_serializable(package="rnnzoo")
class GreedyTokens(keras.layers.Layer):
    """Logits `(..., n)` -> ids `(...)` int32 of the largest logit (exportable `argmax`)."""

    def call(self, logits):
        return one_hot_to_ids(greedy_one_hot(logits))

    def compute_output_shape(self, logits_shape):
        return tuple(logits_shape[:-1])

    def compute_output_spec(self, logits):
        return keras.KerasTensor(logits.shape[:-1], dtype="int32")
