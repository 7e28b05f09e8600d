"""A sequence tagger: the book's vanilla RNN with a softmax output at every step (fig. 10.3)."""

import keras

from rnnzoo.layers.vanilla_rnn import VanillaRNN


def vanilla_tagger(num_classes, features, units=32, *, gradient="bptt", mask_value=None, name="vanilla_tagger", **layer_kwargs):
    """Builds `x(1..tau) -> o(1..tau)`, the logits of `y_hat(t) = softmax(o(t))` at every step.

    The whole network of fig. 10.3 is one `VanillaRNN` with its in-layer output
    `o(t) = c + V h(t)`; train it with `SparseCategoricalCrossentropy(from_logits=True)`.

    Args:
        num_classes: int, number of classes per step.
        features: int, size of `x(t)`.
        units: int, size of `h(t)`.
        gradient: `"bptt"` or `"autodiff"`.
        mask_value: optional float; steps whose features all equal it are padding
            (`keras.layers.Masking`).
        name: str, the model's name.
        **layer_kwargs: more `VanillaRNN` arguments (initializers, `unroll`, ...).

    Returns:
        A functional `keras.Model` taking `(batch, time, features)` float32, batch and time
        dynamic, returning `(batch, time, num_classes)` logits.

    Example:

    >>> model = vanilla_tagger(num_classes=2, features=1, units=8)
    >>> tuple(model(np.zeros((3, 7, 1), "float32")).shape)
    (3, 7, 2)
    """
    inputs = keras.Input((None, features), name="x")
    x = inputs if mask_value is None else keras.layers.Masking(mask_value)(inputs)
    logits = VanillaRNN(units, output_units=num_classes, return_sequences=True, gradient=gradient,
                        name="vanilla_rnn", **layer_kwargs)(x)
    return keras.Model(inputs, logits, name=name)
