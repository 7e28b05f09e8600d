"""A tagger with output recurrence, trained with teacher forcing, run closed-loop (figs. 10.4, 10.6)."""

import keras

from rnnzoo.foundation import validate_units
from rnnzoo.layers.output_recurrent_rnn import OutputRecurrentRNN

LAYER_NAME = "output_recurrent_rnn"


def output_recurrent_tagger(num_classes, features, units=32, *, hidden_recurrence=False, scheduled_sampling=False,
                            seed=None, name="output_recurrent_tagger", **layer_kwargs):
    """Builds the teacher-forced training model `{x(1..tau), y(1..tau)} -> o(1..tau)` (fig. 10.6).

    The network of fig. 10.4: the state `h(t)` is fed `x(t)` and the previous output `y(t-1)`;
    with `hidden_recurrence=True` also `h(t-1)` (the hybrid, fig. 10.10). Training feeds the
    true `y(t-1)` (teacher forcing; the model takes the labels as its `"labels"` input and
    shifts them itself, so `o(t)` never sees `y(t)`), or with `scheduled_sampling=True` and the
    `ScheduledSampling` callback, sometimes the model's own sample. Train with
    `model.fit({"x": x, "labels": y}, y)` and `SparseCategoricalCrossentropy(from_logits=True)`,
    then predict and export with `closed_loop_tagger(model)`, which feeds back its own
    greedy predictions.

    Args:
        num_classes: int, number of classes per step.
        features: int, size of `x(t)`.
        units: int, size of `h(t)`.
        hidden_recurrence: bool, add `h(t-1) -> h(t)`.
        scheduled_sampling: bool, train with scheduled sampling.
        seed: int or None, seed of the scheduled-sampling randomness.
        name: str.
        **layer_kwargs: more `OutputRecurrentRNN` arguments.

    Returns:
        A functional `keras.Model` taking `{"x": (batch, time, features) float32, "labels":
        (batch, time) int32}` and returning `(batch, time, num_classes)` logits.

    Example:

    >>> model = output_recurrent_tagger(num_classes=2, features=1, units=8)
    >>> out = model({"x": np.zeros((3, 7, 1), "float32"), "labels": np.zeros((3, 7), "int32")})
    >>> tuple(out.shape), tuple(closed_loop_tagger(model)(np.zeros((3, 7, 1), "float32")).shape)
    ((3, 7, 2), (3, 7, 2))
    """
    validate_units("features", features, "output_recurrent_tagger")
    x = keras.Input((None, features), name="x")
    labels = keras.Input((None,), dtype="int32", name="labels")
    layer = OutputRecurrentRNN(units, num_classes, hidden_recurrence=hidden_recurrence,
                               scheduled_sampling=scheduled_sampling, seed=seed, name=LAYER_NAME, **layer_kwargs)
    return keras.Model({"x": x, "labels": labels}, layer(x, labels=labels), name=name)


def closed_loop_tagger(model, name=None):
    """The inference model of an `output_recurrent_tagger`: `x(1..tau) -> o(1..tau)`, closed loop.

    Shares the weights of `model` (training it trains this one). At every step it feeds back
    the one-hot of its own greedy prediction `argmax o(t-1)`, inside the graph; it exports to
    SavedModel and TFLite builtins with batch and time dynamic.

    Args:
        model: a model from `output_recurrent_tagger` (or any model with an
            `OutputRecurrentRNN` layer named `"output_recurrent_rnn"`).
        name: str or None (default: the model's name + `"_closed_loop"`).

    Returns:
        A functional `keras.Model`, `(batch, time, features)` -> `(batch, time, num_classes)`.
    """
    try:
        layer = model.get_layer(LAYER_NAME)
    except ValueError:
        layer = None
    if not isinstance(layer, OutputRecurrentRNN):
        raise ValueError(
            f"`closed_loop_tagger` needs a model with an `OutputRecurrentRNN` layer named {LAYER_NAME!r}, as "
            f"built by `output_recurrent_tagger`. Received: model={model.name!r}"
        )
    x = keras.Input((None, layer.cell.U.shape[0]), name="x")
    return keras.Model(x, layer(x), name=name or f"{model.name}_closed_loop")
