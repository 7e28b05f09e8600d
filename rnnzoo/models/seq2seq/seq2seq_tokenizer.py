"""Character vocabularies for sequence-to-sequence models, in Python and inside a TF graph.

Ids follow the layout of `keras.layers.StringLookup(mask_token="<pad>", oov_token="<unk>",
vocabulary=["<start>", "<end>", *characters])`, so the same ids come out of the NumPy
tokenizer here (training data) and of the in-graph tokenizer of the exported `translate`
signature:

    0 <pad>   1 <unk> (any character outside the vocabulary)   2 <start>   3 <end>   4.. characters

A tokenized source is the characters followed by `<end>`, so even the empty string is a
valid, non-empty input (`[<end>]`). A tokenized target for teacher forcing is
`<start> chars` (decoder input) and `chars <end>` (decoder output).
"""

import warnings

import numpy as np

PAD, UNK, START, END = 0, 1, 2, 3
SPECIAL_TOKENS = ("<pad>", "<unk>", "<start>", "<end>")


class CharacterVocabulary:
    """Maps strings to ids character by character, and back.

    Args:
        characters: str or list of single characters, the vocabulary (order kept,
            duplicates dropped).

    Example:

    >>> vocabulary = CharacterVocabulary("abc")
    >>> vocabulary.encode(["ab", "c?"], max_length=4).tolist()
    [[4, 5, 3, 0], [6, 1, 3, 0]]
    >>> vocabulary.decode([[5, 4, 3, 6]])
    ['ba']
    """

    def __init__(self, characters):
        characters = list(dict.fromkeys(characters))
        bad = [c for c in characters if not isinstance(c, str) or len(c) != 1]
        if bad:
            raise ValueError(f"`CharacterVocabulary(characters=...)` takes single characters. Received: {bad[:5]!r}")
        self.characters = characters
        self.tokens = list(SPECIAL_TOKENS) + characters
        self._ids = {c: i for i, c in enumerate(self.tokens) if i >= 4}

    def __len__(self):
        return len(self.tokens)

    def encode(self, texts, max_length, *, add_start=False, add_end=True, truncate=True):
        """Strings -> `(len(texts), max_length)` int32 ids, right-padded with 0.

        Characters outside the vocabulary become `<unk>` (1). A string whose ids (with
        `<start>`/`<end>`) would exceed `max_length` is truncated to fit, keeping `<end>`
        last, with a `UserWarning` (or a `ValueError` when `truncate=False`).
        """
        specials = int(add_start) + int(add_end)
        out = np.zeros((len(texts), max_length), "int32")
        too_long = []
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"`CharacterVocabulary.encode` takes strings. Received: {text!r}")
            ids = [self._ids.get(c, UNK) for c in text]
            if len(ids) + specials > max_length:
                too_long.append(text)
                ids = ids[: max_length - specials]
            ids = ([START] if add_start else []) + ids + ([END] if add_end else [])
            out[row, : len(ids)] = ids
        if too_long:
            message = (
                f"{len(too_long)} string(s) longer than the model's maximum of "
                f"{max_length - specials} characters; e.g. {too_long[0]!r}"
            )
            if not truncate:
                raise ValueError(message + ". Shorten them or pass `truncate=True`.")
            warnings.warn(message + "; they were truncated.", UserWarning, stacklevel=2)
        return out

    def decode(self, ids):
        """`(batch, length)` ids -> strings, stopping at `<end>` and dropping other specials."""
        texts = []
        for row in np.asarray(ids):
            chars = []
            for i in row.tolist():
                if i == END:
                    break
                if i >= 4:
                    chars.append(self.tokens[i])
            texts.append("".join(chars))
        return texts

    def teacher_forcing(self, targets, max_length):
        """Targets -> `(decoder_inputs, decoder_outputs)`: `<start> chars` and `chars <end>`."""
        full = self.encode(targets, max_length + 1, add_start=True, add_end=True, truncate=False)
        outputs = full[:, 1:].copy()
        inputs = full[:, :-1].copy()
        inputs[inputs == END] = PAD  # `<end>` is never fed to the decoder
        return inputs, outputs


def string_lookup(vocabulary):
    """A `keras.layers.StringLookup` giving the ids of `vocabulary` (for in-graph tokenization)."""
    import keras

    return keras.layers.StringLookup(
        vocabulary=["<start>", "<end>", *vocabulary.characters], mask_token="<pad>", oov_token="<unk>",
        num_oov_indices=1, output_mode="int",
    )
