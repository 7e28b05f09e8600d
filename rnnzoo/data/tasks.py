"""Synthetic sequence tasks, generated locally and deterministically from a seed.

Each function returns NumPy arrays `(x, y)`: `x` float32 `(num_examples, length, features)`,
`y` int32 `(num_examples, length)` for per-step labels or float32 `(num_examples, 1)` for a
regression target. Data values are validated here, not in the layers.
"""

import numpy as np


def _check(name, num_examples, length, min_length=1):
    for arg, value, low in (("num_examples", num_examples, 1), ("length", length, min_length)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}({arg}=...)` must be an integer >= {low}. Received: {arg}={value!r}")


def delayed_recall(num_examples, length, delay=3, seed=0):
    """Random bits; the label at step t is the bit seen at step t - delay (0 before that).

    Solving it needs a memory of the last `delay` inputs; chance accuracy is about 50%.

    Example:

    >>> x, y = delayed_recall(2, 6, delay=2, seed=1)
    >>> x.shape, y.shape, bool((y[:, 2:] == x[:, :-2, 0]).all())
    ((2, 6, 1), (2, 6), True)
    """
    _check("delayed_recall", num_examples, length)
    if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or not 0 <= delay < length:
        raise ValueError(f"`delayed_recall(delay=...)` must be an integer in [0, length). Received: delay={delay!r}")
    bits = np.random.default_rng(seed).integers(0, 2, size=(num_examples, length))
    labels = np.zeros_like(bits)
    labels[:, delay:] = bits[:, : length - delay]
    return bits[..., None].astype("float32"), labels.astype("int32")


def running_parity(num_examples, length, seed=0):
    """Random bits; the label at step t is the parity (XOR) of the bits up to and including t.

    Example:

    >>> x, y = running_parity(1, 4, seed=3)
    >>> bool((y == np.cumsum(x[..., 0], axis=1) % 2).all())
    True
    """
    _check("running_parity", num_examples, length)
    bits = np.random.default_rng(seed).integers(0, 2, size=(num_examples, length))
    return bits[..., None].astype("float32"), (np.cumsum(bits, axis=1) % 2).astype("int32")


def adding_problem(num_examples, length, seed=0):
    """The adding problem (Hochreiter & Schmidhuber, 1997).

    Each step carries a value in [0, 1) and a marker; exactly two steps are marked, one in each
    half of the sequence. The target is the sum of the two marked values. Predicting 1.0
    (the mean) gives a mean squared error of about 0.167.

    Returns:
        `x` `(num_examples, length, 2)` float32 (value, marker), `y` `(num_examples, 1)` float32.

    Example:

    >>> x, y = adding_problem(3, 10, seed=0)
    >>> x.shape, y.shape, x[..., 1].sum(axis=1).tolist()
    ((3, 10, 2), (3, 1), [2.0, 2.0, 2.0])
    """
    _check("adding_problem", num_examples, length, min_length=2)
    rng = np.random.default_rng(seed)
    values = rng.random((num_examples, length))
    half = length // 2
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    markers = np.zeros((num_examples, length))
    rows = np.arange(num_examples)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    target = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1).astype("float32"), target[:, None].astype("float32")


TASKS = {"delayed_recall": delayed_recall, "running_parity": running_parity, "adding_problem": adding_problem}


def majority_bit(num_examples, length, min_length=None, seed=0):
    """Random bits; one label per sequence: 1 if it holds more ones than zeros, else 0.

    A sequence-to-one task (fig. 10.5): the answer needs the whole sequence. Lengths are odd
    (no ties). With `min_length`, each sequence has its own odd length in
    `[min_length, length]` and is right-padded with -1.0 (use `mask_value=-1.0`). Chance is
    about 50%.

    Returns:
        `x` `(num_examples, length, 1)` float32, `y` `(num_examples,)` int32.

    Example:

    >>> x, y = majority_bit(4, 7, seed=0)
    >>> x.shape, y.shape, bool((y == (x[..., 0].sum(axis=1) > 3)).all())
    ((4, 7, 1), (4,), True)
    """
    _check("majority_bit", num_examples, length)
    if length % 2 == 0:
        raise ValueError(f"`majority_bit(length=...)` must be odd (no ties). Received: length={length!r}")
    min_length = length if min_length is None else min_length
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or not (
        1 <= min_length <= length and min_length % 2 == 1
    ):
        raise ValueError(
            "`majority_bit(min_length=...)` must be an odd integer in [1, length]. "
            f"Received: min_length={min_length!r}"
        )
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, size=(num_examples, length)).astype("float32")
    lengths = min_length + 2 * rng.integers(0, (length - min_length) // 2 + 1, size=num_examples)
    valid = np.arange(length)[None, :] < lengths[:, None]
    labels = ((bits * valid).sum(axis=1) * 2 > lengths).astype("int32")
    x = np.where(valid, bits, -1.0).astype("float32")
    return x[..., None], labels


def future_recall(num_examples, length, advance=2, seed=0):
    """Random bits; the label at step t is the bit that will be seen at step t + advance.

    The labels depend on *future* inputs, so a model reading left to right can only guess
    (50%) at steps t < length - advance, while a bidirectional one can be exact. The last
    `advance` steps, which have no such future, are labelled 0.

    Example:

    >>> x, y = future_recall(2, 6, advance=2, seed=1)
    >>> x.shape, y.shape, bool((y[:, :-2] == x[:, 2:, 0]).all()), bool((y[:, -2:] == 0).all())
    ((2, 6, 1), (2, 6), True, True)
    """
    _check("future_recall", num_examples, length)
    if isinstance(advance, bool) or not isinstance(advance, (int, np.integer)) or not 0 <= advance < length:
        raise ValueError(
            f"`future_recall(advance=...)` must be an integer in [0, length). Received: advance={advance!r}"
        )
    bits = np.random.default_rng(seed).integers(0, 2, size=(num_examples, length))
    labels = np.zeros_like(bits)
    labels[:, : length - advance] = bits[:, advance:]
    return bits[..., None].astype("float32"), labels.astype("int32")


TASKS["future_recall"] = future_recall


def copy_memory(num_examples, length, num_symbols=8, memory=5, seed=0):
    """The copy (memory) task: remember `memory` symbols across a gap of `length` blanks.

    The input is `memory` random symbols (1..num_symbols), then `length` blanks (0), then a
    delimiter (num_symbols + 1) and `memory - 1` blanks; the target is blanks everywhere except
    the last `memory` steps, which repeat the symbols. Inputs are one-hot encoded.

    Returns:
        `x` float32 `(num_examples, length + 2 * memory, num_symbols + 2)`, `y` int32
        `(num_examples, length + 2 * memory)`.

    Example:

    >>> x, y = copy_memory(2, 3, num_symbols=4, memory=2, seed=0)
    >>> x.shape, y.shape, bool((y[:, -2:] == x[:, :2].argmax(-1)).all())
    ((2, 7, 6), (2, 7), True)
    """
    _check("copy_memory", num_examples, length, min_length=0) if length != 0 else None
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"`copy_memory(length=...)` must be an integer >= 0. Received: length={length!r}")
    rng = np.random.default_rng(seed)
    symbols = rng.integers(1, num_symbols + 1, size=(num_examples, memory))
    total = length + 2 * memory
    tokens = np.zeros((num_examples, total), dtype="int64")
    tokens[:, :memory] = symbols
    tokens[:, memory + length] = num_symbols + 1
    labels = np.zeros((num_examples, total), dtype="int32")
    labels[:, -memory:] = symbols
    return np.eye(num_symbols + 2, dtype="float32")[tokens], labels


TASKS["copy_memory"] = copy_memory


def noisy_markov_labels(num_examples, length, stay_probability=0.9, signal=0.5, seed=0):
    """A two-state Markov chain seen through Gaussian noise: tag every step with the hidden state.

    `y(t)` stays equal to `y(t-1)` with probability `stay_probability` (`y(1)` is uniform);
    `x(t) = signal * (2 y(t) - 1) + N(0, 1)`. One observation says little, so a good tagger
    accumulates evidence over time (the forward algorithm of the hidden Markov model is the
    optimum, `markov_filter_accuracy`). Given the *true* `y(t-1)`, though, only `x(t)` adds
    anything: a model trained with teacher forcing learns to lean on `y(t-1)`, which is what
    breaks when it must feed back its own mistakes (section 10.2.1).

    Returns:
        `x` `(num_examples, length, 1)` float32, `y` `(num_examples, length)` int32.

    Example:

    >>> x, y = noisy_markov_labels(2, 6, seed=0)
    >>> x.shape, y.shape, x.dtype.name, y.dtype.name
    ((2, 6, 1), (2, 6), 'float32', 'int32')
    """
    _check("noisy_markov_labels", num_examples, length)
    if not 0.0 < stay_probability < 1.0:
        raise ValueError(
            "`noisy_markov_labels(stay_probability=...)` must be in (0, 1). "
            f"Received: stay_probability={stay_probability!r}"
        )
    rng = np.random.default_rng(seed)
    switches = rng.random((num_examples, length)) > stay_probability
    switches[:, 0] = rng.random(num_examples) < 0.5
    y = (np.cumsum(switches, axis=1) % 2).astype("int32")
    x = signal * (2.0 * y - 1.0) + rng.normal(size=y.shape)
    return x[..., None].astype("float32"), y


def markov_filter_accuracy(x, y, stay_probability=0.9, signal=0.5):
    """Per-step accuracy of the optimal causal tagger (HMM forward filter) on `noisy_markov_labels`."""
    x = np.asarray(x, np.float64)[..., 0]
    belief = np.full(x.shape[0], 0.5)  # P(y(t) = 1 | x(1..t))
    correct = 0
    for t in range(x.shape[1]):
        if t > 0:
            belief = stay_probability * belief + (1 - stay_probability) * (1 - belief)
        like1 = np.exp(-0.5 * (x[:, t] - signal) ** 2)
        like0 = np.exp(-0.5 * (x[:, t] + signal) ** 2)
        belief = belief * like1 / (belief * like1 + (1 - belief) * like0)
        correct += np.sum((belief > 0.5) == (y[:, t] == 1))
    return correct / y.size


def arithmetic_sequences(num_examples, length, vocabulary_size=7, seed=0):
    """A context vector names an arithmetic progression modulo `vocabulary_size`; generate it.

    `x` is `[one_hot(start), one_hot(step - 1)]` with `start` in `[0, vocabulary_size)` and
    `step` in {1, 2}; `y(t) = (start + step * (t - 1)) mod vocabulary_size`. A generator of
    `y` given `x` (fig. 10.9) must read both parts of the context and count.

    Returns:
        `x` `(num_examples, vocabulary_size + 2)` float32, `y` `(num_examples, length)` int32.

    Example:

    >>> x, y = arithmetic_sequences(1, 5, vocabulary_size=7, seed=0)
    >>> start, step = int(x[0, :7].argmax()), int(x[0, 7:].argmax()) + 1
    >>> y[0].tolist() == [(start + step * t) % 7 for t in range(5)]
    True
    """
    _check("arithmetic_sequences", num_examples, length)
    if isinstance(vocabulary_size, bool) or not isinstance(vocabulary_size, (int, np.integer)) or vocabulary_size < 2:
        raise ValueError(
            "`arithmetic_sequences(vocabulary_size=...)` must be an integer >= 2. "
            f"Received: vocabulary_size={vocabulary_size!r}"
        )
    rng = np.random.default_rng(seed)
    start = rng.integers(0, vocabulary_size, size=num_examples)
    step = rng.integers(1, 3, size=num_examples)
    y = (start[:, None] + step[:, None] * np.arange(length)[None, :]) % vocabulary_size
    x = np.concatenate([np.eye(vocabulary_size)[start], np.eye(2)[step - 1]], axis=1)
    return x.astype("float32"), y.astype("int32")


def variable_length_sequences(num_examples, vocabulary_size=4, min_length=2, max_length=8, seed=0):
    """Random token sequences whose lengths are uniform in `[min_length, max_length]`.

    For the length models of section 10.2.3: the tokens are uniform (ids `1..vocabulary_size`,
    0 is padding), so all there is to learn is when to stop; the length distribution is known
    (mean `(min_length + max_length) / 2`).

    Returns:
        `tokens` `(num_examples, max_length)` int32 (0 after the end), `lengths`
        `(num_examples,)` int32.

    Example:

    >>> tokens, lengths = variable_length_sequences(3, min_length=2, max_length=5, seed=0)
    >>> tokens.shape, bool(((tokens > 0).sum(axis=1) == lengths).all())
    ((3, 5), True)
    """
    _check("variable_length_sequences", num_examples, max_length)
    if isinstance(min_length, bool) or not isinstance(min_length, (int, np.integer)) or not 1 <= min_length <= max_length:
        raise ValueError(
            "`variable_length_sequences(min_length=...)` must be an integer in [1, max_length]. "
            f"Received: min_length={min_length!r}"
        )
    rng = np.random.default_rng(seed)
    lengths = rng.integers(min_length, max_length + 1, size=num_examples)
    tokens = rng.integers(1, vocabulary_size + 1, size=(num_examples, max_length))
    tokens = np.where(np.arange(max_length)[None, :] < lengths[:, None], tokens, 0)
    return tokens.astype("int32"), lengths.astype("int32")
