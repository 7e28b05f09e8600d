"""The language model (10.2.3): the text reader's truncated-BPTT layout, the vocabulary inside the
model, bits per character, learning, sampling in the graph, `.keras`, the exports, the CLI and TFDS."""

import json
import math

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo.data import text as T
from rnnzoo.models.language_model import PAD, LanguageModel

TEXT = "Zoë's café: crème brûlée — 東京 🙂.\nthe cat sat on the mat.\n" * 3


def windows(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def test_reader_cuts_the_text_into_contiguous_tracks_for_a_stateful_model():
    vocabulary = T.build_vocabulary(TEXT)
    model = LanguageModel(vocabulary, units=4, embedding_dim=2, stateful=False)
    ids = T.token_ids(TEXT, model.tokenizer)
    assert len(ids) == len(TEXT) and model.decode([ids]) == [TEXT]  # one id per code point, non-ASCII included
    batches = windows(T.language_model_dataset(TEXT, model.tokenizer, batch_size=3, sequence_length=7))
    track = (len(ids) - 1) // 3
    assert [x.shape for x, _ in batches] == [(3, 7)] * (track // 7) + [(3, track % 7)] * (track % 7 > 0)
    inputs = np.concatenate([x for x, _ in batches], axis=1)  # row r of batch i+1 continues row r of batch i
    targets = np.concatenate([y for _, y in batches], axis=1)
    for r in range(3):
        np.testing.assert_array_equal(inputs[r], ids[r * track:(r + 1) * track])
        np.testing.assert_array_equal(targets[r], ids[r * track + 1:(r + 1) * track + 1])  # the next token
    with pytest.raises(ValueError, match="too few for 200 tracks"):
        T.language_model_dataset(TEXT, model.tokenizer, batch_size=200, sequence_length=7)


def test_vocabulary_lives_in_the_model_and_round_trips(tmp_path):
    vocabulary = T.build_vocabulary(TEXT, min_frequency=3)
    assert "🙂" in vocabulary and "é" in vocabulary and "\n" in vocabulary
    counts = [TEXT.count(token) for token in vocabulary]
    assert counts == sorted(counts, reverse=True) and len(vocabulary) == len(set(TEXT))  # most frequent first
    assert T.build_vocabulary(TEXT, max_tokens=5) == vocabulary[:5]
    assert T.build_vocabulary(TEXT + "q", min_frequency=2) == vocabulary  # seen once: left out
    model = LanguageModel(vocabulary, units=4, embedding_dim=2, stateful=False)
    ids = model.encode([TEXT, "q🙂", ""])
    assert model.decode(ids[:1]) == [TEXT]
    assert ids[1, 0] == 1 and model.decode(ids[1:]) == ["[UNK]🙂", ""]  # unknown -> [UNK]; padding dropped
    words = LanguageModel(T.build_vocabulary(TEXT, "word"), split="word", units=4, embedding_dim=2, stateful=False)
    assert words.decode(words.encode(["the cat sat  on\nthe café:"])) == ["the cat sat on the café:"]

    model(ids[:1, :5])
    model.save(tmp_path / "lm.keras")
    loaded = keras.saving.load_model(tmp_path / "lm.keras")
    assert isinstance(loaded, LanguageModel) and loaded.vocabulary == vocabulary
    assert loaded.tokenizer.get_vocabulary() == model.tokenizer.get_vocabulary()
    np.testing.assert_array_equal(loaded.encode([TEXT, "q🙂", ""]), ids)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(ids)), ops.convert_to_numpy(model(ids)), atol=1e-6)


def test_bits_per_character_is_the_mean_over_every_token_in_bits():
    vocabulary = T.build_vocabulary(TEXT)
    model = LanguageModel(vocabulary, units=6, embedding_dim=3, stateful=True)
    model.build((2, None))
    model.compile(optimizer="sgd")
    dataset = T.language_model_dataset(TEXT, model.tokenizer, batch_size=2, sequence_length=40)  # the last is shorter
    results = model.evaluate(dataset, return_dict=True, verbose=0)
    model.reset_state()  # by hand: the stateful model over the windows in order, every token counted once
    nats = []
    for x, y in windows(dataset):
        logits = np.asarray(ops.convert_to_numpy(model(x)), "float64")
        log_probs = logits - logits.max(-1, keepdims=True)
        log_probs -= np.log(np.exp(log_probs).sum(-1, keepdims=True))
        nats.append(-np.take_along_axis(log_probs, y[..., None], -1).ravel())
    nats = np.concatenate(nats)
    assert len(nats) == 2 * ((len(TEXT) - 1) // 2)
    np.testing.assert_allclose(results["bits_per_character"], nats.mean() / math.log(2), rtol=1e-5)
    np.testing.assert_allclose(results["perplexity"], np.exp(nats.mean()), rtol=1e-5)


def test_sampling_at_temperature_zero_is_the_argmax_and_does_not_touch_the_carried_state():
    model = LanguageModel(T.build_vocabulary(TEXT), units=8, embedding_dim=4, stateful=True)
    model.build((2, None))
    rng = np.random.default_rng(0)
    for weight in model.rnn.cell.weights:  # large weights: far from a uniform distribution
        weight.assign(rng.normal(size=weight.shape).astype("float32"))
    model(model.encode(["the cat", "a café"])[:, :4])
    carried = ops.convert_to_numpy(model.rnn.states[0]).copy()
    prompts = model.encode(["the c", "é"])  # the second prompt is right-padded
    noise = rng.uniform(size=(2, 4, model.vocabulary_size)).astype("float32")
    # By hand with `step`: feed each sequence's own prompt, then the argmax, one token at a time.
    expected = []
    for row in prompts:
        prompt = row[row != PAD][None]
        logits, state = model.step(prompt, model.initial_state(1))
        tokens = []
        for _ in range(4):
            token = int(np.argmax(ops.convert_to_numpy(logits)[0, -1, 1:])) + 1  # never the padding id
            tokens.append(token)
            logits, state = model.step(np.array([[token]], "int32"), state)
        expected.append(tokens)
    for temperature in (0.0, 1e-4):
        np.testing.assert_array_equal(model.sample(prompts, noise, temperature), expected)
    sampled = model.sample(prompts, noise, 1.0)
    assert not np.array_equal(sampled, expected) and (sampled > PAD).all()
    np.testing.assert_array_equal(ops.convert_to_numpy(model.rnn.states[0]), carried)


@pytest.mark.slow
def test_learns_a_generated_text_well_below_the_uniform_bits():
    keras.utils.set_random_seed(1)
    # 1 + 16 * 25 * k characters: every window has 25 steps (one compiled shape)
    train, validation = T.generated_text(6001, seed=0), T.generated_text(1201, seed=1)
    vocabulary = T.build_vocabulary(train)
    model = LanguageModel(vocabulary, units=48, embedding_dim=16, stateful=True)
    model.build((16, None))
    model.compile(optimizer=keras.optimizers.Adam(0.02, global_clipnorm=1.0))
    data = [T.language_model_dataset(t, model.tokenizer, batch_size=16, sequence_length=25) for t in (train, validation)]
    history = model.fit(data[0], validation_data=data[1], epochs=4, verbose=0).history
    uniform = math.log2(model.vocabulary_size)
    assert history["val_bits_per_character"][-1] < 0.55 * uniform, (history, uniform)
    assert history["val_bits_per_character"][-1] < history["val_bits_per_character"][0]
    assert model.evaluate(data[1], return_dict=True, verbose=0)["bits_per_character"] == pytest.approx(
        history["val_bits_per_character"][-1], rel=1e-5)  # validation starts from a zeroed state too


@pytest.mark.slow
@pytest.mark.tensorflow  # the string signature is TensorFlow's; LiteRT from the same SavedModel
def test_saved_model_string_signature_and_litert_match_keras_after_reloading(tmp_path):
    from rnnzoo.export import export_language_model, tflite_ops
    from rnnzoo.export.language_model import language_model_parity

    model = LanguageModel(T.build_vocabulary(TEXT), units=8, embedding_dim=4, stateful=True)
    model.build((2, None))
    ids = [model.encode(["the cat sat", "東京 🙂.\n"])]
    saved = export_language_model(model, str(tmp_path / "lm"))
    lite = export_language_model(model, str(tmp_path / "lm.tflite"), format="tflite")
    parity = {path: language_model_parity(model, path, ids) for path in (saved, lite)}
    for path, result in parity.items():
        assert result["max_relative_error"] <= 1e-5 and result["tokens_equal"], (path, result)
    assert parity[saved]["texts_equal"] is True and parity[lite]["texts_equal"] is None  # prompt -> the same text
    ops_ = tflite_ops(lite)
    assert not any(op.startswith(("CUSTOM", "FLEX", "HASHTABLE")) for op in ops_) and "WHILE" in ops_, ops_
    vocabulary = json.loads((tmp_path / "lm.vocabulary.json").read_text(encoding="utf-8"))
    assert vocabulary["tokens"] == model.tokenizer.get_vocabulary() and vocabulary["separator"] == ""


@pytest.mark.slow
@pytest.mark.tensorflow  # in-process CLI, TensorFlow backend (as tests/test_cli.py)
def test_cli_trains_char_lm_on_a_text_file_for_one_epoch(tmp_path, capsys, monkeypatch):
    from rnnzoo.app.cli import main

    (tmp_path / "book.txt").write_text(T.generated_text(5000, seed=3), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "char_lm", "--text", "book.txt", "--epochs", "1", "--units", "16", "--batch-size", "4",
                 "--sequence-length", "20", "--out", "run", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "val_bits_per_character" in out
    evaluation = json.loads((tmp_path / "run" / "evaluation.json").read_text())
    assert evaluation["task"] == "book.txt" and evaluation["test_tokens"] == 4 * ((250 - 1) // 4)
    assert 0 < evaluation["bits_per_character"] < 8 and evaluation["perplexity"] == pytest.approx(
        2 ** evaluation["bits_per_character"], rel=1e-4)
    history = (tmp_path / "run" / "history.csv").read_text()
    assert "val_bits_per_character" in history.splitlines()[0]


@pytest.mark.tensorflow  # tensorflow-datasets
def test_tfds_builder_reads_a_text_from_manual_dir(tmp_path):
    import tensorflow_datasets as tfds

    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "corpus.txt").write_text(TEXT * 4, encoding="utf-8")
    builder = T.RnnzooPlainText(data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    parts = T.split_text(TEXT * 4)
    for split, expected in zip(("train", "validation", "test"), parts):
        lines = [e["text"].decode("utf-8") for e in tfds.as_numpy(builder.as_dataset(split=split))]
        assert "".join(lines) == expected
    model = LanguageModel(T.build_vocabulary(parts[0]), units=4, embedding_dim=2, stateful=False)
    train = builder.as_dataset(split="train").map(lambda e: e["text"])
    np.testing.assert_array_equal(T.token_ids(train, model.tokenizer), T.token_ids(parts[0], model.tokenizer))
