"""Deep RNNs (section 10.5, fig. 10.13): `DeepTransitionCell` (b, c) and the `DeepRNN` stack (a)."""

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo.cells import DeepTransitionCell, VanillaRNNCell
from rnnzoo.data import tasks
from rnnzoo.layers import DeepRNN, Recurrent, VanillaRNN
from rnnzoo.testing import assert_exports_with_parity, numpy_deep_transition, padded_batches, run_layer_test

BATCH, TIME, FEATURES, UNITS = 3, 6, 3, 4
TOLERANCE = 1e-5

# Row 0 is full, row 1 right-padded (3 valid steps), row 2 left-padded (2 padded steps).
MASK = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 1]], dtype=bool)


def random_inputs(seed=0, batch=BATCH, time=TIME, features=FEATURES):
    return np.random.default_rng(seed).normal(size=(batch, time, features)).astype("float32")


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


# ---------------------------------------------------------------------------------------------
# DeepTransitionCell: the function it computes


@pytest.mark.parametrize(
    "depth, skip", [(1, False), (2, False), (3, False), (3, True)], ids=["depth1", "depth2", "depth3", "depth3-skip"]
)
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_cell_equals_hand_loop(depth, skip, masked):
    x = random_inputs()
    cell = DeepTransitionCell(UNITS, transition_depth=depth, transition_units=5, skip_connection=skip,
                              bias_initializer="random_normal")
    layer = Recurrent(cell, return_sequences=True, return_state=True, zero_output_for_mask=True)
    mask = MASK if masked else None
    outputs, state = layer(x, mask=mask)
    expected_outputs, expected_state = numpy_deep_transition(x.astype(np.float64), cell, mask)
    np.testing.assert_allclose(to_numpy(outputs), expected_outputs, atol=TOLERANCE)
    np.testing.assert_allclose(to_numpy(state), expected_state, atol=TOLERANCE)
    # Depth L means L nonlinear layers between h(t-1) and h(t): count the transition kernels.
    assert len([w for w in cell.weights if w.path.split("/")[-1].startswith("W_")]) == depth
    assert (any(w.path.endswith("/S") for w in cell.weights)) == skip


def test_depth_one_is_the_vanilla_rnn():
    x = random_inputs(seed=1)
    cell = DeepTransitionCell(UNITS, transition_depth=1, bias_initializer="random_normal")
    deep = Recurrent(cell, return_sequences=True, zero_output_for_mask=True)
    vanilla = VanillaRNN(UNITS, return_sequences=True)
    deep_outputs = to_numpy(deep(x))
    vanilla.build(x.shape)
    vanilla.set_weights(cell.get_weights())  # U, W_1 -> W, b_1 -> b
    np.testing.assert_allclose(to_numpy(vanilla(x)), deep_outputs, atol=TOLERANCE)


def test_skip_connection_is_the_only_difference():
    x = random_inputs(seed=2)
    plain = DeepTransitionCell(UNITS, transition_depth=3, bias_initializer="random_normal")
    skip = DeepTransitionCell(UNITS, transition_depth=3, skip_connection=True, bias_initializer="random_normal")
    plain_layer, skip_layer = Recurrent(plain, return_sequences=True), Recurrent(skip, return_sequences=True)
    plain_outputs = to_numpy(plain_layer(x))
    skip_layer.build(x.shape)
    skip.set_weights(plain.get_weights() + [np.zeros((UNITS, UNITS), "float32")])
    np.testing.assert_allclose(to_numpy(skip_layer(x)), plain_outputs, atol=TOLERANCE)  # S = 0: same
    skip.S.assign(np.eye(UNITS, dtype="float32"))
    assert np.max(np.abs(to_numpy(skip_layer(x)) - plain_outputs)) > 1e-2  # S != 0: the shortcut acts


# ---------------------------------------------------------------------------------------------
# DeepRNN: the stack


def make_stack(residual, **kwargs):
    return DeepRNN(
        [VanillaRNNCell(UNITS, bias_initializer="random_normal"),
         DeepTransitionCell(UNITS, transition_depth=2, skip_connection=True, bias_initializer="random_normal"),
         keras.layers.GRUCell(UNITS)],
        residual=residual, **kwargs,
    )


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
def test_stack_equals_layers_chained_by_hand(residual, go_backwards):
    x = random_inputs(seed=3)
    stack = make_stack(residual, return_sequences=True, return_state=True, go_backwards=go_backwards,
                       zero_output_for_mask=True)
    outputs, *states = stack(x, mask=MASK)
    assert len(states) == 3
    # The same (now built) cells, each in its own `Recurrent`, chained by hand.
    mask = MASK[:, ::-1] if go_backwards else MASK
    y = x[:, ::-1] if go_backwards else x
    expected_states = []
    for i, cell in enumerate(stack.cells):
        out, state = Recurrent(cell, return_sequences=True, return_state=True, zero_output_for_mask=True)(y, mask=mask)
        out = to_numpy(out)
        y = out + y if residual and i > 0 else out
        expected_states.append(to_numpy(state))
    np.testing.assert_allclose(to_numpy(outputs), y, atol=TOLERANCE)
    for got, want in zip(states, expected_states):
        np.testing.assert_allclose(to_numpy(got), want, atol=TOLERANCE)
    assert np.all(to_numpy(outputs)[~mask] == 0), "padded steps output zeros, residual included"
    # Only the last output: the top layer's output at each row's last valid step.
    last = make_stack(residual, go_backwards=go_backwards)
    last.build(x.shape)
    last.set_weights(stack.get_weights())
    last_valid = [np.flatnonzero(row)[-1] for row in mask]
    np.testing.assert_allclose(to_numpy(last(x, mask=MASK)), y[np.arange(BATCH), last_valid], atol=TOLERANCE)


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
def test_stack_padded_equals_unpadded(residual):
    x = random_inputs(seed=4)
    stack = make_stack(residual, return_sequences=True)
    outputs = to_numpy(stack(x, mask=MASK))
    for row in range(BATCH):
        unpadded = to_numpy(stack(x[row : row + 1, MASK[row]]))
        np.testing.assert_allclose(outputs[row, MASK[row]], unpadded[0], atol=TOLERANCE)


def test_residual_changes_the_function():
    x = random_inputs(seed=5)
    plain, residual = make_stack(False, return_sequences=True), make_stack(True, return_sequences=True)
    plain_outputs = to_numpy(plain(x))
    residual.build(x.shape)
    residual.set_weights(plain.get_weights())
    assert np.max(np.abs(to_numpy(residual(x)) - plain_outputs)) > 1e-2


# ---------------------------------------------------------------------------------------------
# The Keras contract


def test_registered_names():
    assert keras.saving.get_registered_name(DeepRNN) == "rnnzoo>DeepRNN"
    assert keras.saving.get_registered_name(DeepTransitionCell) == "rnnzoo>DeepTransitionCell"


LAYER_CASES = {
    # (layer, trainable weights)
    "deep-transition-skip": (lambda: Recurrent(DeepTransitionCell(UNITS, transition_depth=3, transition_units=5,
                                                                  skip_connection=True), return_sequences=True), 8),
    "stack-residual-sequences": (lambda: make_stack(True, return_sequences=True), 3 + 6 + 3),
    "stack-backwards-state": (lambda: make_stack(False, go_backwards=True, return_state=True), 3 + 6 + 3),
}


@pytest.mark.parametrize("case", list(LAYER_CASES), ids=list(LAYER_CASES))
def test_keras_layer_contract(case):
    make_layer, num_weights = LAYER_CASES[case]
    run_layer_test(make_layer(), random_inputs(seed=6), expected_num_trainable_weights=num_weights)


def test_get_config_round_trip_keeps_every_argument():
    cell = DeepTransitionCell(UNITS, transition_depth=3, transition_units=7, skip_connection=True,
                              activation="relu", use_bias=False, kernel_initializer="ones", name="dt")
    clone = DeepTransitionCell.from_config(cell.get_config())
    for key in ("units", "transition_depth", "transition_units", "skip_connection", "use_bias", "name"):
        assert getattr(clone, key) == getattr(cell, key), key
    assert clone.get_config() == cell.get_config()
    stack = DeepRNN([VanillaRNNCell(UNITS), cell], residual=False, return_sequences=True, return_state=True,
                    go_backwards=True, unroll=2, name="deep")
    clone = DeepRNN.from_config(stack.get_config())
    assert clone.get_config() == stack.get_config()
    assert [type(c).__name__ for c in clone.cells] == ["VanillaRNNCell", "DeepTransitionCell"]
    assert (clone.residual, clone.return_sequences, clone.return_state, clone.go_backwards, clone.unroll) == (
        False, True, True, True, 2)


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: DeepRNN([VanillaRNNCell(4), VanillaRNNCell(8)], residual=True),
         r"`DeepRNN\(residual=True\)` .* same output size.* Received: output sizes \[4, 8\]"),
        (lambda: DeepRNN([]), r"`DeepRNN\(cells=\.\.\.\)` must be a non-empty list.* Received: cells=\[\]"),
        (lambda: DeepRNN([keras.layers.Dense(4)]), r"needs Keras cells.* Received: cells=\[\.\.\., <Dense"),
        (lambda: DeepRNN([VanillaRNNCell(4)], unroll=0), r"Received: unroll=0"),
        (lambda: DeepTransitionCell(4, transition_depth=1, skip_connection=True),
         r"needs `transition_depth >= 2`.* Received: skip_connection=True, transition_depth=1"),
        (lambda: DeepTransitionCell(4, transition_depth=0),
         r"`DeepTransitionCell\(transition_depth=\.\.\.\)` must be a positive integer. Received: transition_depth=0"),
        (lambda: DeepTransitionCell(4, transition_units=2.5), r"Received: transition_units=2.5"),
    ],
    ids=["residual-mismatch", "no-cells", "not-a-cell", "unroll", "skip-depth1", "depth0", "width"],
)
def test_bad_configuration(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"`DeepRNN` expects inputs of shape \(batch, time, features\).*"
                                         r"Received: inputs.shape=\(2, 3\)"):
        DeepRNN([VanillaRNNCell(4)])(np.zeros((2, 3), "float32"))


# ---------------------------------------------------------------------------------------------
# Training


def train_deep_transition_tagger(skip, delay, epochs):
    """The recipe of examples/deep_rnn.py: (trained model, held-out accuracy on steps t >= delay)."""
    x, y = tasks.delayed_recall(1024, 16, delay=delay, seed=0)
    x_test, y_test = tasks.delayed_recall(256, 16, delay=delay, seed=1)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 1))
    h = Recurrent(DeepTransitionCell(16, transition_depth=4, skip_connection=skip), return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0)
    predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
    return model, float(np.mean(predictions[:, delay:] == y_test[:, delay:]))


@pytest.fixture(scope="module")
def trained_skip_tagger():
    return train_deep_transition_tagger(skip=True, delay=8, epochs=6)


@pytest.mark.slow
def test_skip_connection_trains_where_the_plain_deep_transition_does_not(trained_skip_tagger):
    """Delayed recall 8 steps back through a 4-layer transition (fig. 10.13 b vs c).

    Measured (seed 0, both backends): the skip variant reaches >= 0.99 held-out accuracy in
    6 epochs, the plain variant stays at chance (0.49) -- the gradient through 4 x 8 tanh
    layers vanishes -- although the plain variant solves the same task with a delay of 2.
    """
    skip = trained_skip_tagger[1]
    plain = train_deep_transition_tagger(skip=False, delay=8, epochs=6)[1]
    assert skip >= 0.99, f"skip variant: held-out accuracy {skip:.3f}"
    assert plain <= 0.6, f"plain variant: held-out accuracy {plain:.3f} (chance 0.5)"
    short = train_deep_transition_tagger(skip=False, delay=2, epochs=2)[1]
    assert short >= 0.99, f"plain variant on the short delay: {short:.3f}"


@pytest.mark.slow
def test_trained_skip_tagger_exports_within_float32_rounding(trained_skip_tagger, tmp_path):
    """The trained model that examples/deep_rnn.py exports, at the example's (5, 33) batch: its
    |TFLite - Keras| exceeds 1e-5 on TF (measured 1.35e-5, logits up to 6.7; on JAX 7.5e-6).

    That is float32 rounding, not a conversion error: against the exact (float64) computation,
    TFLite is about as far as Keras itself (measured on TF: 1.43e-5 and 8.25e-6; on JAX 9.3e-6
    and 1.24e-5). Parity is the normwise relative error of each example, max |TFLite - Keras| /
    max(1, max |Keras|) (measured: 2.4e-6 on TF, 1.3e-6 on JAX).
    """
    model = trained_skip_tagger[0]
    rng = np.random.default_rng(0)  # the example's inputs; its (5, 33) batch comes last
    x = [rng.integers(0, 2, size=(b, t, 1)).astype("float32") for b, t in [(1, 1), (1, 7), (3, 10), (5, 33)]][-1]
    # Relative parity only: the absolute difference is 1.6e-5 on TF (see above).
    assert_exports_with_parity(model, str(tmp_path), [x], tolerance=TOLERANCE, max_abs_error=None)

    from rnnzoo.export import run_artifact

    cell, dense = model.layers[1].cell, model.layers[2]
    kernel, bias = (np.asarray(w, np.float64) for w in dense.weights)
    exact = numpy_deep_transition(x, cell)[0] @ kernel + bias
    keras_error = np.abs(to_numpy(model(x)) - exact).max()
    tflite_error = np.abs(run_artifact(str(tmp_path / "model.tflite"), x) - exact).max()
    # Both are float32 computations of it: a conversion error would be orders of magnitude larger.
    assert tflite_error <= 3 * keras_error, f"from float64: TFLite {tflite_error:.2e}, Keras {keras_error:.2e}"


@pytest.mark.slow
def test_residual_stack_learns_delayed_recall():
    delay = 3
    x, y = tasks.delayed_recall(512, 12, delay=delay, seed=0)
    x_test, y_test = tasks.delayed_recall(256, 12, delay=delay, seed=1)
    inputs = keras.Input((None, 1))
    h = DeepRNN([VanillaRNNCell(16), VanillaRNNCell(16), VanillaRNNCell(16)], residual=True,
                return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(h))
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def held_out_accuracy():
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        return float(np.mean(predictions[:, delay:] == y_test[:, delay:]))

    before = held_out_accuracy()
    model.fit(x, y, batch_size=32, epochs=4, verbose=0)
    accuracy = held_out_accuracy()
    assert accuracy >= 0.99 and accuracy > before, f"held-out accuracy {before:.3f} -> {accuracy:.3f}"


# ---------------------------------------------------------------------------------------------
# Export


@pytest.mark.slow
def test_saved_model_and_tflite_match_keras(tmp_path):
    # No `keras.layers.GRUCell` here: its dropout seed generator is a uint32 variable, which the
    # TFLite converter rejects in a model exported from the JAX backend.
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs)
    outputs = DeepRNN(
        [VanillaRNNCell(UNITS, bias_initializer="random_normal"),
         DeepTransitionCell(UNITS, transition_depth=3, skip_connection=True, bias_initializer="random_normal")],
        residual=True, return_sequences=True,
    )(x)
    model = keras.Model(inputs, outputs)
    report = assert_exports_with_parity(model, str(tmp_path), padded_batches(FEATURES), tolerance=TOLERANCE)
    assert len(report.rows) == 8


def test_listed_in_the_zoo():
    import importlib

    from rnnzoo.app import registry as zoo

    names = {e.name: e for e in zoo.entries()}
    for name, symbol, section in [("deep_rnn", DeepRNN, "10.5"), ("deep_transition_cell", DeepTransitionCell, "10.5")]:
        module, _, attribute = names[name].symbol.rpartition(".")
        assert getattr(importlib.import_module(module), attribute) is symbol
        assert names[name].section == section
