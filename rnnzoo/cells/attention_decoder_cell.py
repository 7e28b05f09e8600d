"""One decoder step of an encoder-decoder (section 10.4): fixed context (fig. 10.12) or attention."""

import keras
from keras import ops

from rnnzoo.foundation import validate_units
from rnnzoo.attention import BahdanauAttention


@keras.saving.register_keras_serializable(package="rnnzoo")
class AttentionDecoderCell(keras.layers.Layer):
    """A decoder step: `s(t) = GRU([y(t-1), c(t)], s(t-1))`, `o(t) = V [s(t), c(t), y(t-1)] + b`.

    The context `c(t)` is either

    * attention (`attention_units` an int): Bahdanau's additive attention over the encoder's
      annotations `h(1..n)` with the query `s(t-1)`,
      `e(t, j) = v_a^T tanh(W_a s(t-1) + U_a h(j))`, `c(t) = sum_j softmax_j(e)(t, j) h(j)`;
    * fixed (`attention_units=None`): the single summary `C` of the encoder (fig. 10.12),
      passed as annotations of length 1, the same at every step.

    `y(t-1)` is the embedding of the previous token; `o(t)` are the logits of the next one.

    The Keras cell contract plus constants (passed by rnnzoo's decoders and `Seq2Seq`; Keras 3's
    `keras.layers.RNN` does not pass constants):
    `call(inputs, states, constants) -> (logits, [s(t)])`, where `constants` is what
    `memory(annotations, mask)` returns. `step(...)` also returns the attention weights.

    Args:
        units: int, size of the decoder state `s`.
        vocabulary_size: int, number of target tokens (size of the logits).
        attention_units: int or None, size of the alignment model's hidden layer; None for
            the fixed-context decoder.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, embedding_dim)`, the embedding of the previous token.
        states: `[s(t-1)]`, `(batch, units)` (or the tensor itself).
        constants: `[annotations (batch, source_time, value_dim), keys, mask (batch, source_time)]`.

    Returns:
        `(logits (batch, vocabulary_size), [s(t)])`.

    Example:

    >>> cell = AttentionDecoderCell(8, vocabulary_size=11, attention_units=6)
    >>> cell.build((None, 4), (None, None, 10))
    >>> constants = cell.memory(np.ones((2, 7, 10), "float32"), np.ones((2, 7), "bool"))
    >>> logits, states = cell(np.ones((2, 4), "float32"), [np.zeros((2, 8), "float32")], constants)
    >>> tuple(logits.shape), tuple(states[0].shape)
    ((2, 11), (2, 8))

    Reference:
        Bahdanau, Cho, Bengio, ICLR 2015; Cho et al., EMNLP 2014 (the fixed-context model).
    """

    def __init__(self, units, vocabulary_size, attention_units=None, **kwargs):
        super().__init__(**kwargs)
        validate_units("units", units, "AttentionDecoderCell")
        validate_units("vocabulary_size", vocabulary_size, "AttentionDecoderCell")
        validate_units("attention_units", attention_units, "AttentionDecoderCell", allow_none=True)
        self.units = units
        self.vocabulary_size = vocabulary_size
        self.attention_units = attention_units
        self.state_size = units
        self.output_size = vocabulary_size
        self.attention = None if attention_units is None else BahdanauAttention(attention_units, name="attention")
        self.gru = keras.layers.GRUCell(units, name="gru")
        self.output_projection = keras.layers.Dense(vocabulary_size, name="output_projection")

    def build(self, inputs_shape, values_shape=None):
        if values_shape is None:
            raise ValueError(
                "`AttentionDecoderCell` needs the annotations' shape to build: "
                "`cell.build(inputs_shape, values_shape)` with values_shape (batch, source_time, value_dim)."
            )
        embedding_dim, value_dim = inputs_shape[-1], values_shape[-1]
        if self.attention is not None:
            self.attention.build((None, self.units), (None, None, value_dim))
        self.gru.build((None, embedding_dim + value_dim))
        self.output_projection.build((None, self.units + value_dim + embedding_dim))
        self.built = True

    def memory(self, annotations, mask=None):
        """The per-sequence constants of every step: `[annotations, keys, mask]`.

        `keys = U_a h(j) + b_a` is computed once here, not at every step.
        """
        if mask is None:
            mask = ops.ones(ops.shape(annotations)[:2], "bool")
        mask = ops.cast(mask, annotations.dtype)
        keys = annotations if self.attention is None else self.attention.keys(annotations)
        return [annotations, keys, mask]

    def step(self, inputs, state, constants):
        """`(logits, new_state, attention_weights)`; the weights are 1 for a fixed context."""
        new_state, context, weights = self.recurrent_step(inputs, state, constants)
        return self.logits(new_state, context, inputs), new_state, weights

    def recurrent_step(self, inputs, state, constants):
        """The part of a step the next step depends on: `(new_state, context, attention_weights)`.

        With teacher forcing the logits are not fed back, so a training loop runs only this and
        computes `logits` for every step at once after the loop (one large product).
        """
        annotations, keys, mask = constants
        if self.attention is None:
            context = ops.sum(annotations * ops.expand_dims(mask, -1), axis=1)
            weights = mask
        else:
            context, weights = self.attention.score(state, annotations, keys, mask)
        # A non-negative axis: tf2onnx needs the rank for a negative one, and inside nested loops
        # (the decoders' inference loop) it does not know it.
        new_state, _ = self.gru(ops.concatenate([inputs, context], axis=len(inputs.shape) - 1), state)
        return new_state, context, weights

    def logits(self, new_state, context, inputs):
        """`o(t) = V [s(t), c(t), y(t-1)] + b`, for one step or (with a time axis) for many."""
        return self.output_projection(ops.concatenate([new_state, context, inputs], axis=len(inputs.shape) - 1))

    def call(self, inputs, states, constants, training=None):
        state = states[0] if isinstance(states, (list, tuple)) else states
        logits, new_state, _ = self.step(inputs, state, constants)
        return logits, [new_state]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), self.compute_dtype)]

    def get_config(self):
        config = {"units": self.units, "vocabulary_size": self.vocabulary_size,
                  "attention_units": self.attention_units}
        return {**super().get_config(), **config}
