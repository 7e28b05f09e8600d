"""`Bidirectional`: a recurrent layer and its time-reversed twin, merged (section 10.3)."""

import copy
import inspect

import keras
from keras import ops

from rnnzoo.foundation import check_sequence_inputs

MERGE_MODES = ("ave", "concat", "mul", "sum")


def _merge(forward, backward, merge_mode):
    if merge_mode == "concat":
        return ops.concatenate([forward, backward], axis=-1)
    if merge_mode == "sum":
        return forward + backward
    if merge_mode == "ave":
        return (forward + backward) / 2
    if merge_mode == "mul":
        return forward * backward
    return [forward, backward]


@keras.saving.register_keras_serializable(package="rnnzoo")
class Bidirectional(keras.layers.Layer):
    """A bidirectional RNN (fig. 10.11): one layer reads the sequence forwards, a copy backwards.

    `h(t)` summarizes the past `x(1..t)` and `g(t)` the future `x(t..tau)`; the output at step
    `t` merges the two, so it can depend on the whole sequence. This is composition, not a new
    loop (as in Flax), and Keras's `Bidirectional` contract: `forward_layer` and
    `backward_layer` are new layers rebuilt from `layer`'s full serialization (every argument
    kept, the backward one with `go_backwards=True`, each with its own weights) unless
    `backward_layer` is given; the backward sequence outputs are flipped back into input order
    before merging. As in Keras, both directions output zeros at padded steps when they return
    sequences (`zero_output_for_mask = return_sequences`).

    Masks: padded steps carry the state unchanged, so on a right-padded sequence the backward
    layer, which meets the padding first, starts at the sequence's own last valid step with its
    initial state; the outputs at valid steps equal those for the unpadded sequence.

    Args:
        layer: a recurrent layer with `go_backwards=False`: `VanillaRNN`, `Recurrent`,
            `DeepRNN`, or any layer with `go_backwards`, `return_sequences`, `return_state`
            and a serialization round-trip (e.g. `keras.layers.GRU`).
        merge_mode: `"concat"`, `"sum"`, `"ave"`, `"mul"` or None (return both directions
            as a list `[forward, backward]`).
        weights: optional list of weights, the forward layer's then the backward layer's,
            set when the layer is built.
        backward_layer: optional recurrent layer with `go_backwards=True` for the backward
            direction (it must agree with `layer` on `return_sequences`, `return_state` and
            `stateful`).
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, time, features)` floating-point tensor.
        initial_state: optional list of state tensors, the forward layer's then the
            backward layer's (for layers whose `call` takes `initial_state`: `VanillaRNN`,
            `Recurrent`; not `DeepRNN`).
        mask: optional `(batch, time)` boolean tensor, True at valid steps.
        training: bool, passed to both layers.

    Returns:
        The merged outputs: `(batch, time, n)` with `return_sequences`, else `(batch, n)`, with
        `n = 2 * units` for `"concat"` and `units` otherwise (the outputs of both
        directions at the last step are those at each end: step `tau` forwards, step 1
        backwards). With `merge_mode=None` a list of both; with the layer's `return_state`,
        followed by the forward layer's final states, then the backward layer's.

    Example:

    >>> from rnnzoo.layers import VanillaRNN
    >>> layer = Bidirectional(VanillaRNN(4, return_sequences=True))
    >>> tuple(layer(np.zeros((2, 5, 3), "float32")).shape)
    (2, 5, 8)

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.3, fig. 10.11;
        Schuster and Paliwal, "Bidirectional Recurrent Neural Networks" (1997).
    """

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        required = ("go_backwards", "return_sequences", "return_state")
        for name, candidate in (("layer", layer), ("backward_layer", backward_layer)):
            if candidate is None and name == "backward_layer":
                continue
            if not isinstance(candidate, keras.layers.Layer) or not all(hasattr(candidate, a) for a in required):
                raise ValueError(
                    f"`Bidirectional({name}=...)` needs a recurrent layer with `go_backwards`, "
                    "`return_sequences` and `return_state`, e.g. `rnnzoo.layers.VanillaRNN`, "
                    f"`Recurrent` or `DeepRNN`. Received: {name}={candidate!r}"
                )
        if layer.go_backwards:
            raise ValueError(
                "`Bidirectional` builds the backward direction itself from the layer's config; pass "
                "the layer with `go_backwards=False`. Received: layer.go_backwards=True"
            )
        if merge_mode is not None and merge_mode not in MERGE_MODES:
            raise ValueError(
                f"`Bidirectional(merge_mode=...)` must be one of {list(MERGE_MODES)} or None. "
                f"Received: merge_mode={merge_mode!r}"
            )
        super().__init__(**kwargs)
        # As Keras does: both directions are rebuilt from the layer's full serialization, so
        # every argument (and the layer's class) survives, and the backward one flips
        # `go_backwards`. `use_cudnn` is not in Keras's RNN configs: it is copied by hand.
        self.forward_layer = _copy(layer, name=f"forward_{_strip(layer.name, 'forward_')}")
        if backward_layer is None:
            backward_layer = _copy(layer, name=f"backward_{_strip(layer.name, 'backward_')}", go_backwards=True)
        self.backward_layer = backward_layer
        if hasattr(layer, "use_cudnn"):
            self.forward_layer.use_cudnn = self.backward_layer.use_cudnn = layer.use_cudnn
        if not self.backward_layer.go_backwards:
            raise ValueError(
                "`Bidirectional(backward_layer=...)` must process the sequence backwards. "
                "Received: backward_layer.go_backwards=False"
            )
        for attribute in ("stateful", "return_sequences", "return_state"):
            forward_value = getattr(self.forward_layer, attribute, False)
            backward_value = getattr(self.backward_layer, attribute, False)
            if forward_value != backward_value:
                raise ValueError(
                    f"`Bidirectional` needs the same `{attribute}` in both directions. Received: "
                    f"layer.{attribute}={forward_value}, backward_layer.{attribute}={backward_value}"
                )
        # Keras's convention: with sequence outputs, padded steps output zeros in both directions.
        for direction in (self.forward_layer, self.backward_layer):
            if getattr(direction, "zero_output_for_mask", None) is not None:
                direction.zero_output_for_mask = direction.return_sequences
        if weights:
            half = len(weights) // 2
            self.forward_layer.initial_weights = weights[:half]
            self.backward_layer.initial_weights = weights[half:]
        self.merge_mode = merge_mode
        self.stateful = bool(getattr(layer, "stateful", False))
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self.supports_masking = True

    @property
    def layer(self):
        # A property rather than a second attribute, so that the layer is tracked (and saved) once.
        return self.forward_layer

    def build(self, inputs_shape):
        check_sequence_inputs(self, inputs_shape)
        for layer in (self.forward_layer, self.backward_layer):
            if not layer.built:
                layer.build(tuple(inputs_shape))
            if getattr(layer, "initial_weights", None) is not None:
                layer.set_weights(layer.initial_weights)
                layer.initial_weights = None

    def call(self, inputs, initial_state=None, mask=None, training=None):
        check_sequence_inputs(self, inputs.shape, inputs.dtype, None, None if mask is None else mask.shape)
        forward_kwargs, backward_kwargs = {}, {}
        if initial_state is not None:
            if "initial_state" not in inspect.signature(self.forward_layer.call).parameters:
                raise ValueError(
                    f"`Bidirectional` over {type(self.forward_layer).__name__} cannot take `initial_state`: "
                    f"the wrapped layer's `call` has no such argument. Received: initial_state with "
                    f"{len(initial_state) if isinstance(initial_state, (list, tuple)) else 1} tensors"
                )
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) % 2:
                raise ValueError(
                    "`Bidirectional` expects `initial_state` as the forward layer's states followed by "
                    f"the backward layer's, an even number of tensors. Received: {len(states)} tensors"
                )
            half = len(states) // 2
            forward_kwargs["initial_state"] = states[:half]
            backward_kwargs["initial_state"] = states[half:]
        if mask is not None:
            forward_kwargs["mask"] = backward_kwargs["mask"] = mask
        forward = self.forward_layer(inputs, training=training, **forward_kwargs)
        backward = self.backward_layer(inputs, training=training, **backward_kwargs)
        forward_states = backward_states = []
        if self.return_state:
            forward, *forward_states = forward
            backward, *backward_states = backward
        forward, backward = ops.cast(forward, self.compute_dtype), ops.cast(backward, self.compute_dtype)
        if self.return_sequences:
            backward = ops.flip(backward, axis=1)  # (batch, time, n), back in input order
        outputs = _merge(forward, backward, self.merge_mode)
        if self.return_state:
            outputs = outputs if isinstance(outputs, list) else [outputs]
            return outputs + forward_states + backward_states
        return outputs

    def compute_output_shape(self, inputs_shape, initial_state_shape=None, **kwargs):
        check_sequence_inputs(self, inputs_shape)
        shape = self.forward_layer.compute_output_shape(tuple(inputs_shape))
        states = []
        if self.return_state:
            shape, *states = shape
        shape = tuple(shape)
        if self.merge_mode == "concat":
            outputs = [shape[:-1] + (None if shape[-1] is None else 2 * shape[-1],)]
        elif self.merge_mode is None:
            outputs = [shape, shape]
        else:
            outputs = [shape]
        outputs += [tuple(s) for s in states] * 2
        return outputs[0] if len(outputs) == 1 else outputs

    def compute_mask(self, inputs, mask=None):
        output_mask = mask if self.return_sequences else None
        masks = [output_mask] * (2 if self.merge_mode is None else 1)
        if self.return_state:
            shape = self.forward_layer.compute_output_shape(tuple(inputs.shape))
            masks += [None] * (2 * (len(shape) - 1))
        return masks[0] if len(masks) == 1 else masks

    def reset_state(self):
        """Zeroes the carried states of stateful directions."""
        for direction in (self.forward_layer, self.backward_layer):
            if hasattr(direction, "reset_state"):
                direction.reset_state()

    reset_states = reset_state

    def get_config(self):
        config = {
            "layer": keras.saving.serialize_keras_object(self.forward_layer),
            "backward_layer": keras.saving.serialize_keras_object(self.backward_layer),
            "merge_mode": self.merge_mode,
        }
        return {**super().get_config(), **config}

    @classmethod
    def from_config(cls, config):
        config = copy.deepcopy(config)
        config["layer"] = keras.saving.deserialize_keras_object(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = keras.saving.deserialize_keras_object(config["backward_layer"])
        return cls(**config)


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


def _copy(layer, **overrides):
    """A new, unbuilt layer from `layer`'s full serialization, with some config keys changed."""
    config = keras.saving.serialize_keras_object(layer)
    config["config"].update(overrides)
    return keras.saving.deserialize_keras_object(config)
