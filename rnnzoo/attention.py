"""Additive attention of Bahdanau, Cho and Bengio (2015), section 10.4 of the Deep Learning book."""

import keras
import numpy as np
from keras import ops

from rnnzoo.foundation import validate_units



@keras.saving.register_keras_serializable(package="rnnzoo")
class BahdanauAttention(keras.layers.Layer):
    """Additive attention: `e(t, j) = v_a^T tanh(W_a s(t-1) + U_a h(j))`, `alpha = softmax_j(e)`.

    The context is `c(t) = sum_j alpha(t, j) h(j)`. Padded source positions (mask False) get
    an attention weight of exactly zero. The keys `U_a h(j)` do not depend on `t`: a decoder
    computes them once with `keys(values)` and then calls `score(...)` at every step.

    Args:
        units: int, the size of the alignment model's hidden layer (the rows of `W_a`, `U_a`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        query: `(batch, query_dim)`, the decoder's previous state `s(t-1)`.
        values: `(batch, source_time, value_dim)`, the encoder's annotations `h(j)`.
        mask: optional `(batch, source_time)` boolean, True at real (not padded) positions.

    Returns:
        `(context, attention_weights)`: `(batch, value_dim)` and `(batch, source_time)`.

    Example:

    >>> attention = BahdanauAttention(8)
    >>> context, weights = attention(np.ones((2, 5), "float32"), np.ones((2, 7, 6), "float32"))
    >>> tuple(context.shape), tuple(weights.shape)
    ((2, 6), (2, 7))

    Reference:
        Bahdanau, Cho, Bengio, *Neural Machine Translation by Jointly Learning to Align and
        Translate*, ICLR 2015, appendix A.1.2.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        validate_units("units", units, "BahdanauAttention")
        self.units = units
        self.supports_masking = True

    def _check(self, query_shape, values_shape, mask_shape=None, dtypes=None):
        """Keras-style errors for ranks, dtypes, feature sizes (after build) and the mask's shape."""
        query_shape, values_shape = tuple(query_shape), tuple(values_shape)
        if len(query_shape) != 2 or len(values_shape) != 3:
            raise ValueError(
                "`BahdanauAttention` expects query (batch, query_dim) and values (batch, "
                f"source_time, value_dim). Received: query.shape={query_shape}, values.shape={values_shape}"
            )
        if query_shape[-1] is None or values_shape[-1] is None:
            raise ValueError("`BahdanauAttention` needs known feature sizes (last axes of query and values). "
                             f"Received: query.shape={query_shape}, values.shape={values_shape}")
        if self.built:
            for arg, shape, weight in (("query", query_shape, self.W_a), ("values", values_shape, self.U_a)):
                if shape[-1] != weight.shape[0]:
                    raise ValueError(
                        f"`BahdanauAttention` was built for `{arg}` with {weight.shape[0]} features (last axis) "
                        f"but received {shape[-1]}. Received: {arg}.shape={shape}"
                    )
        if None not in (query_shape[0], values_shape[0]) and query_shape[0] != values_shape[0]:
            raise ValueError("`BahdanauAttention` expects query and values with the same batch size. "
                             f"Received: query.shape={query_shape}, values.shape={values_shape}")
        if mask_shape is not None:
            mask_shape = tuple(mask_shape)
            if len(mask_shape) != 2 or any(
                m is not None and v is not None and m != v for m, v in zip(mask_shape, values_shape[:2])
            ):
                raise ValueError(
                    f"`BahdanauAttention` expects a mask of shape (batch, source_time) = {values_shape[:2]}, "
                    f"matching `values`. Received: mask.shape={mask_shape}"
                )
        if dtypes is not None:
            for arg, dtype in zip(("query", "values"), dtypes):
                if not keras.backend.is_float_dtype(dtype):
                    raise TypeError(
                        f"`BahdanauAttention` expects floating-point `{arg}` (embed or cast integer inputs first). "
                        f"Received: {arg}.dtype={keras.backend.standardize_dtype(dtype)}"
                    )

    def build(self, query_shape, values_shape=None, mask_shape=None):
        if values_shape is None:
            raise ValueError("`BahdanauAttention` is built from (query_shape, values_shape). Received: values_shape=None")
        self._check(query_shape, values_shape, mask_shape)
        self.W_a = self.add_weight(shape=(query_shape[-1], self.units), name="W_a", initializer="glorot_uniform")
        self.U_a = self.add_weight(shape=(values_shape[-1], self.units), name="U_a", initializer="glorot_uniform")
        self.b_a = self.add_weight(shape=(self.units,), name="b_a", initializer="zeros")
        self.v_a = self.add_weight(shape=(self.units,), name="v_a", initializer="glorot_uniform")

    def keys(self, values):
        """`U_a h(j) + b_a` for every source position: `(batch, source_time, units)`."""
        return ops.matmul(values, self.U_a) + self.b_a

    def score(self, query, values, keys, mask=None):
        """One decoder step: `(context, attention_weights)` from precomputed `keys`."""
        hidden = ops.tanh(ops.expand_dims(ops.matmul(query, self.W_a), 1) + keys)  # (batch, source_time, units)
        energies = ops.sum(hidden * self.v_a, axis=-1)  # (batch, source_time)
        if mask is not None:
            # A finite score, large for the dtype (float16 too), so that a row with every position
            # masked gives zeros, never NaN: `where`, not arithmetic, since -inf * 0 is NaN.
            masked_score = -0.7 * float(np.finfo(keras.backend.standardize_dtype(energies.dtype)).max)
            energies = ops.where(ops.cast(mask, "bool"), energies, ops.full_like(energies, masked_score))
            mask = ops.cast(mask, energies.dtype)
        weights = ops.softmax(energies, axis=-1)
        if mask is not None:
            weights = weights * mask  # exactly zero at padding (and everywhere if all is padding)
        context = ops.sum(ops.expand_dims(weights, -1) * values, axis=1)  # (batch, value_dim)
        return context, weights

    def call(self, query, values, mask=None):
        self._check(query.shape, values.shape, None if mask is None else mask.shape, (query.dtype, values.dtype))
        return self.score(query, values, self.keys(values), mask)

    def compute_output_shape(self, query_shape, values_shape, mask_shape=None):
        return (query_shape[0], values_shape[-1]), (query_shape[0], values_shape[1])

    def compute_mask(self, query, values, mask=None):
        return None

    def get_config(self):
        return {**super().get_config(), "units": self.units}
