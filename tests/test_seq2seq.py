"""The Seq2Seq model: training learns, scheduled sampling, Keras contract, bad input, tasks."""

import collections
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from rnnzoo.data import seq2seq_tasks
from rnnzoo.models.seq2seq import MaskedSequenceCrossentropy, Seq2Seq, Tokenizer, build_vocabulary, exact_match
from rnnzoo.models.seq2seq.seq2seq_plots import attention_matrix, plot_attention
from rnnzoo.models.seq2seq.seq2seq_tokenizer import WORD_START


def tiny_model(**kwargs):
    config = dict(embedding_dim=8, hidden_dim=16, max_source_length=5, max_target_length=5)
    return Seq2Seq("abcd", "abcd", **{**config, **kwargs})


def reversal_data(num, seed):
    rng = np.random.default_rng(seed)
    sources = ["".join(rng.choice(list("abcd"), size=n)) for n in rng.integers(1, 5, size=num)]
    return sources, [s[::-1] for s in sources]


def test_attention_model_learns_to_reverse():
    keras.utils.set_random_seed(0)
    model = tiny_model(hidden_dim=32)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, clipnorm=1.0))
    sources, targets = reversal_data(1500, seed=0)
    x = {"source": model.encode_source(sources)}
    x["target_in"], y = model.encode_targets(targets)
    history = model.fit(x, y, epochs=8, batch_size=64, verbose=0)
    assert history.history["loss"][-1] < 0.2 * history.history["loss"][0]
    test_sources, test_targets = reversal_data(200, seed=1)
    accuracy, _ = exact_match(model, test_sources, test_targets)
    assert accuracy >= 0.9, accuracy
    # The attention of a trained reverser looks at the mirrored position.
    _, weights, source_labels, target_labels = attention_matrix(model, "abcd")
    assert source_labels == ["a", "b", "c", "d", "<end>"] and target_labels == ["d", "c", "b", "a", "<end>"]
    assert (weights[:4, :4].argmax(1) == [3, 2, 1, 0]).all(), weights


def test_masked_sequence_crossentropy_ignores_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    labels = np.array([[1, 4, 0], [2, 0, 0]])
    loss = float(MaskedSequenceCrossentropy()(labels, logits))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.mean([log_probs[0, 0, 1], log_probs[0, 1, 4], log_probs[1, 0, 2]])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_scheduled_sampling_feeds_predictions_only_in_training():
    model = tiny_model(scheduled_sampling_rate=1.0, seed=3)
    reference = tiny_model(scheduled_sampling_rate=0.0)
    reference.set_weights(model.get_weights())
    x = {"source": model.encode_source(["abc", "d"])}
    x["target_in"], y = model.encode_targets(["cba", "d"])
    forced = np.array(reference(x, training=True))
    np.testing.assert_allclose(np.array(model(x, training=False)), forced, atol=1e-6)
    sampled = np.array(model(x, training=True))
    np.testing.assert_allclose(sampled[:, 0], forced[:, 0], atol=1e-6)  # <start> is always given
    assert not np.allclose(sampled[:, 1:], forced[:, 1:], atol=1e-4)
    # Trains without XLA (`Seq2Seq.compile`'s default on TensorFlow compiles the sampling step with
    # XLA: that path is trained in test_config_round_trip_and_keras_file_give_identical_outputs).
    model.compile(optimizer="adam", jit_compile=False)
    history = model.fit(x, y, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_config_round_trip_and_keras_file_give_identical_outputs(tmp_path):
    model = tiny_model(attention=True, attention_dim=6, scheduled_sampling_rate=0.25, seed=1)
    config = model.get_config()
    assert Seq2Seq.from_config(config).get_config() == config
    x = {"source": model.encode_source(["ab", "dcb"])}
    x["target_in"], y = model.encode_targets(["ba", "bcd"])
    model.compile(optimizer="adam", jit_compile=False)  # a fit to move the weights (XLA fits in the learning test)
    model.fit(x, y, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "seq2seq.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.array(model(x)), np.array(loaded(x)))
    for method in ("greedy", "beam"):
        a, b = model.generate(x["source"], method), loaded.generate(x["source"], method)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])


def test_bad_input_is_handled():
    model = tiny_model()
    ids = model.encode_source(["a?z", "", "abcdabcd"][:2])
    assert ids[0].tolist()[:4] == [4, 1, 1, 3]  # unknown characters -> <unk>, then <end>
    assert ids[1].tolist()[:2] == [3, 0]  # the empty string is <end> alone
    with pytest.warns(UserWarning, match="truncated"):
        long_ids = model.encode_source(["abcdabcd"])
    assert long_ids[0].tolist() == [4, 5, 6, 7, 4, 3]  # max_source_length characters, then <end>
    with pytest.raises(ValueError, match="longer than the model's maximum"):
        model.encode_source(["abcdabcd"], truncate=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        outputs = model.translate(["", "??", "abcdabcdabcd"])
    # At most max_target_length tokens each (an untrained model may emit <unk>, shown as the text `<unk>`).
    assert len(outputs) == 3 and all(isinstance(o, str) and len(o.replace("<unk>", "?")) <= 5 for o in outputs)
    with pytest.raises(TypeError, match="list of strings"):
        model.translate("abc")
    with pytest.raises(ValueError, match="'greedy' or 'beam'"):
        model.generate(ids, method="sample")
    with pytest.raises(ValueError, match="shape"):
        model.generate(np.zeros((2, 0), "int32"))
    with pytest.raises(ValueError, match="takes a dict"):
        model(ids)
    # Ids outside the vocabulary (ids signatures) are read as <unk>.
    bad_ids = np.array([[4, 99, -5, 3]], "int32")
    unk_ids = np.array([[4, 1, 1, 3]], "int32")
    np.testing.assert_array_equal(model.generate(bad_ids)["tokens"], model.generate(unk_ids)["tokens"])
    with pytest.raises(ValueError, match="hidden_dim"):
        Seq2Seq("ab", "ab", hidden_dim=0)
    with pytest.raises(ValueError, match="scheduled_sampling_rate"):
        Seq2Seq("ab", "ab", scheduled_sampling_rate=1.5)
    with pytest.raises(ValueError, match="source_vocabulary"):
        Seq2Seq("", "ab")
    with pytest.raises(ValueError, match="split"):
        Seq2Seq("ab", "ab", split="bpe")
    with pytest.raises(ValueError, match="targets? .*longer|longer"):
        model.encode_targets(["abcdabcd"])  # a target that does not fit is an error, not truncated


def test_tokenizer_round_trip_unknown_tokens_stay_visible():
    tokenizer = Tokenizer("abc")
    ids, truncated = tokenizer.encode(["cab", "", "abcab"], max_tokens=4)
    assert ids.tolist() == [[6, 4, 5, 3, 0], [3, 0, 0, 0, 0], [4, 5, 6, 4, 3]] and truncated.tolist() == [0, 0, 1]
    assert tokenizer.decode(ids) == ["cab", "", "abca"]
    inputs, outputs, lengths = tokenizer.teacher_forcing(["ab", "c"])
    assert inputs.tolist() == [[2, 4, 5], [2, 6, 0]] and outputs.tolist() == [[4, 5, 3], [6, 3, 0]]
    assert lengths.tolist() == [2, 1]
    assert tokenizer.decode([[4, 1, 5, 3, 6]]) == ["a<unk>b"]  # <unk> is shown, what follows <end> is not
    words = Tokenizer(["¿", "dónde", "está", "el", "café", "?", "don't"], split="word")
    assert words.split_texts(["¿Dónde\u00a0está el café?", "don't  stop"]) == [
        ["¿", "Dónde", "está", "el", "café", "?"], ["don't", "stop"]]
    ids, _ = words.encode(["¿dónde está el té?"], max_tokens=10)
    assert ids.tolist() == [[4, 5, 6, 7, 1, 9, 3]]
    assert words.decode(ids) == ["¿dónde está el <unk>?"]  # punctuation re-attached, <unk> visible
    with pytest.raises(ValueError, match="single characters"):
        Tokenizer(["ab"])
    with pytest.raises(ValueError, match="special tokens"):
        Tokenizer(["<unk>", "a"], split="word")


def test_vocabularies_and_lengths_from_a_corpus():
    sources = ["the cat sat .", "the dog sat .", "a cat !", "the end"]
    targets = ["le chat", "le chien", "un chat", "la fin"]
    assert build_vocabulary(sources, "word", min_frequency=2) == ["the", "cat", "sat", "."]
    assert build_vocabulary(sources, "word", max_tokens=6) == ["the", "cat", "sat", "."][:2]
    with pytest.raises(ValueError, match=r"max_tokens.*Received: max_tokens=4"):
        build_vocabulary(sources, "word", max_tokens=4)
    model = Seq2Seq.from_corpus(sources, targets, "word", max_tokens=7, embedding_dim=4, hidden_dim=4)
    assert model.source_vocabulary == ["the", "cat", "sat"] and model.target_vocabulary == ["le", "chat", "chien"]
    assert (model.max_source_length, model.max_target_length) == (4, 2)  # the longest training pair
    assert model.encode_source(["the bird sat"]).tolist() == [[4, 1, 6, 3, 0]]
    assert Seq2Seq.from_corpus(sources, targets, length_percentile=50).max_source_length == 10  # median of 13, 13, 7, 7
    config = model.get_config()
    assert config["split"] == "word" and Seq2Seq.from_config(config).get_config() == config
    old = {**config, "source_characters": "ab", "target_characters": "cd", "split": "character"}
    del old["source_vocabulary"], old["target_vocabulary"]
    assert Seq2Seq.from_config(old).source_vocabulary == ["a", "b"]  # configs saved before word vocabularies


def naive_byte_pair_pieces(texts, limit):
    """Byte-pair encoding as defined: recount every pair after each merge (no bookkeeping)."""
    words = collections.Counter(WORD_START + w for t in Tokenizer([], "word").split_texts(texts) for w in t)
    characters = collections.Counter()
    for word, n in words.items():
        for c in word:
            characters[c] += n
    pieces = [c for c, _ in sorted(characters.items(), key=lambda kv: -kv[1])][:limit]
    symbols = {word: list(word) for word in words}
    while len(pieces) < limit:
        pairs = collections.Counter()
        for word, n in words.items():
            for pair in zip(symbols[word], symbols[word][1:]):
                pairs[pair] += n
        if not pairs or max(pairs.values()) < 2:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if best[0] + best[1] not in pieces:
            pieces.append(best[0] + best[1])
        for word, old in symbols.items():
            new, i = [], 0
            while i < len(old):
                if tuple(old[i:i + 2]) == best:
                    new.append(best[0] + best[1])
                    i += 2
                else:
                    new.append(old[i])
                    i += 1
            symbols[word] = new
    return pieces


def greedy_cut(text, pieces):
    """The subword rule written out: the word rule's words, each cut longest piece first."""
    text = "".join(" " if c == WORD_START or c.isspace() else c for c in text)
    cut = []
    for word in Tokenizer([], "word").split_texts([text])[0]:
        word, i = WORD_START + word, 0
        while i < len(word):
            size = next((n for n in range(len(word) - i, 0, -1) if word[i:i + n] in pieces), 1)
            cut.append(word[i:i + size])
            i += size
    return cut


def test_subword_pieces_are_byte_pair_encoding_and_the_cut_is_greedy():
    rng = np.random.default_rng(0)
    stems, endings = ["habl", "com", "viv", "cant", "trabaj", "escrib"], ["o", "as", "a", "amos", "áis", "an", "ar", ""]
    corpus = [" ".join(rng.choice(stems) + rng.choice(endings) for _ in range(rng.integers(1, 6))) + rng.choice([".", "?", ""])
              for _ in range(200)]
    pieces = build_vocabulary(corpus, "subword", max_tokens=60)
    assert pieces == naive_byte_pair_pieces(corpus, 56) and len(pieces) == 56
    assert {WORD_START, WORD_START + "habl", WORD_START + "trabaj"} <= set(pieces)  # frequent stems are merged
    uncapped = build_vocabulary(corpus, "subword")
    assert uncapped == naive_byte_pair_pieces(corpus, 10**6) and set(pieces) < set(uncapped)
    # x and y are too rare to be pieces; of the pairs seen 3 times, the smaller is merged first.
    assert build_vocabulary(["ab ab ab xy"], "subword", min_frequency=2) == [WORD_START, "a", "b", "ab", WORD_START + "ab"]
    tokenizer = Tokenizer(pieces, "subword")
    texts = ["hablamos\u00a0y comáis", "", "  ", "¿Dónde vivo?", "escribo\tcantar\x0bx", "a\u2581b", "trabajan 😀!"]
    assert tokenizer.split_texts(texts) == [greedy_cut(t, set(pieces)) for t in texts]
    import tensorflow as tf  # bytes that are not UTF-8 (a SavedModel's string input) become U+FFFD

    cut = tokenizer.split_text(tf.constant([b"habl\x80amos"])).to_list()[0]
    assert [p.decode("utf-8") for p in cut] == greedy_cut("habl\ufffdamos", set(pieces))
    ids, truncated = tokenizer.encode(texts, max_tokens=30)
    assert not truncated.any()
    known = ["hablamos comáis", "", "escribo cantar", "hablo?", "vivan."]
    assert tokenizer.decode(tokenizer.encode(known, max_tokens=30)[0]) == known  # spaces and punctuation restored
    assert "<unk>" in tokenizer.decode(ids[-1:])[0]  # 😀 is no piece
    for bad in (["a b"], ["a" + WORD_START], ["\u00a0"], ["<end>"]):
        with pytest.raises(ValueError, match="without spaces"):
            Tokenizer(bad, "subword")


def test_seq2seq_on_subwords_from_a_corpus_round_trips(tmp_path):
    sources = ["hablamos mucho", "comemos poco", "hablan mucho", "comen poco"] * 3
    targets = ["we talk a lot", "we eat little", "they talk a lot", "they eat little"] * 3
    model = Seq2Seq.from_corpus(sources, targets, "subword", max_tokens=24, embedding_dim=4, hidden_dim=4)
    assert model.split == "subword" and len(model.source_vocabulary) <= 20
    cut = model.source_tokenizer.split_texts(sources)
    assert model.max_source_length == max(map(len, cut)) and max(map(len, cut)) < max(map(len, sources))
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(loaded.encode_source(sources[:4]), model.encode_source(sources[:4]))
    assert loaded.translate(sources[:2]) == model.translate(sources[:2])


@pytest.mark.tensorflow  # tf.data
def test_dataset_buckets_pads_per_batch_and_trains():
    sources, targets = reversal_data(120, seed=0)
    sources, targets = sources + ["abcdabcdabcd"], targets + ["dcbadcbadcba"]  # the target is too long: dropped
    model = tiny_model(max_source_length=12, max_target_length=8)
    dataset = model.dataset((sources, targets), batch_size=16, seed=0, bucket_boundaries=[4])
    widths, pairs = set(), 0
    for x, y in dataset:
        assert x["source"].shape[1] == x["target_in"].shape[1] == y.shape[1]
        widths.add(int(y.shape[1]))
        pairs += int(y.shape[0])
        assert (x["source"].numpy() == 3).any(axis=1).all()  # every source ends with <end>
    assert widths == {3, 13} and pairs == 120  # padded to its bucket (4 - 1, or 14 - 1), not to the longest
    x, y = next(iter(model.dataset((["dcba"], ["abcd"]), batch_size=1, shuffle=False)))
    assert x["source"].numpy()[0, :5].tolist() == model.encode_source(["dcba"])[0, :5].tolist()
    assert y.numpy()[0, :5].tolist() == model.encode_targets(["abcd"])[1][0, :5].tolist()
    batches = sum(1 for _ in dataset)
    assert int(dataset.cardinality()) == batches  # counted when made: `fit` knows it from epoch 1
    model.compile(optimizer="adam", jit_compile=False)  # XLA would compile each of the 4 batch shapes
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(dataset, epochs=1, verbose=0)
    # Keras warns "`shuffle=True` was passed, but will be ignored" (fit's default) for a dataset, and
    # "Your input ran out of data" for one of unknown length: neither may appear.
    assert not [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert np.isfinite(history.history["loss"]).all()


def test_dataset_of_unknown_length_is_not_read_ahead_and_the_shuffle_is_the_same():
    import tensorflow as tf

    sources, targets = reversal_data(40, seed=1)
    model = tiny_model(max_source_length=12, max_target_length=8)
    signature = (tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.string))

    def endless():
        while True:
            yield from zip(sources, targets)

    # A generator's length is unknown: `dataset` must not count it (this one never ends).
    dataset = model.dataset(tf.data.Dataset.from_generator(endless, output_signature=signature), batch_size=4)
    assert int(dataset.cardinality()) == tf.data.UNKNOWN_CARDINALITY
    assert len(list(dataset.take(3))) == 3
    # Counting the batches of a list does not use up the shuffle's first order: the first epoch
    # is the one the same pipeline gives uncounted (from a generator of the same pairs).
    counted = model.dataset((sources, targets), batch_size=4, seed=3, bucket_boundaries=[4])
    uncounted = model.dataset(tf.data.Dataset.from_generator(lambda: zip(sources, targets), output_signature=signature),
                              batch_size=4, seed=3, bucket_boundaries=[4])
    first = [y.numpy().tolist() for _, y in counted]
    assert first == [y.numpy().tolist() for _, y in uncounted]
    # Full batches only: what splits evenly across devices (each bucket's short last batch dropped).
    full = model.dataset((sources, targets), batch_size=4, seed=3, bucket_boundaries=[4], drop_remainder=True)
    sizes = [int(y.shape[0]) for _, y in full]
    pairs_per_width = {}
    for batch in first:
        pairs_per_width[len(batch[0])] = pairs_per_width.get(len(batch[0]), 0) + len(batch)
    assert set(sizes) == {4} and int(full.cardinality()) == len(sizes) == sum(n // 4 for n in pairs_per_width.values())


def test_compile_uses_xla_only_where_keras_allows_it():
    model = tiny_model()
    model.compile(optimizer="adam")
    if keras.backend.backend() == "tensorflow":
        # Op determinism is global and one-way: an earlier in-process `rnnzoo` run of this worker
        # may have enabled it (the command line does), and under it Keras refuses XLA.
        from tensorflow.python.framework.config import is_op_determinism_enabled

        assert model.jit_compile == (not is_op_determinism_enabled())
    else:
        assert model.jit_compile
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.compile(optimizer="adam", run_eagerly=True)  # Keras: XLA and eager execution exclude each other
    assert not model.jit_compile and not [str(w.message) for w in caught if "jit_compile" in str(w.message)]


def test_attention_heatmap_is_written(tmp_path):
    model = tiny_model()
    path = plot_attention(model, "abc", os.path.join(tmp_path, "attention.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    _, weights, source_labels, _ = attention_matrix(model, "abc")
    assert weights.shape[1] == len(source_labels) == 4
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="fixed context"):
        plot_attention(tiny_model(attention=False), "abc", os.path.join(tmp_path, "fixed.png"))


def test_tasks_are_deterministic_and_correct():
    assert seq2seq_tasks.dates(50, seed=4) == seq2seq_tasks.dates(50, seed=4)
    assert seq2seq_tasks.dates(50, seed=4) != seq2seq_tasks.dates(50, seed=5)
    assert len(seq2seq_tasks.DATE_FORMATS) >= 24
    import datetime

    day = datetime.date(2020, 3, 3)
    written = {f(day) for f in seq2seq_tasks.DATE_FORMATS}
    assert {"tuesday 3 march 2020", "03/03/20", "March 3rd, 2020", "2020-03-03"} <= written
    source_alphabet, target_alphabet = seq2seq_tasks.ALPHABETS["dates"]
    sources, targets = seq2seq_tasks.dates(500, seed=0)
    assert all(set(s) <= set(source_alphabet) for s in sources)
    assert all(len(t) == 10 and set(t) <= set(target_alphabet) for t in targets)
    held = seq2seq_tasks.held_out(seq2seq_tasks.dates, 100, set(sources), seed=1)
    assert len(held[0]) == 100 and not set(held[0]) & set(sources)
    s, t = seq2seq_tasks.sorting(20, 1, 6, seed=0)
    assert t == ["".join(sorted(x)) for x in s]
    s, t = seq2seq_tasks.addition(20, seed=0)
    assert all(int(a) + int(b) == int(c) for (a, b), c in zip((x.split("+") for x in s), t))
    with pytest.raises(ValueError, match="num_examples"):
        seq2seq_tasks.dates(0)
    with pytest.raises(ValueError, match="min_length"):
        seq2seq_tasks.reversal(3, 5, 2)


LOAD_IN_A_FRESH_PROCESS = """
import sys
{imports}
model = keras.saving.load_model(sys.argv[1])
print("weights", type(model).__name__, sum(float(w.sum()) for w in model.get_weights()))
"""


@pytest.mark.tensorflow  # once (the subprocesses run on JAX, which loads fastest)
def test_load_model_needs_no_import_of_the_class_module(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    path = str(tmp_path / "seq2seq.keras")
    model.save(path)
    expected = f"weights Seq2Seq {sum(float(w.sum()) for w in model.get_weights())}"
    cases = {  # (`import keras, rnnzoo` registers at once, as before)
        "rnnzoo before keras": "import rnnzoo\nimport keras",
        "a layer first (rnnzoo imports keras)": "from rnnzoo.layers import Recurrent\nimport keras",
        "without rnnzoo (the control: Keras cannot find the class)": "import keras",
    }
    for case, imports in cases.items():
        done = subprocess.run([sys.executable, "-c", LOAD_IN_A_FRESH_PROCESS.format(imports=imports), path],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"})
        if case.startswith("without"):
            assert done.returncode != 0 and "Could not locate class 'Seq2Seq'" in done.stderr, (case, done.stderr[-2000:])
        else:
            assert done.returncode == 0, (case, done.stderr[-2000:])
            assert done.stdout.strip().splitlines()[-1] == expected, (case, done.stdout)
