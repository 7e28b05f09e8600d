"""Figure 10.15: many compositions of a tanh layer make a highly nonlinear function.

Take the transition `h -> tanh(W h + b)` of a 100-unit network, start from `h(0) = s d` for a
coordinate `s` along a random unit direction `d`, and project `h(k)` (the state after `k`
compositions) on a random unit vector `p`. Plotted against `s`, the curve `p . h(k)` is a
linear cross-section of the `k`-fold composition: as `k` grows it gets flat almost
everywhere, with a few steep places and many alternations -- tiny derivatives in most
places, huge ones in a few, which is what makes gradients through many steps vanish or explode.
"""

import numpy as np
from keras import ops

from rnnzoo import bptt


def composition_cross_section(coordinates, W, b, direction, projection, depth):
    """`p . h(k)` for `h(0) = s d`, `h(k) = tanh(h(k-1) @ W + b)`, every `s` and `k = 0..depth`.

    The compositions are the vanilla recurrence with no input (`rnnzoo.bptt.forward` with
    `U = 0`), run with the points `s` as the batch.

    Args:
        coordinates: `(points,)` values of `s`.
        W: `(units, units)`. b: `(units,)`.
        direction: `(units,)` the direction `d` of the cross-section.
        projection: `(units,)` the vector `p` the state is projected on.
        depth: int >= 1, the largest number of compositions.

    Returns:
        `(depth + 1, points)` NumPy array; row `k` is `p . h(k)` (row 0 is `p . (s d)`).

    Example:

    >>> W = np.eye(2) * 3.0
    >>> y = composition_cross_section(np.array([0.0, 1.0]), W, np.zeros(2), np.array([1.0, 0.0]), np.array([1.0, 0.0]), 2)
    >>> print(y.round(3))
    [[0.    1.   ]
     [0.    0.995]
     [0.    0.995]]
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"`composition_cross_section(depth=...)` must be an integer >= 1. Received: depth={depth!r}")
    coordinates = ops.convert_to_tensor(coordinates)
    dtype = coordinates.dtype
    W = ops.cast(W, dtype)
    units = ops.shape(W)[0]
    h0 = ops.expand_dims(coordinates, 1) * ops.expand_dims(ops.cast(direction, dtype), 0)  # (points, units)
    no_input = ops.zeros((ops.shape(coordinates)[0], depth, 1), dtype)
    hs = bptt.forward(no_input, h0, ops.zeros((1, units), dtype), W, ops.cast(b, dtype))  # (points, depth, units)
    hs = ops.concatenate([ops.expand_dims(h0, 1), hs], axis=1)  # (points, depth + 1, units)
    projected = ops.matmul(hs, ops.cast(projection, dtype))  # (points, depth + 1)
    return np.asarray(ops.convert_to_numpy(ops.transpose(projected)))


__all__ = ["composition_cross_section"]
