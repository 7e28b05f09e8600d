"""Beam search inside the graph, with GNMT's length penalty, for any decoder step function."""

from keras import ops
from keras import tree

from rnnzoo import recurrence
from rnnzoo.decoding.common import check_decoding_args, first_step, length_penalty_factor, write_at

NEG_INF = -1e9  # finite: keeps the arithmetic free of NaN
# From this `max_length` on, the loop is `rnnzoo.recurrence.generate` (linear in `max_length`);
# below, one while loop that reorders and rewrites the beams' histories at every step, which is
# faster there (bench/RESULTS.md, `bench/decoding.py`: about even at 500 steps).
LINEAR_FROM = 512


def tile_beams(x, beam_width):
    """`(batch, ...) -> (batch * beam_width, ...)`, each row repeated `beam_width` times."""
    x = ops.convert_to_tensor(x)
    tiled = ops.repeat(ops.expand_dims(x, 1), beam_width, axis=1)  # (batch, beam, ...)
    return ops.reshape(tiled, (-1,) + tuple(ops.shape(x)[1:]))


def _reorder(x, select, batch, beam_width):
    """Rows of `x` `(batch * beam, ...)` picked by `select` `(batch, beam, beam)` one-hot."""
    shape = tuple(ops.shape(x)[1:])
    flat = ops.reshape(ops.cast(x, "float32"), (batch, beam_width, -1))
    picked = ops.matmul(select, flat)  # a one-hot matmul instead of a gather: exact, and TFLite builtin
    return ops.cast(ops.reshape(picked, (-1,) + shape), x.dtype)


def beam_search(step_fn, initial_state, constants, *, start_token, end_token, max_length, beam_width=4,
                length_penalty=0.0, pad_token=0):
    """Decodes a batch with beam search; returns every beam, best first.

    At each step, every beam is extended by every token, and the `beam_width` best
    candidates of each sequence are kept, ranked by the length-normalized score
    `log P(Y) / lp(Y)` with GNMT's `lp(Y) = ((5 + |Y|) / 6) ** length_penalty`. A beam that
    has produced `end_token` is finished: it keeps its score and competes with the others
    until the loop stops (every beam finished, or `max_length` tokens). With
    `beam_width=1` it picks the same tokens as `greedy_search` (exact ties aside: both break
    them towards the lowest token id, but the scores differ in rounding).

    It converts to TFLite builtin ops. Below `max_length = LINEAR_FROM` (512) the loop carries
    every beam's history and reorders and writes it at every step (the fastest at the lengths
    people decode); from it, the loop is `rnnzoo.recurrence.generate`: it records each step's
    tokens, parent beams and attention, and reads each final beam's history back through its
    parents after the loop, linear in `max_length` on every path (graph, SavedModel, LiteRT,
    XLA). Both compute the same function (tests/test_decoding.py).

    Args:
        step_fn, initial_state, constants: as for `greedy_search`; `initial_state` and
            `constants` are per sequence `(batch, ...)`, tiled here to `(batch * beam_width, ...)`.
        start_token, end_token, pad_token: ints.
        max_length: int, the most tokens per beam (`<end>` included).
        beam_width: int >= 1, `k`.
        length_penalty: float >= 0, GNMT's `alpha` (0: plain sum of log-probabilities).

    Returns:
        A dict: `tokens` `(batch, beam_width, max_length)` int32, `scores` `(batch, beam_width)`
        (the normalized scores, best first), `log_probs` `(batch, beam_width)`, `lengths`
        `(batch, beam_width)` int32, `attention_weights` `(batch, beam_width, max_length,
        source_time)`.

    Reference:
        Wu et al., *Google's Neural Machine Translation System*, 2016, section 7.
    """
    check_decoding_args("beam_search", max_length, beam_width, length_penalty)
    k = beam_width
    batch = ops.shape(tree.flatten(initial_state)[0])[0]
    initial_state = tree.map_structure(lambda x: tile_beams(x, k), initial_state)
    constants = tree.map_structure(lambda x: tile_beams(x, k), constants)
    logits, state, attention, source_time = first_step(step_fn, initial_state, constants, batch * k, start_token)
    vocabulary = logits.shape[-1]
    if k > vocabulary:
        raise ValueError(f"`beam_search(beam_width=...)` must be at most the vocabulary size {vocabulary}. "
                         f"Received: beam_width={k}")

    if max_length < LINEAR_FROM:
        return _beam_in_buffers(step_fn, state, logits, attention, constants, batch, k, vocabulary, source_time,
                                end_token, max_length, length_penalty, pad_token)
    # All beams start identical: only the first may be extended at the first step. The carry holds
    # the last tokens, not the logits (a `(batch * k, vocabulary)` checkpoint per chunk).
    log_probs = ops.where(ops.arange(k) == 0, 0.0, NEG_INF) * ops.ones((batch, 1))
    zeros = ops.zeros((batch, k), "int32")
    init = {"state": initial_state, "token": ops.full((batch * k,), start_token, dtype="int32"),
            "log_probs": log_probs, "lengths": zeros, "finished": zeros}
    # A finished beam is extended only by `pad_token`, at no cost.
    pad_only = ops.where(ops.arange(vocabulary) == pad_token, 0.0, NEG_INF)  # (vocabulary,)

    def step(carry, constants):
        # Each step records, per new beam, its token, the beam it extends and its attention; the
        # beams' histories are read back after the loop (no history is reordered per step).
        logits, state, attention = step_fn(carry["token"], carry["state"], constants)
        batch = ops.shape(carry["log_probs"])[0]  # the loop may run on more rows than the input's
        beam, token, select, was_finished, log_probs, lengths, finished = _extend(
            logits, carry["log_probs"], carry["lengths"], carry["finished"], batch, k, pad_only, length_penalty,
            pad_token, end_token)
        attention = _reorder(attention, select, batch, k)  # (batch * k, source_time)
        attention = attention * ops.cast(ops.reshape(1 - was_finished, (-1, 1)), attention.dtype)
        state = tree.map_structure(lambda x: _reorder(x, select, batch, k), state)
        carry = {"state": state, "token": ops.reshape(token, (-1,)), "log_probs": log_probs, "lengths": lengths,
                 "finished": finished}
        return carry, (token, beam, ops.reshape(attention, (batch, k, source_time)))

    # Once every beam has ended, each step keeps the beams in place, extended by `pad_token` with
    # zero attention: the loop may stop.
    final, (tokens, parents, attention) = recurrence.generate(
        step, init, max_length, constants=constants, stop=lambda carry: ops.all(carry["finished"] > 0)
    )
    tokens, attention = _backtrack(tokens, parents, attention, final["lengths"])
    log_probs, lengths = final["log_probs"], final["lengths"]
    scores = log_probs / length_penalty_factor(lengths, length_penalty)
    return {"tokens": tokens, "scores": scores, "log_probs": log_probs, "lengths": lengths,
            "attention_weights": attention}


def _backtrack(tokens, parents, attention, like):
    """Each final beam's tokens and attention, read back through the beams it extended.

    `tokens`, `parents` `(time, batch, beam)`, `attention` `(time, batch, beam, source_time)`, as
    recorded per step -> `(batch, beam, time)` and `(batch, beam, time, source_time)`.
    """
    k = tokens.shape[-1]

    def step(beam, records):  # beam (batch, k): the beam at step t each final beam went through
        token, parent, weights = records
        select = ops.one_hot(beam, k)  # (batch, final beam, beam at t); one-hot products, exact
        token = ops.sum(select * ops.expand_dims(ops.cast(token, "float32"), 1), -1)
        parent = ops.sum(select * ops.expand_dims(ops.cast(parent, "float32"), 1), -1)
        weights = ops.matmul(select, weights)
        return ops.cast(parent, "int32"), (ops.cast(token, "int32"), weights)

    last = ops.zeros_like(like) + ops.arange(k, dtype="int32")  # (batch, k): the final beams, best first
    _, (tokens, attention) = recurrence.scan(step, last, (tokens, parents, attention), reverse=True)
    return ops.transpose(tokens, (1, 2, 0)), ops.transpose(attention, (1, 2, 0, 3))


def _beam_in_buffers(step_fn, state, logits, attention, constants, batch, k, vocabulary, source_time, end_token,
                     max_length, length_penalty, pad_token):
    # One while loop over `(batch, k, max_length, ...)` histories, reordered and written at every
    # step: O(max_length) per step.
    tokens = ops.full((batch, k, max_length), pad_token, dtype="int32")
    attention_buffer = ops.zeros((batch, k, max_length, source_time), "float32")
    # All beams start identical: only the first may be extended at the first step.
    log_probs = ops.where(ops.arange(k) == 0, 0.0, NEG_INF) * ops.ones((batch, 1))
    lengths = ops.zeros((batch, k), "int32")
    finished = ops.zeros((batch, k), "int32")
    # A finished beam is extended only by `pad_token`, at no cost.
    pad_only = ops.where(ops.arange(vocabulary) == pad_token, 0.0, NEG_INF)  # (vocabulary,)

    def cond(i, state, logits, attention, tokens, attention_buffer, log_probs, lengths, finished):
        return ops.logical_and(i < max_length, ops.sum(1 - finished) > 0)

    def body(i, state, logits, attention, tokens, attention_buffer, log_probs, lengths, finished):
        _, token, select, was_finished, log_probs, lengths, finished = _extend(
            logits, log_probs, lengths, finished, batch, k, pad_only, length_penalty, pad_token, end_token)
        tokens = ops.cast(ops.matmul(select, ops.cast(tokens, "float32")), "int32")
        tokens = write_at(ops.reshape(tokens, (batch * k, max_length)), i, ops.reshape(token, (-1,)))
        tokens = ops.reshape(tokens, (batch, k, max_length))
        attention = _reorder(attention, select, batch, k)  # (batch * k, source_time)
        attention = attention * ops.cast(ops.reshape(1 - was_finished, (-1, 1)), attention.dtype)
        history = ops.reshape(attention_buffer, (batch, k, -1))
        history = ops.reshape(ops.matmul(select, history), (batch * k, max_length, source_time))
        attention_buffer = ops.reshape(write_at(history, i, attention), (batch, k, max_length, source_time))
        state = tree.map_structure(lambda x: _reorder(x, select, batch, k), state)
        logits, state, attention = step_fn(ops.reshape(token, (-1,)), state, constants)
        return i + 1, state, logits, attention, tokens, attention_buffer, log_probs, lengths, finished

    outputs = ops.while_loop(
        cond, body, (ops.convert_to_tensor(0, "int32"), state, logits, attention, tokens, attention_buffer,
                     log_probs, lengths, finished),
    )
    _, _, _, _, tokens, attention_buffer, log_probs, lengths, _ = outputs
    scores = log_probs / length_penalty_factor(lengths, length_penalty)
    return {"tokens": tokens, "scores": scores, "log_probs": log_probs, "lengths": lengths,
            "attention_weights": attention_buffer}


def _extend(logits, log_probs, lengths, finished, batch, k, pad_only, length_penalty, pad_token, end_token):
    """One step of beam search: the `k` best extensions of the `k` beams of each sequence.

    `logits` `(batch * k, vocabulary)` are the beams' next-token logits; `log_probs`, `lengths`,
    `finished` `(batch, k)`. Returns `(beam, token, select, was_finished, log_probs, lengths,
    finished)`: per new beam, the beam it extends, its token (`pad_token` for a finished beam),
    the one-hot `select` `(batch, new beam, old beam)`, and its updated bookkeeping.
    """
    vocabulary = logits.shape[-1]
    step_log_probs = ops.reshape(ops.log_softmax(ops.cast(logits, "float32"), axis=-1), (batch, k, vocabulary))
    done = ops.expand_dims(finished, -1) > 0  # (batch, k, 1)
    step_log_probs = ops.where(done, pad_only, step_log_probs)
    totals = ops.expand_dims(log_probs, -1) + step_log_probs  # (batch, k, vocabulary)
    new_lengths = ops.expand_dims(lengths + 1 - finished, -1)  # (batch, k, 1)
    ranking = totals / length_penalty_factor(new_lengths, length_penalty)
    _, best = ops.top_k(ops.reshape(ranking, (batch, k * vocabulary)), k)  # (batch, k), best first
    best = ops.cast(best, "int32")
    beam = best // vocabulary
    token = best - beam * vocabulary
    select = ops.one_hot(beam, k)  # (batch, new beam, old beam)
    # One-hot products (exact), O(k * vocabulary) memory per row: the replay may run many rows.
    log_probs = ops.sum(ops.matmul(select, totals) * ops.one_hot(token, vocabulary), -1)
    was_finished = ops.cast(ops.sum(select * ops.expand_dims(ops.cast(finished, "float32"), 1), -1), "int32")
    lengths = ops.cast(ops.sum(select * ops.expand_dims(ops.cast(lengths, "float32"), 1), -1), "int32")
    lengths = lengths + 1 - was_finished
    token = ops.where(was_finished > 0, pad_token, token)
    finished = ops.maximum(was_finished, ops.cast(ops.equal(token, end_token), "int32"))
    return beam, token, select, was_finished, log_probs, lengths, finished
