"""Sequence to one: a reader that summarizes a whole sequence into one output at the end (fig. 10.5)."""

import keras

from rnnzoo.foundation import validate_units
from rnnzoo.layers.vanilla_rnn import VanillaRNN


def _sequence_to_one(num_outputs, features, units, mask_value, name, layer_kwargs, builder):
    validate_units("features", features, builder)
    validate_units("units", units, builder)
    validate_units("num_outputs" if builder == "sequence_regressor" else "num_classes", num_outputs, builder)
    for reserved in ("return_sequences", "return_state", "output_units"):
        if reserved in layer_kwargs:
            raise ValueError(
                f"`{builder}` sets `{reserved}` itself (a sequence-to-one model reads the output "
                f"o(tau) of the last step). Received: {reserved}={layer_kwargs[reserved]!r}"
            )
    inputs = keras.Input((None, features), name="x")
    x = inputs if mask_value is None else keras.layers.Masking(mask_value)(inputs)
    # o(tau) = c + V h(tau): the output layer is read once, after the last (valid) step.
    outputs = VanillaRNN(units, output_units=num_outputs, return_sequences=False, name="vanilla_rnn",
                         **layer_kwargs)(x)  # (batch, num_outputs)
    return keras.Model(inputs, outputs, name=name)


def sequence_classifier(num_classes, features, units=32, *, mask_value=None, name="sequence_classifier",
                        **layer_kwargs):
    """Builds `x(1..tau) -> o(tau)`, the logits of one class for the whole sequence (fig. 10.5).

    The network of fig. 10.5: a vanilla RNN reads the whole sequence, and the single output
    `o(tau) = c + V h(tau)` at the end summarizes it. Train it with
    `SparseCategoricalCrossentropy(from_logits=True)`. With `mask_value`, padded steps carry
    the state unchanged, so `o(tau)` is read at each sequence's last valid step and sequences
    of different lengths share a batch.

    Args:
        num_classes: int, number of classes.
        features: int, size of `x(t)`.
        units: int, size of `h(t)`.
        mask_value: optional float; steps whose features all equal it are padding.
        name: str, the model's name.
        **layer_kwargs: more `VanillaRNN` arguments (`gradient`, initializers, ...).

    Returns:
        A functional `keras.Model` taking `(batch, time, features)` float32, batch and time
        dynamic, returning `(batch, num_classes)` logits.

    Example:

    >>> model = sequence_classifier(num_classes=2, features=1, units=8)
    >>> tuple(model(np.zeros((3, 7, 1), "float32")).shape)
    (3, 2)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.2, fig. 10.5.
    """
    return _sequence_to_one(num_classes, features, units, mask_value, name, layer_kwargs, "sequence_classifier")


def sequence_regressor(features, units=32, num_outputs=1, *, mask_value=None, name="sequence_regressor",
                       **layer_kwargs):
    """Builds `x(1..tau) -> o(tau)`, a real-valued summary of the whole sequence (fig. 10.5).

    The same reader as `sequence_classifier` with a linear output; train it with
    `"mean_squared_error"` (e.g. on `rnnzoo.data.tasks.adding_problem`).

    Args:
        features: int, size of `x(t)`.
        units: int, size of `h(t)`.
        num_outputs: int, size of the target.
        mask_value: optional float; steps whose features all equal it are padding.
        name: str, the model's name.
        **layer_kwargs: more `VanillaRNN` arguments.

    Returns:
        A functional `keras.Model`, `(batch, time, features)` -> `(batch, num_outputs)`.

    Example:

    >>> model = sequence_regressor(features=2, units=8)
    >>> tuple(model(np.zeros((3, 10, 2), "float32")).shape)
    (3, 1)
    """
    return _sequence_to_one(num_outputs, features, units, mask_value, name, layer_kwargs, "sequence_regressor")
