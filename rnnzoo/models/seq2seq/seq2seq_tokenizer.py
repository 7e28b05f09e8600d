"""The one tokenizer of a `Seq2Seq`: strings <-> ids, in TensorFlow ops, and vocabularies from a corpus.

A `Tokenizer` is a vocabulary (a list of tokens) and a split rule. Its ids follow the layout
of `keras.layers.StringLookup(mask_token="<pad>", oov_token="<unk>", vocabulary=["<start>",
"<end>", *tokens])`, which does the lookup:

    0 <pad>   1 <unk> (any token outside the vocabulary)   2 <start>   3 <end>   4.. tokens

Split rules:

* `"character"`: every Unicode character is a token (invalid UTF-8 bytes become U+FFFD);
* `"word"`: words, numbers and each punctuation mark are tokens. Unicode space separators
  (U+00A0 included) separate; a letter, number, combining mark, apostrophe or hyphen belongs to
  the word it is in (`don't`, `well-known`); any other character is a token of its own
  (`¿Dónde está?` -> `¿ Dónde está ?`). Decoding joins words with spaces and removes the space
  before `. , ! ? ; : % ) ] } »` and after `¿ ¡ ( [ { «`.

Every use goes through the same TensorFlow functions (there is no second, hand-kept
tokenizer): `Seq2Seq.encode_source` / `encode_targets` / `translate` call them eagerly,
`Seq2Seq.dataset` maps them over a `tf.data` pipeline, and `rnnzoo.export.export_translator`
traces them into the SavedModel's string signatures. `build_vocabulary` counts tokens split by
the same function. TensorFlow is imported only when a tokenizer first runs (so a `Seq2Seq` on
ids alone needs no TensorFlow).

A tokenized source is the tokens followed by `<end>`, so even the empty string is a valid,
non-empty input (`[<end>]`). A tokenized target for teacher forcing is `<start> tokens`
(decoder input) and `tokens <end>` (decoder output). Decoded outputs show `<unk>` where the
model produced it (it is not dropped).
"""

import collections
import warnings

import numpy as np

PAD, UNK, START, END = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<start>", "<end>")
SPLITS = ("character", "word")

# Word split (RE2): Unicode separators -> space; each character that is not part of a word
# (letter, number, mark, apostrophe, hyphen) nor a space gets spaces around it.
_SEPARATORS = r"\p{Z}"
_PUNCTUATION = r"([^\pL\pN\pM'’\-\s])"
_NO_SPACE_BEFORE = r" ([.,!?;:%)\]}»])"
_NO_SPACE_AFTER = r"([¿¡(\[{«]) "
_SPLIT_FUNCTIONS = {}


def _check_split(name, split):
    if split not in SPLITS:
        raise ValueError(f"`{name}(split=...)` must be one of {list(SPLITS)}. Received: split={split!r}")


class Tokenizer:
    """Maps strings to ids and back, with one set of TensorFlow functions for every use.

    Args:
        vocabulary: list of str (a str is read as its characters), the tokens, order kept,
            duplicates dropped; the four special tokens are added in front.
        split: `"character"` or `"word"` (see the module docstring).

    Example:

    >>> tokenizer = Tokenizer("abc")
    >>> tokenizer.encode(["ab", "c?"], max_tokens=3, pad_to=4)[0].tolist()
    [[4, 5, 3, 0], [6, 1, 3, 0]]
    >>> tokenizer.decode([[5, 4, 3, 6], [4, 1, 3, 0]])
    ['ba', 'a<unk>']
    >>> Tokenizer(["¿", "dónde", "está", "?"], split="word").split_texts(["¿Dónde está?"])
    [['¿', 'Dónde', 'está', '?']]
    """

    def __init__(self, vocabulary, split="character"):
        _check_split("Tokenizer", split)
        vocabulary = list(dict.fromkeys(vocabulary))
        bad = [t for t in vocabulary if not isinstance(t, str) or not t or t in SPECIAL_TOKENS
               or (split == "character" and len(t) != 1)]
        if bad:
            kind = "single characters" if split == "character" else "non-empty strings"
            raise ValueError(f"`Tokenizer(vocabulary=...)` takes {kind}, not the special tokens {list(SPECIAL_TOKENS)}. "
                             f"Received: {bad[:5]!r}")
        self.vocabulary = vocabulary
        self.split = split
        self.tokens = [*SPECIAL_TOKENS, *vocabulary]
        self._lookup = None
        self._functions = {}

    def __len__(self):
        return len(self.tokens)

    # -- TensorFlow functions (graph-safe: used eagerly, in tf.data and in the SavedModel) -------

    def lookup(self):
        """The `keras.layers.StringLookup` giving the ids (made on first use)."""
        if self._lookup is None:
            import keras
            import tensorflow as tf

            with tf.init_scope():  # the table is made eagerly, even when first asked for inside a traced function
                self._lookup = keras.layers.StringLookup(
                    vocabulary=["<start>", "<end>", *self.vocabulary], mask_token="<pad>", oov_token="<unk>",
                    num_oov_indices=1, output_mode="int", name="string_lookup",
                )
                self._lookup.build((None,))  # (an `ExportArchive` tracks built layers only)
        return self._lookup

    def split_text(self, text):
        """`(batch,)` tf.string -> ragged `(batch, None)` tf.string tokens."""
        import tensorflow as tf

        if self.split == "character":
            return tf.strings.unicode_split(text, "UTF-8", errors="replace")
        text = tf.strings.regex_replace(text, _SEPARATORS, " ")
        text = tf.strings.regex_replace(text, _PUNCTUATION, r" \1 ")
        return tf.strings.split(text)

    def token_ids(self, text, max_tokens=None):
        """`(batch,)` strings -> `(ids, lengths)`: ragged int32 ids of at most `max_tokens` tokens
        each, and every text's number of tokens before truncation `(batch,)` int32."""
        import tensorflow as tf

        pieces = self.split_text(text)
        lengths = tf.cast(pieces.row_lengths(), tf.int32)
        if max_tokens is not None:
            pieces = pieces[:, :max_tokens]
        # The lookup sees a dense 1-D tensor (the same on every Keras backend), not the ragged one.
        return pieces.with_flat_values(tf.cast(self.lookup()(pieces.flat_values), tf.int32)), lengths

    def source_ids(self, text, max_tokens):
        """`(batch,)` strings -> `(ragged ids + <end>, truncated (batch,) bool)`."""
        import tensorflow as tf

        ids, lengths = self.token_ids(text, max_tokens)
        end = tf.fill([tf.shape(text)[0], 1], END)
        return tf.concat([ids, tf.RaggedTensor.from_tensor(end)], axis=1), lengths > max_tokens

    def teacher_forcing_ids(self, text):
        """`(batch,)` strings -> ragged `(<start> tokens, tokens <end>)` and the token counts."""
        import tensorflow as tf

        ids, lengths = self.token_ids(text)
        batch = tf.shape(text)[0]
        start = tf.RaggedTensor.from_tensor(tf.fill([batch, 1], START))
        end = tf.RaggedTensor.from_tensor(tf.fill([batch, 1], END))
        return tf.concat([start, ids], axis=1), tf.concat([ids, end], axis=1), lengths

    def detokenize(self, tokens):
        """`(batch, time)` int ids -> `(batch,)` tf.string: tokens up to `<end>`, `<pad>`/`<start>`
        dropped, `<unk>` kept as the text `<unk>`."""
        import tensorflow as tf

        tokens = tf.convert_to_tensor(tokens)
        tokens = tf.clip_by_value(tf.cast(tokens, tf.int32), 0, len(self.tokens) - 1)
        before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(tokens, END), tf.int32), axis=1), 0)
        keep = before_end & tf.not_equal(tokens, PAD) & tf.not_equal(tokens, START)
        pieces = tf.ragged.boolean_mask(tf.gather(tf.constant(self.tokens), tokens), keep)
        if self.split == "character":
            return tf.strings.reduce_join(pieces, axis=1)
        text = tf.strings.reduce_join(pieces, axis=1, separator=" ")
        text = tf.strings.regex_replace(text, _NO_SPACE_BEFORE, r"\1")
        return tf.strings.regex_replace(text, _NO_SPACE_AFTER, r"\1")

    # -- NumPy in, NumPy out (the same functions, compiled once per shape option) ---------------

    def _function(self, key, build, ids=False):
        """`build` as a `tf.function` over `(batch,)` strings (or `(batch, time)` int32 ids): traced once."""
        if key not in self._functions:
            import tensorflow as tf

            spec = tf.TensorSpec((None, None), tf.int32) if ids else tf.TensorSpec((None,), tf.string)
            self._functions[key] = tf.function(build, input_signature=[spec])
        return self._functions[key]

    @staticmethod
    def _strings(texts, name):
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"`{name}` takes strings. Received: {text!r}")
        return texts

    def split_texts(self, texts):
        """Strings -> lists of tokens, as the tokenizer splits them."""
        import tensorflow as tf

        texts = self._strings(texts, "Tokenizer.split_texts")
        if self.split not in _SPLIT_FUNCTIONS:  # one per rule, shared by every tokenizer (no vocabulary needed)
            _SPLIT_FUNCTIONS[self.split] = tf.function(self.split_text, input_signature=[tf.TensorSpec((None,), tf.string)])
        pieces = _SPLIT_FUNCTIONS[self.split](tf.constant(texts, tf.string) if texts else tf.constant([], tf.string))
        return [[p.decode("utf-8") for p in row] for row in pieces.to_list()]

    def encode(self, texts, max_tokens, pad_to=None):
        """Strings -> `(ids (batch, pad_to or longest) int32, truncated (batch,) bool)`: at most
        `max_tokens` tokens of each text, then `<end>`, right-padded with 0."""
        import tensorflow as tf

        texts = self._strings(texts, "Tokenizer.encode")
        function = self._function(("source", max_tokens), lambda text: self.source_ids(text, max_tokens))
        ids, truncated = function(tf.constant(texts, tf.string) if texts else tf.constant([], tf.string))
        ids = ids.to_tensor(0, shape=[None, pad_to]) if pad_to else ids.to_tensor(0)
        return ids.numpy(), truncated.numpy()

    def teacher_forcing(self, texts, pad_to=None):
        """Strings -> `(inputs, outputs, lengths)`: `<start> tokens` and `tokens <end>` ids
        `(batch, pad_to or longest + 1)`, and each text's number of tokens."""
        import tensorflow as tf

        texts = self._strings(texts, "Tokenizer.teacher_forcing")
        inputs, outputs, lengths = self._function("targets", self.teacher_forcing_ids)(
            tf.constant(texts, tf.string) if texts else tf.constant([], tf.string))
        if pad_to is not None and len(texts) and int(tf.reduce_max(lengths)) + 1 > pad_to:
            pad_to = None  # the caller checks `lengths`; do not fail inside `to_tensor`
        shape = [None, pad_to] if pad_to else None
        return inputs.to_tensor(0, shape=shape).numpy(), outputs.to_tensor(0, shape=shape).numpy(), lengths.numpy()

    def decode(self, ids):
        """`(batch, length)` ids -> list of str (see `detokenize`)."""
        ids = np.asarray(ids, "int32")
        if ids.ndim != 2:
            raise ValueError(f"`Tokenizer.decode` takes ids of shape (batch, length). Received: shape={ids.shape}")
        if ids.shape[0] == 0:
            return []
        return [t.decode("utf-8") for t in self._function("decode", self.detokenize, ids=True)(ids).numpy()]


def build_vocabulary(texts, split="character", *, max_tokens=None, min_frequency=1):
    """The vocabulary of a corpus: its tokens, most frequent first, for a `Tokenizer`.

    Tokens are split by `Tokenizer(split=split)`'s own function. Ties keep the order of the
    tokens' first appearance, so the result is deterministic.

    Args:
        texts: list of str, the training text (never the test text).
        split: `"character"` or `"word"`.
        max_tokens: int or None, the most ids, the 4 special tokens included (as
            `keras.layers.TextVectorization(max_tokens=...)`): the `max_tokens - 4` most frequent
            tokens are kept; the others become `<unk>`.
        min_frequency: int >= 1, tokens seen fewer times become `<unk>`.

    Returns:
        A list of str.

    Example:

    >>> build_vocabulary(["a cat", "a dog", "a cat !"], split="word", max_tokens=6)
    ['a', 'cat']
    >>> build_vocabulary(["abba", "cab"], min_frequency=2)
    ['a', 'b']
    """
    _check_split("build_vocabulary", split)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens <= len(SPECIAL_TOKENS)):
        raise ValueError(f"`build_vocabulary(max_tokens=...)` must be None or an integer > {len(SPECIAL_TOKENS)} "
                         f"(the special tokens count). Received: max_tokens={max_tokens!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"`build_vocabulary(min_frequency=...)` must be an integer >= 1. "
                         f"Received: min_frequency={min_frequency!r}")
    tokenizer = Tokenizer([], split=split)
    counts = collections.Counter()
    texts = list(texts)
    for start in range(0, len(texts), 10000):
        for row in tokenizer.split_texts(texts[start:start + 10000]):
            counts.update(t for t in row if t not in SPECIAL_TOKENS)
    ranked = [token for token, count in sorted(counts.items(), key=lambda item: -item[1]) if count >= min_frequency]
    if max_tokens is not None:
        ranked = ranked[: max_tokens - len(SPECIAL_TOKENS)]
    return ranked


def length_limit(lengths, percentile=100.0):
    """The `percentile`-th percentile of `lengths` (rounded up, at least 1): a data-derived maximum."""
    if not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        raise ValueError(f"`length_limit(percentile=...)` must be a number in (0, 100]. Received: percentile={percentile!r}")
    lengths = np.asarray(list(lengths))
    if lengths.size == 0:
        return 1
    return max(1, int(np.ceil(np.percentile(lengths, percentile))))


def warn_or_raise_truncated(texts, truncated, max_tokens, truncate, unit):
    """The `UserWarning` (or `ValueError` with `truncate=False`) for sources cut to `max_tokens`."""
    too_long = [t for t, cut in zip(texts, truncated) if cut]
    if not too_long:
        return
    message = f"{len(too_long)} string(s) longer than the model's maximum of {max_tokens} {unit}; e.g. {too_long[0]!r}"
    if not truncate:
        raise ValueError(message + ". Shorten them or pass `truncate=True`.")
    warnings.warn(message + "; they were truncated.", UserWarning, stacklevel=3)
