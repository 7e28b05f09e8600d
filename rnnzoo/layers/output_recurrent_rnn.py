"""Output recurrence over whole sequences: teacher forcing, scheduled sampling, closed loop (10.2.1)."""

import keras
from keras import ops

from rnnzoo.cells.output_recurrence_cell import OutputRecurrenceCell, greedy_one_hot, sample_one_hot
from rnnzoo.foundation import check_sequence_inputs, validate_unroll
from rnnzoo.layers.recurrent import Recurrent


_CELL_INITIALIZERS = ("kernel_initializer", "feedback_initializer", "recurrent_initializer",
                      "output_initializer", "bias_initializer")


def shift_right(one_hot):
    """`(batch, time, n)` -> the same sequence one step later, zeros at t = 1: `y(t-1)`."""
    return ops.pad(one_hot, ((0, 0), (1, 0), (0, 0)))[:, :-1]


@keras.saving.register_keras_serializable(package="rnnzoo")
class OutputRecurrentRNN(keras.layers.Layer):
    """An RNN whose state is fed the previous output, run three ways (figs. 10.4, 10.6, 10.10).

        a(t) = b + U x(t) + R y(t-1) [+ W h(t-1)],   h(t) = tanh(a(t)),   o(t) = c + V h(t)

    * **Teacher forcing** (fig. 10.6; `labels` given): `y(t-1)` is the one-hot of the true
      label `labels[:, t-1]`. Without `hidden_recurrence` every step is then independent,
      and the layer computes all of them as one batched computation -- no loop at all.
    * **Scheduled sampling** (Bengio et al., 2015; `scheduled_sampling=True`, `labels` given,
      `training=True`): at every step, with probability `sampling_probability` (a
      non-trainable scalar weight, raised during training by the `ScheduledSampling`
      callback), `y(t-1)` is a sample of the model's own previous output distribution
      instead of the truth. This needs a loop.
    * **Closed loop** (`labels` omitted): the model feeds itself. `y(t-1)` is the one-hot of
      `argmax o(t-1)` (greedy), or a sample of `softmax(o(t-1))` when `noise` (uniform random
      numbers, an input so that the graph is deterministic and exports) is given. The loop
      runs inside the graph (`rnnzoo.recurrence.scan`) and exports to TFLite builtins.

    Args:
        units: int, size of `h(t)`.
        num_classes: int, size of `o(t)` and of the one-hot `y(t)`.
        hidden_recurrence: bool, add the `h(t-1) -> h(t)` recurrence (the hybrid).
        scheduled_sampling: bool, train with scheduled sampling (see above).
        seed: int or None, seed of the scheduled-sampling coin flips and samples.
        unroll: int >= 1, loop unrolling on JAX.
        return_hidden_states: bool, also return `h(1..tau)` (e.g. for an extra output head).
        **kwargs: `OutputRecurrenceCell` arguments (`activation`, initializers) and base
            `keras.layers.Layer` arguments.

    Call arguments:
        inputs: `(batch, time, features)` float, `x(1..tau)`.
        labels: optional `(batch, time)` int, the true `y(1..tau)` (teacher forcing).
        noise: optional `(batch, time, num_classes)` uniform in (0, 1), closed loop only:
            feed samples instead of greedy predictions.
        initial_state: optional `(batch, units)`, `h(0)` (zeros if omitted).
        training: bool.

    Returns:
        `(batch, time, num_classes)`, the logits `o(1..tau)`; with `return_hidden_states`,
        `[logits, h]` with `h` `(batch, time, units)`.

    Example:

    >>> layer = OutputRecurrentRNN(8, num_classes=3)
    >>> x, y = np.zeros((2, 5, 4), "float32"), np.zeros((2, 5), "int32")
    >>> tuple(layer(x, labels=y).shape), tuple(layer(x).shape)
    ((2, 5, 3), (2, 5, 3))

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.2.1; Bengio, Vinyals, Jaitly,
        Shazeer, "Scheduled Sampling for Sequence Prediction with Recurrent Neural Networks",
        NeurIPS 2015.
    """

    def __init__(self, units, num_classes, hidden_recurrence=False, scheduled_sampling=False, seed=None,
                 unroll=1, return_hidden_states=False, **kwargs):
        cell_kwargs = {k: kwargs.pop(k) for k in ("activation",) + _CELL_INITIALIZERS if k in kwargs}
        super().__init__(**kwargs)
        if not isinstance(scheduled_sampling, bool):
            raise TypeError(
                "`OutputRecurrentRNN(scheduled_sampling=...)` must be a bool. "
                f"Received: scheduled_sampling={scheduled_sampling!r}"
            )
        validate_unroll(unroll, "OutputRecurrentRNN")
        self.cell = OutputRecurrenceCell(units, num_classes, hidden_recurrence=hidden_recurrence,
                                         dtype=self.dtype_policy, name="cell", **cell_kwargs)
        self.units = units
        self.num_classes = num_classes
        self.hidden_recurrence = hidden_recurrence
        self.scheduled_sampling = scheduled_sampling
        self.seed = seed
        self.unroll = unroll
        self.return_hidden_states = bool(return_hidden_states)
        self.seed_generator = keras.random.SeedGenerator(seed) if scheduled_sampling else None
        self.sampling_probability = None

    def build(self, inputs_shape, labels_shape=None, noise_shape=None, initial_state_shape=None):
        check_sequence_inputs(self, inputs_shape)
        self.cell.build((inputs_shape[0], inputs_shape[-1]))
        if self.scheduled_sampling:
            self.sampling_probability = self.add_weight(
                shape=(), name="sampling_probability", initializer="zeros", trainable=False
            )

    def call(self, inputs, labels=None, noise=None, initial_state=None, training=None):
        check_sequence_inputs(self, inputs.shape, inputs.dtype, self.cell.U.shape[0])
        self._check_optional("labels", labels, 2, inputs, integer=True)
        self._check_optional("noise", noise, 3, inputs)
        if labels is not None and noise is not None:
            raise ValueError(
                "`OutputRecurrentRNN` takes `noise` only in closed loop (without `labels`). "
                "Received: labels and noise"
            )
        batch = ops.shape(inputs)[0]
        h0 = ops.zeros((batch, self.units), self.compute_dtype) if initial_state is None else (
            ops.cast(initial_state, self.compute_dtype))
        projected = self.cell.input_projection(ops.cast(inputs, self.compute_dtype))  # (batch, time, units)
        logits, hidden = self._run(projected, h0, labels, noise, training)
        return [logits, hidden] if self.return_hidden_states else logits

    def _run(self, projected, h0, labels, noise, training):
        if labels is None:
            return self._closed_loop(projected, h0, noise)
        y_prev = shift_right(ops.one_hot(ops.cast(labels, "int32"), self.num_classes, dtype=self.compute_dtype))
        if self.scheduled_sampling and training:
            return self._scheduled_sampling(projected, h0, y_prev)
        if not self.hidden_recurrence:
            # Teacher forcing without h -> h: every step is independent, so all of them are
            # computed at once, as a feed-forward network over (batch, time). No loop.
            h = self.cell.step(projected, None, y_prev)[1]
            return self.cell.logits(h), h  # (batch, time, num_classes), (batch, time, units)
        return self._teacher_forced_loop(projected, h0, y_prev, training)

    # The three loops are feeding policies over the one sequence layer, `Recurrent`: a
    # `_FeedingStep` cell chooses `y(t-1)` from what it is given at each step.

    def _teacher_forced_loop(self, projected, h0, y_prev, training):
        return self._loop("teacher_forcing", [projected, y_prev], h0, training)

    def _scheduled_sampling(self, projected, h0, y_prev):
        shape = ops.shape(y_prev)
        coins = keras.random.uniform((shape[0], shape[1], 1), seed=self.seed_generator)
        noise = keras.random.uniform((shape[0], shape[1], self.num_classes), seed=self.seed_generator)
        p = ops.cast(self.sampling_probability, self.compute_dtype)
        # With probability p, feed the model's own sample of y(t-1), else the truth.
        use_own = ops.cast(ops.less(coins, p), self.compute_dtype)
        return self._loop("scheduled_sampling", [projected, y_prev, use_own, noise], h0, True)

    def _closed_loop(self, projected, h0, noise):
        parts = [projected] + ([ops.cast(noise, self.compute_dtype)] if noise is not None else [])
        # Inference loop on TF (the export-friendly one): it converts to TFLite builtins.
        return self._loop("sample" if noise is not None else "greedy", parts, h0, False)

    def _loop(self, policy, parts, h0, training):
        step = _FeedingStep(self.cell, policy, dtype=self.dtype_policy)
        loop = Recurrent(step, return_sequences=True, unroll=self.unroll, dtype=self.dtype_policy)
        y0 = ops.zeros((ops.shape(h0)[0], self.num_classes), self.compute_dtype)
        outputs = loop(ops.concatenate(parts, axis=-1), initial_state=[h0, y0], training=training)
        return outputs[..., : self.num_classes], outputs[..., self.num_classes:]  # logits, h

    def _check_optional(self, name, value, rank, inputs, integer=False):
        if value is None:
            return
        shape = tuple(value.shape)
        expected = tuple(inputs.shape[:2]) + ((self.num_classes,) if rank == 3 else ())
        ok = len(shape) == rank and all(a is None or b is None or a == b for a, b in zip(shape, expected))
        if not ok:
            raise ValueError(
                f"`OutputRecurrentRNN` expects `{name}` of shape {expected} (batch, time"
                + (", num_classes" if rank == 3 else "") + f"). Received: {name}.shape={shape}"
            )
        if integer and keras.backend.is_float_dtype(value.dtype):
            raise TypeError(
                f"`OutputRecurrentRNN` expects integer class ids as `{name}`. "
                f"Received: {name}.dtype={keras.backend.standardize_dtype(value.dtype)}"
            )

    def compute_output_shape(self, inputs_shape, labels_shape=None, noise_shape=None, initial_state_shape=None):
        check_sequence_inputs(self, inputs_shape)
        logits = (inputs_shape[0], inputs_shape[1], self.num_classes)
        return [logits, (inputs_shape[0], inputs_shape[1], self.units)] if self.return_hidden_states else logits

    def get_config(self):
        cell = self.cell
        config = {
            "units": self.units,
            "num_classes": self.num_classes,
            "hidden_recurrence": self.hidden_recurrence,
            "scheduled_sampling": self.scheduled_sampling,
            "seed": self.seed,
            "unroll": self.unroll,
            "return_hidden_states": self.return_hidden_states,
            "activation": cell.activation,
            **{key: keras.initializers.serialize(getattr(cell, key)) for key in _CELL_INITIALIZERS},
        }
        return {**super().get_config(), **config}


class _FeedingStep(keras.layers.Layer):
    """Internal: one step of `OutputRecurrentRNN` under a feeding policy, as a Keras cell.

    Its input at step t is the concatenation of the projected input `b + U x(t)` and what
    the policy needs: the true `y(t-1)` (teacher forcing), also a 0/1 coin and uniform noise
    (scheduled sampling), or noise (sampled closed loop). Its states are `[h, y_own]`, the
    model's own last output as a one-hot; its output is `[o(t), h(t)]` concatenated.
    Not serialized: the layer rebuilds it at every call.
    """

    POLICIES = ("teacher_forcing", "scheduled_sampling", "greedy", "sample")

    def __init__(self, cell, policy, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell
        self.policy = policy
        self.state_size = [cell.units, cell.num_classes]
        self.output_size = cell.num_classes + cell.units

    def build(self, input_shape):
        pass  # the weights are the wrapped cell's

    def call(self, inputs, states):
        h, own_previous = states
        units, classes = self.cell.units, self.cell.num_classes
        projected, rest = inputs[:, :units], inputs[:, units:]
        noise = None
        if self.policy == "teacher_forcing":
            fed = rest
        elif self.policy == "scheduled_sampling":
            truth, use_own, noise = rest[:, :classes], rest[:, classes:classes + 1], rest[:, classes + 1:]
            fed = use_own * own_previous + (1.0 - use_own) * truth
        else:  # closed loop: the model feeds itself
            fed = own_previous
            noise = rest if self.policy == "sample" else None
        o, h = self.cell.step(projected, h, fed)
        own = greedy_one_hot(o) if noise is None else sample_one_hot(o, noise)
        return ops.concatenate([o, h], axis=-1), [h, ops.stop_gradient(own) if self.policy == "scheduled_sampling" else own]


SCHEDULES = ("linear", "exponential", "inverse_sigmoid")


@keras.saving.register_keras_serializable(package="rnnzoo")
class ScheduledSampling(keras.callbacks.Callback):
    """Raises `sampling_probability` of every `OutputRecurrentRNN(scheduled_sampling=True)` in the model.

    Bengio et al. (2015) feed the truth with probability `epsilon_i`, which decays with the
    training step `i`; the model's own sample is fed with probability `1 - epsilon_i`. Here,
    with `k = decay_steps`:

    * `"linear"`: `epsilon_i = max(0, 1 - i / k)`;
    * `"exponential"`: `epsilon_i = exp(-i / k)`;
    * `"inverse_sigmoid"`: `epsilon_i = k / (k + exp(i / k))`;

    and `sampling_probability = max_probability * (1 - epsilon_i)`, set before every batch.

    Args:
        schedule: one of `"linear"`, `"exponential"`, `"inverse_sigmoid"`.
        decay_steps: positive number, `k` above, in training batches.
        max_probability: float in [0, 1], the largest sampling probability.
    """

    def __init__(self, schedule="inverse_sigmoid", decay_steps=1000, max_probability=1.0):
        super().__init__()
        if schedule not in SCHEDULES:
            raise ValueError(
                f"`ScheduledSampling(schedule=...)` must be one of {list(SCHEDULES)}. Received: schedule={schedule!r}"
            )
        if isinstance(decay_steps, bool) or not isinstance(decay_steps, (int, float)) or decay_steps <= 0:
            raise ValueError(
                f"`ScheduledSampling(decay_steps=...)` must be a positive number. Received: decay_steps={decay_steps!r}"
            )
        if isinstance(max_probability, bool) or not isinstance(max_probability, (int, float)) or not (
            0.0 <= max_probability <= 1.0
        ):
            raise ValueError(
                "`ScheduledSampling(max_probability=...)` must be a number in [0, 1]. "
                f"Received: max_probability={max_probability!r}"
            )
        self.schedule = schedule
        self.decay_steps = decay_steps
        self.max_probability = float(max_probability)
        self.step = 0

    def sampling_probability(self, step):
        """The probability of feeding the model's own sample at training step `step`."""
        import math

        k = float(self.decay_steps)
        if self.schedule == "linear":
            epsilon = max(0.0, 1.0 - step / k)
        elif self.schedule == "exponential":
            epsilon = math.exp(-step / k)
        else:
            epsilon = k / (k + math.exp(min(step / k, 700.0)))
        return self.max_probability * (1.0 - epsilon)

    def _layers(self):
        layers = [layer for layer in self.model._flatten_layers()
                  if isinstance(layer, OutputRecurrentRNN) and layer.scheduled_sampling]
        if not layers:
            raise ValueError(
                "`ScheduledSampling` found no `OutputRecurrentRNN(scheduled_sampling=True)` layer in the "
                f"model. Received: model={self.model.name!r}"
            )
        return layers

    def on_train_batch_begin(self, batch, logs=None):
        p = self.sampling_probability(self.step)
        for layer in self._layers():
            layer.sampling_probability.assign(p)
        self.step += 1

    def get_config(self):
        return {"schedule": self.schedule, "decay_steps": self.decay_steps, "max_probability": self.max_probability}
