"""Serving a `LanguageModel`: a prompt-to-text SavedModel, and numeric signatures for LiteRT.

`export_language_model(model, path, format=...)` writes:

* `"saved_model"`: on the TensorFlow backend, a SavedModel with three signatures (stock
  TensorFlow ops; the tokenizer's lookup table is saved with it):
  - `generate`: `prompt` `(batch,)` string, `num_steps` int32 scalar, `temperature` float32
    scalar, `seed` int32 scalar -> `text` `(batch,)` string (the continuation), `tokens`
    `(batch, num_steps)` int32. The noise is `tf.random.stateless_uniform(seed=[seed, 0])`,
    what `keras.random.uniform(seed=seed)` draws on TensorFlow, so `LanguageModel.generate`
    with the same seed returns the same text.
  - `step` and `sample`: the numeric signatures below.
  On the JAX backend the string signature cannot be traced (string ops), so the SavedModel
  holds `step` and `sample` only.
* `"tflite"`: `step` and `sample` (builtin ops only, batch and time dynamic), from either backend
  (from JAX, the model is converted on the TensorFlow backend in a new process, as `to_tflite`).

The numeric signatures:

* `step`: `ids` `(batch, time)` int32, `state` `(batch, units)` float32 -> `logits`
  `(batch, time, vocabulary_size)`, `next_state`: run the RNN from a state and get the next state, so
  a client samples token by token, keeping the state (zeros to start).
* `sample`: `prompt_ids` `(batch, time)` int32 (right-padded with 0), `noise` `(batch,
  num_steps, vocabulary_size)` uniform in (0, 1), `temperature` float32 scalar -> `tokens`
  `(batch, num_steps)` int32: `LanguageModel.sample_ids`, the whole sampling loop in the graph.

The vocabulary is written beside the artifact (`<path>.vocabulary.json`: `tokens`, id = index,
with padding `""` at 0 and `[UNK]` at 1, the split and the separator that joins tokens), so a
client of the numeric signatures maps text to ids and back as the model's tokenizer does.
"""

import os
import tempfile

import keras

from rnnzoo.export.converters import check_format, convert_on_tensorflow, to_tflite
from rnnzoo.export.saved_model import _check_target, _guarded, export_archive, write_saved_model
from rnnzoo.export.vocabulary import write_vocabulary_file
from rnnzoo.gradient_registry import load_saved_model
from rnnzoo.models.language_model import OOV_TOKEN, PAD, SEPARATORS, UNK

LANGUAGE_MODEL_FORMATS = ("saved_model", "tflite")


def _specs(model):
    import tensorflow as tf

    step = [tf.TensorSpec((None, None), tf.int32, name="ids"), tf.TensorSpec((None, model.units), tf.float32, name="state")]
    sample = [tf.TensorSpec((None, None), tf.int32, name="prompt_ids"),
              tf.TensorSpec((None, None, model.vocabulary_size), tf.float32, name="noise"),
              tf.TensorSpec((), tf.float32, name="temperature")]
    return step, sample


def numeric_endpoints(model):
    """`{signature: (fn, input_signature, polymorphic_shapes)}` of `step` and `sample` (see the module)."""
    step_spec, sample_spec = _specs(model)

    def step(ids, state):
        logits, new_state = model.step(ids, state)
        return {"logits": logits, "next_state": new_state}

    def sample(prompt_ids, noise, temperature):
        return {"tokens": model.sample_ids(prompt_ids, noise, temperature)}

    return {
        "step": (step, step_spec, ["(batch, time)", f"(batch, {model.units})"]),
        "sample": (sample, sample_spec, ["(batch, prompt_time)", f"(batch, steps, {model.vocabulary_size})", "()"]),
    }


def generate_in_graph(model, prompt, num_steps, temperature, seed):
    """The `generate` signature's function (TensorFlow): strings in, sampled continuations out."""
    import tensorflow as tf

    ids = tf.cast(model.tokenizer(prompt), tf.int32)  # (batch, longest), the model's own tokenizer
    batch = tf.shape(ids)[0]
    ids = tf.concat([ids, tf.zeros([batch, 1], tf.int32)], axis=1)  # as `LanguageModel.generate`
    noise = tf.random.stateless_uniform(tf.stack([batch, num_steps, model.vocabulary_size]),
                                        seed=tf.stack([seed, 0]), dtype=tf.float32)
    tokens = model.sample_ids(ids, noise, temperature)
    vocabulary = tf.constant(["", OOV_TOKEN, *model.vocabulary])
    text = tf.strings.reduce_join(tf.gather(vocabulary, tokens), axis=1, separator=SEPARATORS[model.split])
    return {"text": text, "tokens": tokens}


def write_vocabulary(model, path):
    """Writes `<path>.vocabulary.json` (tokens by id, split, separator, special ids); returns its path."""
    return write_vocabulary_file(path, {"tokens": ["", OOV_TOKEN, *model.vocabulary], "split": model.split,
                                        "separator": SEPARATORS[model.split], "special_ids": {"pad": PAD, "unk": UNK},
                                        "units": model.units})


def _write_string_saved_model(model, path):
    import tensorflow as tf

    archive = export_archive()
    archive.track(model.tokenizer)  # its lookup table
    archive.add_endpoint(
        "generate", lambda prompt, num_steps, temperature, seed: generate_in_graph(model, prompt, num_steps,
                                                                                   temperature, seed),
        input_signature=[tf.TensorSpec((None,), tf.string, name="prompt"), tf.TensorSpec((), tf.int32, name="num_steps"),
                         tf.TensorSpec((), tf.float32, name="temperature"), tf.TensorSpec((), tf.int32, name="seed")],
    )
    for signature, (fn, spec, _) in numeric_endpoints(model).items():
        archive.add_endpoint(signature, _guarded(fn, spec), input_signature=spec)
    archive.write_out(path, verbose=False)
    return path


def export_language_model(model, path, *, format="saved_model", quantization=None):
    """Exports a `LanguageModel` for serving (see the module docstring for the signatures).

    Args:
        model: a built `LanguageModel` (stateful or not: the exported signatures take the state
            as an input and never touch the carried training state).
        path: str, a new (or empty) SavedModel directory, or the `.tflite` file.
        format: `"saved_model"` or `"tflite"`.
        quantization: as `rnnzoo.export.to_tflite` (TFLite only).

    Returns:
        `path`; the vocabulary is at `<path without extension>.vocabulary.json`.
    """
    check_format("export_language_model", format, LANGUAGE_MODEL_FORMATS, quantization)
    if not getattr(model, "built", False):
        raise ValueError("`export_language_model` needs a built model: call it on ids once, or `model.build((batch, "
                         "None))`. Received: an unbuilt model")
    _check_target(path, "export_language_model")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if format == "saved_model":
        if keras.backend.backend() == "tensorflow":
            _write_string_saved_model(model, path)
        else:
            write_saved_model(path, model, numeric_endpoints(model), name="export_language_model")
    elif keras.backend.backend() != "tensorflow":
        # As `to_tflite(model)` on JAX: converted on the TensorFlow backend, whose loop runs in
        # LiteRT in time linear in the length (jax2tf's `lax.scan` would not).
        convert_on_tensorflow(model, "export_language_model", path, format="tflite", quantization=quantization)
    else:  # from a SavedModel of the numeric signatures only (no lookup table to carry into TFLite)
        with tempfile.TemporaryDirectory() as tmp:
            saved_model = write_saved_model(os.path.join(tmp, "saved_model"), model, numeric_endpoints(model),
                                            name="export_language_model")
            to_tflite(saved_model, path, quantization=quantization)
    write_vocabulary(model, path)
    return path


def language_model_parity(model, path, ids_batches, *, num_steps=12, temperature=0.8, seed=0):
    """Runs an exported language model and compares it with Keras.

    For each `(batch, time)` int32 batch of `ids_batches`: `step` from a random state (logits
    and state: the normwise relative error, as `rnnzoo.export.parity_report` measures it) and
    `sample` with fixed noise (the same tokens). A SavedModel written on TensorFlow also runs
    `generate` on the decoded batch and must return `LanguageModel.generate`'s text.

    Returns:
        A dict: `max_abs_error`, `max_relative_error` (of `step`), `tokens_equal`, and
        `texts_equal` (None when the artifact has no `generate` signature).
    """
    import numpy as np
    from keras import ops

    from rnnzoo.export.artifacts import run_artifact
    from rnnzoo.export.parity import _errors

    if os.path.isdir(path):  # a SavedModel, loaded once
        import tensorflow as tf

        loaded = load_saved_model(path)  # kept alive while its signatures run
        signatures = loaded.signatures

        def run(inputs, signature):
            outputs = signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
            return [outputs[k].numpy() for k in sorted(outputs)]
    else:
        signatures = {}

        def run(inputs, signature):
            return run_artifact(path, inputs, signature=signature)

    rng = np.random.default_rng(seed)
    absolute = relative = 0.0
    tokens_equal = True
    for ids in ids_batches:
        ids = np.asarray(ids, "int32")
        state = rng.normal(size=(len(ids), model.units)).astype("float32") * 0.5
        logits, new_state = model.step(ids, state)
        expected = [np.asarray(ops.convert_to_numpy(logits)), np.asarray(ops.convert_to_numpy(new_state))]
        got = run({"ids": ids, "state": state}, "step")  # logits, next_state (ordered by name)
        a, r = _errors(got, expected)
        absolute, relative = max(absolute, a), max(relative, r)
        noise = rng.uniform(0.01, 0.99, size=(len(ids), num_steps, model.vocabulary_size)).astype("float32")
        prompt = ids.copy()
        prompt[-1, len(prompt[-1]) // 2:] = PAD  # a shorter prompt in the batch
        want = model.sample(prompt, noise, temperature)
        got = run({"prompt_ids": prompt, "noise": noise, "temperature": np.float32(temperature)}, "sample")
        tokens_equal &= bool(np.array_equal(np.asarray(got).reshape(want.shape), want))
    texts_equal = None
    if "generate" in signatures:
        import tensorflow as tf

        prompts = model.decode(np.asarray(ids_batches[0], "int32")) + [""]
        got = signatures["generate"](prompt=tf.constant(prompts), num_steps=tf.constant(num_steps),
                                     temperature=tf.constant(temperature, tf.float32), seed=tf.constant(seed))
        texts = [t.decode("utf-8") for t in got["text"].numpy()]
        texts_equal = texts == model.generate(prompts, num_steps, temperature, seed=seed)
    return {"max_abs_error": absolute, "max_relative_error": relative, "tokens_equal": tokens_equal,
            "texts_equal": texts_equal}
