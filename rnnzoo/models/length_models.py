"""Three ways for a generator to decide the length of its sequence (section 10.2.3).

1. `eos_generator`: an end-of-sequence symbol among the outputs; generation stops when it is
   sampled.
2. `stop_unit_generator`: an extra Bernoulli output `sigmoid(s(t))` per step, trained with
   cross-entropy to say "this was the last step"; generation stops when it fires.
3. `length_prior_generator`: a model of the length `P(tau)`, sampled first; then `tau` steps are
   generated, each told how many steps remain.

All three are unconditional generators of token sequences (ids `1..vocabulary_size`, 0 is
padding) built on `OutputRecurrentRNN(hidden_recurrence=True)`: `y(t-1)` is fed back, trained
with teacher forcing. Each has a training model (fit it on `*_training_data`) and a generation
model that samples inside the graph for a fixed `max_length` steps, then masks the steps after
the end ("done" mask). The randomness is an *input* (uniform noise), so the generation graph is
deterministic given its inputs, exports to TFLite builtins, and matches Keras exactly.
"""

import keras
import numpy as np
from keras import ops

from rnnzoo.cells.output_recurrence_cell import sample_one_hot
from rnnzoo.foundation import validate_units
from rnnzoo.layers.output_recurrent_rnn import OutputRecurrentRNN
from rnnzoo.models.conditional_generator import one_hot_to_ids

EOS = 0


@keras.saving.register_keras_serializable(package="rnnzoo")
class StepFeatures(keras.layers.Layer):
    """Per-step inputs of the length models: `(batch, time, 1)`.

    Without `lengths`, a constant 1 (the unconditional generators have no input); with
    `lengths` `(batch,)`, the fraction of steps remaining, `(tau - t + 1) / max_length` for
    `t = 1..time` (`length_prior_generator`). `like` is any `(batch, time, ...)` tensor that
    gives the number of steps.

    Args:
        max_length: int, the scale of the remaining-steps feature.
    """

    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = validate_units("max_length", max_length, "StepFeatures")

    def call(self, like, lengths=None):
        like = ops.cast(like, self.compute_dtype)
        ones = ops.ones_like(ops.expand_dims(like, -1) if len(like.shape) == 2 else like[..., :1])  # (b, T, 1)
        if lengths is None:
            return ones
        # 1, 2, ..., T as a range, not a cumulative sum: on JAX a cumsum over a symbolic length
        # becomes a custom call the TFLite converter rejects.
        t = ops.reshape(ops.arange(1, ops.shape(ones)[1] + 1, dtype=self.compute_dtype), (1, -1, 1))
        remaining = ops.reshape(ops.cast(lengths, self.compute_dtype), (-1, 1, 1)) - t + 1.0
        return remaining / self.max_length

    def compute_output_shape(self, like_shape, lengths_shape=None):
        return (like_shape[0], like_shape[1], 1)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="rnnzoo")
class LengthPrior(keras.layers.Layer):
    """`P(tau)` over `tau = 1..max_length` as free logits: `like` `(batch, ...)` -> `(batch, max_length)`.

    Args:
        max_length: int, the longest length.
    """

    def __init__(self, max_length, **kwargs):
        super().__init__(**kwargs)
        self.max_length = validate_units("max_length", max_length, "LengthPrior")

    def build(self, like_shape):
        self.length_logits = self.add_weight(shape=(self.max_length,), name="length_logits", initializer="zeros")

    def call(self, like):
        zeros = ops.zeros_like(ops.cast(ops.reshape(like, (ops.shape(like)[0], -1))[:, :1], self.compute_dtype))
        return zeros + ops.cast(self.length_logits, self.compute_dtype)

    def compute_output_shape(self, like_shape):
        return (like_shape[0], self.max_length)

    def get_config(self):
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package="rnnzoo")
class EndMask(keras.layers.Layer):
    """Turns per-step end events into lengths and masked tokens (the "done" mask).

    Call arguments:
        tokens: `(batch, T)` int32 sampled ids.
        ends: `(batch, T)` float, 1 where the sequence ends.
    With `inclusive=True` the step that ends is part of the sequence (a stop unit firing after
    its token); with False it is not (an end-of-sequence symbol).

    Returns:
        `{"tokens": (batch, T) int32 with 0 after the end, "lengths": (batch,) int32}`.
    """

    def __init__(self, inclusive, **kwargs):
        super().__init__(**kwargs)
        self.inclusive = bool(inclusive)

    def call(self, tokens, ends):
        steps = ends.shape[1]
        # Number of end events strictly before step t, as a matmul with a constant triangular
        # matrix (a cumulative sum that exports everywhere): T is the fixed max_length.
        before = np.triu(np.ones((steps, steps), "float32"), k=1)
        ended = ops.matmul(ops.cast(ends, "float32"), ops.convert_to_tensor(before))
        if not self.inclusive:
            ended = ended + ops.cast(ends, "float32")
        valid = ops.cast(ops.equal(ended, 0.0), "int32")  # (batch, T)
        return {"tokens": tokens * valid, "lengths": ops.sum(valid, axis=1)}

    def compute_output_spec(self, tokens, ends):
        return {"tokens": keras.KerasTensor(tokens.shape, "int32"), "lengths": keras.KerasTensor(tokens.shape[:1], "int32")}

    def get_config(self):
        return {**super().get_config(), "inclusive": self.inclusive}


def _rnn(num_classes, units, layer_kwargs, return_hidden_states=False):
    return OutputRecurrentRNN(units, num_classes, hidden_recurrence=True, return_hidden_states=return_hidden_states,
                              name="output_recurrent_rnn", **layer_kwargs)


def _checked(builder, vocabulary_size, max_length, units):
    validate_units("vocabulary_size", vocabulary_size, builder)
    validate_units("max_length", max_length, builder)
    validate_units("units", units, builder)


def _layer(model, name, builder):
    try:
        return model.get_layer(name)
    except ValueError:
        raise ValueError(f"`{builder}` needs a model built by its training builder. Received: model={model.name!r}")


# 1. End-of-sequence symbol -------------------------------------------------------------------


def eos_generator(vocabulary_size, max_length, units=32, *, name="eos_generator", **layer_kwargs):
    """Training model of a generator that ends by emitting the end-of-sequence symbol (id 0).

    The softmax covers `vocabulary_size + 1` symbols, the tokens and EOS. Fit it with
    `eos_training_data`: `model.fit({"labels": labels}, labels, sample_weight=weights)`.

    Returns:
        A functional `keras.Model`, `{"labels": (batch, time) int32}` -> `(batch, time,
        vocabulary_size + 1)` logits (teacher forced).

    Example:

    >>> model = eos_generator(vocabulary_size=4, max_length=6, units=8)
    >>> tuple(model({"labels": np.zeros((2, 7), "int32")}).shape)
    (2, 7, 5)
    """
    _checked("eos_generator", vocabulary_size, max_length, units)
    labels = keras.Input((None,), dtype="int32", name="labels")
    x = StepFeatures(max_length, name="step_features")(labels)
    logits = _rnn(vocabulary_size + 1, units, layer_kwargs)(x, labels=labels)
    return keras.Model({"labels": labels}, logits, name=name)


def eos_training_data(tokens, lengths):
    """`(labels, sample_weight)` for `eos_generator`: the tokens, then EOS at step `tau + 1`.

    Both `(num_examples, max_length + 1)`; the weights are 1 up to and including the EOS.
    """
    tokens, lengths = np.asarray(tokens), np.asarray(lengths)
    labels = np.concatenate([tokens, np.zeros((len(tokens), 1), tokens.dtype)], axis=1)  # EOS = padding id 0
    weights = (np.arange(labels.shape[1])[None, :] <= lengths[:, None]).astype("float32")
    return labels.astype("int32"), weights


def eos_generation_model(model, name=None):
    """Samples from an `eos_generator` for `max_length + 1` steps, stopping at the first EOS.

    Returns:
        A functional `keras.Model` taking `noise` `(batch, max_length + 1, vocabulary_size + 1)`
        uniform in (0, 1) (the randomness; `numpy.random.uniform`), returning `{"tokens":
        (batch, max_length + 1) int32, "lengths": (batch,) int32}`.
    """
    rnn = _layer(model, "output_recurrent_rnn", "eos_generation_model")
    max_length = model.get_layer("step_features").max_length
    noise = keras.Input((max_length + 1, rnn.num_classes), name="noise")
    logits = rnn(StepFeatures(max_length, name="step_features")(noise), noise=noise)
    tokens = SampledTokens(name="sampled_tokens")(logits, noise)
    ends = IsEOS(name="is_eos")(tokens)
    return keras.Model(noise, EndMask(inclusive=False, name="end_mask")(tokens, ends), name=name or f"{model.name}_generate")


@keras.saving.register_keras_serializable(package="rnnzoo")
class SampledTokens(keras.layers.Layer):
    """`(logits, uniform noise)` -> the ids that `OutputRecurrentRNN` sampled and fed back (Gumbel-max)."""

    def call(self, logits, noise):
        return one_hot_to_ids(sample_one_hot(logits, ops.cast(noise, logits.dtype)))

    def compute_output_spec(self, logits, noise):
        return keras.KerasTensor(logits.shape[:-1], "int32")


@keras.saving.register_keras_serializable(package="rnnzoo")
class IsEOS(keras.layers.Layer):
    """Token ids -> 1.0 where the id is the end-of-sequence symbol 0."""

    def call(self, tokens):
        return ops.cast(ops.equal(tokens, EOS), "float32")

    def compute_output_spec(self, tokens):
        return keras.KerasTensor(tokens.shape, "float32")


# 2. A Bernoulli stop unit ----------------------------------------------------------------------


def stop_unit_generator(vocabulary_size, max_length, units=32, *, name="stop_unit_generator", **layer_kwargs):
    """Training model of a generator with an extra sigmoid output that says "stop after this step".

    `P(stop at t) = sigmoid(s(t))`, `s(t) = c_s + v_s h(t)`, trained with binary
    cross-entropy at every step. The softmax covers the `vocabulary_size` tokens (ids shifted
    to start at 0 inside the model). Fit it with `stop_unit_training_data`.

    Returns:
        A functional `keras.Model`, `{"labels": (batch, time) int32 ids 1..V}` ->
        `{"logits": (batch, time, V), "stop_logits": (batch, time, 1)}`.

    Example:

    >>> model = stop_unit_generator(vocabulary_size=4, max_length=6, units=8)
    >>> out = model({"labels": np.ones((2, 6), "int32")})
    >>> tuple(out["logits"].shape), tuple(out["stop_logits"].shape)
    ((2, 6, 4), (2, 6, 1))
    """
    _checked("stop_unit_generator", vocabulary_size, max_length, units)
    labels = keras.Input((None,), dtype="int32", name="labels")
    x = StepFeatures(max_length, name="step_features")(labels)
    shifted = ShiftIds(-1, name="shift_ids")(labels)
    logits, hidden = _rnn(vocabulary_size, units, layer_kwargs, return_hidden_states=True)(x, labels=shifted)
    stop_logits = keras.layers.Dense(1, name="stop")(hidden)
    return keras.Model({"labels": labels}, {"logits": logits, "stop_logits": stop_logits}, name=name)


@keras.saving.register_keras_serializable(package="rnnzoo")
class ShiftIds(keras.layers.Layer):
    """Adds `offset` to integer ids, clipping at 0 (padding stays 0)."""

    def __init__(self, offset, **kwargs):
        super().__init__(**kwargs)
        self.offset = int(offset)

    def call(self, ids):
        return ops.maximum(ids + self.offset, 0)

    def compute_output_spec(self, ids):
        return keras.KerasTensor(ids.shape, ids.dtype)

    def get_config(self):
        return {**super().get_config(), "offset": self.offset}


def stop_unit_training_data(tokens, lengths):
    """`(labels, targets, sample_weights)` for `stop_unit_generator.fit`.

    `targets = {"logits": tokens - 1, "stop_logits": 1.0 at the last step}`, weights 1 at the
    valid steps for both outputs.
    """
    tokens, lengths = np.asarray(tokens), np.asarray(lengths)
    steps = np.arange(tokens.shape[1])[None, :]
    weights = (steps < lengths[:, None]).astype("float32")
    stop = (steps == lengths[:, None] - 1).astype("float32")[..., None]
    targets = {"logits": np.maximum(tokens - 1, 0).astype("int32"), "stop_logits": stop}
    return tokens.astype("int32"), targets, {"logits": weights, "stop_logits": weights}


def stop_unit_generation_model(model, name=None):
    """Samples from a `stop_unit_generator`: a token per step, then a Bernoulli stop decision.

    Returns:
        A functional `keras.Model` taking `{"noise": (batch, max_length, V), "stop_noise":
        (batch, max_length)}` uniform in (0, 1), returning `{"tokens": (batch, max_length)
        int32 ids 1..V, 0 after the end, "lengths": (batch,) int32}`.
    """
    rnn = _layer(model, "output_recurrent_rnn", "stop_unit_generation_model")
    max_length = model.get_layer("step_features").max_length
    noise = keras.Input((max_length, rnn.num_classes), name="noise")
    stop_noise = keras.Input((max_length,), name="stop_noise")
    logits, hidden = rnn(StepFeatures(max_length, name="step_features")(noise), noise=noise)
    stop_logits = model.get_layer("stop")(hidden)
    tokens = ShiftIds(1, name="ids_from_one")(SampledTokens(name="sampled_tokens")(logits, noise))
    ends = BernoulliSample(name="stop_sample")(stop_logits, stop_noise)
    outputs = EndMask(inclusive=True, name="end_mask")(tokens, ends)
    return keras.Model({"noise": noise, "stop_noise": stop_noise}, outputs, name=name or f"{model.name}_generate")


@keras.saving.register_keras_serializable(package="rnnzoo")
class BernoulliSample(keras.layers.Layer):
    """`(logits (batch, T, 1), uniform (batch, T))` -> `(batch, T)` float, 1 with probability sigmoid(logits)."""

    def call(self, logits, noise):
        return ops.cast(ops.less(ops.cast(noise, logits.dtype), ops.sigmoid(ops.squeeze(logits, -1))), "float32")

    def compute_output_spec(self, logits, noise):
        return keras.KerasTensor(logits.shape[:-1], "float32")


# 3. A model of the length, sampled first -------------------------------------------------------


def length_prior_generator(vocabulary_size, max_length, units=32, *, name="length_prior_generator", **layer_kwargs):
    """Training model of a generator that samples its length `tau ~ P(tau)` first, then `tau` steps.

    `P(tau)` is a softmax over `tau = 1..max_length` (`LengthPrior`); every step of the
    token RNN is told the fraction of steps remaining, `(tau - t + 1) / max_length`. Fit it with
    `length_prior_training_data`.

    Returns:
        A functional `keras.Model`, `{"labels": (batch, max_length) int32 ids 1..V, "lengths":
        (batch,) int32}` -> `{"logits": (batch, max_length, V), "length_logits": (batch,
        max_length)}`.

    Example:

    >>> model = length_prior_generator(vocabulary_size=4, max_length=6, units=8)
    >>> out = model({"labels": np.ones((2, 6), "int32"), "lengths": np.array([3, 6], "int32")})
    >>> tuple(out["logits"].shape), tuple(out["length_logits"].shape)
    ((2, 6, 4), (2, 6))
    """
    _checked("length_prior_generator", vocabulary_size, max_length, units)
    labels = keras.Input((None,), dtype="int32", name="labels")
    lengths = keras.Input((), dtype="int32", name="lengths")
    x = StepFeatures(max_length, name="step_features")(labels, lengths=lengths)
    logits = _rnn(vocabulary_size, units, layer_kwargs)(x, labels=ShiftIds(-1, name="shift_ids")(labels))
    length_logits = LengthPrior(max_length, name="length_prior")(labels)
    return keras.Model({"labels": labels, "lengths": lengths}, {"logits": logits, "length_logits": length_logits},
                       name=name)


def length_prior_training_data(tokens, lengths):
    """`(inputs, targets, sample_weights)` for `length_prior_generator.fit`."""
    tokens, lengths = np.asarray(tokens), np.asarray(lengths)
    weights = (np.arange(tokens.shape[1])[None, :] < lengths[:, None]).astype("float32")
    inputs = {"labels": tokens.astype("int32"), "lengths": lengths.astype("int32")}
    targets = {"logits": np.maximum(tokens - 1, 0).astype("int32"), "length_logits": (lengths - 1).astype("int32")}
    return inputs, targets, {"logits": weights, "length_logits": np.ones(len(tokens), "float32")}


def length_prior_generation_model(model, name=None):
    """Samples `tau ~ P(tau)`, then `tau` tokens from a `length_prior_generator`.

    Returns:
        A functional `keras.Model` taking `{"length_noise": (batch, max_length), "noise":
        (batch, max_length, V)}` uniform in (0, 1), returning `{"tokens": (batch, max_length)
        int32, 0 after the end, "lengths": (batch,) int32}`.
    """
    rnn = _layer(model, "output_recurrent_rnn", "length_prior_generation_model")
    max_length = model.get_layer("step_features").max_length
    length_noise = keras.Input((max_length,), name="length_noise")
    noise = keras.Input((max_length, rnn.num_classes), name="noise")
    length_logits = model.get_layer("length_prior")(length_noise)
    lengths = ShiftIds(1, name="lengths_from_one")(SampledTokens(name="sampled_length")(length_logits, length_noise))
    logits = rnn(StepFeatures(max_length, name="step_features")(noise, lengths=lengths), noise=noise)
    tokens = ShiftIds(1, name="ids_from_one")(SampledTokens(name="sampled_tokens")(logits, noise))
    ends = LengthToEnds(name="length_to_ends")(lengths, tokens)
    outputs = EndMask(inclusive=True, name="end_mask")(tokens, ends)
    return keras.Model({"length_noise": length_noise, "noise": noise}, outputs, name=name or f"{model.name}_generate")


@keras.saving.register_keras_serializable(package="rnnzoo")
class LengthToEnds(keras.layers.Layer):
    """`(lengths (batch,), like (batch, T))` -> `(batch, T)` float, 1 at step `lengths` (1-based)."""

    def call(self, lengths, like):
        steps = ops.cumsum(ops.ones_like(ops.cast(like, "float32")), axis=1)  # 1..T
        return ops.cast(ops.equal(steps, ops.expand_dims(ops.cast(lengths, "float32"), 1)), "float32")

    def compute_output_spec(self, lengths, like):
        return keras.KerasTensor(like.shape, "float32")
