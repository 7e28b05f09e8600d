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
* `"subword"`: the words of the `"word"` rule, each cut into the vocabulary's pieces, longest
  piece first from the left (WordPiece's greedy rule). A piece that starts a word begins with
  `▁` (U+2581, SentencePiece's mark; the character itself in a text separates words), so
  `¿Dónde está?` may become `▁¿ ▁D ónde ▁está ▁?`; a character no piece covers is `<unk>`.
  The pieces come from the training text by byte-pair encoding (`build_vocabulary`: every
  character, then the most frequent adjacent pairs merged, Sennrich et al. 2016) up to
  `max_tokens`. Decoding joins the pieces, turns `▁` into a space and then spaces punctuation
  as `"word"` does. The cut is a TensorFlow loop over all words at once (one piece per word
  per iteration: the longest of the vocabulary's pieces at that position, through the same
  `StringLookup`), so it runs in `tf.data` and in the SavedModel's string signatures like the
  other rules.

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
import heapq
import warnings

import numpy as np

PAD, UNK, START, END = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<start>", "<end>")
SPLITS = ("character", "word", "subword")
WORD_START = "\u2581"  # "▁": a subword piece that begins a word starts with it

# Word split (RE2): Unicode separators -> space; each character that is not part of a word
# (letter, number, mark, apostrophe, hyphen) nor a space gets spaces around it.
_SEPARATORS = r"\p{Z}"
_PUNCTUATION = r"([^\pL\pN\pM'’\-\s])"
_NO_SPACE_BEFORE = r" ([.,!?;:%)\]}»])"
_NO_SPACE_AFTER = r"([¿¡(\[{«]) "
_SUBWORD_SEPARATORS = "[" + WORD_START + r"\s\v\x1c-\x1f\x85]"  # with \p{Z}: every `str.isspace` character
_SPLIT_FUNCTIONS = {}


def _check_split(name, split):
    if split not in SPLITS:
        raise ValueError(f"`{name}(split=...)` must be one of {list(SPLITS)}. Received: split={split!r}")


class Tokenizer:
    """Maps strings to ids and back, with one set of TensorFlow functions for every use.

    Args:
        vocabulary: list of str (a str is read as its characters), the tokens, order kept,
            duplicates dropped; the four special tokens are added in front.
        split: `"character"`, `"word"` or `"subword"` (see the module docstring).

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
               or (split == "character" and len(t) != 1)
               or (split == "subword" and (WORD_START in t[1:] or any(c.isspace() for c in t)))]
        if bad:
            kind = {"character": "single characters", "word": "non-empty strings",
                    "subword": f"non-empty strings without spaces, with {WORD_START!r} (U+2581) only first"}[split]
            raise ValueError(f"`Tokenizer(vocabulary=...)` takes {kind}, not the special tokens {list(SPECIAL_TOKENS)}. "
                             f"Received: {bad[:5]!r}")
        self.vocabulary = vocabulary
        self.split = split
        self.tokens = [*SPECIAL_TOKENS, *vocabulary]
        self._lookup = None
        self._functions = {}
        self._longest_piece = max(map(len, vocabulary), default=1)  # in characters

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
        if self.split == "subword":  # WORD_START and whatever `str.isspace` calls space separate
            text = tf.strings.unicode_transcode(text, "UTF-8", "UTF-8", errors="replace")  # bad bytes: U+FFFD
            text = tf.strings.regex_replace(text, _SUBWORD_SEPARATORS, " ")
        text = tf.strings.regex_replace(text, _SEPARATORS, " ")
        text = tf.strings.regex_replace(text, _PUNCTUATION, r" \1 ")
        words = tf.strings.split(text)
        if self.split == "word":
            return words
        return words.with_flat_values(self._cut_words(WORD_START + words.flat_values)).merge_dims(1, 2)

    def _cut_words(self, words):
        """`(n,)` words (each starting with WORD_START) -> ragged `(n, None)` pieces: from the
        left, the longest piece of the vocabulary, or one character if none starts there."""
        import tensorflow as tf

        if not self.vocabulary:
            return tf.strings.unicode_split(words, "UTF-8", errors="replace")
        num_chars = tf.strings.length(words, unit="UTF8_CHAR")
        sizes = tf.range(self._longest_piece, 0, -1, dtype=tf.int32)  # candidate lengths, longest first
        tiled = tf.tile(words[:, None], [1, self._longest_piece])
        lookup = self.lookup()

        def cut(i, position, taken):  # one piece of every unfinished word: its length in characters
            at = tf.tile(position[:, None], [1, self._longest_piece])
            candidates = tf.strings.substr(tiled, at, tf.broadcast_to(sizes, tf.shape(at)), unit="UTF8_CHAR")
            known = (lookup(candidates) >= len(SPECIAL_TOKENS)) & (at + sizes <= num_chars[:, None])
            longest = tf.where(tf.reduce_any(known, axis=1), tf.gather(sizes, tf.argmax(tf.cast(known, tf.int32), axis=1)), 1)
            size = tf.where(position < num_chars, longest, 0)
            return i + 1, position + size, taken.write(i, size)

        taken = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[None])
        _, _, taken = tf.while_loop(  # at least once, so that `taken` is never empty
            lambda i, position, _: (i == 0) | tf.reduce_any(position < num_chars),
            cut, (tf.constant(0), tf.zeros_like(num_chars), taken))
        sizes = tf.transpose(taken.stack())  # (n, iterations), 0 once a word is cut
        starts = tf.ragged.boolean_mask(tf.cumsum(sizes, axis=1, exclusive=True), sizes > 0)
        sizes = tf.ragged.boolean_mask(sizes, sizes > 0)
        pieces = tf.strings.substr(tf.repeat(words, sizes.row_lengths()), starts.flat_values, sizes.flat_values,
                                   unit="UTF8_CHAR")
        return sizes.with_flat_values(pieces)

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
        if self.split == "word":
            text = tf.strings.reduce_join(pieces, axis=1, separator=" ")
        else:  # subword: a word starts at each WORD_START
            text = tf.strings.reduce_join(pieces, axis=1)
            text = tf.strings.strip(tf.strings.regex_replace(text, WORD_START, " "))
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
        if self.split == "subword" and self.vocabulary:  # the pieces depend on the vocabulary
            function = self._function("split", self.split_text)
        else:  # one per rule, shared by every tokenizer (no vocabulary needed)
            if self.split not in _SPLIT_FUNCTIONS:
                _SPLIT_FUNCTIONS[self.split] = tf.function(self.split_text, input_signature=[tf.TensorSpec((None,), tf.string)])
            function = _SPLIT_FUNCTIONS[self.split]
        rows = []
        # In chunks: the subword cut loops until the word with the most pieces of a call is cut.
        for start in range(0, max(len(texts), 1), 1000):
            chunk = texts[start:start + 1000]
            pieces = function(tf.constant(chunk, tf.string) if chunk else tf.constant([], tf.string))
            rows += [[p.decode("utf-8") for p in row] for row in pieces.to_list()]
        return rows

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

    With `split="subword"` the tokens are learned by byte-pair encoding (Sennrich et al., 2016)
    on the words of the corpus, each marked with `WORD_START` in front: first every character
    seen at least `min_frequency` times (most frequent first), then, one at a time, the most
    frequent pair of adjacent pieces (ties: the smaller pair) merged into a new piece, while a
    pair is seen at least `max(2, min_frequency)` times, up to `max_tokens`. Every prefix a
    merge builds on is a piece, so the tokenizer's greedy cut finds the pieces.

    Args:
        texts: list of str, the training text (never the test text).
        split: `"character"`, `"word"` or `"subword"`.
        max_tokens: int or None, the most ids, the 4 special tokens included (as
            `keras.layers.TextVectorization(max_tokens=...)`): the `max_tokens - 4` most frequent
            tokens are kept (subword: the characters, then the merges); the others become `<unk>`.
            A subword vocabulary without a cap merges until no pair repeats: give one (e.g.
            4000-8000 for a corpus of 100k sentences).
        min_frequency: int >= 1, tokens seen fewer times become `<unk>`.

    Returns:
        A list of str.

    Example:

    >>> build_vocabulary(["a cat", "a dog", "a cat !"], split="word", max_tokens=6)
    ['a', 'cat']
    >>> build_vocabulary(["abba", "cab"], min_frequency=2)
    ['a', 'b']
    >>> pieces = build_vocabulary(["low lower lowest"] * 3, split="subword", max_tokens=16)
    >>> pieces
    ['▁', 'l', 'o', 'w', 'e', 'r', 's', 't', 'lo', 'low', '▁low', '▁lowe']
    >>> Tokenizer(pieces, split="subword").split_texts(["lowest slow"])
    [['▁lowe', 's', 't', '▁', 's', 'low']]
    """
    _check_split("build_vocabulary", split)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens <= len(SPECIAL_TOKENS)):
        raise ValueError(f"`build_vocabulary(max_tokens=...)` must be None or an integer > {len(SPECIAL_TOKENS)} "
                         f"(the special tokens count). Received: max_tokens={max_tokens!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"`build_vocabulary(min_frequency=...)` must be an integer >= 1. "
                         f"Received: min_frequency={min_frequency!r}")
    tokenizer = Tokenizer([], split=split)  # subword: no pieces, so every character is one
    counts = collections.Counter()
    texts = list(texts)
    for start in range(0, len(texts), 10000):
        for row in tokenizer.split_texts(texts[start:start + 10000]):
            if split == "subword":  # count words: WORD_START, then the characters
                counts.update(WORD_START + word for word in "".join(row).split(WORD_START)[1:])
            else:
                counts.update(t for t in row if t not in SPECIAL_TOKENS)
    limit = None if max_tokens is None else max_tokens - len(SPECIAL_TOKENS)
    if split == "subword":
        return _byte_pair_pieces(counts, limit, min_frequency)
    ranked = [token for token, count in sorted(counts.items(), key=lambda item: -item[1]) if count >= min_frequency]
    return ranked[:limit]


def _byte_pair_pieces(word_counts, limit, min_frequency):
    """The pieces of byte-pair encoding on `word_counts` (word -> count), at most `limit` of them."""
    characters = collections.Counter()
    for word, count in word_counts.items():
        for character in word:
            characters[character] += count
    pieces = [c for c, n in sorted(characters.items(), key=lambda item: -item[1]) if n >= min_frequency][:limit]
    known = set(pieces)
    words = [list(word) for word in word_counts]
    counts = list(word_counts.values())
    pair_counts = collections.Counter()
    holders = collections.defaultdict(set)  # pair -> indices of the words that may hold it
    for i, symbols in enumerate(words):
        for pair in zip(symbols, symbols[1:]):
            pair_counts[pair] += counts[i]
            holders[pair].add(i)
    heap = [(-n, pair) for pair, n in pair_counts.items()]
    heapq.heapify(heap)
    least = max(2, min_frequency)
    while heap and (limit is None or len(pieces) < limit):
        negative, pair = heapq.heappop(heap)
        if -negative != pair_counts.get(pair, 0):
            continue  # stale: the pair's count changed since (a fresh entry was pushed then)
        if -negative < least:
            break
        if pair[0] not in known or pair[1] not in known:
            continue  # a rare character (not a piece): never part of a merge
        merged = pair[0] + pair[1]
        if merged not in known:
            pieces.append(merged)
            known.add(merged)
        changed = set()
        for i in holders.pop(pair):
            symbols, count = words[i], counts[i]
            new, j = [], 0
            while j < len(symbols):
                if j + 1 < len(symbols) and (symbols[j], symbols[j + 1]) == pair:
                    new.append(merged)
                    j += 2
                else:
                    new.append(symbols[j])
                    j += 1
            if len(new) == len(symbols):
                continue  # this word no longer holds the pair
            for old_pair in zip(symbols, symbols[1:]):
                pair_counts[old_pair] -= count
                changed.add(old_pair)
            for new_pair in zip(new, new[1:]):
                pair_counts[new_pair] += count
                holders[new_pair].add(i)
                changed.add(new_pair)
            words[i] = new
        pair_counts.pop(pair, None)
        for p in changed - {pair}:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
    return pieces


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
