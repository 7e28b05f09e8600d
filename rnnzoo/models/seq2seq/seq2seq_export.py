"""Serving a `Seq2Seq`: a SavedModel with a string-to-string `translate` signature, and TFLite.

TensorFlow is imported here lazily; these functions need the TensorFlow backend (the string
ops of the `translate` signature cannot go through jax2tf).

Signatures of `export_translator`'s SavedModel (stock TensorFlow ops only, no custom ops):

* `translate`: `text` `(batch,)` string -> `translation` `(batch,)` string, `truncated`
  `(batch,)` bool. Tokenization is in the graph (`tf.strings.unicode_split` and a
  `keras.layers.StringLookup` table): characters outside the vocabulary become `<unk>`,
  invalid UTF-8 bytes become U+FFFD (then `<unk>`), the empty string is a valid input, and
  inputs longer than `max_source_length` characters are truncated (`truncated` says which).
* `greedy`: `source` `(batch, time)` int32 ids -> `tokens`, `scores`, `lengths`,
  `attention_weights` (`rnnzoo.decoding.greedy_search`).
* `beam_search`: the same ids -> the best beam's `tokens`, `scores`, `lengths`,
  `attention_weights`, and all beams' `beam_tokens`, `beam_scores`.
"""

import os

import keras

from rnnzoo.models.seq2seq.seq2seq_tokenizer import END, string_lookup


def _check_backend(name):
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"`{name}` needs the TensorFlow backend (string ops and TFLite conversion); set "
            f"KERAS_BACKEND=tensorflow and load the `.keras` file there. Received backend: {keras.backend.backend()}"
        )


def _check_path(path):
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise FileExistsError(f"Will not overwrite {path!r}; remove it or choose another path.")


def _greedy(model):
    def greedy(source):
        out = model.generate_ids(source, "greedy")
        return {name: out[name] for name in ("tokens", "scores", "lengths", "attention_weights")}

    return greedy


def _beam(model, beam_width, length_penalty):
    def beam(source):
        out = model.generate_ids(source, "beam", beam_width=beam_width, length_penalty=length_penalty)
        best = {name: out[name][:, 0] for name in ("tokens", "scores", "lengths", "attention_weights")}
        return {**best, "beam_tokens": out["tokens"], "beam_scores": out["scores"]}

    return beam


def tokenize_in_graph(model, lookup, text):
    """`(batch,)` strings -> `(ids (batch, time) int32, truncated (batch,) bool)`, as `encode_source`."""
    import tensorflow as tf

    characters = tf.strings.unicode_split(text, "UTF-8", errors="replace")  # ragged (batch, None)
    truncated = characters.row_lengths() > model.max_source_length
    characters = characters[:, : model.max_source_length]
    lengths = tf.cast(characters.row_lengths(), tf.int32)
    ids = tf.cast(lookup(characters).to_tensor(0), tf.int32)  # (batch, longest)
    ids = tf.concat([ids, tf.zeros_like(ids[:, :1])], axis=1)  # room for <end>
    ids = ids + END * tf.one_hot(lengths, tf.shape(ids)[1], dtype=tf.int32)
    return ids, truncated


def detokenize_in_graph(model, tokens):
    """`(batch, time)` target ids -> `(batch,)` strings, up to `<end>`, specials dropped."""
    import tensorflow as tf

    vocabulary = tf.constant(model.target_vocabulary.tokens)
    before_end = tf.equal(tf.cumsum(tf.cast(tf.equal(tokens, END), tf.int32), axis=1), 0)
    keep = tf.logical_and(before_end, tokens >= 4)
    characters = tf.where(keep, tf.gather(vocabulary, tokens), "")
    return tf.strings.reduce_join(characters, axis=1)


def export_translator(model, path, *, beam_width=4, length_penalty=0.6):
    """Writes a SavedModel with `translate` (strings), `greedy` and `beam_search` (ids) signatures.

    Args:
        model: a `Seq2Seq`.
        path: str, a new (or empty) directory.
        beam_width, length_penalty: the beam search of the `beam_search` signature.

    Returns:
        `path`. Check it with `saved_model_cli run --dir PATH --tag_set serve
        --signature_def translate --input_exprs 'text=["March 3rd, 2020"]'`.
    """
    _check_backend("export_translator")
    _check_path(path)
    import tensorflow as tf

    lookup = string_lookup(model.source_vocabulary)
    lookup.build((None,))
    archive = keras.export.ExportArchive()
    # The model is not `track`ed: its weights are found through the endpoints, and tracking a
    # subclassed model with dict inputs makes TensorFlow trace a default signature it cannot call.
    archive.track(lookup)

    def translate(text):
        ids, truncated = tokenize_in_graph(model, lookup, text)
        tokens = model.generate_ids(ids, "greedy")["tokens"]
        return {"translation": detokenize_in_graph(model, tokens), "truncated": truncated}

    ids_spec = [tf.TensorSpec((None, None), tf.int32, name="source")]
    archive.add_endpoint("translate", translate, input_signature=[tf.TensorSpec((None,), tf.string, name="text")])
    archive.add_endpoint("greedy", _greedy(model), input_signature=ids_spec)
    archive.add_endpoint("beam_search", _beam(model, beam_width, length_penalty), input_signature=ids_spec)
    archive.write_out(path, verbose=False)
    return path


def export_decoder_tflite(model, path, *, method="greedy", beam_width=4, length_penalty=0.6):
    """Writes a `.tflite` (builtin ops only) of `greedy` or `beam_search` decoding, ids to ids.

    The signature (named like the method: `greedy` or `beam_search`) takes `source`
    `(batch, time)` int32, both dynamic, and returns the outputs of the SavedModel signature
    of the same name.

    Returns:
        `path`.
    """
    _check_backend("export_decoder_tflite")
    import tempfile

    import tensorflow as tf

    from rnnzoo.export import to_tflite

    if method not in ("greedy", "beam"):
        raise ValueError(f"`export_decoder_tflite(method=...)` must be 'greedy' or 'beam'. Received: method={method!r}")
    name = "greedy" if method == "greedy" else "beam_search"
    fn = _greedy(model) if method == "greedy" else _beam(model, beam_width, length_penalty)
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name, fn, input_signature=[tf.TensorSpec((None, None), tf.int32, name="source")])
    with tempfile.TemporaryDirectory() as tmp:
        archive.write_out(os.path.join(tmp, "saved_model"), verbose=False)
        return to_tflite(os.path.join(tmp, "saved_model"), path)


def export_greedy_tflite(model, path):
    """`export_decoder_tflite(model, path, method="greedy")`."""
    return export_decoder_tflite(model, path, method="greedy")


def run_tflite_signature(path, signature, **inputs):
    """Runs a signature of a `.tflite` file in LiteRT; returns its outputs as a dict of arrays."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter
    runner = Interpreter(model_path=path).get_signature_runner(signature)
    return dict(runner(**inputs))
