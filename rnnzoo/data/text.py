"""Plain text for language models: a reader, a vocabulary builder, truncated-BPTT batches, a TFDS builder.

The path of the text:

    file or str  ->  token ids (the model's tokenizer, in tf.data)  ->  batch_size contiguous tracks
                 ->  windows of sequence_length steps: batch i+1, row r continues batch i, row r

so a `stateful` model (`rnnzoo.models.LanguageModel`) carries its state from one window to the
next, as truncated back-propagation through time does (the classic char-RNN layout). Targets
are the inputs shifted by one token.

* `read_text`, `split_text`: a UTF-8 file as a str; train / validation / test as contiguous parts.
* `build_vocabulary`: the tokens of a text by frequency, with `max_tokens` and `min_frequency`,
  counted by the model's own tokenizer (`rnnzoo.models.language_model.text_vectorization`).
* `language_model_dataset`: the `tf.data.Dataset` of `(ids, next_ids)` windows.
* `generated_text`: sentences of a small random grammar (non-ASCII words included), the task
  `rnnzoo train char_lm` trains on without a file.
* `RnnzooPlainText`: a TFDS builder reading the user's own text file from `manual_dir` (never
  downloading): `tfds.builder("rnnzoo_plain_text", data_dir=...).download_and_prepare(
  download_config=tfds.download.DownloadConfig(manual_dir=DIR))`.

TensorFlow (and tensorflow-datasets) is imported by this module: it is the `tf.data` side of
the library.
"""

import math
import os

import numpy as np
import tensorflow_datasets as tfds

SPLIT_FRACTIONS = (0.9, 0.05, 0.05)


def read_text(path):
    """The text of a UTF-8 file (line ends kept as they are).

    Raises:
        FileNotFoundError: no such file. ValueError: the file is not UTF-8 (names it and the offset).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No text file at {path!r}.")
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason}). Convert it to UTF-8 first. "
                         f"Received: {data[max(0, error.start - 10):error.start + 10]!r}") from None


def split_text(text, fractions=SPLIT_FRACTIONS):
    """Cuts `text` into contiguous train, validation and test parts (by characters, in order).

    Language-model splits are contiguous, not shuffled lines: the model is evaluated on text
    that follows the training text, as with the Penn Treebank's files.

    Args:
        text: str.
        fractions: three numbers > 0 summing to 1.

    Returns:
        `(train, validation, test)` strings that concatenate back to `text`.
    """
    if len(fractions) != 3 or any(not f > 0 for f in fractions) or not math.isclose(sum(fractions), 1.0):
        raise ValueError(f"`split_text(fractions=...)` must be three numbers > 0 summing to 1. "
                         f"Received: fractions={fractions!r}")
    first = int(len(text) * fractions[0])
    second = first + int(len(text) * fractions[1])
    return text[:first], text[first:second], text[second:]


def _strings(text):
    """`text` (a str, or a `tf.data.Dataset` of string pieces in order) as a dataset of pieces."""
    import tensorflow as tf

    if isinstance(text, str):
        return tf.data.Dataset.from_tensors(tf.constant(text))
    if isinstance(text, tf.data.Dataset):
        return text
    raise TypeError(f"Expected a str or a `tf.data.Dataset` of strings. Received: {type(text).__name__}")


def token_ids(text, tokenizer):
    """All the token ids of `text`, in order: `(num_tokens,)` int32 (NumPy).

    Args:
        text: a str, or a `tf.data.Dataset` of str pieces in order (e.g. the `"text"` of a
            `rnnzoo_plain_text` split); the pieces are tokenized one by one and concatenated
            (a piece boundary is not a token boundary for words: keep line ends in the pieces).
        tokenizer: the model's tokenizer (`LanguageModel.tokenizer`): strings `(batch,)` -> ids.
    """
    import tensorflow as tf

    pieces = _strings(text)
    ids = pieces.map(lambda piece: tf.cast(tokenizer(tf.reshape(piece, [1]))[0], tf.int32))
    chunks = [np.asarray(chunk) for chunk in ids.as_numpy_iterator()]
    return np.concatenate(chunks).astype("int32") if chunks else np.zeros((0,), "int32")


def build_vocabulary(text, split="character", *, max_tokens=None, min_frequency=1):
    """The tokens of `text`, most frequent first, as `LanguageModel(vocabulary=...)` takes them.

    Counted with the model's own tokenizer (`text_vectorization(split=split)`, adapted on the
    text), so the vocabulary and the model split text the same way.

    Args:
        text: str (or a `tf.data.Dataset` of str pieces), the training text.
        split: `"character"` or `"word"`.
        max_tokens: int or None, keep at most this many tokens (the most frequent; the others
            become `[UNK]`).
        min_frequency: int >= 1, keep only tokens seen at least this often.

    Returns:
        A list of str, ordered by decreasing count (ties: Keras's order, by token).

    Example:

    >>> build_vocabulary("abracadabra", min_frequency=2)
    ['a', 'r', 'b']
    """
    from rnnzoo.models.language_model import OOV_TOKEN, text_vectorization

    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise ValueError(f"`build_vocabulary(max_tokens=...)` must be an integer >= 1 or None. Received: max_tokens={max_tokens!r}")
    if isinstance(min_frequency, bool) or not isinstance(min_frequency, int) or min_frequency < 1:
        raise ValueError(f"`build_vocabulary(min_frequency=...)` must be an integer >= 1. "
                         f"Received: min_frequency={min_frequency!r}")
    counter = text_vectorization(None, split, name="vocabulary_counter")
    counter.adapt(_strings(text).batch(1))
    tokens = counter.get_vocabulary()  # ["", "[UNK]", most frequent first]
    counts = np.bincount(token_ids(text, counter), minlength=len(tokens))
    kept = [str(t) for t, n in zip(tokens[2:], counts[2:]) if n >= min_frequency and t != OOV_TOKEN]
    if not kept:
        raise ValueError(f"`build_vocabulary` found no token seen at least {min_frequency} times. "
                         f"Received: {int(counts[2:].sum())} tokens, min_frequency={min_frequency}")
    return kept[:max_tokens]


def truncated_bptt_windows(ids, batch_size, sequence_length):
    """`(inputs, targets)` windows laid out for a stateful model, as NumPy arrays.

    The `N - 1` (input, next token) pairs of `ids` are cut into `batch_size` contiguous tracks
    of `L = (N - 1) // batch_size` pairs (the last `(N - 1) % batch_size` pairs are dropped);
    window `i` holds steps `i * sequence_length ...` of every track, so row `r` of window
    `i + 1` continues row `r` of window `i`. The last window is shorter when `sequence_length`
    does not divide `L`.

    Returns:
        A list of `(inputs, targets)`, each `(batch_size, <= sequence_length)` int32.
    """
    ids = np.asarray(ids, "int32")
    for name, value in (("batch_size", batch_size), ("sequence_length", sequence_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`language_model_dataset({name}=...)` must be an integer >= 1. Received: {name}={value!r}")
    track_length = (len(ids) - 1) // batch_size
    if track_length < 1:
        raise ValueError(f"The text holds {len(ids)} tokens: too few for {batch_size} tracks of at least one "
                         f"(input, next token) pair; use a longer text or a smaller batch size. "
                         f"Received: batch_size={batch_size}")
    inputs = ids[:-1][:batch_size * track_length].reshape(batch_size, track_length)  # (batch, L)
    targets = ids[1:][:batch_size * track_length].reshape(batch_size, track_length)
    return [(inputs[:, start:start + sequence_length], targets[:, start:start + sequence_length])
            for start in range(0, track_length, sequence_length)]


def language_model_dataset(text, tokenizer, batch_size, sequence_length):
    """A `tf.data.Dataset` of truncated-BPTT windows of `text`, for a stateful language model.

    Args:
        text: a str, or a `tf.data.Dataset` of str pieces in order (e.g. a `rnnzoo_plain_text`
            split's `"text"`).
        tokenizer: the model's tokenizer (`LanguageModel.tokenizer`).
        batch_size: int, the number of tracks (the model's fixed batch size).
        sequence_length: int, steps per window (the truncation of BPTT).

    Returns:
        A dataset of `(ids, next_ids)`, each `(batch_size, time)` int32 with `time <=
        sequence_length` (`truncated_bptt_windows` gives the layout), in order, unshuffled:
        the element spec has a static batch (what a stateful model needs) and a dynamic time.
    """
    import tensorflow as tf

    windows = truncated_bptt_windows(token_ids(text, tokenizer), batch_size, sequence_length)
    full = [w for w in windows if w[0].shape[1] == sequence_length]
    spec = tf.TensorSpec((batch_size, None), tf.int32)
    parts = []
    if full:
        parts.append(tf.data.Dataset.from_tensor_slices((np.stack([x for x, _ in full]), np.stack([y for _, y in full]))))
    if len(full) < len(windows):  # the last, shorter window
        parts.append(tf.data.Dataset.from_tensors(windows[-1]))
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    dataset = dataset.map(lambda x, y: (tf.ensure_shape(x, spec.shape), tf.ensure_shape(y, spec.shape)))
    return dataset.prefetch(tf.data.AUTOTUNE)


# -- a generated text ---------------------------------------------------------------------------

_SUBJECTS = ["the cat", "a dog", "my friend", "the old man", "Zoë", "the señor", "our café owner", "the child"]
_VERBS = ["sees", "likes", "wants", "finds", "paints", "eats"]
_OBJECTS = ["the ball", "a crème brûlée", "the river", "a map of Zürich", "the red apple", "two birds"]
_PLACES = ["", " in the garden", " at night", " near the café", " every day"]


def generated_text(num_characters, seed=0):
    """About `num_characters` characters of sentences from a small random grammar, one per line.

    `"the señor finds a crème brûlée near the café.\\n"`: a subject, a verb, an object, an
    optional place, `.` or `!`. Deterministic given `seed`; 33 distinct characters, some
    outside ASCII. A character model learns the words quickly; which word comes next stays
    random, so the entropy does not fall to zero.

    Returns:
        A str of exactly `num_characters` characters.

    Example:

    >>> text = generated_text(200, seed=1)
    >>> len(text), text.count("\\n") >= 3
    (200, True)
    """
    if isinstance(num_characters, bool) or not isinstance(num_characters, int) or num_characters < 1:
        raise ValueError(f"`generated_text(num_characters=...)` must be an integer >= 1. "
                         f"Received: num_characters={num_characters!r}")
    rng = np.random.default_rng(seed)
    parts, length = [], 0
    while length < num_characters:
        sentence = (f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}{rng.choice(_PLACES)}"
                    f"{rng.choice(['.', '.', '!'])}\n")
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)[:num_characters]


# -- TFDS ---------------------------------------------------------------------------------------

MANUAL_FILES = ("train.txt", ("valid.txt", "validation.txt"), "test.txt")


def read_manual_dir(manual_dir):
    """`{"train", "validation", "test"} -> str` from a directory holding the user's text.

    Either `train.txt`, `valid.txt` (or `validation.txt`) and `test.txt` (the Penn Treebank
    layout), or exactly one file, cut by `split_text` (90 / 5 / 5, contiguous).
    """
    manual_dir = os.fspath(manual_dir)
    if not os.path.isdir(manual_dir):
        raise FileNotFoundError(f"No manual directory at {manual_dir!r}: put your text file there.")
    names = sorted(n for n in os.listdir(manual_dir) if os.path.isfile(os.path.join(manual_dir, n))
                   and not n.startswith("."))
    if "train.txt" in names:
        validation = next((n for n in MANUAL_FILES[1] if n in names), None)
        if validation is None or "test.txt" not in names:
            raise ValueError(f"{manual_dir!r} holds train.txt but not valid.txt (or validation.txt) and test.txt. "
                             f"Received: {names}")
        return {split: read_text(os.path.join(manual_dir, name))
                for split, name in (("train", "train.txt"), ("validation", validation), ("test", "test.txt"))}
    if len(names) != 1:
        raise ValueError(f"{manual_dir!r} must hold one text file, or train.txt, valid.txt and test.txt. "
                         f"Received: {names}")
    return dict(zip(("train", "validation", "test"), split_text(read_text(os.path.join(manual_dir, names[0])))))


class RnnzooPlainText(tfds.core.GeneratorBasedBuilder):
    """Your own plain text for a language model, read from `manual_dir` (never downloaded).

    One example per line of each split (`{"text": line}` with its line end), in the file's
    order (`disable_shuffling`), so the split's examples concatenate back to its text: feed
    `split.map(lambda e: e["text"])` to `language_model_dataset`.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put one UTF-8 text file in the manual directory (split 90/5/5 into train, validation and test, "
        "contiguously), or train.txt, valid.txt and test.txt (the Penn Treebank layout)."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            disable_shuffling=True,
            homepage="https://github.com/rnnzoo/rnnzoo",
        )

    def _split_generators(self, dl_manager):
        texts = read_manual_dir(dl_manager.manual_dir)
        return {split: self._generate_examples(text) for split, text in texts.items()}

    def _generate_examples(self, text):
        for number, line in enumerate(text.splitlines(keepends=True)):
            yield number, {"text": line}
