"""`Bidirectional` (section 10.3, fig. 10.11): composition, masks, merge modes, training, export."""

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo.cells import DeepTransitionCell, VanillaRNNCell
from rnnzoo.data import tasks
from rnnzoo.export import run_artifact
from rnnzoo.layers import Bidirectional, DeepRNN, Recurrent, VanillaRNN
from rnnzoo.testing import assert_exports_with_parity, padded_batches, run_layer_test

BATCH, TIME, FEATURES, UNITS = 3, 6, 3, 4
TOLERANCE = 1e-5

# Right padding only: row 0 is full, row 1 has 4 valid steps, row 2 has 2.
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=bool)


def random_inputs(seed=0, batch=BATCH, time=TIME, features=FEATURES):
    return np.random.default_rng(seed).normal(size=(batch, time, features)).astype("float32")


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


# One factory per kind of rnnzoo recurrent layer the wrapper must accept.
LAYERS = {
    "vanilla": lambda **kw: VanillaRNN(UNITS, bias_initializer="random_normal", **kw),
    "recurrent-deep-transition": lambda **kw: Recurrent(
        DeepTransitionCell(UNITS, transition_depth=2, skip_connection=True, bias_initializer="random_normal"), **kw),
    "deep-rnn": lambda **kw: DeepRNN(
        [VanillaRNNCell(UNITS, bias_initializer="random_normal"), VanillaRNNCell(UNITS)], residual=True, **kw),
}


# ---------------------------------------------------------------------------------------------
# The function it computes


@pytest.mark.parametrize("kind", list(LAYERS), ids=list(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_equals_forward_layer_and_reversed_copy_run_by_hand(kind, return_sequences):
    x = random_inputs()
    layer = Bidirectional(LAYERS[kind](return_sequences=return_sequences), merge_mode=None)
    forward, backward = (to_numpy(v) for v in layer(x))
    assert layer.backward_layer.go_backwards and not layer.forward_layer.go_backwards
    np.testing.assert_allclose(forward, to_numpy(layer.forward_layer(x)), atol=TOLERANCE)
    # The backward direction is a forward-running layer with the backward weights applied to
    # the time-reversed sequence, its outputs flipped back into input order.
    reference = LAYERS[kind](return_sequences=return_sequences)
    reference.build(x.shape)
    reference.set_weights(layer.backward_layer.get_weights())
    expected = to_numpy(reference(x[:, ::-1]))
    np.testing.assert_allclose(backward, expected[:, ::-1] if return_sequences else expected, atol=TOLERANCE)
    assert np.max(np.abs(forward - backward)) > 1e-2  # two directions, two sets of weights


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul"])
def test_merge_modes(merge_mode):
    x = random_inputs(seed=1)
    both = Bidirectional(VanillaRNN(UNITS, return_sequences=True), merge_mode=None)
    forward, backward = (to_numpy(v) for v in both(x))
    layer = Bidirectional(VanillaRNN(UNITS, return_sequences=True), merge_mode=merge_mode)
    layer.build(x.shape)
    layer.set_weights(both.get_weights())
    expected = {
        "concat": np.concatenate([forward, backward], axis=-1),
        "sum": forward + backward,
        "ave": (forward + backward) / 2,
        "mul": forward * backward,
    }[merge_mode]
    np.testing.assert_allclose(to_numpy(layer(x)), expected, atol=TOLERANCE)
    assert tuple(layer.compute_output_shape((None, None, FEATURES))) == (None, None, expected.shape[-1])


@pytest.mark.parametrize("kind", list(LAYERS), ids=list(LAYERS))
@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_padded_equals_unpadded(kind, return_sequences):
    """Right-padded rows: the backward direction starts at each row's own last valid step."""
    x = random_inputs(seed=2)
    x[~MASK] = 100.0  # garbage in the padding: the mask alone must hide it
    layer = Bidirectional(LAYERS[kind](return_sequences=return_sequences))
    outputs = to_numpy(layer(x, mask=MASK))
    for row in range(BATCH):
        unpadded = to_numpy(layer(x[row : row + 1, MASK[row]]))[0]
        got = outputs[row, MASK[row]] if return_sequences else outputs[row]
        np.testing.assert_allclose(got, unpadded, atol=TOLERANCE)
    if return_sequences:
        assert np.all(outputs[~MASK] == 0)
    # Without the mask the backward direction reads the padding first and the outputs differ.
    assert np.max(np.abs(to_numpy(layer(x))[1, :4] - outputs[1, :4])) > 1e-2


def test_equals_keras_bidirectional_simple_rnn_with_mask():
    x = random_inputs(seed=3)
    inputs = keras.Input((None, FEATURES))
    ours = Bidirectional(VanillaRNN(UNITS, return_sequences=True, bias_initializer="random_normal"))
    theirs = keras.layers.Bidirectional(keras.layers.SimpleRNN(UNITS, return_sequences=True))
    ours(inputs), theirs(inputs)
    theirs.set_weights(ours.get_weights())  # U, W, b = kernel, recurrent_kernel, bias; forward first
    np.testing.assert_allclose(to_numpy(ours(x, mask=MASK)), to_numpy(theirs(x, mask=MASK)), atol=TOLERANCE)


def test_return_state_and_initial_state():
    x = random_inputs(seed=4)
    layer = Bidirectional(VanillaRNN(UNITS, return_sequences=True, return_state=True))
    outputs, forward_state, backward_state = (to_numpy(v) for v in layer(x, mask=MASK))
    # The forward state is the forward output at the last valid step, the backward state the
    # backward output at step 0.
    last = MASK.sum(axis=1) - 1
    np.testing.assert_allclose(forward_state, outputs[np.arange(BATCH), last, :UNITS], atol=TOLERANCE)
    np.testing.assert_allclose(backward_state, outputs[:, 0, UNITS:], atol=TOLERANCE)
    shapes = layer.compute_output_shape((None, TIME, FEATURES))
    assert [tuple(s) for s in shapes] == [(None, TIME, 2 * UNITS), (None, UNITS), (None, UNITS)]

    h0 = [np.full((BATCH, UNITS), 0.5, "float32"), np.full((BATCH, UNITS), -0.5, "float32")]
    started = [to_numpy(v) for v in layer(x, initial_state=h0)]
    expected = to_numpy(layer.forward_layer(x, initial_state=h0[0])[0])
    np.testing.assert_allclose(started[0][..., :UNITS], expected, atol=TOLERANCE)
    expected = to_numpy(layer.backward_layer(x, initial_state=h0[1])[0])[:, ::-1]
    np.testing.assert_allclose(started[0][..., UNITS:], expected, atol=TOLERANCE)


# ---------------------------------------------------------------------------------------------
# The Keras contract


def test_registered_name():
    assert keras.saving.get_registered_name(Bidirectional) == "rnnzoo>Bidirectional"


CONTRACT_CASES = {
    "vanilla-concat": (lambda: Bidirectional(LAYERS["vanilla"](return_sequences=True)), 6),
    "deep-transition-sum-last": (lambda: Bidirectional(LAYERS["recurrent-deep-transition"](), merge_mode="sum"), 12),
    "deep-rnn-none-state": (lambda: Bidirectional(LAYERS["deep-rnn"](return_sequences=True, return_state=True),
                                                  merge_mode=None), 12),
}


@pytest.mark.parametrize("case", list(CONTRACT_CASES), ids=list(CONTRACT_CASES))
def test_keras_layer_contract(case):
    make_layer, num_weights = CONTRACT_CASES[case]
    run_layer_test(make_layer(), random_inputs(seed=5), expected_num_trainable_weights=num_weights)


def test_get_config_round_trip():
    layer = Bidirectional(VanillaRNN(UNITS, activation="relu", return_sequences=True, name="rnn"),
                          merge_mode="ave", name="bi")
    clone = Bidirectional.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert (clone.merge_mode, clone.name, clone.layer.name, clone.backward_layer.name) == (
        "ave", "bi", "forward_rnn", "backward_rnn")
    assert clone.backward_layer.activation == "relu" and clone.backward_layer.go_backwards


def test_mask_propagates_to_the_next_layer():
    x = random_inputs(seed=6)
    x[~MASK] = 0.0
    inputs = keras.Input((None, FEATURES))
    h = Bidirectional(VanillaRNN(UNITS, return_sequences=True))(keras.layers.Masking(0.0)(inputs))
    last = VanillaRNN(UNITS)(h)  # reads the mask: its output is at each row's last valid step
    model = keras.Model(inputs, last)
    outputs = to_numpy(model(x))
    for row in range(BATCH):
        np.testing.assert_allclose(outputs[row], to_numpy(model(x[row : row + 1, MASK[row]]))[0], atol=TOLERANCE)


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Bidirectional(VanillaRNN(4), merge_mode="max"),
         r"`Bidirectional\(merge_mode=\.\.\.\)` must be one of \['ave', 'concat', 'mul', 'sum'\] or None\. "
         r"Received: merge_mode='max'"),
        (lambda: Bidirectional(keras.layers.Dense(4)), r"needs a recurrent layer.* Received: layer=<Dense"),
        (lambda: Bidirectional(VanillaRNN(4, go_backwards=True)), r"Received: layer.go_backwards=True"),
        (lambda: Bidirectional(VanillaRNN(4), backward_layer=VanillaRNN(4)),
         r"Received: backward_layer.go_backwards=False"),
        (lambda: Bidirectional(VanillaRNN(4), backward_layer=VanillaRNN(4, go_backwards=True, return_sequences=True)),
         r"same `return_sequences` in both directions"),
    ],
    ids=["merge-max", "not-recurrent", "go-backwards", "backward-forwards", "backward-mismatch"],
)
def test_bad_configuration(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_odd_number_of_initial_states():
    layer = Bidirectional(VanillaRNN(UNITS))
    with pytest.raises(ValueError, match=r"an even number of tensors. Received: 1 tensors"):
        layer(random_inputs(), initial_state=[np.zeros((BATCH, UNITS), "float32")])


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"`Bidirectional` expects inputs of shape .* Received: inputs.shape=\(2, 3\)"):
        Bidirectional(VanillaRNN(UNITS))(np.zeros((2, 3), "float32"))


# ---------------------------------------------------------------------------------------------
# Training


@pytest.mark.slow
def test_future_recall_needs_the_backward_direction():
    """Label at step t = the input at step t + 2: only the backward direction can see it.

    Measured (seed 0, both backends): bidirectional 1.000 held-out accuracy after 5 epochs,
    the unidirectional model with the same total width (16 units, more weights) 0.49-0.51.
    """
    advance, length = 2, 10
    x, y = tasks.future_recall(512, length, advance=advance, seed=0)
    x_test, y_test = tasks.future_recall(256, length, advance=advance, seed=1)

    def held_out_accuracy(bidirectional):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((None, 1))
        if bidirectional:
            h = Bidirectional(VanillaRNN(8, return_sequences=True))(inputs)  # (batch, time, 16)
        else:
            h = VanillaRNN(16, return_sequences=True)(inputs)  # (batch, time, 16)
        model = keras.Model(inputs, keras.layers.Dense(2)(h))
        model.compile(keras.optimizers.Adam(0.03), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=32, epochs=5, verbose=0)
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        # Steps with a future to recall; the last `advance` labels are a constant 0.
        return float(np.mean(predictions[:, : length - advance] == y_test[:, : length - advance])), model

    bidirectional, bidirectional_model = held_out_accuracy(True)
    unidirectional, unidirectional_model = held_out_accuracy(False)
    assert bidirectional_model.count_params() <= unidirectional_model.count_params()
    assert bidirectional >= 0.99, f"bidirectional: held-out accuracy {bidirectional:.3f}"
    assert unidirectional <= 0.6, f"unidirectional: held-out accuracy {unidirectional:.3f} (chance 0.5)"


# ---------------------------------------------------------------------------------------------
# Export


@pytest.mark.slow
def test_saved_model_and_tflite_match_keras(tmp_path):
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    x = Bidirectional(LAYERS["vanilla"](return_sequences=True))(x)
    outputs = Bidirectional(LAYERS["deep-rnn"](return_sequences=True), merge_mode="sum")(x)
    model = keras.Model(inputs, outputs)
    batches = padded_batches(FEATURES)
    assert_exports_with_parity(model, str(tmp_path), batches, tolerance=TOLERANCE)
    # The artifact honours the padding: row 0's valid part alone gives the same outputs.
    tflite = str(tmp_path / "model.tflite")
    x = batches[2]
    alone = run_artifact(tflite, x[:1, : x.shape[1] // 2])
    np.testing.assert_allclose(run_artifact(tflite, x)[0, : x.shape[1] // 2], alone[0], atol=TOLERANCE)


def test_listed_in_the_zoo():
    import importlib

    from rnnzoo.app import registry as zoo

    names = {e.name: e for e in zoo.entries()}
    for name, symbol in [("bidirectional", Bidirectional), ("future_recall", tasks.future_recall)]:
        module, _, attribute = names[name].symbol.rpartition(".")
        assert getattr(importlib.import_module(module), attribute) is symbol
        assert names[name].section == "10.3"


def test_initial_state_for_a_layer_that_takes_none_is_a_clear_error():
    layer = Bidirectional(DeepRNN([VanillaRNNCell(UNITS)], return_sequences=True, return_state=True))
    zeros = np.zeros((2, UNITS), "float32")
    with pytest.raises(ValueError, match=r"over DeepRNN cannot take `initial_state`.*Received: initial_state with 2"):
        layer(np.zeros((2, 5, FEATURES), "float32"), initial_state=[zeros, zeros])
