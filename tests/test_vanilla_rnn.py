"""`VanillaRNN` and `VanillaRNNCell`: the function they compute, masks, training, the Keras contract."""

import itertools
import re

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo import bptt, bptt_wiring, recurrence
from rnnzoo.cells import VanillaRNNCell
from rnnzoo.data import tasks
from rnnzoo.layers import VanillaRNN
from rnnzoo.models import vanilla_tagger
from rnnzoo.testing import gradients, relative_error, run_layer_test

BATCH, TIME, FEATURES, UNITS, OUTPUTS = 3, 6, 3, 4, 2
TOLERANCE = 1e-5  # float32 comparisons of the same function

# Row 0 is full, row 1 right-padded (3 valid steps), row 2 left-padded (2 padded steps).
MASK = np.array(
    [[1, 1, 1, 1, 1, 1],
     [1, 1, 1, 0, 0, 0],
     [0, 0, 1, 1, 1, 1]],
    dtype=bool,
)


def random_inputs(seed=0, batch=BATCH, time=TIME, features=FEATURES):
    return np.random.default_rng(seed).normal(size=(batch, time, features)).astype("float32")


def numpy_rnn(x, U, W, b, V=None, c=None, h0=None, mask=None, go_backwards=False, activation="tanh",
              zero_output_for_mask=True):
    """The vanilla RNN stepped by hand: `(sequence outputs in Keras order, final state)`.

    Sequence outputs at padded steps are zeros or the previous output (Keras's
    `zero_output_for_mask`), and with `go_backwards` in reverse order.
    """
    x = np.asarray(x, np.float64)
    mask = np.ones(x.shape[:2], bool) if mask is None else np.asarray(mask, bool)
    if go_backwards:
        x, mask = x[:, ::-1], mask[:, ::-1]
    h = np.zeros((x.shape[0], W.shape[0])) if h0 is None else np.asarray(h0, np.float64)
    outputs = []
    for t in range(x.shape[1]):
        a = b + h @ W + x[:, t] @ U
        h_new = np.tanh(a) if activation == "tanh" else np.maximum(a, 0)
        h = np.where(mask[:, t : t + 1], h_new, h)
        o = h if V is None else h @ V + c
        # Keras's conventions at a padded step: zeros, or the previous output (zeros at first).
        previous = outputs[-1] if outputs and not zero_output_for_mask else np.zeros_like(o)
        outputs.append(np.where(mask[:, t : t + 1], o, previous))
    return np.stack(outputs, axis=1), h


def layer_weights(layer):
    """`U, W, b[, V, c]` as float64 NumPy arrays."""
    return [np.asarray(w, np.float64) for w in layer.trainable_weights]


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


# ---------------------------------------------------------------------------------------------
# The function the layer computes


EQUIVALENCE_CASES = [
    case for case in itertools.product([False, True], [False, True], [False, True], [None, OUTPUTS], [False, True])
    if case[0] or not case[4]  # zero_output_for_mask only matters with a mask
]


@pytest.mark.parametrize(
    "masked, return_sequences, go_backwards, output_units, zero_output_for_mask",
    EQUIVALENCE_CASES,
    ids=[
        f"{'masked' if m else 'unmasked'}-{'sequences' if r else 'last'}-"
        f"{'backwards' if g else 'forwards'}-{'projection' if o else 'hidden'}{'-zeros' if z else ''}"
        for m, r, g, o, z in EQUIVALENCE_CASES
    ],
)
def test_layer_equals_hand_loop_keras_rnn_and_simple_rnn(masked, return_sequences, go_backwards, output_units,
                                                         zero_output_for_mask):
    x = random_inputs()
    mask = MASK if masked else None
    options = dict(return_sequences=return_sequences, go_backwards=go_backwards, return_state=True,
                   zero_output_for_mask=zero_output_for_mask)
    layer = VanillaRNN(UNITS, output_units=output_units, bias_initializer="random_normal", **options)
    outputs, state = (to_numpy(v) for v in layer(x, mask=mask))

    weights = layer_weights(layer)
    sequence, final_state = numpy_rnn(x, *weights, mask=mask, go_backwards=go_backwards,
                                      zero_output_for_mask=zero_output_for_mask)
    # Valid positions of the sequence outputs, in output order.
    valid = np.ones((BATCH, TIME), bool) if mask is None else (mask[:, ::-1] if go_backwards else mask)
    expected = sequence if return_sequences else sequence[:, -1]  # Keras: the last step's output
    np.testing.assert_allclose(outputs, expected, atol=TOLERANCE)
    np.testing.assert_allclose(state, final_state, atol=TOLERANCE)

    # The same cell run by Keras's own loop. (Keras's JAX `rnn` starts the masked output from
    # the state's shape, so with a mask it fails for cells whose output size differs from
    # their state size: `Incompatible shapes for broadcasting`. A Keras limitation.)
    if not (masked and output_units and keras.backend.backend() == "jax"):
        keras_rnn = keras.layers.RNN(VanillaRNNCell(UNITS, output_units=output_units), **options)
        keras_rnn.build(x.shape)
        keras_rnn.set_weights(layer.get_weights())
        keras_outputs, keras_state = (to_numpy(v) for v in keras_rnn(x, mask=mask))
        np.testing.assert_allclose(keras_state, state, atol=TOLERANCE)
        np.testing.assert_allclose(keras_outputs, outputs, atol=TOLERANCE)

    if output_units is None:  # SimpleRNN: kernel = U, recurrent_kernel = W, bias = b
        simple = keras.layers.SimpleRNN(UNITS, **options)
        simple.build(x.shape)
        simple.set_weights(layer.get_weights())
        simple_outputs, simple_state = (to_numpy(v) for v in simple(x, mask=mask))
        np.testing.assert_allclose(simple_state, state, atol=TOLERANCE)
        np.testing.assert_allclose(simple_outputs, outputs, atol=TOLERANCE)
    assert valid.shape == (BATCH, TIME)


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
@pytest.mark.parametrize("output_units", [None, OUTPUTS], ids=["hidden", "projection"])
def test_padded_equals_unpadded(go_backwards, output_units):
    x = random_inputs(seed=1)
    layer = VanillaRNN(UNITS, output_units=output_units, return_sequences=True, return_state=True,
                       go_backwards=go_backwards, bias_initializer="random_normal", zero_output_for_mask=True)
    # Padding holds garbage: the mask alone must hide it.
    outputs, state = (to_numpy(v) for v in layer(x, mask=MASK))
    output_valid = MASK[:, ::-1] if go_backwards else MASK
    assert np.all(outputs[~output_valid] == 0), "masked sequence outputs must be zero"
    for row in range(BATCH):
        unpadded = x[row : row + 1, MASK[row]]  # only the valid steps, as a batch of one
        row_outputs, row_state = (to_numpy(v) for v in layer(unpadded))
        np.testing.assert_allclose(outputs[row, output_valid[row]], row_outputs[0], atol=TOLERANCE)
        # The final state is the state at the row's last valid step.
        np.testing.assert_allclose(state[row], row_state[0], atol=TOLERANCE)
    # The state after a right-padded row's last valid step is carried through the padding.
    _, last_valid_state = numpy_rnn(x[1:2, :3], *layer_weights(layer)[:3], go_backwards=go_backwards)
    np.testing.assert_allclose(state[1], last_valid_state[0], atol=TOLERANCE)


@pytest.mark.parametrize("gradient", ["bptt", "autodiff"])
def test_training_and_inference_loops_compute_the_same_function(gradient):
    # On TensorFlow, training=True runs the TensorArray loop and training=False the fixed-buffer
    # (export) loop; outputs and gradients must agree.
    x = random_inputs(seed=2)
    layer = VanillaRNN(UNITS, output_units=OUTPUTS, return_sequences=True, return_state=True,
                       gradient=gradient, bias_initializer="random_normal")
    for training in (True, False):
        results = [to_numpy(v) for v in layer(x, mask=MASK, training=training)]
        if training:
            reference = results
        for a, b in zip(results, reference):
            np.testing.assert_allclose(a, b, atol=1e-6)

    rng = np.random.default_rng(3)
    A, B = rng.normal(size=(BATCH, TIME, OUTPUTS)), rng.normal(size=(BATCH, UNITS))
    h0 = rng.normal(size=(BATCH, UNITS)).astype("float32")
    mask = ops.convert_to_tensor(MASK.astype("float32"))
    args = [x, h0] + layer.get_weights()

    def loss_for(training):
        def loss(x, h0, U, W, b, V, c):
            outputs, h_last = bptt_wiring.vanilla_rnn(x, h0, U, W, b, V, c, mask, return_sequences=True,
                                               gradient=gradient, training=training)
            return ops.sum(outputs * ops.cast(A, outputs.dtype)) + ops.sum(h_last * ops.cast(B, h_last.dtype))

        return loss

    training_grads = gradients(loss_for(True), args)
    inference_grads = gradients(loss_for(False), args)
    for name, a, b in zip(["x", "h0", "U", "W", "b", "V", "c"], training_grads, inference_grads):
        assert np.any(a != 0), name
        assert relative_error(b, a) <= 1e-6, name


def scan_reference(init, xs, reverse):
    """NumPy loop for the step used in `test_scan_implementations_agree`."""
    (h, count), (a, scale) = init, xs
    ys_h, ys_count = [None] * len(a), [None] * len(a)
    for t in (range(len(a) - 1, -1, -1) if reverse else range(len(a))):
        h = np.tanh(h * 0.5 + a[t] * scale[t])
        count = count + 1
        ys_h[t], ys_count[t] = 2 * h, count
    return (h, count), (np.stack(ys_h), np.stack(ys_count))


def scan_step(carry, inputs):
    h, count = carry
    a, scale = inputs
    h = ops.tanh(h * 0.5 + a * scale)
    count = count + 1
    return (h, count), (2 * h, count)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
def test_scan_implementations_agree(training, reverse):
    rng = np.random.default_rng(4)
    a = rng.normal(size=(TIME, BATCH, UNITS)).astype("float32")  # time-major
    scale = rng.normal(size=(TIME, BATCH, 1)).astype("float32")
    init = (rng.normal(size=(BATCH, UNITS)).astype("float32"), np.zeros((BATCH,), "float32"))
    expected_carry, expected_ys = scan_reference(init, (a, scale), reverse)

    results = {
        "recurrence.scan": recurrence.scan(scan_step, init, (a, scale), training=training, reverse=reverse),
        "keras.ops.scan": ops.scan(scan_step, init, (a, scale), reverse=reverse),
    }
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # In a graph with a dynamic time axis, as in model.fit and model.export.
        spec = [tf.TensorSpec((None, None, UNITS)), tf.TensorSpec((None, None, 1))]
        graph_scan = tf.function(
            lambda a, scale: recurrence.scan(scan_step, init, (a, scale), training=training, reverse=reverse),
            input_signature=spec,
        )
        results["recurrence.scan in tf.function"] = graph_scan(a, scale)
        if training:  # the XLA-compiled training loop (graph mode only)
            jit_scan = tf.function(
                lambda a, scale: recurrence.scan(scan_step, init, (a, scale), training=True,
                                                 reverse=reverse, jit_compile=True),
                input_signature=spec,
            )
            results["recurrence.scan(jit_compile=True) in tf.function"] = jit_scan(a, scale)
    for name, (carry, ys) in results.items():
        for got, want in zip(list(carry) + list(ys), list(expected_carry) + list(expected_ys)):
            np.testing.assert_allclose(to_numpy(got), want, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------------------------------------
# Training


def build_tagger(gradient, masked):
    inputs = keras.Input((None, FEATURES))
    x = keras.layers.Masking(0.0)(inputs) if masked else inputs
    outputs = VanillaRNN(UNITS, output_units=OUTPUTS, return_sequences=True, gradient=gradient,
                         go_backwards=masked, bias_initializer="random_normal")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked_backwards"])
def test_three_sgd_steps_bptt_equals_autodiff(masked):
    rng = np.random.default_rng(5)
    x = random_inputs(seed=5, batch=6)
    if masked:
        x[1, 4:] = 0.0  # right padding
        x[4, :2] = 0.0  # left padding
    y = rng.integers(0, OUTPUTS, size=(6, TIME))
    models = {gradient: build_tagger(gradient, masked) for gradient in ("bptt", "autodiff")}
    initial = models["bptt"].get_weights()
    models["autodiff"].set_weights(initial)
    for model in models.values():
        model.compile(keras.optimizers.SGD(0.5),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)  # exactly 3 steps
        assert int(model.optimizer.iterations) == 3
    for w_bptt, w_autodiff, w_initial in zip(models["bptt"].get_weights(), models["autodiff"].get_weights(), initial):
        assert np.max(np.abs(w_bptt - w_initial)) > 1e-3, "the weights did not move"
        assert np.max(np.abs(w_bptt - w_autodiff)) <= 1e-6


@pytest.mark.slow
def test_learns_delayed_recall():
    delay = 3
    x, y = tasks.delayed_recall(512, 12, delay=delay, seed=0)
    x_test, y_test = tasks.delayed_recall(256, 12, delay=delay, seed=1)
    model = vanilla_tagger(num_classes=2, features=1, units=16)
    model.compile(keras.optimizers.Adam(0.03), keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def held_out_accuracy():
        predictions = np.argmax(model.predict(x_test, verbose=0), axis=-1)
        # Steps t >= delay need the bit seen `delay` steps earlier: chance there is 50%.
        return float(np.mean(predictions[:, delay:] == y_test[:, delay:]))

    assert held_out_accuracy() < 0.75
    model.fit(x, y, batch_size=32, epochs=5, verbose=0)
    accuracy = held_out_accuracy()
    assert accuracy >= 0.99, f"held-out accuracy {accuracy:.3f}"


# ---------------------------------------------------------------------------------------------
# The Keras contract


def test_registered_names():
    assert keras.saving.get_registered_name(VanillaRNN) == "rnnzoo>VanillaRNN"
    assert keras.saving.get_registered_name(VanillaRNNCell) == "rnnzoo>VanillaRNNCell"


LAYER_CASES = {
    "sequences-projection": (lambda: VanillaRNN(UNITS, output_units=OUTPUTS, return_sequences=True), 5),
    "last-backwards-relu": (lambda: VanillaRNN(UNITS, go_backwards=True, activation="relu",
                                               bias_initializer="ones"), 3),
    "no-bias-autodiff": (lambda: VanillaRNN(UNITS, use_bias=False, gradient="autodiff",
                                            return_sequences=True), 2),
    "return-state": (lambda: VanillaRNN(UNITS, output_units=OUTPUTS, return_state=True), 5),
    # zero_output_for_mask: at a masked step Keras's JAX loop otherwise repeats `states[0]` as the
    # output, which fails when the output (o, size OUTPUTS) is not the state (h, size UNITS).
    "keras-rnn-over-cell": (lambda: keras.layers.RNN(VanillaRNNCell(UNITS, output_units=OUTPUTS),
                                                     return_sequences=True, zero_output_for_mask=True), 5),
}


@pytest.mark.parametrize("case", list(LAYER_CASES), ids=list(LAYER_CASES))
def test_keras_layer_contract(case):
    make_layer, num_weights = LAYER_CASES[case]
    layer = make_layer()
    run_layer_test(layer, random_inputs(seed=6), expected_num_trainable_weights=num_weights)


def test_get_config_round_trip_keeps_every_argument():
    layer = VanillaRNN(UNITS, output_units=OUTPUTS, activation="relu", use_bias=False,
                       kernel_initializer="ones", recurrent_regularizer="l2", return_sequences=True,
                       return_state=True, go_backwards=True, unroll=2, gradient="autodiff",
                       jit_compile=False, name="rnn")
    config = layer.get_config()
    clone = VanillaRNN.from_config(config)
    for key in ("units", "output_units", "activation", "use_bias", "return_sequences", "return_state",
                "go_backwards", "stateful", "unroll", "gradient", "jit_compile", "name"):
        assert getattr(clone, key) == getattr(layer, key), key
    assert config["output_units"] == OUTPUTS and config["go_backwards"] and config["gradient"] == "autodiff"
    assert clone.get_config() == config


def test_return_state():
    x = random_inputs(seed=7)
    layer = VanillaRNN(UNITS, return_sequences=True, return_state=True)
    outputs, state = (to_numpy(v) for v in layer(x))
    np.testing.assert_allclose(state, outputs[:, -1], atol=1e-7)
    backwards = VanillaRNN(UNITS, return_state=True, go_backwards=True, output_units=OUTPUTS)
    last_output, state = (to_numpy(v) for v in backwards(x))
    U, W, b, V, c = layer_weights(backwards)
    np.testing.assert_allclose(last_output, state @ V + c, atol=TOLERANCE)
    assert backwards.compute_output_shape((BATCH, TIME, FEATURES)) == [(BATCH, OUTPUTS), (BATCH, UNITS)]


def test_initial_state_keyword():
    x = random_inputs(seed=8)
    h0 = np.random.default_rng(8).normal(size=(BATCH, UNITS)).astype("float32")
    layer = VanillaRNN(UNITS, return_sequences=True)
    outputs = to_numpy(layer(x, initial_state=h0))
    expected, _ = numpy_rnn(x, *layer_weights(layer), h0=h0)
    np.testing.assert_allclose(outputs, expected, atol=TOLERANCE)
    np.testing.assert_allclose(to_numpy(layer(x, initial_state=[h0])), expected, atol=TOLERANCE)
    zeros_start, _ = numpy_rnn(x, *layer_weights(layer))
    assert np.max(np.abs(zeros_start - expected)) > 1e-2, "the initial state was ignored"

    # As a second input of a functional model.
    inputs, state_input = keras.Input((None, FEATURES)), keras.Input((UNITS,))
    model = keras.Model([inputs, state_input], layer(inputs, initial_state=state_input))
    np.testing.assert_allclose(to_numpy(model([x, h0])), expected, atol=TOLERANCE)


def test_stateful_carries_state_between_calls():
    first, second = random_inputs(seed=9, batch=2), random_inputs(seed=10, batch=2)
    inputs = keras.Input((None, FEATURES), batch_size=2)
    layer = VanillaRNN(UNITS, stateful=True, return_sequences=True)
    model = keras.Model(inputs, layer(inputs))
    weights = layer_weights(layer)[:3]
    expected_first, state = numpy_rnn(first, *weights)
    expected_second, _ = numpy_rnn(second, *weights, h0=state)

    np.testing.assert_allclose(to_numpy(model(first)), expected_first, atol=TOLERANCE)
    np.testing.assert_allclose(to_numpy(model(second)), expected_second, atol=TOLERANCE)
    layer.reset_state()
    assert np.all(to_numpy(layer.states[0].value) == 0)
    np.testing.assert_allclose(to_numpy(model(first)), expected_first, atol=TOLERANCE)
    assert not layer.states[0].trainable and all(w is not layer.states[0] for w in layer.trainable_weights)


def test_stateful_needs_a_fixed_batch_size():
    with pytest.raises(ValueError, match=r"VanillaRNN\(stateful=True\)` needs a fixed batch size"):
        VanillaRNN(UNITS, stateful=True)(keras.Input((None, FEATURES)))


def test_mixed_float16():
    keras.config.set_dtype_policy("mixed_float16")  # the root conftest resets the policy
    x = random_inputs(seed=11)
    layer = VanillaRNN(UNITS, output_units=OUTPUTS, return_sequences=True, return_state=True,
                       zero_output_for_mask=True)
    outputs, state = layer(x, mask=MASK)
    assert keras.backend.standardize_dtype(outputs.dtype) == "float16"
    assert keras.backend.standardize_dtype(state.dtype) == "float16"
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in layer.weights)
    expected, _ = numpy_rnn(x, *layer_weights(layer), mask=MASK)
    np.testing.assert_allclose(to_numpy(outputs).astype("float32"), expected, atol=1e-2)

    inputs = keras.Input((None, FEATURES))
    model = keras.Model(inputs, VanillaRNN(UNITS, output_units=OUTPUTS, return_sequences=True)(inputs))
    model.compile(keras.optimizers.SGD(0.1), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.get_weights()
    history = model.fit(x, np.zeros((BATCH, TIME), "int32"), epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][1] < history.history["loss"][0]
    for old, new in zip(before, model.get_weights()):
        assert new.dtype == np.float32 and not np.allclose(old, new)


def test_jit_compiled_fit_equals_plain_fit():
    x = random_inputs(seed=12, batch=4)
    y = np.random.default_rng(12).integers(0, OUTPUTS, size=(4, TIME))
    weights = {}
    for jit_compile in (False, True):
        keras.utils.set_random_seed(1)
        inputs = keras.Input((None, FEATURES))
        model = keras.Model(inputs, VanillaRNN(UNITS, output_units=OUTPUTS, return_sequences=True)(inputs))
        model.compile(keras.optimizers.SGD(0.5), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile=jit_compile)
        assert model.jit_compile == jit_compile  # (Keras silently turns XLA off under op determinism)
        initial = model.get_weights()
        history = model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0)
        assert np.all(np.isfinite(history.history["loss"]))
        weights[jit_compile] = model.get_weights()
    for w_initial, w_plain, w_jit in zip(initial, weights[False], weights[True]):
        assert np.max(np.abs(w_jit - w_initial)) > 1e-3
        np.testing.assert_allclose(w_jit, w_plain, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Bad input


def test_wrong_rank():
    with pytest.raises(ValueError, match=r"`VanillaRNN` expects inputs of shape \(batch, time, features\), "
                                         r"i\.e\. rank 3\. Received: inputs\.shape=\(2, 5\)"):
        VanillaRNN(UNITS)(np.zeros((2, 5), "float32"))


def test_feature_size_differs_from_built_weights():
    layer = VanillaRNN(UNITS)
    layer(np.zeros((2, 5, 3), "float32"))
    with pytest.raises(ValueError, match=r"`VanillaRNN` was built for inputs with 3 features .* received 6\. "
                                         r"Received: inputs\.shape=\(2, 5, 6\)"):
        layer(np.zeros((2, 5, 6), "float32"))


def test_integer_inputs_are_numbers_as_in_keras_and_booleans_are_an_error():
    x = np.arange(30).reshape((2, 5, 3)) % 4
    layer = VanillaRNN(UNITS, return_sequences=True)
    floats = to_numpy(layer(x.astype("float32")))
    integers = layer(x.astype("int32"))
    assert keras.backend.standardize_dtype(integers.dtype) == "float32"
    np.testing.assert_array_equal(to_numpy(integers), floats)
    with pytest.raises(TypeError, match=r"`VanillaRNN` expects numeric inputs.*Received: inputs\.dtype=bool"):
        VanillaRNN(UNITS)(np.zeros((2, 5, 3), bool))


@pytest.mark.parametrize("units", [0, -3, 2.5, None], ids=["zero", "negative", "float", "none"])
def test_units_must_be_positive(units):
    with pytest.raises(ValueError, match=rf"`VanillaRNN\(units=\.\.\.\)` must be a positive integer\. "
                                         rf"Received: units={units!r}"):
        VanillaRNN(units)


def test_cell_units_must_be_positive():
    with pytest.raises(ValueError, match=r"`VanillaRNNCell\(units=\.\.\.\)` must be a positive integer\. "
                                         r"Received: units=0"):
        VanillaRNNCell(0)
    with pytest.raises(ValueError, match=r"`VanillaRNNCell\(output_units=\.\.\.\)` .* Received: output_units=0"):
        VanillaRNNCell(UNITS, output_units=0)


def test_unknown_activation():
    with pytest.raises(ValueError, match=r"`VanillaRNN\(activation=\.\.\.\)` must be one of \['tanh', 'relu', "
                                         r"'sigmoid', 'linear'\].* Received: activation='softplus'"):
        VanillaRNN(UNITS, activation="softplus")


@pytest.mark.parametrize("mask_shape", [(2, 4), (2, 5, 1), (3, 5)], ids=["short", "rank3", "batch"])
def test_mask_shape_mismatch(mask_shape):
    with pytest.raises(ValueError, match=r"`VanillaRNN` expects a mask of shape \(batch, time\) = \(2, 5\) "
                                         r"matching the inputs\. Received: mask\.shape=" + re.escape(str(mask_shape))):
        VanillaRNN(UNITS)(np.zeros((2, 5, 3), "float32"), mask=np.ones(mask_shape, bool))


def test_unknown_gradient():
    with pytest.raises(ValueError, match=r"`VanillaRNN\(gradient=\.\.\.\)` must be one of \['bptt', 'autodiff'\]\. "
                                         r"Received: gradient='explicit'"):
        VanillaRNN(UNITS, gradient="explicit")
    x, h0 = np.zeros((2, 5, 3), "float32"), np.zeros((2, UNITS), "float32")
    U, W, b = np.zeros((3, UNITS), "float32"), np.zeros((UNITS, UNITS), "float32"), np.zeros(UNITS, "float32")
    with pytest.raises(ValueError, match=r"`gradient` must be one of .* Received: gradient='explicit'"):
        bptt_wiring.vanilla_rnn(x, h0, U, W, b, gradient="explicit")


@pytest.mark.parametrize("unroll", [0, -1, 1.5, "yes"], ids=["zero", "negative", "float", "string"])
def test_bad_unroll(unroll):
    with pytest.raises(ValueError, match=r"`VanillaRNN\(unroll=\.\.\.\)` must be a bool .* or an integer >= 1 .*"
                                         + re.escape(f"Received: unroll={unroll!r}")):
        VanillaRNN(UNITS, unroll=unroll)


def test_unroll_true_needs_a_known_length_and_changes_nothing():
    x = random_inputs()
    with pytest.raises(ValueError, match=r"`VanillaRNN\(unroll=True\)` unrolls every step"):
        VanillaRNN(UNITS, unroll=True)(keras.Input((None, FEATURES)))
    rolled = VanillaRNN(UNITS, return_sequences=True)
    unrolled = VanillaRNN(UNITS, return_sequences=True, unroll=True)
    rolled.build(x.shape)
    unrolled.build(x.shape)
    unrolled.set_weights(rolled.get_weights())
    np.testing.assert_allclose(to_numpy(unrolled(x, mask=MASK)), to_numpy(rolled(x, mask=MASK)), atol=1e-6)


def test_initial_state_shape_mismatch():
    with pytest.raises(ValueError, match=r"`VanillaRNN` expects `initial_state\[0\]` of shape \(batch, 4\)\. "
                                         r"Received: initial_state\[0\]\.shape=\(2, 3\)"):
        VanillaRNN(UNITS)(np.zeros((2, 5, 3), "float32"), initial_state=np.zeros((2, 3), "float32"))


def test_no_time_steps():
    with pytest.raises(ValueError, match=r"`VanillaRNN` needs at least one time step\. "
                                         r"Received: inputs\.shape=\(2, 0, 3\)"):
        VanillaRNN(UNITS)(np.zeros((2, 0, 3), "float32"))


@pytest.mark.parametrize("cell_class", ["VanillaRNNCell", "DeepTransitionCell", "TreeCell", "OutputRecurrenceCell"])
def test_cells_need_a_known_feature_size(cell_class):
    from rnnzoo import cells

    kwargs = {"num_classes": 3} if cell_class == "OutputRecurrenceCell" else {}
    cell = getattr(cells, cell_class)(4, **kwargs)
    with pytest.raises(ValueError, match=f"`{cell_class}` needs a known feature size"):
        cell.build((None, None))


@pytest.mark.tensorflow
@pytest.mark.slow
@pytest.mark.parametrize("gradient", ["bptt", "autodiff"])
def test_an_unused_final_state_is_not_computed_by_the_export(gradient, tmp_path):
    # Sequence outputs without `return_state`: the inference loop's final chunk, run again only
    # for the final state, is not in the `.tflite` (one WHILE fewer), and the outputs are the same.
    from rnnzoo.export import run_artifact, tflite_op_counts, to_saved_model, to_tflite

    inputs = keras.Input((None, FEATURES))
    sequences, state = VanillaRNN(UNITS, return_sequences=True, return_state=True, gradient=gradient,
                                  bias_initializer="random_normal")(inputs)
    with_state = keras.Model(inputs, [sequences, state])
    without_state = keras.Sequential([keras.Input((None, FEATURES)),
                                      VanillaRNN(UNITS, return_sequences=True, gradient=gradient)])
    without_state.set_weights(with_state.get_weights())
    paths = {}
    for name, model in (("with", with_state), ("without", without_state)):
        paths[name] = to_tflite(to_saved_model(model, str(tmp_path / name)), str(tmp_path / f"{name}.tflite"))
    loops = {name: tflite_op_counts(path)["WHILE"] for name, path in paths.items()}
    assert loops["without"] == loops["with"] - 1, loops
    for seed, time in enumerate((1, 8, 21)):
        x = random_inputs(seed, batch=2, time=time)
        expected = with_state(x)
        np.testing.assert_allclose(run_artifact(paths["without"], x), np.asarray(expected[0]), atol=TOLERANCE)
        for got, want in zip(run_artifact(paths["with"], x), expected):
            np.testing.assert_allclose(got, np.asarray(want), atol=TOLERANCE)


def test_return_state_false_keeps_the_outputs_and_their_gradients(float64):
    # The whole-sequence function without h_last among its outputs: same outputs, and the
    # explicit gradient of a loss on them equals automatic differentiation of the same forward.
    rng = np.random.default_rng(3)
    x = ops.convert_to_tensor(rng.normal(size=(BATCH, TIME, FEATURES)), "float64")
    h0 = ops.convert_to_tensor(rng.normal(size=(BATCH, UNITS)), "float64")
    U, W, b, V, c = (ops.convert_to_tensor(rng.normal(size=s) * 0.5, "float64")
                     for s in ((FEATURES, UNITS), (UNITS, UNITS), (UNITS,), (UNITS, OUTPUTS), (OUTPUTS,)))
    mask = ops.convert_to_tensor(MASK, "float64")

    def loss(gradient, return_state):
        def f(x, h0, U, W, b, V, c):
            outputs, h_last = bptt_wiring.vanilla_rnn(x, h0, U, W, b, V, c, mask, return_sequences=True,
                                                      gradient=gradient, return_state=return_state)
            assert (h_last is None) == (not return_state)
            return ops.sum(ops.sin(outputs))
        return f

    args = (x, h0, U, W, b, V, c)
    reference = gradients(loss("autodiff", True), args)
    for gradient in ("bptt", "autodiff"):
        np.testing.assert_allclose(float(loss(gradient, False)(*args)), float(loss("autodiff", True)(*args)), rtol=1e-12)
        for got, want in zip(gradients(loss(gradient, False), args), reference):
            assert relative_error(got, want) < 1e-10
