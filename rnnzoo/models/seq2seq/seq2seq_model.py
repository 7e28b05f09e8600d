"""An encoder-decoder over characters or words, with a fixed context (fig. 10.12) or attention (10.4).

    source tokens -> embedding -> bidirectional GRU encoder -> annotations h(1..n), summary C
                                                                  |
    <start> y(1) .. -> embedding -> AttentionDecoderCell (context: C, or attention over h) -> logits

Training is teacher forcing (`model.fit` on `{"source", "target_in"} -> target_out`) with a
masked sequence cross-entropy, optionally with scheduled sampling; decoding (greedy, beam
search) runs inside the graph (`rnnzoo.decoding`), and `rnnzoo.export.export_translator`
writes a SavedModel with string-to-string `translate` and `translate_beam` signatures. The
vocabularies are part of the model (its config, so the `.keras` file): one `Tokenizer` per side
does every string <-> id conversion (`rnnzoo.models.seq2seq.seq2seq_tokenizer`).
"""

import warnings

import keras
import numpy as np
from keras import ops

from rnnzoo import decoding
from rnnzoo.cells.attention_decoder_cell import AttentionDecoderCell
from rnnzoo.foundation import OrderedDatasetFit, validate_units
from rnnzoo.decoding.common import top1
from rnnzoo.layers.bidirectional import Bidirectional
from rnnzoo.layers.recurrent import Recurrent, StepFunction
from rnnzoo.models.seq2seq.seq2seq_tokenizer import (
    END, PAD, SPLITS, START, UNK, Tokenizer, build_vocabulary, length_limit, warn_or_raise_truncated,
)
from rnnzoo.models.tree_classifier import MaskedSparseCategoricalAccuracy


@keras.saving.register_keras_serializable(package="rnnzoo")
class MaskedSequenceCrossentropy(keras.losses.Loss):
    """Cross-entropy per target token, averaged over the real (non-padding) tokens of the batch.

    Args:
        pad_token: int, the label of padding (ignored).
        name: str.

    Call arguments:
        y_true: `(batch, time)` int labels, `pad_token` at padding.
        y_pred: `(batch, time, vocabulary)` logits.
    """

    def __init__(self, pad_token=PAD, name="masked_sequence_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.pad_token = pad_token

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, self.pad_token), "float32")
        losses = ops.sparse_categorical_crossentropy(ops.maximum(y_true, 0), ops.cast(y_pred, "float32"),
                                                     from_logits=True)
        return ops.sum(losses * valid) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self):
        return {**super().get_config(), "pad_token": self.pad_token}


def _check_vocabulary(name, value):
    if isinstance(value, str):
        value = list(value)
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"`Seq2Seq({name}=...)` must be a non-empty list of tokens (or a string of characters). "
                         f"Received: {name}={value!r}")
    return list(value)


@keras.saving.register_keras_serializable(package="rnnzoo")
class Seq2Seq(OrderedDatasetFit, keras.Model):
    """Encoder-decoder over characters, words or subwords: fixed context (`attention=False`) or Bahdanau attention.

    Args:
        source_vocabulary: list of str, the source tokens (a str is read as its characters);
            anything else is `<unk>`. `Seq2Seq.from_corpus` builds it from training text.
        target_vocabulary: list of str, the target tokens.
        split: `"character"` (default), `"word"` or `"subword"`, how both tokenizers split text
            (see `rnnzoo.models.seq2seq.seq2seq_tokenizer`).
        embedding_dim: int, size of the token embeddings.
        hidden_dim: int, size of each encoder direction's state and of the decoder state.
        attention: bool. True: the decoder attends over the annotations `h(j)` (Bahdanau et
            al.); False: it sees only the fixed context `C = [h_forward(n), h_backward(1)]`
            (fig. 10.12).
        attention_dim: int or None, hidden size of the alignment model (default `hidden_dim`).
        max_source_length: int, the most source tokens (longer inputs are truncated, with
            a warning in `translate`, silently in exported graphs, which report `truncated`).
        max_target_length: int, the most target tokens a decoder generates.
        scheduled_sampling_rate: float in [0, 1], during training the probability of feeding
            the model's own previous prediction instead of the true token (Bengio et al., 2015).
        seed: int, for scheduled sampling.
        **kwargs: base `keras.Model` arguments (`name`).

    Call arguments:
        inputs: dict with `"source"` `(batch, source_time)` int ids (tokens then `<end>`,
            padded with 0) and `"target_in"` `(batch, target_time)` int ids (`<start>` then
            tokens), as made by `encode_source` / `encode_targets` or `dataset`.

    Returns:
        `(batch, target_time, vocabulary)` logits of the next target token (teacher forcing).

    Example:

    >>> model = Seq2Seq("abc", "abc", embedding_dim=4, hidden_dim=8)
    >>> source = model.encode_source(["ab", "c"])
    >>> target_in, target_out = model.encode_targets(["ba", "c"])
    >>> tuple(model({"source": source, "target_in": target_in}).shape)
    (2, 13, 7)
    >>> translation = model.translate(["abc"])[0]  # a str (untrained: any characters, or `<unk>`)

    Reference:
        Goodfellow et al., *Deep Learning*, section 10.4; Bahdanau, Cho, Bengio, ICLR 2015.
    """

    def __init__(self, source_vocabulary, target_vocabulary, split="character", embedding_dim=32, hidden_dim=64,
                 attention=True, attention_dim=None, max_source_length=40, max_target_length=12,
                 scheduled_sampling_rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        source_vocabulary = _check_vocabulary("source_vocabulary", source_vocabulary)
        target_vocabulary = _check_vocabulary("target_vocabulary", target_vocabulary)
        if split not in SPLITS:
            raise ValueError(f"`Seq2Seq(split=...)` must be one of {list(SPLITS)}. Received: split={split!r}")
        validate_units("embedding_dim", embedding_dim, "Seq2Seq")
        validate_units("hidden_dim", hidden_dim, "Seq2Seq")
        validate_units("attention_dim", attention_dim, "Seq2Seq", allow_none=True)
        validate_units("max_source_length", max_source_length, "Seq2Seq")
        validate_units("max_target_length", max_target_length, "Seq2Seq")
        if not isinstance(scheduled_sampling_rate, (int, float)) or not 0 <= scheduled_sampling_rate <= 1:
            raise ValueError(
                "`Seq2Seq(scheduled_sampling_rate=...)` must be a number in [0, 1]. "
                f"Received: scheduled_sampling_rate={scheduled_sampling_rate!r}"
            )
        self.source_tokenizer = Tokenizer(source_vocabulary, split)  # validates the tokens
        self.target_tokenizer = Tokenizer(target_vocabulary, split)
        self.split = split
        self.embedding_dim = embedding_dim
        self.hidden_dim = hidden_dim
        self.attention = bool(attention)
        self.attention_dim = attention_dim
        self.max_source_length = max_source_length
        self.max_target_length = max_target_length
        self.scheduled_sampling_rate = float(scheduled_sampling_rate)
        self.seed = seed

        self.source_embedding = keras.layers.Embedding(len(self.source_tokenizer), embedding_dim,
                                                       name="source_embedding")
        self.target_embedding = keras.layers.Embedding(len(self.target_tokenizer), embedding_dim,
                                                       name="target_embedding")
        self.encoder = Bidirectional(
            Recurrent(keras.layers.GRUCell(hidden_dim), return_sequences=True, return_state=True, name="encoder"),
            name="bidirectional_encoder",
        )
        self.bridge = keras.layers.Dense(hidden_dim, activation="tanh", name="bridge")  # s(0) from C
        self.decoder_cell = AttentionDecoderCell(
            hidden_dim, len(self.target_tokenizer),
            attention_units=(attention_dim or hidden_dim) if self.attention else None, name="decoder_cell",
        )
        self.seed_generator = keras.random.SeedGenerator(seed) if self.scheduled_sampling_rate > 0 else None
        self._generate_functions = {}
        self.build(None)

    def build(self, input_shape=None):
        if self.built:
            return
        self.source_embedding.build((None, None))
        self.target_embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim))
        self.bridge.build((None, 2 * self.hidden_dim))
        values_dim = 2 * self.hidden_dim
        self.decoder_cell.build((None, self.embedding_dim), (None, None, values_dim))
        self.built = True

    # -- the network ---------------------------------------------------------------------

    def encode(self, source, training=None):
        """Source ids `(batch, source_time)` -> (decoder constants, initial decoder state)."""
        source = ops.cast(source, "int32")
        # Ids outside the vocabulary (from a caller of the ids signatures) are <unk>, not a
        # crash inside the graph.
        out_of_range = ops.logical_or(source < 0, source >= len(self.source_tokenizer))
        source = ops.where(out_of_range, UNK, source)
        mask = ops.not_equal(source, PAD)
        embedded = self.source_embedding(source)  # (batch, source_time, embedding_dim)
        annotations, forward_state, backward_state = self.encoder(embedded, mask=mask, training=training)
        summary = ops.concatenate([forward_state, backward_state], axis=-1)  # C, (batch, 2 * hidden_dim)
        initial_state = self.bridge(summary)
        if self.attention:
            constants = self.decoder_cell.memory(annotations, mask)
        else:  # fig. 10.12: the decoder sees only C, as annotations of length 1
            constants = self.decoder_cell.memory(ops.expand_dims(summary, 1))
        return constants, initial_state

    def decoder_step(self, tokens, state, constants):
        """`rnnzoo.decoding`'s step function: token ids `(batch,)` -> logits, state, attention."""
        return self.decoder_cell.step(self.target_embedding(tokens), state, constants)

    def call(self, inputs, training=None):
        if not isinstance(inputs, dict) or not {"source", "target_in"} <= set(inputs):
            raise ValueError(
                "`Seq2Seq` takes a dict with 'source' and 'target_in' token ids (see "
                f"`encode_source`, `encode_targets`). Received: {type(inputs).__name__}"
                + (f" with keys {sorted(inputs)}" if isinstance(inputs, dict) else "")
            )
        constants, state = self.encode(inputs["source"], training=training)
        target_in = ops.cast(inputs["target_in"], "int32")
        previous = self.target_embedding(target_in)  # y(t-1): (batch, target_time, embedding_dim)
        units = self.decoder_cell.units
        if not (training and self.scheduled_sampling_rate > 0):
            # Teacher forcing: the logits are not fed back, so the loop carries s(t) and emits
            # [s(t), c(t)], and the output projection of every step is one product after it.
            def step(y_t, states, constants):
                new_state, context, _ = self.decoder_cell.recurrent_step(y_t, states[0], constants)
                return ops.concatenate([new_state, context], axis=-1), [new_state]

            decoder = Recurrent(StepFunction(step, [units], units + 2 * self.hidden_dim, dtype=self.dtype_policy),
                                return_sequences=True, dtype=self.dtype_policy)
            outputs = decoder(previous, initial_state=[state], training=training, constants=constants)
            return self.decoder_cell.logits(outputs[..., :units], outputs[..., units:], previous)

        # Scheduled sampling: at each step after <start>, with probability `scheduled_sampling_rate`
        # the embedding of the previous step's arg-max replaces the true previous token.
        use_prediction = keras.random.uniform(ops.shape(target_in), seed=self.seed_generator)
        use_prediction = ops.less(use_prediction, self.scheduled_sampling_rate)
        first = ops.expand_dims(ops.arange(ops.shape(target_in)[1]) == 0, 0)
        use_prediction = ops.logical_and(use_prediction, ops.logical_not(first))  # <start> is always given
        sequence = ops.concatenate([previous, ops.expand_dims(ops.cast(use_prediction, previous.dtype), -1)], -1)
        vocabulary_size = len(self.target_tokenizer)

        def sampled_step(x_t, states, constants):
            state, previous_logits = states
            y_t, use = x_t[:, :-1], x_t[:, -1:]
            predicted = self.target_embedding(top1(ops.stop_gradient(previous_logits)))
            logits, state, _ = self.decoder_cell.step(use * predicted + (1.0 - use) * y_t, state, constants)
            return logits, [state, logits]

        decoder = Recurrent(
            StepFunction(sampled_step, [units, vocabulary_size], vocabulary_size, dtype=self.dtype_policy),
            return_sequences=True, dtype=self.dtype_policy,
        )
        initial_logits = ops.zeros((ops.shape(target_in)[0], vocabulary_size), self.compute_dtype)
        return decoder(sequence, initial_state=[state, initial_logits], training=training, constants=constants)

    def compile(self, optimizer="adam", loss=None, metrics=None, jit_compile=None, **kwargs):
        """Keras `compile` with this model's defaults: masked sequence cross-entropy, token accuracy.

        `jit_compile` defaults to True on TensorFlow (Keras's `"auto"` elsewhere): XLA compiles
        the whole training step, so the decoder's loop, with the attention inside it, runs as one
        native loop instead of one graph-executor dispatch per op per step (bench/seq2seq.py).
        XLA compiles once per batch shape: with `dataset`'s length buckets, up to two per bucket
        (full batches and the bucket's last one; `drop_remainder=True` keeps one). The default
        is False where Keras refuses XLA (`run_eagerly`, a `tf.distribute` strategy, and
        `tf.config.experimental.enable_op_determinism()`, which the command line enables for
        runs that resume bit for bit).
        """
        loss = MaskedSequenceCrossentropy() if loss is None else loss
        metrics = [MaskedSparseCategoricalAccuracy(ignore_class=PAD)] if metrics is None else metrics
        if jit_compile is None:
            jit_compile = "auto"  # Keras's rules: XLA neither eagerly nor under a tf.distribute strategy
            if keras.backend.backend() == "tensorflow" and not kwargs.get("run_eagerly"):
                import tensorflow as tf
                from tensorflow.python.framework.config import is_op_determinism_enabled  # what Keras checks

                if not tf.distribute.has_strategy() and getattr(self, "_distribute_strategy", None) is None:
                    jit_compile = not is_op_determinism_enabled()
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, jit_compile=jit_compile, **kwargs)

    def compile_from_config(self, config):
        # Keras's own, restated because `compile` is overridden (Keras then refuses to guess).
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built and hasattr(self, "optimizer"):
            self.optimizer.build(self.trainable_variables)

    # -- decoding inside the graph ---------------------------------------------------------

    def generate_ids(self, source, method="greedy", beam_width=4, length_penalty=0.6, max_length=None):
        """Decodes source ids in the graph (not compiled; see `generate` for the compiled call).

        Returns `rnnzoo.decoding.greedy_search`'s dict, or `beam_search`'s for `method="beam"`.
        """
        max_length = max_length or self.max_target_length + 1  # characters and <end>
        constants, state = self.encode(source)
        kwargs = dict(start_token=START, end_token=END, max_length=max_length, pad_token=PAD)
        if method == "greedy":
            return decoding.greedy_search(self.decoder_step, state, constants, **kwargs)
        if method == "beam":
            return decoding.beam_search(self.decoder_step, state, constants, beam_width=beam_width,
                                        length_penalty=length_penalty, **kwargs)
        raise ValueError(f"`Seq2Seq.generate(method=...)` must be 'greedy' or 'beam'. Received: method={method!r}")

    def generate(self, source, method="greedy", beam_width=4, length_penalty=0.6, max_length=None):
        """`generate_ids`, compiled (`tf.function` / `jax.jit`), on NumPy ids; returns NumPy arrays."""
        if method not in ("greedy", "beam"):
            raise ValueError(f"`Seq2Seq.generate(method=...)` must be 'greedy' or 'beam'. Received: method={method!r}")
        key = (method, beam_width, float(length_penalty), max_length)
        if key not in self._generate_functions:
            self._generate_functions[key] = _compile(
                self, lambda source: self.generate_ids(source, method, beam_width, length_penalty, max_length)
            )
        source = np.asarray(source, "int32")
        if source.ndim != 2 or source.shape[1] == 0:
            raise ValueError(f"`Seq2Seq.generate` takes source ids of shape (batch, time >= 1). Received: shape={source.shape}")
        outputs = self._generate_functions[key](source)
        return {name: np.asarray(ops.convert_to_numpy(value)) for name, value in outputs.items()}

    # -- strings -----------------------------------------------------------------------------

    @property
    def source_vocabulary(self):
        """The source tokens (list of str; ids from 4 on, after the special tokens)."""
        return self.source_tokenizer.vocabulary

    @property
    def target_vocabulary(self):
        """The target tokens (list of str)."""
        return self.target_tokenizer.vocabulary

    @property
    def _unit(self):
        return "characters" if self.split == "character" else "tokens"

    def encode_source(self, texts, truncate=True, pad_to_max_length=True):
        """Strings -> source ids `(batch, max_source_length + 1)` (tokens, `<end>`, padding).

        Unknown tokens become `<unk>`; longer strings are truncated to `max_source_length`
        tokens with a `UserWarning` (`ValueError` with `truncate=False`). The empty string is
        `[<end>]`, a valid input. `pad_to_max_length=False` pads to the batch's longest instead.
        """
        texts = self._texts(texts, "encode_source")
        ids, truncated = self.source_tokenizer.encode(
            texts, self.max_source_length, pad_to=self.max_source_length + 1 if pad_to_max_length else None)
        warn_or_raise_truncated(texts, truncated, self.max_source_length, truncate, self._unit)
        return ids

    def encode_targets(self, texts, pad_to_max_length=True):
        """Strings -> `(target_in, target_out)` `(batch, max_target_length + 1)` for teacher forcing.

        A target longer than `max_target_length` tokens is a `ValueError`: targets are never
        truncated (`dataset` drops such pairs instead).
        """
        texts = self._texts(texts, "encode_targets")
        target_in, target_out, lengths = self.target_tokenizer.teacher_forcing(
            texts, pad_to=self.max_target_length + 1 if pad_to_max_length else None)
        too_long = [t for t, n in zip(texts, lengths) if n > self.max_target_length]
        if too_long:
            raise ValueError(
                f"{len(too_long)} target(s) longer than the model's maximum of {self.max_target_length} {self._unit}; "
                f"e.g. {too_long[0]!r}. Targets are never truncated: drop those pairs, or build the model with a "
                f"larger `max_target_length`. Received: max_target_length={self.max_target_length}"
            )
        return target_in, target_out

    @staticmethod
    def _texts(texts, name):
        if isinstance(texts, str):
            raise TypeError(f"`Seq2Seq.{name}` takes a list of strings. Received a single str; wrap it in a list.")
        return list(texts)

    def dataset(self, pairs, batch_size=64, *, shuffle=True, seed=None, bucket_boundaries=None,
                drop_remainder=False):
        """A `tf.data` pipeline for `fit`: tokenized pairs, bucketed by length, padded per batch.

        Pairs are tokenized by the model's own tokenizers (in the pipeline); sources longer than
        `max_source_length` tokens are truncated and pairs whose target is longer than
        `max_target_length` tokens are dropped (`encode_targets` would refuse them). Each pair
        goes to the bucket of `max(source ids, target ids)`, and every batch is padded to its
        bucket's boundary minus one (so few shapes: the backends compile each once), not to the
        corpus's longest sentence.

        Args:
            pairs: `(sources, targets)` lists of str, or a `tf.data.Dataset` of `(source,
                target)` scalar strings (e.g. `rnnzoo.data.parallel_text.parallel_text_dataset`).
            batch_size: int, pairs per batch.
            shuffle: bool, shuffle the pairs (a buffer of 10,000) before bucketing.
            seed: int or None, the shuffle's seed.
            bucket_boundaries: increasing list of ints, or None for lengths growing by about
                1.5x from 8 up to the model's longest source or target (ids, `<end>` included).
            drop_remainder: bool, drop each bucket's last, short batch (every batch then has
                `batch_size` pairs, e.g. to split batches evenly across devices).

        Returns:
            A `tf.data.Dataset` of `({"source", "target_in"}, target_out)` int32 batches. For
            lists of pairs, or a dataset of known length, it knows its number of batches
            (`cardinality()`, counted by one pass over the pairs' lengths when it is made), so
            `fit` shows a progress bar in epoch 1 and does not warn that the input "ran out of
            data"; a dataset of unknown length (a generator, a file read lazily) is not read
            ahead. `fit` on it does not shuffle again (`shuffle` defaults to False for a
            dataset: the pipeline shuffles).
        """
        import tensorflow as tf

        self.source_tokenizer.lookup(), self.target_tokenizer.lookup()  # the tables, made eagerly
        if isinstance(pairs, tf.data.Dataset):
            dataset = pairs
        else:
            sources, targets = pairs
            dataset = tf.data.Dataset.from_tensor_slices((self._texts(sources, "dataset"),
                                                          self._texts(targets, "dataset")))
        longest = max(self.max_source_length, self.max_target_length) + 1
        if bucket_boundaries is None:
            bucket_boundaries, bound = [], 8
            while bound < longest:
                bucket_boundaries.append(bound)
                bound = int(bound * 1.5)
        bucket_boundaries = sorted({int(b) for b in bucket_boundaries if b <= longest} | {longest + 1})

        def tokenize(source, target):  # a chunk of pairs at once, then one pair per element again
            source_ids, _ = self.source_tokenizer.source_ids(source, self.max_source_length)
            target_in, target_out, lengths = self.target_tokenizer.teacher_forcing_ids(target)
            return source_ids, target_in, target_out, lengths

        def examples(dataset):
            dataset = dataset.batch(1024).map(tokenize, num_parallel_calls=tf.data.AUTOTUNE).unbatch()
            dataset = dataset.filter(lambda source, target_in, target_out, length: length <= self.max_target_length)
            return dataset.map(lambda source, target_in, target_out, length: (
                {"source": source, "target_in": target_in}, target_out))

        def width(x, y):  # what a pair is bucketed by
            return tf.maximum(tf.shape(x["source"])[0], tf.shape(x["target_in"])[0])

        num_batches = None
        if dataset.cardinality() >= 0:
            # One pass over the widths, before any shuffle (so the shuffle's first order is the
            # epoch's): a bucket's last batch may be short, so the number of batches is the sum
            # over buckets of ceil(pairs / batch_size), whatever the order.
            widths = np.fromiter(examples(dataset).map(width).as_numpy_iterator(), "int64")
            sizes = np.bincount(np.searchsorted(bucket_boundaries, widths, side="right"))
            num_batches = int(np.sum(sizes // batch_size if drop_remainder else -(-sizes // batch_size)))
        if shuffle:
            dataset = dataset.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
        dataset = examples(dataset).bucket_by_sequence_length(
            width, bucket_boundaries, [batch_size] * (len(bucket_boundaries) + 1), pad_to_bucket_boundary=True,
            drop_remainder=drop_remainder,
        )
        if num_batches is not None:
            dataset = dataset.apply(tf.data.experimental.assert_cardinality(num_batches))
        return dataset.prefetch(tf.data.AUTOTUNE)

    @classmethod
    def from_corpus(cls, sources, targets, split="character", *, max_tokens=None, min_frequency=1,
                    length_percentile=100.0, **kwargs):
        """A `Seq2Seq` whose vocabularies and length limits come from training pairs.

        Args:
            sources, targets: lists of str, the training pairs (not the test pairs).
            split: `"character"`, `"word"` or `"subword"` (byte-pair pieces learned from the
                pairs: give `max_tokens`).
            max_tokens: int or None, the most ids per side, the 4 special tokens included
                (`build_vocabulary`).
            min_frequency: int, tokens seen fewer times are `<unk>`.
            length_percentile: float in (0, 100], `max_source_length` and `max_target_length`
                are this percentile of the training lengths in tokens (100: the longest, so
                nothing is truncated or dropped; 99: the longest 1% of sources are truncated
                and of targets dropped by `dataset`). Explicit `max_source_length` /
                `max_target_length` in `kwargs` win.
            **kwargs: the other `Seq2Seq` arguments.
        """
        sources, targets = cls._texts(sources, "from_corpus"), cls._texts(targets, "from_corpus")
        source_vocabulary = build_vocabulary(sources, split, max_tokens=max_tokens, min_frequency=min_frequency)
        target_vocabulary = build_vocabulary(targets, split, max_tokens=max_tokens, min_frequency=min_frequency)
        for name, vocabulary in (("sources", source_vocabulary), ("targets", target_vocabulary)):
            if not vocabulary:
                raise ValueError(f"`Seq2Seq.from_corpus`: the {name} hold no token seen at least min_frequency times. "
                                 f"Received: {len(sources)} pairs, min_frequency={min_frequency}")
        for key, vocabulary, texts in (("max_source_length", source_vocabulary, sources),
                                       ("max_target_length", target_vocabulary, targets)):
            if key not in kwargs:  # lengths in the model's own tokens (subword pieces depend on the vocabulary)
                kwargs[key] = length_limit(map(len, Tokenizer(vocabulary, split).split_texts(texts)), length_percentile)
        return cls(source_vocabulary, target_vocabulary, split, **kwargs)

    def translate(self, texts, method="greedy", beam_width=4, length_penalty=0.6, return_details=False):
        """Strings -> strings, decoding in the graph.

        Args:
            texts: list of str.
            method: `"greedy"` or `"beam"`.
            beam_width, length_penalty: for beam search (GNMT's alpha).
            return_details: bool, also return the `generate` dict (tokens, scores, attention
                weights) and the source ids.

        Returns:
            A list of str (the best beam for beam search; `<unk>` where the model produced
            it); with `return_details`, `(strings, details)`. No texts give `[]` (`([], {})`
            with `return_details`).
        """
        texts = self._texts(texts, "translate")
        if len(texts) == 0:  # an empty batch, as Keras's `predict` answers one
            return ([], {}) if return_details else []
        source = self.encode_source(texts, pad_to_max_length=False)
        details = self.generate(source, method, beam_width, length_penalty)
        tokens = details["tokens"] if method == "greedy" else details["tokens"][:, 0]
        strings = self.target_tokenizer.decode(tokens)
        if return_details:
            return strings, {**details, "source": source}
        return strings

    def get_config(self):
        config = {
            "source_vocabulary": list(self.source_vocabulary),
            "target_vocabulary": list(self.target_vocabulary),
            "split": self.split,
            "embedding_dim": self.embedding_dim,
            "hidden_dim": self.hidden_dim,
            "attention": self.attention,
            "attention_dim": self.attention_dim,
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "scheduled_sampling_rate": self.scheduled_sampling_rate,
            "seed": self.seed,
        }
        return {"name": self.name, "trainable": self.trainable, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config.pop("trainable", None)
        # Models saved before the word vocabularies named them `source_characters` / `target_characters`.
        for side in ("source", "target"):
            if f"{side}_characters" in config:
                config[f"{side}_vocabulary"] = list(config.pop(f"{side}_characters"))
        return cls(**config)


def _compile(model, fn):
    """`fn(source)` compiled for the backend, reading the model's current weights at each call."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, reduce_retracing=True)
    if backend == "jax":
        import jax

        variables = model.variables

        def pure(values, source):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(source)

        jitted = jax.jit(pure)
        return lambda source: jitted([v.value for v in variables], source)
    return fn


def exact_match(model, sources, targets, method="greedy", batch_size=500, **kwargs):
    """The fraction of `sources` translated exactly into `targets` (and the predictions)."""
    predictions = []
    for start in range(0, len(sources), batch_size):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            predictions += model.translate(sources[start:start + batch_size], method=method, **kwargs)
    accuracy = float(np.mean([p == t for p, t in zip(predictions, targets)]))
    return accuracy, predictions
