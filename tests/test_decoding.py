"""Graph-mode decoders: greedy, beam search (length penalty), and their agreement."""

import numpy as np
import pytest
from keras import ops

from rnnzoo.decoding import beam_search, greedy_search
from rnnzoo.models.seq2seq import Seq2Seq

PAD, START, END, A, B, C = 0, 1, 2, 3, 4, 5
V = 6


def markov_step(table):
    """A stateless decoder whose next-token probabilities depend only on the previous token."""
    log_table = np.log(np.asarray(table, "float32") + 1e-12)

    def step_fn(tokens, state, constants):
        logits = ops.matmul(ops.one_hot(tokens, V), ops.convert_to_tensor(log_table))
        return logits, state, ops.ones((ops.shape(tokens)[0], 2))

    return step_fn


def trap_table():
    # From <start>: A 0.6, B 0.4. After A: A, B, C, END equally likely (0.25). After B: END 0.99.
    # Greedy takes A then a 0.25 token (P <= 0.15); the best sequence is B END (P = 0.4).
    table = np.full((V, V), 1e-6)
    table[START, [A, B]] = [0.6, 0.4]
    table[A, [A, B, C, END]] = 0.25
    table[B, END] = 0.99
    table[C, END] = 1.0
    table[END, END] = 1.0
    table[PAD, END] = 1.0
    return table


KW = dict(start_token=START, end_token=END, pad_token=PAD)


def test_greedy_follows_the_most_probable_token_and_stops_at_end():
    out = greedy_search(markov_step(trap_table()), ops.zeros((2, 1)), (), max_length=5, **KW)
    tokens = np.array(out["tokens"])
    # A first, then a four-way tie among A, B, C, END, broken towards the lowest id (END = 2).
    np.testing.assert_array_equal(tokens, [[A, END, PAD, PAD, PAD]] * 2)
    np.testing.assert_allclose(np.array(out["scores"]), np.log(0.6) + np.log(0.25), rtol=1e-5)
    out = greedy_search(markov_step(trap_table()), ops.zeros((1, 1)), (), max_length=5,
                        start_token=B, end_token=END, pad_token=PAD)  # starting from B: END, then padding
    np.testing.assert_array_equal(np.array(out["tokens"]), [[END, PAD, PAD, PAD, PAD]])
    assert np.array(out["lengths"]).tolist() == [1]
    weights = np.array(out["attention_weights"])
    assert weights[0, :1].min() == 1.0 and weights[0, 1:].max() == 0.0  # zero after <end>


def test_beam_search_finds_the_better_sequence():
    out = beam_search(markov_step(trap_table()), ops.zeros((2, 1)), (), max_length=5, beam_width=2, **KW)
    tokens = np.array(out["tokens"])
    np.testing.assert_array_equal(tokens[:, 0, :3], [[B, END, PAD]] * 2)
    np.testing.assert_allclose(np.array(out["log_probs"])[:, 0], np.log(0.4), rtol=1e-5)  # P(END | B) = 1 after normalization
    scores = np.array(out["scores"])
    assert np.all(scores[:, 0] >= scores[:, 1])  # best first


def test_length_penalty_is_gnmt_and_favours_longer_outputs():
    # <start>: END 0.5, A 0.5; after A: END 1.0. Unnormalized, "END" and "A END" tie in
    # probability (0.5): with alpha > 0 the longer one wins.
    table = np.full((V, V), 1e-6)
    table[START, [END, A]] = [0.5, 0.5]
    table[A, END] = 1.0
    table[END, END] = table[PAD, END] = 1.0
    alpha = 1.0
    out = beam_search(markov_step(table), ops.zeros((1, 1)), (), max_length=4, beam_width=2,
                      length_penalty=alpha, **KW)
    np.testing.assert_array_equal(np.array(out["tokens"])[0, 0, :2], [A, END])
    lengths, log_probs = np.array(out["lengths"]), np.array(out["log_probs"])
    np.testing.assert_allclose(np.array(out["scores"]), log_probs / ((5 + lengths) / 6) ** alpha, rtol=1e-6)


def test_bad_decoding_arguments():
    step = markov_step(trap_table())
    with pytest.raises(ValueError, match="max_length"):
        greedy_search(step, ops.zeros((1, 1)), (), max_length=0, **KW)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(step, ops.zeros((1, 1)), (), max_length=3, beam_width=0, **KW)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(step, ops.zeros((1, 1)), (), max_length=3, length_penalty=-1.0, **KW)
    with pytest.raises(ValueError, match="at most the vocabulary"):
        beam_search(step, ops.zeros((1, 1)), (), max_length=3, beam_width=V + 1, **KW)


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "fixed_context"])
def test_greedy_equals_beam_of_width_one_on_a_model(attention):
    model = Seq2Seq("abcdef", "abcdef", embedding_dim=4, hidden_dim=8, attention=attention,
                    max_source_length=8, max_target_length=7)
    rng = np.random.default_rng(1)
    texts = ["".join(rng.choice(list("abcdef"), size=n)) for n in rng.integers(0, 9, size=16)]
    source = model.encode_source(texts)
    greedy = model.generate(source, "greedy")
    beam = model.generate(source, "beam", beam_width=1, length_penalty=0.0)
    np.testing.assert_array_equal(greedy["tokens"], beam["tokens"][:, 0])
    np.testing.assert_array_equal(greedy["lengths"], beam["lengths"][:, 0])
    np.testing.assert_allclose(greedy["scores"], beam["scores"][:, 0], rtol=1e-6)
    np.testing.assert_allclose(greedy["attention_weights"], beam["attention_weights"][:, 0], atol=1e-6)
    wide = model.generate(source, "beam", beam_width=3, length_penalty=0.0)
    assert np.all(np.diff(wide["scores"], axis=1) <= 0)  # beams come best first


# -- Against a plain per-sequence reference, in a traced function with dynamic shapes -------------
#
# The decoders run on `rnnzoo.recurrence.generate`, whose TensorFlow inference loop replays chunks
# of steps side by side; the reference below is the textbook loop, one sequence and one beam at a
# time, in NumPy (float64). Lengths around the chunk size, batches above one, beams that end early
# and beams that run to `max_length` are where the two could part.

RV, RU, RS = 7, 5, 4  # vocabulary, state size, source time
_rng = np.random.default_rng(7)
R_EMBED = _rng.normal(size=(RV, RU))
R_W = 0.9 * _rng.normal(size=(RU, RU))
R_OUT = 1.5 * _rng.normal(size=(RU, RV))


def attention_step(tokens, state, constants):
    """A small recurrent decoder with dot-product attention over per-sequence annotations."""
    (annotations,) = constants
    h = ops.tanh(ops.take(ops.cast(R_EMBED, "float32"), tokens, axis=0) + ops.matmul(state, ops.cast(R_W, "float32")))
    weights = ops.softmax(ops.sum(annotations * ops.expand_dims(h, 1), -1), axis=-1)
    h = h + 0.3 * ops.sum(ops.expand_dims(weights, -1) * annotations, 1)
    return ops.matmul(h, ops.cast(R_OUT, "float32")), h, weights


def reference_step(token, h, annotations):
    h = np.tanh(R_EMBED[token] + h @ R_W)
    scores = annotations @ h
    weights = np.exp(scores - scores.max())
    weights /= weights.sum()
    h = h + 0.3 * weights @ annotations
    return h @ R_OUT, h, weights


def log_softmax(logits):
    shifted = logits - logits.max()
    return shifted - np.log(np.exp(shifted).sum())


def reference_beam(state, annotations, max_length, k, alpha):
    """One sequence: the `k` beams, best first, as `beam_search` defines them."""
    logits, h, weights = reference_step(START, state, annotations)
    first = {"tokens": [], "attention": [], "log_prob": 0.0, "length": 0, "finished": False, "logits": logits,
             "h": h, "weights": weights}
    beams = [first] + [dict(first, log_prob=-1e9) for _ in range(k - 1)]
    lp = lambda n: ((5.0 + n) / 6.0) ** alpha  # noqa: E731
    for _ in range(max_length):
        if all(b["finished"] for b in beams):
            break  # every later step would extend each beam with <pad>, in place
        candidates = []
        for j, beam in enumerate(beams):
            if beam["finished"]:
                step_log_probs = np.where(np.arange(RV) == PAD, 0.0, -1e9)
            else:
                step_log_probs = log_softmax(beam["logits"])
            length = beam["length"] + (0 if beam["finished"] else 1)
            for v in range(RV):
                total = beam["log_prob"] + step_log_probs[v]
                candidates.append((-total / lp(length), j * RV + v, j, v, total))
        new_beams = []
        for _, _, j, v, total in sorted(candidates)[:k]:
            old = beams[j]
            token = PAD if old["finished"] else v
            beam = {"tokens": old["tokens"] + [token], "log_prob": total,
                    "attention": old["attention"] + [old["weights"] * (0.0 if old["finished"] else 1.0)],
                    "length": old["length"] + (0 if old["finished"] else 1),
                    "finished": old["finished"] or token == END}
            beam["logits"], beam["h"], beam["weights"] = reference_step(token, old["h"], annotations)
            new_beams.append(beam)
        beams = new_beams
    for beam in beams:
        beam["tokens"] += [PAD] * (max_length - len(beam["tokens"]))
        beam["attention"] += [np.zeros(RS)] * (max_length - len(beam["attention"]))
        beam["score"] = beam["log_prob"] / lp(beam["length"])
    return beams


def _traced(decode):
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        spec = [tf.TensorSpec((None, RU)), tf.TensorSpec((None, None, RU))]
        return tf.function(decode, input_signature=spec)
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(decode)
    return decode


@pytest.mark.parametrize("loop", ["buffers", "generate"])
@pytest.mark.parametrize("max_length", [1, 9, 40])
def test_decoders_equal_the_plain_per_sequence_loop(max_length, loop, monkeypatch):
    # Both loops of each decoder: the one over buffers (short lengths) and `generate` (long ones).
    import importlib

    for module in ("rnnzoo.decoding.greedy", "rnnzoo.decoding.beam_search"):  # modules, not the functions
        monkeypatch.setattr(importlib.import_module(module), "LINEAR_FROM", 1 if loop == "generate" else 10**9)
    kw = dict(start_token=START, end_token=END, pad_token=PAD, max_length=max_length)
    greedy = _traced(lambda state, annotations: greedy_search(attention_step, state, (annotations,), **kw))
    beams = {(k, alpha): _traced(lambda state, annotations, k=k, alpha=alpha: beam_search(
        attention_step, state, (annotations,), beam_width=k, length_penalty=alpha, **kw))
        for k, alpha in ((1, 0.0), (3, 0.6))}
    ended_early = ran_to_the_end = 0
    for batch in (1, 5):
        rng = np.random.default_rng(max_length + batch)
        state = rng.normal(size=(batch, RU)).astype("float32")
        annotations = rng.normal(size=(batch, RS, RU)).astype("float32")
        got = {name: ops.convert_to_numpy(v) for name, v in greedy(state, annotations).items()}
        for b in range(batch):
            best = reference_beam(state[b].astype("float64"), annotations[b].astype("float64"), max_length, 1, 0.0)[0]
            np.testing.assert_array_equal(got["tokens"][b], best["tokens"])
            assert got["lengths"][b] == best["length"]
            np.testing.assert_allclose(got["scores"][b], best["log_prob"], rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(got["attention_weights"][b], np.stack(best["attention"]), atol=1e-5)
        for (k, alpha), decode in beams.items():
            got = {name: ops.convert_to_numpy(v) for name, v in decode(state, annotations).items()}
            for b in range(batch):
                expected = reference_beam(state[b].astype("float64"), annotations[b].astype("float64"), max_length, k,
                                          alpha)
                np.testing.assert_array_equal(got["tokens"][b], [beam["tokens"] for beam in expected])
                np.testing.assert_array_equal(got["lengths"][b], [beam["length"] for beam in expected])
                np.testing.assert_allclose(got["scores"][b], [beam["score"] for beam in expected], rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(got["log_probs"][b], [beam["log_prob"] for beam in expected], rtol=1e-5,
                                           atol=1e-5)
                np.testing.assert_allclose(got["attention_weights"][b],
                                           [np.stack(beam["attention"]) for beam in expected], atol=1e-5)
                ended_early += sum(beam["finished"] and beam["length"] < max_length for beam in expected)
                ran_to_the_end += sum(beam["length"] == max_length for beam in expected)
    assert ended_early > 0 or max_length == 1  # the data exercise both ways a beam ends
    assert ran_to_the_end > 0
