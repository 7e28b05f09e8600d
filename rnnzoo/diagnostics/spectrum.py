"""The eigenvalue argument of section 10.7: W's spectrum and the products of Jacobians.

Without the nonlinearity the recurrence is `h(t) = W^T h(t-1)` in the book's notation
(eq. 10.36), so `h(t) = (W^t)^T h(0)` (eq. 10.37): with `W = Q Lambda Q^-1` each component of
`h` along an eigenvector is multiplied by its eigenvalue `lambda` at every step. Components
with `|lambda| < 1` vanish as `lambda^t`, those with `|lambda| > 1` explode; the spectral
radius `max |lambda|` decides which way the long-term behaviour goes.

With the nonlinearity, the gradient that flows from `h(tau)` back to `h(t)` is multiplied
by the Jacobian product

    dh(tau)/dh(t) = J(tau) J(tau-1) ... J(t+1),   J(s) = dh(s)/dh(s-1) = diag(f'(a(s))) W_book

and `jacobian_norms` gives its norm for every `t`. Here, as in `rnnzoo.bptt`, `h` is a row
vector and `W` is stored as the transpose of the book's matrix (`h(t) = f(h(t-1) @ W + ...)`):
`W` and its transpose have the same eigenvalues, so the spectrum is the same either way.
"""

import numpy as np
from keras import ops

from rnnzoo import bptt, recurrence


def _numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def vector_norm(x):
    """Euclidean norm over the last axis (not `ops.norm`: on JAX it computes float64 in float32)."""
    return ops.sqrt(ops.sum(ops.square(x), axis=-1))


def matrix_norm(x, ord=2):
    """Spectral (`2`) or Frobenius (`"fro"`) norm of the last two axes, in the input's dtype."""
    if ord == "fro":
        return ops.sqrt(ops.sum(ops.square(x), axis=(-2, -1)))
    return ops.max(ops.svd(x, compute_uv=False), axis=-1)


def eigenvalues(W):
    """The eigenvalues of the recurrent matrix, largest modulus first.

    Computed on the host with NumPy (`numpy.linalg.eigvals`): they are a diagnostic result,
    and the general (non-symmetric) eigensolver is not available on every backend and
    device (JAX's runs on CPU only).

    Args:
        W: `(units, units)` tensor or array (e.g. `layer.cell.W`).

    Returns:
        `(units,)` complex NumPy array, sorted by decreasing `|lambda|`.

    Example:

    >>> eigenvalues(np.diag([0.5, -2.0])).real.tolist()
    [-2.0, 0.5]
    """
    W = _numpy(W)
    if W.ndim != 2 or W.shape[0] != W.shape[1]:
        raise ValueError(f"`eigenvalues` expects a square matrix `W`. Received: W.shape={W.shape}")
    values = np.linalg.eigvals(W.astype(np.float64))
    return values[np.argsort(-np.abs(values), kind="stable")]


def spectral_radius(W):
    """`max |lambda|` over the eigenvalues of `W`, a Python float.

    Example:

    >>> spectral_radius(np.array([[0.0, 2.0], [0.5, 0.0]]))
    1.0
    """
    return float(np.abs(eigenvalues(W)).max())


def linear_recurrence(h0, W, steps):
    """`h(t) = h(t-1) @ W` for `t = 1..steps`: the recurrence of eq. 10.36 without `tanh`.

    Args:
        h0: `(batch, units)` initial state.
        W: `(units, units)`.
        steps: int >= 1.

    Returns:
        `(batch, steps + 1, units)`: `h(0), h(1), ..., h(steps)`.

    Example:

    >>> hs = linear_recurrence(np.ones((1, 2)), np.diag([0.5, 2.0]), 3)
    >>> ops.convert_to_numpy(hs)[0, -1].tolist()
    [0.125, 8.0]
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"`linear_recurrence(steps=...)` must be an integer >= 1. Received: steps={steps!r}")
    h0 = ops.convert_to_tensor(h0)
    W = ops.cast(ops.convert_to_tensor(W), h0.dtype)

    def step(h, _):
        h = ops.matmul(h, W)  # h(t) = W^T h(t-1) in the book's column notation
        return h, h

    _, hs = recurrence.scan(step, h0, ops.zeros((steps, 1), h0.dtype), training=True)  # (steps, batch, units)
    return ops.concatenate([ops.expand_dims(h0, 1), ops.transpose(hs, (1, 0, 2))], axis=1)


def _jacobian_scan(hs, W, activation, output):
    # hs: (batch, time, units). Runs backwards from P = dh(tau)/dh(tau) = I, and at step t
    # emits `output(P)` with P = dh(tau)/dh(t), then moves on to P @ J(t) = dh(tau)/dh(t-1).
    hs = ops.convert_to_tensor(hs)
    W_transposed = ops.transpose(ops.cast(W, hs.dtype))
    derivatives = ops.transpose(bptt.activation_derivative(hs, activation), (1, 0, 2))  # (time, batch, units)
    batch, units = ops.shape(hs)[0], ops.shape(hs)[2]
    identity = ops.broadcast_to(ops.eye(units, dtype=hs.dtype), (batch, units, units))

    def step(P, derivative):
        jacobian = ops.expand_dims(derivative, -1) * W_transposed  # J(t)[i, j] = f'(a_i(t)) W[j, i]
        return ops.matmul(P, jacobian), output(P)

    P_first, ys = recurrence.scan(step, identity, derivatives, training=True, reverse=True)
    return P_first, ys


def jacobian_products(hs, W, activation="tanh"):
    """`dh(tau)/dh(t)` for every `t = 1..tau` (and `t = 0`), as full matrices.

    Row `i`, column `j` of the product is `d h_i(tau) / d h_j(t)`, so for a loss that
    depends on `h(tau)` only, `grad_h(t) L = grad_h(tau) L @ P(t)` (row vectors).
    Memory grows as `batch * time * units^2`: for norms over long sequences use
    `jacobian_norms`.

    Args:
        hs: `(batch, time, units)`, the states `h(1..tau)` (from `rnnzoo.bptt.forward`).
        W: `(units, units)` recurrent matrix.
        activation: `"tanh"` or `"relu"`.

    Returns:
        `(products, first)`: `products` `(batch, time, units, units)`, entry `t - 1` being
        `dh(tau)/dh(t)`; `first` `(batch, units, units)` is `dh(tau)/dh(0)`.
    """
    first, products = _jacobian_scan(hs, W, activation, lambda P: P)
    return ops.transpose(products, (1, 0, 2, 3)), first


def jacobian_norms(hs, W, activation="tanh", ord=2):
    """Norms of the Jacobian products `dh(tau)/dh(t)`, by distance `tau - t`.

    Args:
        hs: `(batch, time, units)`, the states `h(1..tau)`.
        W: `(units, units)` recurrent matrix.
        activation: `"tanh"` or `"relu"`.
        ord: `2` (spectral norm, the largest singular value) or `"fro"`.

    Returns:
        `(batch, time + 1)` NumPy array; column `k` is `||dh(tau)/dh(tau - k)||`, so column 0
        is `||I||` and the last column is `||dh(tau)/dh(0)||`.

    Example:

    >>> hs = np.zeros((1, 3, 2))  # h = 0: f'(a) = 1, the products are powers of W
    >>> jacobian_norms(hs, np.diag([0.5, 0.25])).round(4).tolist()
    [[1.0, 0.5, 0.25, 0.125]]
    """
    if ord not in (2, "fro"):
        raise ValueError(f"`jacobian_norms(ord=...)` must be 2 or 'fro'. Received: ord={ord!r}")
    norm = lambda P: matrix_norm(P, ord)  # noqa: E731
    first, norms = _jacobian_scan(hs, W, activation, norm)  # norms: (time, batch), t = 1..tau
    norms = ops.concatenate([ops.expand_dims(norm(first), 0), norms], axis=0)  # t = 0..tau
    return _numpy(ops.flip(ops.transpose(norms), axis=1))


__all__ = ["eigenvalues", "spectral_radius", "linear_recurrence", "jacobian_products", "jacobian_norms"]
