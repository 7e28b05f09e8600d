"""Serving a `Seq2Seq`: a string-to-string `translate` SavedModel, and token decoders in every format.

`export_translator` (TensorFlow backend: its string ops cannot go through jax2tf) writes a
SavedModel with these signatures (stock TensorFlow ops only, no custom ops):

* `translate`: `text` `(batch,)` string -> `translation` `(batch,)` string, `truncated`
  `(batch,)` bool, greedy decoding. Tokenization is in the graph, by the model's own
  `Tokenizer` functions (the ones `Seq2Seq.translate` runs; lookup by a
  `keras.layers.StringLookup` table): tokens outside the vocabulary become `<unk>`, invalid
  UTF-8 bytes become U+FFFD (then `<unk>`), the empty string is a valid input, and inputs
  longer than `max_source_length` tokens are truncated (`truncated` says which); `<unk>` in an
  output is the text `<unk>`. No Unicode normalization (stock TensorFlow has no op for it):
  send text normalized as the training data was (`rnnzoo.data.parallel_text`: NFC).
* `translate_beam`: the same, decoded by beam search (`beam_width`, `length_penalty` fixed at
  export); also `scores` `(batch,)`, the best beam's length-normalized log-probability.
* `greedy`: `source` `(batch, time)` int32 ids -> `tokens`, `scores`, `lengths`,
  `attention_weights` (`rnnzoo.decoding.greedy_search`).
* `beam_search`: the same ids -> the best beam's `tokens`, `scores`, `lengths`,
  `attention_weights`, and all beams' `beam_tokens`, `beam_scores`.

`export_decoder` writes the `greedy` or `beam_search` token signature alone, from either
backend, as a SavedModel, TFLite (builtin ops only) or ONNX, with the vocabularies beside it
(`<path>.vocabulary.json`: the string signatures do not convert to TFLite or ONNX, so a client
maps tokens to ids with that file, as `Seq2Seq.encode_source` does; its `"split"` names the rule,
`rnnzoo.models.seq2seq.seq2seq_tokenizer` says what each rule does, subword's longest-piece cut
included).
"""

import os
import tempfile

import keras

from rnnzoo.export.converters import check_format, convert_on_tensorflow, to_onnx, to_tflite
from rnnzoo.export.saved_model import _check_target, _guarded, export_archive, write_saved_model
from rnnzoo.export.vocabulary import write_vocabulary_file
from rnnzoo.models.seq2seq.seq2seq_tokenizer import END, PAD, START, UNK

DECODER_FORMATS = ("saved_model", "tflite", "onnx")


def _check_backend(name):
    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(
            f"`{name}` needs the TensorFlow backend (string ops); set KERAS_BACKEND=tensorflow and load the "
            "`.keras` file there, or export the token signatures with `export_decoder`, which works on both "
            f"backends. Received backend: {keras.backend.backend()}"
        )


def _check_path(path, name="export_translator"):
    _check_target(path, name)


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


def export_translator(model, path, *, beam_width=4, length_penalty=0.6):
    """Writes a SavedModel with `translate`, `translate_beam` (strings), `greedy` and `beam_search` (ids).

    Args:
        model: a `Seq2Seq`.
        path: str, a new (or empty) directory.
        beam_width, length_penalty: the beam search of `translate_beam` and `beam_search`.

    Returns:
        `path`. Check it with `saved_model_cli run --dir PATH --tag_set serve
        --signature_def translate --input_exprs 'text=["March 3rd, 2020"]'`.
    """
    _check_backend("export_translator")
    _check_path(path)
    import tensorflow as tf

    source_tokenizer, target_tokenizer = model.source_tokenizer, model.target_tokenizer
    archive = export_archive()
    # The model is not `track`ed: its weights are found through the endpoints, and tracking a
    # subclassed model with dict inputs makes TensorFlow trace a default signature it cannot call.
    # The lookup table is a resource the SavedModel must hold.
    archive.track(source_tokenizer.lookup())

    def translate(text):
        ids, truncated = source_tokenizer.source_ids(text, model.max_source_length)
        tokens = model.generate_ids(ids.to_tensor(0), "greedy")["tokens"]
        return {"translation": target_tokenizer.detokenize(tokens), "truncated": truncated}

    def translate_beam(text):
        ids, truncated = source_tokenizer.source_ids(text, model.max_source_length)
        out = model.generate_ids(ids.to_tensor(0), "beam", beam_width=beam_width, length_penalty=length_penalty)
        return {"translation": target_tokenizer.detokenize(out["tokens"][:, 0]), "truncated": truncated,
                "scores": out["scores"][:, 0]}

    text_spec = [tf.TensorSpec((None,), tf.string, name="text")]
    ids_spec = [tf.TensorSpec((None, None), tf.int32, name="source")]
    archive.add_endpoint("translate", translate, input_signature=text_spec)
    archive.add_endpoint("translate_beam", translate_beam, input_signature=text_spec)
    archive.add_endpoint("greedy", _guarded(_greedy(model), ids_spec), input_signature=ids_spec)
    archive.add_endpoint("beam_search", _guarded(_beam(model, beam_width, length_penalty), ids_spec),
                         input_signature=ids_spec)
    archive.write_out(path, verbose=False)
    return path


def _ids_spec():
    import tensorflow as tf

    return [tf.TensorSpec((None, None), tf.int32, name="source")]


def decoder_signature(method):
    """The signature name of a decoding method: `"greedy"` or `"beam_search"`."""
    if method not in ("greedy", "beam"):
        raise ValueError(f"`export_decoder(method=...)` must be 'greedy' or 'beam'. Received: method={method!r}")
    return "greedy" if method == "greedy" else "beam_search"


def decoder_function(model, method="greedy", beam_width=4, length_penalty=0.6):
    """The function a decoder signature runs: `source` ids `(batch, time)` -> a dict of outputs."""
    decoder_signature(method)
    return _greedy(model) if method == "greedy" else _beam(model, beam_width, length_penalty)


def write_vocabulary(model, path):
    """Writes the source and target vocabularies (id -> token, specials first) as JSON; returns the path."""
    return write_vocabulary_file(path, {"source": model.source_tokenizer.tokens, "target": model.target_tokenizer.tokens,
                                        "split": model.split,
                                        "special_ids": {"pad": PAD, "unk": UNK, "start": START, "end": END},
                                        "max_source_length": model.max_source_length})


def export_decoder(model, path, *, method="greedy", format="saved_model", beam_width=4, length_penalty=0.6,
                   quantization=None):
    """Writes the `greedy` or `beam_search` token signature of a `Seq2Seq`, ids to ids, on either backend.

    The signature takes `source` `(batch, time)` int32 ids (batch and time dynamic; see
    `Seq2Seq.encode_source`) and returns what `export_translator`'s signature of the same name
    returns. The vocabularies are written beside it (`write_vocabulary`).

    Args:
        model: a `Seq2Seq`.
        path: str, a SavedModel directory, or the `.tflite` / `.onnx` file.
        method: `"greedy"` or `"beam"`.
        format: `"saved_model"`, `"tflite"` (builtin ops only) or `"onnx"` (both from the JAX
            backend converted in a TensorFlow process, see `to_tflite` and `to_onnx`).
        beam_width, length_penalty: the beam search's.
        quantization: as `to_tflite` (TFLite and ONNX).

    Returns:
        `path`.
    """
    signature = decoder_signature(method)
    check_format("export_decoder", format, DECODER_FORMATS, quantization)
    _check_target(path, "export_decoder")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if format != "saved_model" and keras.backend.backend() != "tensorflow":
        # From JAX, as `to_onnx(model)` and `to_tflite(model)`: the model on the TensorFlow backend
        # (tf2onnx cannot read StableHLO; TensorFlow's encoder loop runs in LiteRT in linear time).
        convert_on_tensorflow(model, "export_decoder", path, method=method, format=format, beam_width=beam_width,
                              length_penalty=length_penalty, quantization=quantization)
        write_vocabulary(model, path)
        return path
    endpoint = {signature: (decoder_function(model, method, beam_width, length_penalty), _ids_spec(), None)}
    if format == "saved_model":
        write_saved_model(path, model, endpoint, name="export_decoder")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            saved_model = write_saved_model(os.path.join(tmp, "saved_model"), model, endpoint, name="export_decoder")
            if format == "tflite":
                to_tflite(saved_model, path, quantization=quantization)
            else:
                to_onnx(saved_model, path, quantization=quantization, signature=signature)
    write_vocabulary(model, path)
    return path


def export_decoder_tflite(model, path, *, method="greedy", beam_width=4, length_penalty=0.6, quantization=None):
    """`export_decoder(model, path, format="tflite", ...)`: a `.tflite` of greedy or beam decoding."""
    return export_decoder(model, path, method=method, format="tflite", beam_width=beam_width,
                          length_penalty=length_penalty, quantization=quantization)


def export_greedy_tflite(model, path, *, quantization=None):
    """`export_decoder(model, path, method="greedy", format="tflite")`."""
    return export_decoder_tflite(model, path, method="greedy", quantization=quantization)
