"""Recurrent-weight initializers for long-term dependencies (section 10.7).

`VanillaRNN(recurrent_initializer=...)` takes any Keras initializer. Two choices matter for
learning long-term dependencies: an orthogonal `W` (`keras.initializers.Orthogonal(gain=g)`,
every eigenvalue of modulus `g`; the layers' default with `g = 1`) and a scaled identity
(Le, Jaitly & Hinton, 2015: the IRNN, `relu` activation with `W = I`). Keras's own
`keras.initializers.Identity(gain=...)` forgets its `gain` in `get_config` (Keras 3.15), so a
saved model or a config round-trip silently comes back with `gain=1`; `ScaledIdentity` keeps it.

`recurrent_initializer("identity:0.9")` turns the short strings a command line takes into
initializers.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="rnnzoo")
class ScaledIdentity(keras.initializers.Initializer):
    """`gain * I`: the identity recurrent matrix of the IRNN, with a scale.

    Unlike `keras.initializers.Identity`, its `gain` survives `get_config` / `from_config`
    and `.keras` saving.

    Args:
        gain: float, the value on the diagonal (every eigenvalue of `W` equals it).

    Example:

    >>> ops.convert_to_numpy(ScaledIdentity(0.5)((2, 2))).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    >>> ScaledIdentity.from_config(ScaledIdentity(0.5).get_config()).gain
    0.5

    Reference:
        Le, Jaitly, Hinton, *A Simple Way to Initialize Recurrent Networks of Rectified Linear
        Units*, 2015.
    """

    def __init__(self, gain=1.0):
        if isinstance(gain, bool) or not isinstance(gain, (int, float)):
            raise ValueError(f"`ScaledIdentity(gain=...)` must be a number. Received: gain={gain!r}")
        self.gain = float(gain)

    def __call__(self, shape, dtype=None):
        if len(shape) != 2:
            raise ValueError(
                "`ScaledIdentity` initializes 2D matrices only (a recurrent `W`). "
                f"Received: shape={tuple(shape)}"
            )
        return self.gain * ops.eye(shape[0], shape[1], dtype=dtype or keras.backend.floatx())

    def get_config(self):
        return {"gain": self.gain}


def recurrent_initializer(spec):
    """An initializer from a command-line string `NAME[:GAIN]`.

    `"identity:0.9"` gives `ScaledIdentity(0.9)`, `"orthogonal:1.2"` gives
    `keras.initializers.Orthogonal(gain=1.2)`; any other Keras initializer name
    (`"glorot_uniform"`, ...) is passed to `keras.initializers.get` (no gain allowed).

    Example:

    >>> recurrent_initializer("identity:0.9").gain
    0.9
    >>> type(recurrent_initializer("orthogonal")).__name__
    'Orthogonal'
    """
    if not isinstance(spec, str):
        return keras.initializers.get(spec)
    name, _, gain_text = spec.partition(":")
    gain = 1.0
    if gain_text:
        try:
            gain = float(gain_text)
        except ValueError:
            raise ValueError(
                f"`recurrent_initializer` expects `NAME[:GAIN]` with a numeric gain, e.g. "
                f"'identity:0.9'. Received: spec={spec!r}"
            ) from None
    if name == "identity":
        return ScaledIdentity(gain)
    if name == "orthogonal":
        return keras.initializers.Orthogonal(gain=gain)
    if gain_text:
        raise ValueError(
            f"Only 'identity' and 'orthogonal' take a gain. Received: spec={spec!r}"
        )
    return keras.initializers.get(name)


__all__ = ["ScaledIdentity", "recurrent_initializer"]
