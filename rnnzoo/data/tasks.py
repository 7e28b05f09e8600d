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
