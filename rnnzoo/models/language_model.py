"""A recurrent language model over characters or words (section 10.2.3), with its vocabulary inside.

`LanguageModel` models `P(y(1..tau)) = prod_t P(y(t) | y(1..t-1))` with the book's vanilla RNN:

    x(t) = E[y(t-1)],   h(t) = tanh(b + W h(t-1) + U x(t)),   o(t) = c + V h(t),   P(y(t) | ...) = softmax(o(t))

(`keras.layers.Embedding`, `rnnzoo.layers.VanillaRNN` trained with the explicit BPTT, a `Dense`
output layer). Long texts are trained with truncated BPTT: the RNN is `stateful`, so each window
of a batch starts from the state where the same row of the previous batch ended
(`rnnzoo.data.text.language_model_dataset` lays the text out that way), and `fit`/`evaluate`
reset that state when an epoch or an evaluation starts.

The tokenizer is part of the model: a `keras.layers.TextVectorization` (a split into characters
or at whitespace, then a `StringLookup` over `vocabulary`), saved in the `.keras` file, used by
the `tf.data` pipeline, by `encode`/`generate` and by the exported string signature. Ids: 0 is
padding (never a target, never sampled), 1 is the out-of-vocabulary token `[UNK]`, then the
vocabulary in order.

Sampling happens in the graph: `sample_ids` runs the prompt through the RNN, then draws one
token per step by the Gumbel-max trick from `softmax(o(t) / temperature)` (temperature 0:
the most probable token) and feeds it back, in one loop of `rnnzoo.layers.Recurrent`. The
randomness is an input (uniform noise), so the function is deterministic given its inputs and
exports to TFLite builtins; `generate` draws that noise with `keras.random.uniform(seed=...)`.
"""

import math

import keras
import numpy as np
from keras import ops

from rnnzoo.decoding.common import top1
from rnnzoo.foundation import validate_units
from rnnzoo.layers.recurrent import Recurrent, StepFunction
from rnnzoo.layers.vanilla_rnn import VanillaRNN

PAD, UNK = 0, 1
OOV_TOKEN = "[UNK]"
# The tokenizer's split for each `split` (`TextVectorization(split=...)`), and how tokens join back.
SPLITS = {"character": "character", "word": "whitespace"}
SEPARATORS = {"character": "", "word": " "}


def _check_split(split, name):
    if split not in SPLITS:
        raise ValueError(f"`{name}(split=...)` must be one of {list(SPLITS)}. Received: split={split!r}")
    return split


def text_vectorization(vocabulary=None, split="character", name="tokenizer"):
    """The language model's tokenizer: split into characters (or at whitespace), then look up ids.

    A `keras.layers.TextVectorization` with no standardization (the text is modelled as it is),
    `split="character"` (Unicode code points of UTF-8 text; invalid bytes become U+FFFD) or
    `"whitespace"` (`split="word"`), and integer output: 0 padding, 1 `[UNK]`, then
    `vocabulary`. Without `vocabulary` it is unadapted (see `rnnzoo.data.text.build_vocabulary`).

    Args:
        vocabulary: list of str or None.
        split: `"character"` or `"word"`.
        name: str.

    Returns:
        A `keras.layers.TextVectorization`; strings `(batch,)` -> ids `(batch, longest)`, padded with 0.
    """
    _check_split(split, "text_vectorization")
    return keras.layers.TextVectorization(standardize=None, split=SPLITS[split], output_mode="int",
                                          vocabulary=None if vocabulary is None else list(vocabulary), name=name)


# -- metrics -------------------------------------------------------------------------------------


class _TokenCrossEntropy(keras.metrics.Metric):
    """Sums `-log p(y(t))` (nats) and counts the tokens over everything seen (not a mean of batch means)."""

    def __init__(self, name, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total_nats", dtype="float32")
        self.count = self.add_variable(shape=(), initializer="zeros", name="tokens", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        nats = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)  # (batch, time)
        nats = ops.cast(nats, "float32")
        if sample_weight is None:
            weights = ops.ones_like(nats)
        else:
            weights = ops.broadcast_to(ops.cast(sample_weight, "float32"), ops.shape(nats))
        self.total.assign_add(ops.sum(nats * weights))
        self.count.assign_add(ops.sum(weights))

    def nats_per_token(self):
        return self.total / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


@keras.saving.register_keras_serializable(package="rnnzoo")
class BitsPerToken(_TokenCrossEntropy):
    """Cross-entropy in bits per token over the whole set: `sum_t -log2 p(y(t)) / number of tokens`.

    Bits per character for a character model (`name="bits_per_character"`): nats / ln 2, each
    token counted once whatever batch it is in. `y_pred` are logits.

    Example:

    >>> metric = BitsPerToken()
    >>> metric.update_state(np.array([[0, 1]]), np.zeros((1, 2, 4), "float32"))  # uniform over 4
    >>> round(float(metric.result()), 4)
    2.0
    """

    def __init__(self, name="bits_per_token", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return self.nats_per_token() / math.log(2.0)


@keras.saving.register_keras_serializable(package="rnnzoo")
class Perplexity(_TokenCrossEntropy):
    """Perplexity over the whole set: `exp(sum_t -log p(y(t)) / number of tokens)`. `y_pred` are logits.

    Example:

    >>> metric = Perplexity()
    >>> metric.update_state(np.array([[0, 1]]), np.zeros((1, 2, 4), "float32"))
    >>> round(float(metric.result()), 4)
    4.0
    """

    def __init__(self, name="perplexity", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def result(self):
        return ops.exp(self.nats_per_token())


class ResetStatesCallback(keras.callbacks.Callback):
    """Zeroes a stateful model's carried RNN state when an epoch and when an evaluation begins.

    Each epoch (and each evaluation) reads its text from the start, so the state carried from the
    previous window must not leak in. `LanguageModel.fit` and `evaluate` add it themselves.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_state()

    def on_test_begin(self, logs=None):
        self.model.reset_state()


# -- the model -------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="rnnzoo")
class LanguageModel(keras.Model):
    """A vanilla-RNN language model with its tokenizer inside (section 10.2.3).

    Args:
        vocabulary: list of str, the tokens (characters or words), without the padding and
            `[UNK]` tokens, which the model adds (ids 0 and 1); see
            `rnnzoo.data.text.build_vocabulary`.
        split: `"character"` or `"word"` (tokens split at whitespace, joined with one space).
        embedding_dim: int, size of `x(t)`.
        units: int, size of `h(t)`.
        stateful: bool, carry the RNN state from one batch to the next (truncated BPTT); the
            batch size is then fixed by the first batch the model sees (or `build`).
        gradient: `"bptt"` (the book's explicit back-propagation through time) or `"autodiff"`.
        recurrent_initializer: initializer of `W` (e.g. `rnnzoo.initializers.ScaledIdentity`).
        name: str. **kwargs: base `keras.Model` arguments.

    Call arguments:
        ids: `(batch, time)` int token ids.
        training: bool.

    Returns:
        `(batch, time, vocabulary_size)` logits of the next token, `vocabulary_size =
        len(vocabulary) + 2`.

    Example:

    >>> model = LanguageModel(list("abc"), units=8, embedding_dim=4, stateful=False)
    >>> model.encode(["abcab", "b"]).tolist()
    [[2, 3, 4, 2, 3], [3, 0, 0, 0, 0]]
    >>> tuple(model(model.encode(["abcab"])).shape)
    (1, 5, 5)
    >>> model.decode([[2, 3, 1, 0]])
    ['ab[UNK]']

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.2.3; Pascanu, Mikolov,
        Bengio, "On the difficulty of training recurrent neural networks" (2013), for gradient
        clipping (`keras.optimizers.Adam(global_clipnorm=...)`).
    """

    def __init__(self, vocabulary, split="character", embedding_dim=32, units=128, stateful=True, gradient="bptt",
                 recurrent_initializer="orthogonal", name="language_model", **kwargs):
        super().__init__(name=name, **kwargs)
        if isinstance(vocabulary, str) or not all(isinstance(t, str) and t for t in vocabulary):
            raise ValueError("`LanguageModel(vocabulary=...)` must be a list of non-empty strings (the tokens). "
                             f"Received: vocabulary={vocabulary!r:.200}")
        vocabulary = list(vocabulary)
        if not vocabulary or len(set(vocabulary)) != len(vocabulary) or OOV_TOKEN in vocabulary:
            raise ValueError(f"`LanguageModel(vocabulary=...)` must hold at least one token, each once, and not "
                             f"{OOV_TOKEN!r} (the model adds it). Received: {len(vocabulary)} tokens, "
                             f"{len(set(vocabulary))} distinct")
        self.vocabulary = vocabulary
        self.split = _check_split(split, "LanguageModel")
        self.embedding_dim = validate_units("embedding_dim", embedding_dim, "LanguageModel")
        self.units = validate_units("units", units, "LanguageModel")
        self.stateful = bool(stateful)
        self.gradient = gradient
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.vocabulary_size = len(vocabulary) + 2
        self.tokenizer = text_vectorization(vocabulary, split)
        # The tokenizer runs in tf.data and in the string methods, never inside the compiled
        # train/test/predict steps; without this, Keras would turn off XLA for the whole model.
        for layer in self.tokenizer._flatten_layers():  # the TextVectorization and its StringLookup
            layer.supports_jit = True
        self.embedding = keras.layers.Embedding(self.vocabulary_size, embedding_dim, name="embedding")
        self.rnn = VanillaRNN(units, return_sequences=True, stateful=self.stateful, gradient=gradient,
                              recurrent_initializer=self.recurrent_initializer, name="vanilla_rnn")
        # The same cell (the same weights) with the state as an explicit input and output, for
        # sampling and serving: any batch size, and the carried training state is left alone.
        self.explicit_state_rnn = Recurrent(self.rnn.cell, return_sequences=True, return_state=True,
                                            name="explicit_state_rnn")
        self.output_layer = keras.layers.Dense(self.vocabulary_size, name="logits")
        self._compiled = {}

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self.tokenizer.build((None,))  # strings (batch,): it has no weights, but export wants it built
        self.embedding.build(input_shape)
        sequences = (input_shape[0], input_shape[1] if len(input_shape) > 1 else None, self.embedding_dim)
        self.rnn.build(sequences)
        self.explicit_state_rnn.build(sequences)
        self.output_layer.build((None, None, self.units))
        self.built = True

    def call(self, ids, training=None):
        x = self.embedding(ids)  # (batch, time, embedding_dim)
        h = self.rnn(x, training=training)  # (batch, time, units), carried across batches if stateful
        return self.output_layer(h)  # (batch, time, vocabulary_size)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.vocabulary_size,)

    def reset_state(self):
        """Zeroes the carried state (start of a new text)."""
        self.rnn.reset_state()

    reset_states = reset_state

    # -- training ---------------------------------------------------------------------------

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Keras's `compile`; by default the softmax cross-entropy of the next token, bits per
        token (`bits_per_character` or `bits_per_word`) and perplexity."""
        if loss is None:
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if metrics is None:
            metrics = [BitsPerToken(name=f"bits_per_{self.split}"), Perplexity()]
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def compile_from_config(self, config):
        # Keras's own, restated because `compile` is overridden (Keras then refuses to guess).
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and hasattr(self, "optimizer"):
            self.optimizer.build(self.trainable_variables)

    def fit(self, *args, callbacks=None, shuffle=False, **kwargs):
        """Keras's `fit`; a stateful model's state is zeroed when each epoch and each validation begins.

        `shuffle` defaults to False: the windows of a text must come in order for the carried
        state to continue each row (and a `tf.data.Dataset` is never shuffled by `fit` anyway).
        """
        return super().fit(*args, callbacks=self._with_reset(callbacks), shuffle=shuffle, **kwargs)

    def evaluate(self, *args, callbacks=None, **kwargs):
        """Keras's `evaluate`, from a zeroed state for a stateful model."""
        if not isinstance(callbacks, keras.callbacks.CallbackList):  # inside `fit`: its callbacks reset
            callbacks = self._with_reset(callbacks)
        return super().evaluate(*args, callbacks=callbacks, **kwargs)

    def _with_reset(self, callbacks):
        callbacks = list(callbacks or [])
        if self.stateful and not any(isinstance(c, ResetStatesCallback) for c in callbacks):
            callbacks.append(ResetStatesCallback())
        return callbacks

    # -- explicit state: serving and sampling --------------------------------------------------

    def initial_state(self, batch_size):
        """`h(0)`: zeros `(batch_size, units)`."""
        return ops.zeros((batch_size, self.units), self.compute_dtype)

    def step(self, ids, state, mask=None):
        """Runs `ids` from `state` without touching the carried state: `(logits, final_state)`.

        Args:
            ids: `(batch, time)` int ids, `time >= 1`.
            state: `(batch, units)` float, `h` before the first step.
            mask: optional `(batch, time)` bool, True at valid steps (padded steps keep the state).

        Returns:
            `(logits (batch, time, vocabulary_size), state (batch, units))`, the state after the
            last (valid) step: feed it back with the next ids to continue the text.
        """
        x = self.embedding(ids)
        h, state = self.explicit_state_rnn(x, initial_state=[state], mask=mask)
        return self.output_layer(h), state

    def sample_ids(self, prompt_ids, noise, temperature=1.0):
        """Samples a continuation of each prompt in the graph (the function exported for serving).

        Args:
            prompt_ids: `(batch, time)` int ids, right-padded with 0; an all-padding row is an
                empty prompt (the first token is then sampled from `h(0) = 0`).
            noise: `(batch, num_steps, vocabulary_size)` uniform in (0, 1), the randomness.
            temperature: scalar >= 0; 0 takes the most probable token at each step.

        Returns:
            `(batch, num_steps)` int32 sampled ids (never 0).
        """
        prompt_ids = ops.cast(prompt_ids, "int32")
        batch = ops.shape(prompt_ids)[0]
        _, h = self.step(prompt_ids, self.initial_state(batch), mask=ops.not_equal(prompt_ids, PAD))
        logits = self.output_layer(h)  # (batch, vocabulary_size): the next token after the prompt
        temperature = ops.cast(temperature, "float32")
        never_padding = ops.convert_to_tensor(np.eye(1, self.vocabulary_size, 0, dtype="float32")[0] * -1e9)
        cell = self.rnn.cell

        def sample_step(uniform, states):  # uniform: (batch, vocabulary_size); states: [h, logits]
            h, logits = states
            token = sample_tokens(ops.cast(logits, "float32") + never_padding, uniform, temperature)  # (batch,)
            _, (h,) = cell(self.embedding(token), [h])
            return ops.cast(ops.expand_dims(token, -1), "float32"), [h, self.output_layer(h)]

        # rnnzoo's one loop over time: `Recurrent` over the step, the noise as its input sequence.
        sampler = Recurrent(StepFunction(sample_step, [self.units, self.vocabulary_size], 1), return_sequences=True)
        tokens = sampler(ops.cast(noise, "float32"), initial_state=[h, logits])  # (batch, num_steps, 1)
        return ops.cast(ops.round(tokens[..., 0]), "int32")  # ids are exact in float32 (< 2**24)

    # -- strings ------------------------------------------------------------------------------------

    def encode(self, texts):
        """Strings -> ids `(batch, longest)` int32, right-padded with 0, by the model's tokenizer."""
        if isinstance(texts, str):
            raise TypeError("`LanguageModel.encode` takes a list of strings. Received a single str; wrap it in a list.")
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), "int32")
        ids = self.tokenizer(np.asarray(texts, dtype=object).astype(str))  # (batch, longest)
        return np.asarray(ops.convert_to_numpy(ids), "int32")

    def decode(self, ids):
        """Ids `(batch, time)` -> strings: tokens joined (by a space for words), padding dropped."""
        tokens = ["", OOV_TOKEN, *self.vocabulary]
        separator = SEPARATORS[self.split]
        return [separator.join(tokens[i] for i in row if i != PAD) for row in np.asarray(ids).tolist()]

    def generate(self, prompts, num_steps=100, temperature=1.0, seed=None):
        """Continues each prompt by `num_steps` sampled tokens; returns the continuations (strings).

        The noise is `keras.random.uniform((batch, num_steps, vocabulary_size), seed=seed)`, so a
        fixed `seed` gives the same text (the exported `generate` signature draws the same noise
        on TensorFlow); the sampling runs compiled (`tf.function` / `jax.jit`).

        Args:
            prompts: list of str (an empty string is allowed).
            num_steps: int, tokens to generate.
            temperature: float >= 0 (0: the most probable token each step).
            seed: int or None.
        """
        validate_units("num_steps", num_steps, "LanguageModel.generate")
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature >= 0:
            raise ValueError(f"`LanguageModel.generate(temperature=...)` must be a number >= 0. "
                             f"Received: temperature={temperature!r}")
        ids = self.encode(prompts)
        ids = np.concatenate([ids, np.zeros((len(ids), 1), "int32")], axis=1)  # an empty prompt has a column too
        noise = keras.random.uniform((len(ids), num_steps, self.vocabulary_size), seed=seed)
        return self.decode(self.sample(ids, noise, temperature))

    def sample(self, prompt_ids, noise, temperature=1.0):
        """`sample_ids`, compiled (`tf.function` / `jax.jit`, traced once per shape), on arrays; returns NumPy ids."""
        if "sample" not in self._compiled:  # one trace for every batch, prompt length and number of steps
            self._compiled["sample"] = _compile(self, self.sample_ids, [
                ((None, None), "int32"), ((None, None, self.vocabulary_size), "float32"), ((), "float32")])
        tokens = self._compiled["sample"](np.asarray(prompt_ids, "int32"), noise, np.float32(temperature))
        return np.asarray(ops.convert_to_numpy(tokens))

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "vocabulary": list(self.vocabulary),
            "split": self.split,
            "embedding_dim": self.embedding_dim,
            "units": self.units,
            "stateful": self.stateful,
            "gradient": self.gradient,
            "recurrent_initializer": keras.saving.serialize_keras_object(self.recurrent_initializer),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        config["recurrent_initializer"] = keras.saving.deserialize_keras_object(config["recurrent_initializer"])
        return cls(**config)


def sample_tokens(logits, uniform_noise, temperature):
    """One sample of `softmax(logits / temperature)` per row, by the Gumbel-max trick.

    `argmax(logits / T + g)` with `g = -log(-log(u))`; at `T = 0`, `argmax(logits)`. The arg-max
    is `rnnzoo.decoding.common.top1` (exports to TFLite builtins; ties go to the lowest id).

    Args:
        logits: `(batch, n)` float32. uniform_noise: `(batch, n)` in (0, 1).
        temperature: scalar >= 0.

    Returns:
        `(batch,)` int32.
    """
    temperature = ops.cast(temperature, logits.dtype)
    positive = ops.greater(temperature, 0.0)
    safe = ops.where(positive, temperature, ops.ones_like(temperature))
    u = ops.clip(ops.cast(uniform_noise, logits.dtype), 1e-7, 1.0 - 1e-7)
    gumbel = -ops.log(-ops.log(u))
    return top1(ops.where(positive, logits / safe + gumbel, logits))


def _compile(model, fn, specs):
    """`fn(*arrays)` compiled for the backend, reading the model's current weights at each call.

    `specs`: `(shape, dtype)` of each argument; on TensorFlow one trace serves every shape
    (JAX compiles once per shape).
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        signature = [tf.TensorSpec(shape, dtype) for shape, dtype in specs]
        return tf.function(fn, input_signature=signature)
    if backend == "jax":
        import jax

        variables = model.variables

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)
        return lambda *args: jitted([v.value for v in variables], *args)
    return fn
