"""`VanillaRNN`: the book's vanilla recurrent network over whole sequences (section 10.2),
`Recurrent` over a `VanillaRNNCell`, with the book's BPTT as its gradient."""

import inspect

import keras

from rnnzoo.cells.vanilla_rnn_cell import VanillaRNNCell
from rnnzoo.layers.recurrent import Recurrent

# The cell's arguments (everything `VanillaRNNCell.__init__` takes but the base-layer kwargs).
# The layer forwards them to its cell, reads them back as properties and saves them from the
# cell's config: adding an argument to the cell is one edit.
CELL_ARGUMENTS = tuple(
    name for name, p in inspect.signature(VanillaRNNCell.__init__).parameters.items()
    if name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD
)


@keras.saving.register_keras_serializable(package="rnnzoo")
class VanillaRNN(Recurrent):
    """The book's vanilla recurrent network over whole sequences, trained with explicit BPTT.

    Computes, for t = 1..time,

        a(t) = b + W h(t-1) + U x(t),   h(t) = tanh(a(t)),   o(t) = c + V h(t)

    where the output layer `o(t)` is present only with `output_units`. It is
    `Recurrent(VanillaRNNCell(...))`, the drop-in for `keras.layers.SimpleRNN`: the same
    arguments, the same weights in the same order (`U, W, b` = `kernel, recurrent_kernel,
    bias`), the same results. With `gradient="bptt"` (the default) its gradient is the book's
    back-propagation through time (`rnnzoo.bptt`), supplied by the cell as the gradient of
    the whole sequence; with `"autodiff"` the same forward pass is differentiated
    automatically. Its loop exports to TFLite with builtin ops only, batch and time dynamic.

    Args:
        units: int, size of the hidden state.
        output_units, activation, use_bias, kernel_initializer, recurrent_initializer,
            bias_initializer, output_initializer, kernel_regularizer, recurrent_regularizer,
            bias_regularizer, kernel_constraint, recurrent_constraint, bias_constraint,
            dropout, recurrent_dropout, seed, gradient, jit_compile: the cell's arguments,
            see `rnnzoo.cells.VanillaRNNCell`; each is also a read-only property of the layer.
        return_sequences, return_state, go_backwards, stateful, unroll,
            zero_output_for_mask: see `rnnzoo.layers.Recurrent`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`,
            `activity_regularizer`, ...).

    Call arguments:
        sequences: `(batch, time, features)` floating-point tensor, `time >= 1`.
        initial_state: optional `(batch, units)` tensor `h(0)` (or a list of one); zeros if
            omitted.
        mask: optional `(batch, time)` boolean tensor, True at valid steps.
        training: bool; applies dropout, and on TensorFlow selects the training loop or the
            export-friendly one (they compute the same function).

    Returns:
        `(batch, time, n)` if `return_sequences` else `(batch, n)`, with `n = output_units or
        units`; with `return_state`, a list `[outputs, final_state]`.

    Example:

    >>> layer = VanillaRNN(8, output_units=3, return_sequences=True)
    >>> tuple(layer(np.zeros((2, 5, 4), "float32")).shape)
    (2, 5, 3)
    >>> [w.path.split("/")[-1] for w in layer.weights]
    ['U', 'W', 'b', 'V', 'c']

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, sections 10.2 and 10.2.2 (BPTT).
    """

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        cell_kwargs = {name: kwargs.pop(name) for name in CELL_ARGUMENTS if name in kwargs}
        try:
            cell = VanillaRNNCell(units, dtype=kwargs.get("dtype"), name="cell", **cell_kwargs)
        except (TypeError, ValueError) as error:  # name the class the user called
            raise type(error)(str(error).replace("`VanillaRNNCell(", "`VanillaRNN(")) from None
        super().__init__(cell, return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, unroll=unroll,
                         zero_output_for_mask=zero_output_for_mask, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["cell"]
        cell_config = self.cell.get_config()
        return {**config, **{name: cell_config[name] for name in CELL_ARGUMENTS}}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _cell_property(name):
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's `{name}`.")


for _name in CELL_ARGUMENTS:
    setattr(VanillaRNN, _name, _cell_property(_name))
del _name
