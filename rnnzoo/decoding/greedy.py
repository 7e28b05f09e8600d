"""Greedy decoding inside the graph, for any decoder step function (section 10.4)."""

from keras import ops
from keras import tree

from rnnzoo import recurrence
from rnnzoo.decoding.common import check_decoding_args, first_step, top1, write_at

# From this `max_length` on, the loop is `rnnzoo.recurrence.generate` (linear in `max_length`);
# below, one while loop over `(batch, max_length, ...)` buffers, which each step rewrites but
# which are small (no beams), and which runs each step once: faster there (bench/RESULTS.md,
# `bench/decoding.py`).
LINEAR_FROM = 8192


def greedy_search(step_fn, initial_state, constants, *, start_token, end_token, max_length, pad_token=0):
    """Decodes a batch greedily: at each step, the most probable token is fed back.

    Stops at `end_token` (per sequence; the loop exits when every sequence has ended) or after
    `max_length` tokens. It is a loop in the graph with no Python-side state, so it runs inside
    `tf.function`/`jax.jit`, exports to a SavedModel, and converts to TFLite builtin ops (the
    arg-max is `top1`, a max/equal/min: `argmax` on floats needs Flex). Below `max_length =
    LINEAR_FROM` (8192) it is one while loop over fixed-shape buffers, which every step rewrites (the
    fastest at the lengths people decode); from it, `rnnzoo.recurrence.generate`, linear in
    `max_length` on every path (both compute the same function: tests/test_decoding.py).

    Args:
        step_fn: `(tokens (batch,) int32, state, constants) -> (logits (batch, vocabulary),
            new_state, attention_weights (batch, source_time))`; `state` any nest of
            `(batch, ...)` tensors.
        initial_state: the decoder's initial state (nest of `(batch, ...)` tensors).
        constants: what `step_fn` needs at every step (e.g. the encoder's annotations), a nest
            of `(batch, ...)` tensors (rows are decoded independently).
        start_token, end_token, pad_token: ints.
        max_length: int, the most tokens generated (`<end>` included).

    Returns:
        A dict: `tokens` `(batch, max_length)` int32 (`pad_token` after `<end>`), `scores`
        `(batch,)` float32 (sum of the log-probabilities of the tokens up to `<end>`),
        `lengths` `(batch,)` int32 (tokens up to and including `<end>`), and
        `attention_weights` `(batch, max_length, source_time)` (zero after `<end>`).

    Example:

    >>> V = 5
    >>> def step_fn(tokens, state, constants):  # emits token (previous + 1), then <end>=4
    ...     logits = ops.one_hot(ops.minimum(tokens + 1, V - 1), V) * 10.0
    ...     return logits, state, ops.ones((ops.shape(tokens)[0], 1))
    >>> out = greedy_search(step_fn, ops.zeros((2, 1)), (), start_token=1, end_token=4, max_length=6)
    >>> ops.convert_to_numpy(out["tokens"]).tolist()
    [[2, 3, 4, 0, 0, 0], [2, 3, 4, 0, 0, 0]]
    """
    check_decoding_args("greedy_search", max_length)
    batch = ops.shape(tree.flatten(initial_state)[0])[0]
    if max_length < LINEAR_FROM:
        return _greedy_in_buffers(step_fn, initial_state, constants, batch, start_token, end_token, max_length,
                                  pad_token)
    # The carry holds the last token, not the logits (a `(batch, vocabulary)` checkpoint per chunk).
    zeros = ops.zeros((batch,), "int32")
    init = {"state": initial_state, "token": ops.full((batch,), start_token, dtype="int32"),
            "scores": ops.zeros((batch,), "float32"), "lengths": zeros, "finished": zeros}

    def step(carry, constants):
        logits, state, attention = step_fn(carry["token"], carry["state"], constants)
        token, attention, scores, lengths, finished = _choose(
            logits, attention, carry["scores"], carry["lengths"], carry["finished"], pad_token, end_token)
        carry = {"state": state, "token": token, "scores": scores, "lengths": lengths, "finished": finished}
        return carry, (token, attention)

    # Once every sequence has ended, each step gives `pad_token` and zero attention: the loop may stop.
    final, (tokens, attention) = recurrence.generate(
        step, init, max_length, constants=constants, stop=lambda carry: ops.all(carry["finished"] > 0)
    )
    return {"tokens": ops.transpose(tokens), "scores": final["scores"], "lengths": final["lengths"],
            "attention_weights": ops.transpose(attention, (1, 0, 2))}


def _greedy_in_buffers(step_fn, initial_state, constants, batch, start_token, end_token, max_length, pad_token):
    # One while loop writing each step into `(batch, max_length, ...)` buffers: O(max_length) per step.
    logits, state, attention, source_time = first_step(step_fn, initial_state, constants, batch, start_token)
    tokens = ops.full((batch, max_length), pad_token, dtype="int32")
    attention_buffer = ops.zeros((batch, max_length, source_time), attention.dtype)
    scores = ops.zeros((batch,), "float32")
    lengths = ops.zeros((batch,), "int32")
    finished = ops.zeros((batch,), "int32")

    def cond(i, state, logits, attention, tokens, attention_buffer, scores, lengths, finished):
        return ops.logical_and(i < max_length, ops.sum(1 - finished) > 0)

    def body(i, state, logits, attention, tokens, attention_buffer, scores, lengths, finished):
        token, attention, scores, lengths, finished = _choose(
            logits, attention, scores, lengths, finished, pad_token, end_token)
        tokens = write_at(tokens, i, token)
        attention_buffer = write_at(attention_buffer, i, attention)
        logits, state, attention = step_fn(token, state, constants)
        return i + 1, state, logits, attention, tokens, attention_buffer, scores, lengths, finished

    outputs = ops.while_loop(
        cond, body, (ops.convert_to_tensor(0, "int32"), state, logits, attention, tokens, attention_buffer,
                     scores, lengths, finished),
    )
    _, _, _, _, tokens, attention_buffer, scores, lengths, _ = outputs
    return {"tokens": tokens, "scores": scores, "lengths": lengths, "attention_weights": attention_buffer}


def _choose(logits, attention, scores, lengths, finished, pad_token, end_token):
    """One step of greedy decoding: the most probable token of each sequence, and its bookkeeping.

    `logits` `(batch, vocabulary)`, `attention` `(batch, source_time)`, `scores`, `lengths`,
    `finished` `(batch,)`. A sequence that has ended gets `pad_token`, zero attention and no score.
    Returns `(token, attention, scores, lengths, finished)`.
    """
    alive = 1 - finished  # (batch,) 1 while the sequence has not ended
    token = top1(logits)
    log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
    log_probs = ops.sum(log_probs * ops.one_hot(token, logits.shape[-1]), -1)
    token = ops.where(alive > 0, token, pad_token)
    attention = attention * ops.cast(ops.expand_dims(alive, -1), attention.dtype)
    return (token, attention, scores + log_probs * ops.cast(alive, "float32"), lengths + alive,
            ops.maximum(finished, ops.cast(ops.equal(token, end_token), "int32")))
