"""Pieces shared by the graph-mode decoders: written so they lower to TFLite builtin ops."""

from keras import ops


def check_decoding_args(name, max_length, beam_width=1, length_penalty=0.0):
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"`{name}(max_length=...)` must be an integer >= 1. Received: max_length={max_length!r}")
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"`{name}(beam_width=...)` must be an integer >= 1. Received: beam_width={beam_width!r}")
    if not isinstance(length_penalty, (int, float)) or length_penalty < 0:
        raise ValueError(
            f"`{name}(length_penalty=...)` must be a number >= 0 (GNMT's alpha; 0 disables it). "
            f"Received: length_penalty={length_penalty!r}"
        )


def top1(logits):
    """The index of the largest logit, `(batch, vocabulary) -> (batch,)` int32.

    The lowest index where the logits reach their maximum, not `argmax` (on TensorFlow
    `argmax` of floats needs a Flex op in TFLite) nor `top_k` (on JAX it lowers to a composite
    op that TensorFlow's `XlaCallModule` cannot load, so the JAX export would fail). Ties go to
    the lowest index, as in `top_k` over beams.
    """
    vocabulary = logits.shape[-1]
    best = ops.max(logits, axis=-1, keepdims=True)
    positions = ops.arange(vocabulary, dtype="int32")
    first = ops.min(ops.where(ops.equal(logits, best), positions, vocabulary), axis=-1)
    return ops.minimum(first, vocabulary - 1)  # all-NaN logits: the last id, never out of range


def write_at(buffer, i, value):
    """`buffer[:, i] = value` for `buffer` `(batch, length, ...)`, as a select (no scatter)."""
    length = buffer.shape[1]
    here = ops.equal(ops.arange(length, dtype="int32"), i)  # (length,)
    here = ops.reshape(here, (1, length) + (1,) * (len(buffer.shape) - 2))
    return ops.where(here, ops.expand_dims(ops.cast(value, buffer.dtype), 1), buffer)


def first_step(step_fn, initial_state, constants, batch, start_token):
    """Runs the step on `<start>` once, so the loop's buffers know the attention's shape."""
    start = ops.full((batch,), start_token, dtype="int32")
    logits, state, attention = step_fn(start, initial_state, constants)
    return logits, state, attention, ops.shape(attention)[-1]


def length_penalty_factor(lengths, alpha):
    """GNMT's `lp(Y) = ((5 + |Y|) / 6) ** alpha` (Wu et al., 2016, eq. 14)."""
    if alpha == 0:
        return ops.ones_like(ops.cast(lengths, "float32"))
    return ops.power((5.0 + ops.cast(lengths, "float32")) / 6.0, float(alpha))
