"""Output recurrence, teacher forcing, closed loop and scheduled sampling (10.2.1, figs. 10.4, 10.6, 10.10)."""

import keras
import numpy as np
import pytest

from rnnzoo.cells import OutputRecurrenceCell
from rnnzoo.data import tasks
from rnnzoo.export import parity_report, tflite_ops, to_saved_model, to_tflite
from rnnzoo.layers import OutputRecurrentRNN, Recurrent, ScheduledSampling
from rnnzoo.models import closed_loop_tagger, output_recurrent_tagger

HYBRID = [False, True]
HYBRID_IDS = ["output_only", "hybrid"]


def batch(seed=0, b=2, t=5, features=3, classes=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(b, t, features)).astype("float32"), rng.integers(0, classes, (b, t)).astype("int32")


def hand_stepped(cell, x, feed):
    """`feed(t, o_prev) -> y(t-1)` one-hot (numpy); returns the logits, stepping the cell by hand."""
    b = x.shape[0]
    h, y_prev, outputs = np.zeros((b, cell.units), "float32"), np.zeros((b, cell.num_classes), "float32"), []
    for t in range(x.shape[1]):
        o, (h, _) = cell(x[:, t], [h, y_prev])
        o, h = np.asarray(o), np.asarray(h)
        outputs.append(o)
        y_prev = feed(t, o)
    return np.stack(outputs, axis=1)


@pytest.mark.parametrize("hidden_recurrence", HYBRID, ids=HYBRID_IDS)
def test_teacher_forcing_and_closed_loop_equal_a_hand_stepped_cell(hidden_recurrence):
    x, y = batch()
    layer = OutputRecurrentRNN(6, 4, hidden_recurrence=hidden_recurrence, bias_initializer="random_normal")
    forced = np.asarray(layer(x, labels=y))
    eye = np.eye(4, dtype="float32")
    np.testing.assert_allclose(forced, hand_stepped(layer.cell, x, lambda t, o: eye[y[:, t]]), atol=1e-5)
    closed = np.asarray(layer(x))
    np.testing.assert_allclose(closed, hand_stepped(layer.cell, x, lambda t, o: eye[o.argmax(-1)]), atol=1e-5)
    # The cell alone, under the generic loop, is the same closed-loop network.
    np.testing.assert_allclose(np.asarray(Recurrent(layer.cell, return_sequences=True)(x)), closed, atol=1e-5)
    assert np.max(np.abs(forced - closed)) > 1e-3  # feeding the truth is not feeding predictions


def test_teacher_forced_output_never_sees_the_current_label():
    x, y = batch(t=6)
    layer = OutputRecurrentRNN(5, 4, bias_initializer="random_normal")
    base = np.asarray(layer(x, labels=y))
    changed = y.copy()
    changed[:, 3] = (changed[:, 3] + 1) % 4
    diff = np.abs(np.asarray(layer(x, labels=changed)) - base).max(axis=(0, 2))
    assert np.all(diff[:4] == 0) and diff[4] > 0 and np.all(diff[5:] == 0), diff  # only o(5) reads y(4)


def _loop_primitives(layer, x, y):
    """Names of the loop ops in the traced training forward pass."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        graph = tf.function(lambda x, y: layer(x, labels=y, training=True)).get_concrete_function(
            tf.TensorSpec((None, None, 3)), tf.TensorSpec((None, None), tf.int32)).graph
        return {op.type for op in graph.get_operations() if "While" in op.type}
    import jax

    jaxpr = str(jax.make_jaxpr(lambda x, y: layer(x, labels=y, training=True))(x, y))
    return {name for name in ("scan", "while") if name in jaxpr}


def test_teacher_forced_training_has_no_loop_without_hidden_recurrence():
    x, y = batch()
    assert _loop_primitives(OutputRecurrentRNN(5, 4), x, y) == set()
    # The check can fail: the hybrid (h -> h) and scheduled sampling do loop.
    assert _loop_primitives(OutputRecurrentRNN(5, 4, hidden_recurrence=True), x, y)
    assert _loop_primitives(OutputRecurrentRNN(5, 4, scheduled_sampling=True, seed=0), x, y)


def test_scheduled_sampling_probability_zero_is_teacher_forcing_one_is_free_running():
    x, y = batch(t=8)
    layer = OutputRecurrentRNN(6, 4, hidden_recurrence=True, scheduled_sampling=True, seed=3,
                               bias_initializer="random_normal")
    forced = np.asarray(layer(x, labels=y))
    np.testing.assert_allclose(np.asarray(layer(x, labels=y, training=True)), forced, atol=1e-6)
    layer.sampling_probability.assign(1.0)
    sampled = np.asarray(layer(x, labels=y, training=True))
    assert np.max(np.abs(sampled - forced)) > 1e-3
    np.testing.assert_allclose(np.asarray(layer(x, labels=y)), forced, atol=1e-6)  # inference ignores it


def test_schedules_rise_from_zero_to_max_probability():
    for schedule in ("linear", "exponential", "inverse_sigmoid"):
        callback = ScheduledSampling(schedule, decay_steps=10, max_probability=0.8)
        values = [callback.sampling_probability(i) for i in range(0, 200, 5)]
        assert values[0] < 0.1 and abs(values[-1] - 0.8) < 1e-3, (schedule, values)
        assert all(a <= b + 1e-12 for a, b in zip(values, values[1:])), schedule


def test_scheduled_sampling_beats_teacher_forcing_in_closed_loop():
    """The hybrid (fig. 10.10) on a noisy Markov chain: teacher forcing teaches the model to copy
    y(t-1), which is right only when y(t-1) is the truth; closed-loop, it copies its own mistakes."""
    x, y = tasks.noisy_markov_labels(2000, 20, seed=0)
    x_test, y_test = tasks.noisy_markov_labels(500, 20, seed=1)
    optimum = tasks.markov_filter_accuracy(x_test, y_test)  # about 0.77
    accuracy = {}
    for scheduled in (False, True):
        keras.utils.set_random_seed(0)
        model = output_recurrent_tagger(2, 1, 16, hidden_recurrence=True, scheduled_sampling=scheduled, seed=0)
        model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit({"x": x, "labels": y}, y, batch_size=64, epochs=6, verbose=0,
                  callbacks=[ScheduledSampling("linear", decay_steps=60)] if scheduled else [])
        forced = np.argmax(model.predict({"x": x_test, "labels": y_test}, verbose=0), -1)
        closed = np.argmax(closed_loop_tagger(model).predict(x_test, verbose=0), -1)
        accuracy[scheduled] = (np.mean(forced == y_test), np.mean(closed == y_test))
    # Teacher forcing: excellent when fed the truth, near chance closed-loop.
    assert accuracy[False][0] > 0.85 and accuracy[False][1] < 0.65, accuracy
    # Scheduled sampling: closed-loop close to the optimal filter, far above teacher forcing.
    assert accuracy[True][1] > accuracy[False][1] + 0.1, accuracy
    assert accuracy[True][1] > optimum - 0.04, (accuracy, optimum)


@pytest.mark.parametrize("hidden_recurrence", HYBRID, ids=HYBRID_IDS)
def test_config_round_trip_and_keras_save_load(hidden_recurrence, tmp_path):
    x, y = batch()
    layer = OutputRecurrentRNN(5, 4, hidden_recurrence=hidden_recurrence, scheduled_sampling=True, seed=1,
                               activation="relu")
    clone = OutputRecurrentRNN.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    model = output_recurrent_tagger(4, 3, 5, hidden_recurrence=hidden_recurrence)
    assert keras.Model.from_config(model.get_config()).get_config() == model.get_config()
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [np.array(w) for w in model.trainable_weights]
    model.fit({"x": x, "labels": y}, y, verbose=0)
    assert all(not np.allclose(np.array(w), b) for w, b in zip(model.trainable_weights, before))
    for m, inputs in ((model, {"x": x, "labels": y}), (closed_loop_tagger(model), x)):
        path = str(tmp_path / f"{m.name}.keras")
        m.save(path)
        np.testing.assert_array_equal(np.asarray(keras.saving.load_model(path)(inputs)), np.asarray(m(inputs)))


@pytest.mark.slow
def test_closed_loop_exports_to_tflite_builtins_with_parity(tmp_path):
    model = closed_loop_tagger(output_recurrent_tagger(3, 2, 6, hidden_recurrence=True,
                                                       bias_initializer="random_normal"))
    saved_model = to_saved_model(model, str(tmp_path / "saved_model"))
    tflite = to_tflite(saved_model, str(tmp_path / "model.tflite"))
    names = tflite_ops(tflite)
    assert "WHILE" in names and not [n for n in names if n.startswith("CUSTOM")], names
    rng = np.random.default_rng(0)
    batches = [rng.normal(size=(b, t, 2)).astype("float32") for b, t in [(1, 1), (1, 7), (3, 10), (5, 33)]]
    report = parity_report(model, [tflite, saved_model], batches, tolerance=1e-5)
    assert report.passed and report.max_abs_error <= 1e-5, str(report)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"units": 0, "num_classes": 2}, ValueError, r"`OutputRecurrenceCell\(units=\.\.\.\)`.* Received: units=0"),
        ({"units": 4, "num_classes": 2, "hidden_recurrence": "yes"}, TypeError, r"Received: hidden_recurrence='yes'"),
        ({"units": 4, "num_classes": 2, "scheduled_sampling": 1}, TypeError, r"Received: scheduled_sampling=1"),
        ({"units": 4, "num_classes": 2, "activation": "gelu"}, ValueError, r"Received: activation='gelu'"),
    ],
    ids=["units", "hidden_recurrence", "scheduled_sampling", "activation"],
)
def test_bad_configurations_raise(kwargs, error, message):
    with pytest.raises(error, match=message):
        OutputRecurrentRNN(**kwargs)


def test_bad_inputs_raise():
    x, y = batch()
    layer = OutputRecurrentRNN(5, 4)
    with pytest.raises(ValueError, match=r"expects `labels` of shape .* Received: labels.shape=\(2, 4\)"):
        layer(x, labels=y[:, :4])
    with pytest.raises(TypeError, match=r"integer class ids .* Received: labels.dtype=float32"):
        layer(x, labels=y.astype("float32"))
    with pytest.raises(ValueError, match=r"Received: inputs.shape=\(2, 5\)"):
        OutputRecurrentRNN(5, 4)(x[..., 0])
    with pytest.raises(ValueError, match=r"`ScheduledSampling\(schedule=\.\.\.\)`.* Received: schedule='cosine'"):
        ScheduledSampling("cosine")
    with pytest.raises(ValueError, match=r"no `OutputRecurrentRNN\(scheduled_sampling=True\)`"):
        model = output_recurrent_tagger(4, 3, 5)
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit({"x": x, "labels": y}, y, verbose=0, callbacks=[ScheduledSampling()])
    with pytest.raises(ValueError, match=r"`closed_loop_tagger` needs .* Received: model="):
        closed_loop_tagger(keras.Sequential([keras.layers.Dense(1)]))
    assert OutputRecurrenceCell(3, 2).state_size == [3, 2]
