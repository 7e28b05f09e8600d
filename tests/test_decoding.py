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
