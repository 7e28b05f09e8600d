"""Serving a Seq2Seq: SavedModel `translate` (strings), fresh process, saved_model_cli, TFLite, ONNX.

The string signature is TensorFlow-only (string ops); on JAX a clear error says so. The token
signatures (`export_decoder`) export from both backends (the export matrix runs `greedy` in every
format on each).
"""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

from rnnzoo.export import export_decoder, export_decoder_tflite, export_translator, onnx_ops, run_artifact, tflite_ops
from rnnzoo.models.seq2seq import Seq2Seq

TEXTS = ["ab", "", "zz?", "abcdabcdab", "dcba", "b"]  # unknown characters, empty, too long


def small_model():
    return Seq2Seq("abcd", "abcd", embedding_dim=8, hidden_dim=8, max_source_length=6, max_target_length=6)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = small_model()
    path = str(tmp_path_factory.mktemp("seq2seq") / "saved_model")
    export_translator(model, path, beam_width=3, length_penalty=0.6)
    return model, path


@pytest.mark.tensorflow
@pytest.mark.slow
def test_translate_signature_in_a_fresh_process_matches_keras(exported):
    model, path = exported
    code = (
        "import json, sys, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1]).signatures['translate']\n"
        "out = f(text=tf.constant(json.loads(sys.argv[2])))\n"
        "beam = tf.saved_model.load(sys.argv[1]).signatures['translate_beam'](text=tf.constant(json.loads(sys.argv[2])))\n"
        "print(json.dumps({'translation': [t.decode() for t in out['translation'].numpy()],"
        " 'truncated': out['truncated'].numpy().tolist(),"
        " 'beam': [t.decode() for t in beam['translation'].numpy()], 'beam_scores': beam['scores'].numpy().tolist()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, path, json.dumps(TEXTS)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        assert result["translation"] == model.translate(TEXTS)
    assert result["truncated"] == [False, False, False, True, False, False]
    # Beam search in the string signature: the eager beam search's strings and scores, after reloading.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        beam, details = model.translate(TEXTS, method="beam", beam_width=3, length_penalty=0.6, return_details=True)
    assert result["beam"] == beam
    np.testing.assert_allclose(result["beam_scores"], details["scores"][:, 0], rtol=1e-5)


@pytest.mark.tensorflow
@pytest.mark.slow
def test_ids_signatures_match_keras(exported):
    import tensorflow as tf

    model, path = exported
    loaded = tf.saved_model.load(path)
    source = model.encode_source(["ab", "dcb", "a"])
    greedy = loaded.signatures["greedy"](source=tf.constant(source))
    expected = model.generate(source)
    for name in ("tokens", "lengths"):
        np.testing.assert_array_equal(greedy[name].numpy(), expected[name])
    np.testing.assert_allclose(greedy["scores"].numpy(), expected["scores"], rtol=1e-5)
    beam = loaded.signatures["beam_search"](source=tf.constant(source))
    expected = model.generate(source, "beam", beam_width=3, length_penalty=0.6)
    np.testing.assert_array_equal(beam["beam_tokens"].numpy(), expected["tokens"])
    np.testing.assert_allclose(beam["beam_scores"].numpy(), expected["scores"], rtol=1e-5)


@pytest.mark.tensorflow
@pytest.mark.slow
def test_saved_model_cli_runs_translate(exported):
    model, path = exported
    done = subprocess.run(
        ["saved_model_cli", "run", "--dir", path, "--tag_set", "serve", "--signature_def", "translate",
         "--input_exprs", 'text=["ab", "dcba"]'],
        capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    expected = model.translate(["ab", "dcba"])
    assert f"{[t.encode() for t in expected]}".replace(", ", " ") in done.stdout.replace("\n", " "), done.stdout
    # Only stock TensorFlow ops: no custom op libraries are needed to load it.
    import tensorflow as tf

    graph = tf.saved_model.load(path).signatures["translate"].graph.as_graph_def()
    ops = {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert not {op for op in ops if "Addons" in op or ">" in op}, ops


@pytest.mark.slow
@pytest.mark.parametrize("method,loop", [("beam", "buffers"),
                                         pytest.param("beam", "generate", marks=pytest.mark.tensorflow)],
                         ids=["beam", "beam-generate"])
def test_tflite_decoders_are_builtins_and_match_keras(method, loop, tmp_path, monkeypatch):
    # The greedy decoder's `.tflite` is a case of the export matrix (`seq2seq_attention`,
    # `seq2seq_fixed_context`: builtins only, a WHILE, every output equal on both backends).
    # `loop`: the decoders' loop for short lengths, or the one for long ones (`generate`, forced here
    # by `LINEAR_FROM`; the conversion runs in this process on TensorFlow).
    if loop == "generate":
        import importlib

        monkeypatch.setattr(importlib.import_module("rnnzoo.decoding.beam_search"), "LINEAR_FROM", 1)
    model = small_model()
    path = export_decoder_tflite(model, str(tmp_path / f"{method}.tflite"), method=method, beam_width=3,
                                 length_penalty=0.6)
    ops = tflite_ops(path)
    assert "WHILE" in ops and not [op for op in ops if op.startswith("CUSTOM")], ops
    signature = "greedy" if method == "greedy" else "beam_search"
    rng = np.random.default_rng(0)
    for batch, length in [(1, 1), (3, 4), (5, 7)]:  # batch and time dynamic
        source = rng.integers(4, 8, size=(batch, length)).astype("int32")
        source[:, -1] = 3  # <end>
        lite = dict(zip(["attention_weights", "beam_scores", "beam_tokens", "lengths", "scores", "tokens"]
                        if method == "beam" else ["attention_weights", "lengths", "scores", "tokens"],
                        run_artifact(path, {"source": source}, signature)))
        expected = model.generate(source, method, beam_width=3, length_penalty=0.6)
        tokens = expected["tokens"] if method == "greedy" else expected["tokens"][:, 0]
        np.testing.assert_array_equal(lite["tokens"], tokens)


@pytest.mark.jax
def test_export_needs_the_tensorflow_backend(tmp_path):
    with pytest.raises(RuntimeError, match="TensorFlow backend.*`export_decoder`"):
        export_translator(small_model(), str(tmp_path / "m"))


@pytest.mark.tensorflow
@pytest.mark.slow
def test_onnx_beam_decoder_with_vocabulary_matches_keras(tmp_path):
    model = small_model()
    path = export_decoder(model, str(tmp_path / "beam.onnx"), method="beam", format="onnx", beam_width=3,
                          length_penalty=0.6)
    assert "Loop" in onnx_ops(path)  # decoding is a loop in the graph, batch and time dynamic
    vocabulary = json.loads((tmp_path / "beam.vocabulary.json").read_text())
    assert vocabulary["source"] == model.source_tokenizer.tokens and vocabulary["special_ids"]["end"] == 3
    rng = np.random.default_rng(1)
    for batch, length in [(1, 2), (4, 6)]:
        source = rng.integers(4, 8, size=(batch, length)).astype("int32")
        source[:, -1] = 3
        beam_scores, beam_tokens = run_artifact(path, {"source": source})[1:3]
        expected = model.generate(source, "beam", beam_width=3, length_penalty=0.6)
        np.testing.assert_array_equal(beam_tokens, expected["tokens"])
        np.testing.assert_allclose(beam_scores, expected["scores"], rtol=1e-5, atol=1e-6)


def test_export_decoder_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"`export_decoder\(format=...\)` must be one of .*Received: format='caffe'"):
        export_decoder(small_model(), str(tmp_path / "m"), format="caffe")
    with pytest.raises(ValueError, match=r"`export_decoder\(method=...\)` must be 'greedy' or 'beam'"):
        export_decoder(small_model(), str(tmp_path / "m"), method="sample")
    with pytest.raises(ValueError, match="applies to TFLite and ONNX"):
        export_decoder(small_model(), str(tmp_path / "m"), quantization="float16")
