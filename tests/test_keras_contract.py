"""rnnzoo's recurrent layers against Keras's, given the same weights and arguments (issue #11).

`Recurrent` is compared with `keras.layers.RNN`, `VanillaRNN` with `keras.layers.SimpleRNN`
(`U, W, b` are `kernel, recurrent_kernel, bias`, in the same layout and order) and
`rnnzoo.layers.Bidirectional` with `keras.layers.Bidirectional`, with batches of 2 or more,
masks and every argument that matters; plus the properties Keras has and the issue asks for:
a NaN or inf at a padded step changes nothing, `mixed_float16` works, and the explicit BPTT
equals autodiff with dropout and masks.

Sanity baseline: `RNNZOO_CONTRACT_SUBJECT=keras pytest tests/test_keras_contract.py` runs every
test with Keras's own classes in place of rnnzoo's (`SimpleRNN` for `VanillaRNN`, `RNN` for
`Recurrent` and `DeepRNN`, Keras's `Bidirectional`), which shows that each test asks only what
Keras does. The exceptions, where rnnzoo is asked for more than Keras gives, say so in their
docstrings (finite gradients with NaN at padded steps; the activity regularizer that
`SimpleRNN` accepts but drops; `seed` in the config, which `SimpleRNN` leaves out; the explicit
BPTT, which tests rnnzoo alone): 16 tests, all others pass for Keras on TF and JAX.

Where Keras's own backends disagree, the cases avoid the disagreement (rnnzoo must compute one
function on every backend): Keras's JAX unrolled loop ignores `zero_output_for_mask`, and its
JAX scan outputs the initial state, not zeros, at a masked first step.
"""

import itertools
import os

import keras
import numpy as np
import pytest
from keras import ops
from keras import tree

import rnnzoo.layers
from rnnzoo.cells import VanillaRNNCell
from rnnzoo.testing import IndexingCell, relative_error

L = keras.layers
BACKEND = keras.backend.backend()
SUBJECT = os.environ.get("RNNZOO_CONTRACT_SUBJECT", "rnnzoo")
BATCH, TIME, FEATURES, UNITS = 3, 6, 3, 4
TOLERANCE = 1e-5

# True at valid steps. Right padding, left padding, and holes in the middle.
MASKS = {
    "right": np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0]], bool),
    "left": np.array([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1]], bool),
    "middle": np.array([[1, 1, 0, 0, 1, 1], [1, 0, 1, 0, 1, 1], [1, 1, 1, 1, 0, 1]], bool),
}


# ---------------------------------------------------------------------------------------------
# The subject: rnnzoo's classes (or Keras's, for the sanity baseline)


def Recurrent(cell, **kwargs):
    return L.RNN(cell, **kwargs) if SUBJECT == "keras" else rnnzoo.layers.Recurrent(cell, **kwargs)


def VanillaRNN(units, gradient=None, **kwargs):
    if SUBJECT == "keras":  # without the arguments SimpleRNN does not have
        for name in ("output_units", "output_initializer", "jit_compile"):
            kwargs.pop(name, None)
        return L.SimpleRNN(units, **kwargs)
    if gradient is not None:
        kwargs["gradient"] = gradient
    return rnnzoo.layers.VanillaRNN(units, **kwargs)


def Bidirectional(layer, **kwargs):
    return L.Bidirectional(layer, **kwargs) if SUBJECT == "keras" else rnnzoo.layers.Bidirectional(layer, **kwargs)


def DeepRNN(cells, **kwargs):
    return L.RNN(cells, **kwargs) if SUBJECT == "keras" else rnnzoo.layers.DeepRNN(cells, **kwargs)


# ---------------------------------------------------------------------------------------------
# Helpers


def normal(*shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).normal(size=shape)).astype("float32")


def to_numpy(x):
    return np.asarray(ops.convert_to_numpy(x))


def flat(outputs):
    return [to_numpy(t) for t in tree.flatten(outputs)]


def assert_all_close(actual, expected, tolerance=TOLERANCE, what="outputs"):
    actual, expected = flat(actual), flat(expected)
    assert len(actual) == len(expected), f"{what}: {len(actual)} tensors, Keras gives {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected)):
        assert a.shape == e.shape, f"{what}[{i}]: shape {a.shape}, Keras gives {e.shape}"
        np.testing.assert_allclose(a, e, rtol=tolerance, atol=tolerance, err_msg=f"{what}[{i}]")


def randomize_weights(layer, seed=0, scale=0.5):
    """Random weights (biases too, so that they matter)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([(scale * rng.normal(size=w.shape)).astype(w.dtype) for w in layer.get_weights()])


def pair(make_subject, make_keras, x, **call_kwargs):
    """Both layers built on `x`, the subject given Keras's (randomized) weights."""
    subject, reference = make_subject(), make_keras()
    reference.build(x.shape)
    subject.build(x.shape)
    randomize_weights(reference)
    copy_weights(reference, subject)
    return subject, reference


def copy_weights(source, target):
    """The trainable weights, in order (a stateful layer may also hold its state as a weight)."""
    assert len(source.trainable_weights) == len(target.trainable_weights), (
        [w.path for w in target.trainable_weights], [w.path for w in source.trainable_weights])
    for s, t in zip(source.trainable_weights, target.trainable_weights):
        assert tuple(s.shape) == tuple(t.shape), (t.path, s.path)
        t.assign(np.array(s.value))  # a copy: on JAX, `fit` donates (deletes) the buffers of the variables it trains


def loss_and_gradients(layer, xs, call_kwargs=None, seed=0):
    """For each input `x` of `xs`: `L = sum_i <G_i, output_i>` over every output (fixed random
    G_i), and its gradients with respect to the layer's trainable weights and to `x`, by the
    backend's autodiff (through a custom gradient where the layer has one), in training mode.
    Returns a list of `(outputs, [dW..., dx])`. (On JAX one compiled function serves all `xs`.)"""
    call_kwargs = dict(call_kwargs or {})
    call_kwargs.setdefault("training", True)
    rng = np.random.default_rng(seed + 100)
    dtype = "float64" if layer.compute_dtype == "float64" else "float32"
    probe = flat(layer(xs[0], **{**call_kwargs, "training": False}))
    weights = [rng.normal(size=p.shape).astype(dtype) for p in probe]

    def loss(outputs):
        return sum(ops.sum(ops.cast(o, dtype) * w) for o, w in zip(tree.flatten(outputs), weights))

    results = []
    if BACKEND == "tensorflow":
        import tensorflow as tf

        for x in xs:
            x = tf.convert_to_tensor(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                outputs = layer(x, **call_kwargs)
                value = loss(outputs)
            grads = tape.gradient(value, list(layer.trainable_variables) + [x])
            results.append((outputs, [to_numpy(g) for g in grads]))
        return results
    import jax

    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]

    def fn(trainable, x):
        outputs, _ = layer.stateless_call(trainable, non_trainable, x, **call_kwargs)
        return loss(outputs), outputs

    compiled = jax.jit(jax.value_and_grad(fn, argnums=(0, 1), has_aux=True))
    for x in xs:
        (_, outputs), grads = compiled(trainable, jax.numpy.asarray(x))
        results.append((outputs, [np.asarray(g) for g in grads[0]] + [np.asarray(grads[1])]))
    return results


# ---------------------------------------------------------------------------------------------
# Cells written to Keras's contract, as a user writes them


@keras.saving.register_keras_serializable(package="rnnzoo_tests")
class TwoStateCell(L.Layer):
    """Two states of different sizes, `[h (units), s (2)]`, unpacked from the list."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, 2]
        self.output_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units), name="recurrent_kernel")
        self.side_kernel = self.add_weight(shape=(2, self.units), name="side_kernel")
        self.side_update = self.add_weight(shape=(self.units, 2), name="side_update")

    def call(self, inputs, states):
        h, s = states
        h = ops.tanh(ops.matmul(inputs, self.kernel) + ops.matmul(h, self.recurrent_kernel)
                     + ops.matmul(s, self.side_kernel))
        s = ops.tanh(ops.matmul(h, self.side_update) + s)
        return h, [h, s]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


# ---------------------------------------------------------------------------------------------
# The state-leak bug: a cell that reads `states[0]`


@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
def test_cell_indexing_its_single_state_gets_its_own_batch_row(return_sequences, go_backwards):
    # Regression (issue #11): Recurrent handed a single-state cell a bare tensor, so `states[0]`
    # read batch row 0 for every sequence: with batch 2 the state leaked across the batch.
    x = np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4) / 10.0
    kwargs = dict(return_sequences=return_sequences, go_backwards=go_backwards)
    subject, reference = pair(lambda: Recurrent(IndexingCell(2), **kwargs),
                              lambda: L.RNN(IndexingCell(2), **kwargs), x)
    assert_all_close(subject(x), reference(x))
    # With all-ones weights, Keras's own example (its rnn_test.py, go_backwards): rows [202, 202]
    # and [538, 538]; rnnzoo 12c1d07 gave [250, 250] for the second row.
    ones = [np.ones_like(w) for w in reference.get_weights()]
    subject.set_weights(ones)
    reference.set_weights(ones)
    x = np.arange(24, dtype="float32").reshape(2, 3, 4)
    assert_all_close(subject(x), reference(x))
    if not return_sequences and go_backwards:
        np.testing.assert_allclose(to_numpy(subject(x)), [[202.0, 202.0], [538.0, 538.0]])


def test_cell_with_two_states_gets_each_state():
    x = normal(BATCH, TIME, FEATURES)
    subject, reference = pair(lambda: Recurrent(TwoStateCell(UNITS), return_state=True, return_sequences=True),
                              lambda: L.RNN(TwoStateCell(UNITS), return_state=True, return_sequences=True), x)
    assert_all_close(subject(x), reference(x))


# ---------------------------------------------------------------------------------------------
# NaN and inf at padded steps


NAN_LAYERS = {
    "Recurrent-LSTMCell": lambda: Recurrent(L.LSTMCell(UNITS), return_sequences=True, return_state=True),
    "VanillaRNN-bptt": lambda: VanillaRNN(UNITS, gradient="bptt", return_sequences=True, return_state=True),
    "VanillaRNN-autodiff": lambda: VanillaRNN(UNITS, gradient="autodiff", return_sequences=True, return_state=True),
    "VanillaRNN-bptt-last-backwards": lambda: VanillaRNN(UNITS, gradient="bptt", go_backwards=True,
                                                         return_state=True),
    "Bidirectional-VanillaRNN": lambda: Bidirectional(VanillaRNN(UNITS, return_sequences=True, return_state=True)),
    "DeepRNN": lambda: DeepRNN([VanillaRNNCell(UNITS), L.GRUCell(UNITS)], return_sequences=True, return_state=True),
}


@pytest.mark.parametrize("name", list(NAN_LAYERS), ids=list(NAN_LAYERS))
def test_nan_or_inf_at_padded_steps_changes_nothing(name):
    # Keras's outputs stay finite too; its *gradients* do not (the `where` of its masking passes
    # 0 * NaN back into the weights), so with RNNZOO_CONTRACT_SUBJECT=keras the gradient part fails.
    mask = MASKS["right"].copy()  # right padding
    mask[2, 1] = False  # and a hole in the middle
    clean = normal(BATCH, TIME, FEATURES)
    clean[~mask] = 0.0
    dirty = clean.copy()
    bad = np.array([np.nan, np.inf, -np.inf], "float32")
    dirty[~mask] = bad[np.arange((~mask).sum() * FEATURES) % 3].reshape(-1, FEATURES)  # each of them
    layer = NAN_LAYERS[name]()
    layer.build(clean.shape)
    randomize_weights(layer)
    (clean_outputs, clean_gradients), (dirty_outputs, dirty_gradients) = loss_and_gradients(
        layer, [clean, dirty], {"mask": mask})
    for i, (c, d) in enumerate(zip(flat(clean_outputs), flat(dirty_outputs))):
        if c.ndim == 3:  # a sequence output: compare the valid steps (Keras fills the others)
            order = mask[:, ::-1] if getattr(layer, "go_backwards", False) else mask
            c, d = c[order], d[order]
        assert np.all(np.isfinite(d)), f"{name}: output {i} is not finite with NaN/inf at padded steps"
        np.testing.assert_allclose(d, c, rtol=TOLERANCE, atol=TOLERANCE, err_msg=f"{name}: output {i}")
    # Every weight's gradient is finite and equals the clean run's; so is the input's gradient
    # at the valid steps (at padded steps it is not asked for).
    for i, (c, d) in enumerate(zip(clean_gradients[:-1], dirty_gradients[:-1])):
        assert np.all(np.isfinite(d)), f"{name}: gradient {i} is not finite with NaN/inf at padded steps"
        np.testing.assert_allclose(d, c, rtol=1e-4, atol=1e-5, err_msg=f"{name}: gradient {i}")
    d_x = dirty_gradients[-1]
    assert np.all(np.isfinite(d_x[mask])), f"{name}: input gradient at valid steps is not finite"
    np.testing.assert_allclose(d_x[mask], clean_gradients[-1][mask], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# VanillaRNN vs SimpleRNN, and Recurrent vs RNN, over the arguments that matter


def argument_cases():
    """Deterministic combinations: every (return_sequences, go_backwards, mask) with unroll,
    zero_output_for_mask, return_state and initial_state varied across them."""
    cases = []
    product = itertools.product([False, True], [False, True], [None, "right", "left", "middle"])
    for i, (return_sequences, go_backwards, mask) in enumerate(product):
        unroll = [False, True, 2][i % 3]
        zero_output_for_mask = (i // 2) % 2 == 1
        if mask is not None and unroll:
            zero_output_for_mask = False  # Keras's JAX unrolled loop ignores it (TF does not)
        initial_state = i % 4 in (1, 2)
        first_step = -1 if go_backwards else 0
        if mask is not None and not MASKS[mask][:, first_step].all():
            initial_state = False  # Keras's JAX scan outputs h0 at a masked first step (TF: zeros)
        cases.append(dict(return_sequences=return_sequences, go_backwards=go_backwards, mask=mask, unroll=unroll,
                          zero_output_for_mask=zero_output_for_mask, return_state=(i // 3) % 2 == 1,
                          initial_state=initial_state))
    return cases


ARGUMENT_CASES = argument_cases()


def case_id(case):
    return "-".join(
        [("seq" if case["return_sequences"] else "last"), ("back" if case["go_backwards"] else "fwd"),
         f"mask={case['mask']}", f"unroll={case['unroll']}", ("zero" if case["zero_output_for_mask"] else "repeat")]
        + (["state"] if case["return_state"] else []) + (["h0"] if case["initial_state"] else [])
    )


def compare_over_case(make_subject, make_keras, case, state_sizes, tolerance=TOLERANCE):
    x = normal(BATCH, TIME, FEATURES, seed=1)
    # Only the arguments that differ from the defaults (Keras's: unroll=False,
    # zero_output_for_mask=False), so that each case fails on what it is about.
    kwargs = {k: case[k] for k in ("return_sequences", "go_backwards", "unroll", "zero_output_for_mask",
                                   "return_state") if case[k]}
    call_kwargs = {}
    if case["mask"] is not None:
        call_kwargs["mask"] = MASKS[case["mask"]]
    if case["initial_state"]:
        call_kwargs["initial_state"] = [normal(BATCH, n, seed=2 + i) for i, n in enumerate(state_sizes)]
    subject, reference = pair(lambda: make_subject(**kwargs), lambda: make_keras(**kwargs), x, **call_kwargs)
    assert_all_close(subject(x, **call_kwargs), reference(x, **call_kwargs), tolerance)
    # And in a functional model (symbolic shapes, mask propagation from Masking).
    if case["mask"] is not None and not case["initial_state"]:
        padded = x.copy()
        padded[~MASKS[case["mask"]]] = 0.0
        inputs = keras.Input((TIME, FEATURES))
        masked = L.Masking(0.0)(inputs)
        subject_model = keras.Model(inputs, subject(masked))
        reference_model = keras.Model(inputs, reference(masked))
        assert_all_close(subject_model(padded), reference_model(padded), tolerance)


@pytest.mark.parametrize("case", ARGUMENT_CASES, ids=[case_id(c) for c in ARGUMENT_CASES])
def test_vanilla_rnn_equals_simple_rnn(case):
    compare_over_case(lambda **kw: VanillaRNN(UNITS, **kw), lambda **kw: L.SimpleRNN(UNITS, **kw), case, [UNITS])


KERAS_CELLS = {
    "SimpleRNNCell": (lambda: L.SimpleRNNCell(UNITS), [UNITS]),
    "GRUCell": (lambda: L.GRUCell(UNITS), [UNITS]),
    "LSTMCell": (lambda: L.LSTMCell(UNITS), [UNITS, UNITS]),
    "stacked-GRU-LSTM": (lambda: [L.GRUCell(UNITS), L.LSTMCell(3)], None),
    "two-state-cell": (lambda: TwoStateCell(UNITS), [UNITS, 2]),
    "VanillaRNNCell": (lambda: VanillaRNNCell(UNITS, output_units=2), [UNITS]),
}
# Each cell over a few of the argument cases (a spread, so that together they cover each
# argument; VanillaRNN above runs them all).
RECURRENT_CASES = [(cell, case) for i, cell in enumerate(KERAS_CELLS) for case in ARGUMENT_CASES[i % 5::5][:2]]


@pytest.mark.parametrize("cell, case", RECURRENT_CASES, ids=[f"{c}-{case_id(a)}" for c, a in RECURRENT_CASES])
def test_recurrent_equals_keras_rnn(cell, case):
    make_cell, state_sizes = KERAS_CELLS[cell]
    if state_sizes is None:  # the stacked cells take nested initial states: none here
        case = {**case, "initial_state": False}
    if cell == "VanillaRNNCell" and case["mask"]:
        # Keras's JAX scan repeats `states[0]` (h) as the output at a masked step; with
        # `output_units` h is not the output, so TF and JAX Keras differ. Compare with zeros.
        case = {**case, "zero_output_for_mask": True, "unroll": False}
    compare_over_case(lambda **kw: Recurrent(make_cell(), **kw), lambda **kw: L.RNN(make_cell(), **kw), case,
                      state_sizes)


@pytest.mark.parametrize("make", [
    pytest.param(lambda: (VanillaRNN(UNITS, stateful=True, return_sequences=True),
                          L.SimpleRNN(UNITS, stateful=True, return_sequences=True)), id="VanillaRNN"),
    pytest.param(lambda: (Recurrent(L.LSTMCell(UNITS), stateful=True, return_state=True),
                          L.RNN(L.LSTMCell(UNITS), stateful=True, return_state=True)), id="Recurrent-LSTMCell"),
    pytest.param(lambda: (Recurrent(IndexingCell(2), stateful=True),
                          L.RNN(IndexingCell(2), stateful=True)), id="Recurrent-indexing-cell"),
])
def test_stateful_carries_the_state_like_keras(make):
    subject, reference = make()
    first, second = normal(BATCH, TIME, FEATURES, seed=1), normal(BATCH, TIME, FEATURES, seed=2)
    reference(first)
    subject(first)
    randomize_weights(reference, scale=0.3)
    copy_weights(reference, subject)
    subject.reset_state()
    reference.reset_state()
    assert_all_close(subject(first), reference(first), what="first batch")
    assert_all_close(subject(second), reference(second), what="second batch (carried state)")
    subject.reset_state()
    reference.reset_state()
    assert_all_close(subject(second), reference(second), what="after reset_state")
    assert_all_close(subject(first, mask=MASKS["right"]), reference(first, mask=MASKS["right"]), what="masked")


# ---------------------------------------------------------------------------------------------
# Dropout


def test_dropout_has_no_effect_in_inference():
    x = normal(BATCH, TIME, FEATURES)
    subject, reference = pair(lambda: VanillaRNN(UNITS, dropout=0.5, recurrent_dropout=0.5, seed=1,
                                                 return_sequences=True),
                              lambda: L.SimpleRNN(UNITS, return_sequences=True), x)
    assert_all_close(subject(x), reference(x))
    assert_all_close(subject(x, training=False), reference(x))


def read_dropout_masks(layer_factory, rate, recurrent, batch=64, units=8, time=3, seed=3):
    """Reads the dropout mask a layer applies, through weights that make it visible:
    relu, no bias, identity input (or recurrent) kernel and a zero other kernel. Then
    `h(1) = mask * v / (1 - rate)` for the positive vector `v` it multiplies. Returns
    `h(t) / h(t-1)` (or `/ x`) per step: the mask over (1 - rate), `(batch, time, units)`."""
    layer = layer_factory(units, activation="relu", use_bias=False, return_sequences=True,
                          **({"recurrent_dropout": rate} if recurrent else {"dropout": rate}), seed=seed)
    x = np.ones((batch, time, units), "float32") * np.linspace(1.0, 2.0, units, dtype="float32")
    h0 = np.ones((batch, units), "float32")
    layer(x, initial_state=[h0])
    eye, zero = np.eye(units, dtype="float32"), np.zeros((units, units), "float32")
    layer.set_weights([zero, eye] if recurrent else [eye, zero])
    outputs = to_numpy(layer(x, initial_state=[h0], training=True))
    if recurrent:
        previous = np.concatenate([h0[:, None], outputs[:, :-1]], axis=1)
        return outputs[:, :1] / previous[:, :1], outputs
    return outputs / x, outputs


@pytest.mark.parametrize("recurrent", [False, True], ids=["dropout", "recurrent_dropout"])
def test_dropout_masks_follow_keras(recurrent):
    # Keras's SimpleRNNCell drops input (and recurrent) units with one mask per sequence, the same
    # at every step, scaled by 1 / (1 - rate).
    rate = 0.25
    ratios, outputs = read_dropout_masks(VanillaRNN, rate, recurrent)
    kept = 1.0 / (1.0 - rate)
    assert np.all(np.isfinite(outputs))
    assert np.all(np.isclose(ratios, 0.0) | np.isclose(ratios, kept, rtol=1e-5)), np.unique(ratios)
    dropped = np.mean(np.isclose(ratios, 0.0))
    assert abs(dropped - rate) < 0.08, dropped  # 512 units: the binomial's 3 sigma is 0.057
    if not recurrent:  # the same mask at every step
        np.testing.assert_array_equal(np.isclose(ratios, 0.0), np.isclose(ratios[:, :1], 0.0).repeat(3, axis=1))
    else:  # h(t) = mask * h(t-1) / (1 - rate): a unit dropped at step 1 stays zero
        zero_first = np.isclose(outputs[:, 0], 0.0)
        assert np.all(np.isclose(outputs[:, -1][zero_first], 0.0))
        alive = ~zero_first
        np.testing.assert_allclose(outputs[:, 1][alive], outputs[:, 0][alive] * kept, rtol=1e-5)


def test_dropout_in_training_is_seeded_and_changes_the_outputs():
    x = normal(BATCH, TIME, FEATURES)
    make = lambda seed: VanillaRNN(UNITS, dropout=0.3, recurrent_dropout=0.3, seed=seed,  # noqa: E731
                                   return_sequences=True)
    a, b, c = make(7), make(7), make(8)
    plain = VanillaRNN(UNITS, return_sequences=True)
    for layer in (a, b, c, plain):
        layer(x)
    for layer in (b, c, plain):
        layer.set_weights(a.get_weights())
    out_a, out_b, out_c = (to_numpy(layer(x, training=True)) for layer in (a, b, c))
    out_plain = to_numpy(plain(x, training=True))
    assert out_a.shape == out_plain.shape and np.all(np.isfinite(out_a))
    np.testing.assert_array_equal(out_a, out_b)  # the same seed: the same masks
    assert not np.allclose(out_a, out_plain)
    assert not np.allclose(out_a, out_c)
    assert not np.allclose(to_numpy(a(x, training=True)), out_a)  # the seed generator moves on


@pytest.mark.parametrize("cell", ["SimpleRNNCell", "GRUCell", "LSTMCell"])
def test_recurrent_runs_keras_cell_dropout_like_keras(cell):
    # Keras's RNN makes the cell's dropout masks before its loop and resets them after: with
    # the same seed, Recurrent must apply the very same masks.
    make_cell = lambda: getattr(L, cell)(UNITS, dropout=0.3, recurrent_dropout=0.4, seed=11)  # noqa: E731
    x = normal(BATCH, TIME, FEATURES)
    subject, reference = pair(lambda: Recurrent(make_cell(), return_sequences=True),
                              lambda: L.RNN(make_cell(), return_sequences=True), x)
    assert_all_close(subject(x, training=True, mask=MASKS["right"]), reference(x, training=True, mask=MASKS["right"]))
    assert_all_close(subject(x, training=True), reference(x, training=True))
    assert_all_close(subject(x), reference(x))


# ---------------------------------------------------------------------------------------------
# Constraints and regularizers


def test_constraints_are_applied_after_a_fit_step_like_keras():
    kwargs = dict(kernel_constraint="non_neg", recurrent_constraint=keras.constraints.MaxNorm(0.5),
                  bias_constraint=keras.constraints.NonNeg(), return_sequences=True)
    x, y = normal(8, TIME, FEATURES), normal(8, TIME, UNITS, seed=5)
    models = []
    for layer in pair(lambda: VanillaRNN(UNITS, **kwargs), lambda: L.SimpleRNN(UNITS, **kwargs), x):
        inputs = keras.Input((TIME, FEATURES))
        model = keras.Model(inputs, layer(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
        model.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        models.append((model, layer))
    (subject_model, subject), (reference_model, reference) = models
    U, W, b = (to_numpy(w) for w in subject.trainable_weights)
    assert U.min() >= 0 and b.min() >= 0
    assert np.sqrt((W ** 2).sum(axis=0)).max() <= 0.5 + 1e-6
    assert_all_close(subject.get_weights(), reference.get_weights(), 1e-5, what="weights after fit")


def test_regularizer_losses_equal_keras():
    kwargs = dict(kernel_regularizer=keras.regularizers.L2(0.1), recurrent_regularizer=keras.regularizers.L2(0.2),
                  bias_regularizer=keras.regularizers.L1(0.3))
    x = normal(BATCH, TIME, FEATURES)
    subject, reference = pair(lambda: VanillaRNN(UNITS, **kwargs), lambda: L.SimpleRNN(UNITS, **kwargs), x)
    subject(x), reference(x)
    assert len(subject.losses) == len(reference.losses) == 3
    np.testing.assert_allclose(sorted(float(to_numpy(v)) for v in subject.losses),
                               sorted(float(to_numpy(v)) for v in reference.losses), rtol=1e-6)
    assert float(to_numpy(ops.sum(subject.losses))) > 0


def test_activity_regularizer_adds_the_output_loss():
    # keras.layers.SimpleRNN accepts `activity_regularizer` but drops it (its `losses` stay
    # empty), a Keras bug: VanillaRNN applies it as `keras.layers.Layer` does for any layer,
    # `regularizer(output) / batch`. (With RNNZOO_CONTRACT_SUBJECT=keras this test fails.)
    regularizer = keras.regularizers.L2(0.1)
    layer = VanillaRNN(UNITS, activity_regularizer=regularizer)
    x = normal(BATCH, TIME, FEATURES)
    outputs = layer(x)
    assert len(layer.losses) == 1
    expected = 0.1 * np.sum(to_numpy(outputs).astype(np.float64) ** 2) / BATCH
    np.testing.assert_allclose(float(to_numpy(layer.losses[0])), expected, rtol=1e-5)
    assert keras.regularizers.get(layer.get_config()["activity_regularizer"]).get_config() == regularizer.get_config()


def test_vanilla_rnn_reads_its_arguments_from_the_cell():
    # As SimpleRNN: each argument a property reading the cell, and in `get_config`. (SimpleRNN
    # leaves `seed` out of its config, so with RNNZOO_CONTRACT_SUBJECT=keras this test fails.)
    arguments = dict(units=UNITS, activation="relu", use_bias=False, dropout=0.25, recurrent_dropout=0.5, seed=3,
                     kernel_initializer="ones", kernel_constraint="non_neg", bias_regularizer="l1")
    layer = VanillaRNN(**arguments)
    config = layer.get_config()
    for name, value in arguments.items():
        if name != "seed":  # (keras.layers.SimpleRNN has no `seed` property; it is in the config)
            mine, cells = getattr(layer, name), getattr(layer.cell, name)
            assert mine is cells or mine == cells, (name, mine, cells)
        if isinstance(value, (int, float)) or name == "activation":
            assert config[name] == value, (name, config[name])
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


# ---------------------------------------------------------------------------------------------
# Bidirectional


BIDIRECTIONAL_CASES = [  # (inner, merge_mode, return_state, masked): each merge mode, with and
    # without states and masks, over both kinds of inner layer
    ("VanillaRNN", "concat", False, True), ("Recurrent-LSTMCell", "concat", True, False),
    ("VanillaRNN", "sum", True, True), ("Recurrent-LSTMCell", "mul", False, True),
    ("VanillaRNN", "ave", False, False), ("VanillaRNN", None, True, True), ("Recurrent-LSTMCell", None, False, False),
]


@pytest.mark.parametrize("inner, merge_mode, return_state, masked", BIDIRECTIONAL_CASES,
                         ids=[f"{i}-{m}-{'state' if s else 'nostate'}-{'masked' if k else 'full'}"
                              for i, m, s, k in BIDIRECTIONAL_CASES])
def test_bidirectional_equals_keras(inner, merge_mode, return_state, masked):
    x = normal(BATCH, TIME, FEATURES)
    kwargs = dict(return_sequences=not return_state, return_state=return_state)
    if inner == "VanillaRNN":
        make_subject, make_keras = (lambda: VanillaRNN(UNITS, **kwargs)), (lambda: L.SimpleRNN(UNITS, **kwargs))
    else:
        make_subject = lambda: Recurrent(L.LSTMCell(UNITS), **kwargs)  # noqa: E731
        make_keras = lambda: L.RNN(L.LSTMCell(UNITS), **kwargs)  # noqa: E731
    call_kwargs = {"mask": MASKS["middle"]} if masked else {}
    subject, reference = pair(lambda: Bidirectional(make_subject(), merge_mode=merge_mode),
                              lambda: L.Bidirectional(make_keras(), merge_mode=merge_mode), x, **call_kwargs)
    assert_all_close(subject(x, **call_kwargs), reference(x, **call_kwargs))
    if return_state:  # and the initial states: forward's, then backward's
        n = 2 if inner != "VanillaRNN" else 1
        states = [normal(BATCH, UNITS, seed=10 + i) for i in range(2 * n)]
        assert_all_close(subject(x, initial_state=states), reference(x, initial_state=states))


def test_bidirectional_with_backward_layer_equals_keras():
    x = normal(BATCH, TIME, FEATURES)
    subject, reference = pair(
        lambda: Bidirectional(VanillaRNN(UNITS, return_sequences=True),
                              backward_layer=VanillaRNN(UNITS, activation="relu", go_backwards=True,
                                                        return_sequences=True), merge_mode="sum"),
        lambda: L.Bidirectional(L.SimpleRNN(UNITS, return_sequences=True),
                                backward_layer=L.SimpleRNN(UNITS, activation="relu", go_backwards=True,
                                                           return_sequences=True), merge_mode="sum"),
        x, mask=MASKS["right"])
    assert_all_close(subject(x, mask=MASKS["right"]), reference(x, mask=MASKS["right"]))
    assert subject.backward_layer.get_config()["activation"] == "relu"
    clone = type(subject).from_config(subject.get_config())
    assert clone.get_config() == subject.get_config()
    assert clone.backward_layer.get_config()["activation"] == "relu"
    assert clone.backward_layer.go_backwards


BACKWARD_COPY_CASES = {
    "keras-SimpleRNN-dropout": lambda: L.SimpleRNN(3, dropout=0.2, recurrent_dropout=0.1, seed=4, activation="relu",
                                                   return_sequences=True, unroll=True),
    "keras-GRU-use_cudnn": lambda: L.GRU(3, use_cudnn=False, reset_after=False, return_sequences=True),
    "keras-LSTM-use_cudnn-auto": lambda: L.LSTM(3, use_cudnn="auto", return_sequences=True),
    "VanillaRNN-every-argument": lambda: VanillaRNN(
        3, output_units=2, activation="relu", use_bias=True, kernel_initializer="ones",
        recurrent_initializer="zeros", bias_initializer="ones", output_initializer="ones",
        kernel_regularizer="l2", recurrent_regularizer="l2", bias_regularizer="l1", activity_regularizer="l2",
        kernel_constraint="non_neg", recurrent_constraint="non_neg", bias_constraint="non_neg", dropout=0.1,
        recurrent_dropout=0.2, seed=6, return_sequences=True, unroll=True, zero_output_for_mask=True,
        gradient="autodiff", jit_compile=False),
}


@pytest.mark.parametrize("name", list(BACKWARD_COPY_CASES), ids=list(BACKWARD_COPY_CASES))
def test_bidirectional_backward_copy_keeps_every_argument(name):
    layer = BACKWARD_COPY_CASES[name]()
    forward_config = layer.get_config()
    bidirectional = Bidirectional(layer)
    backward_config = bidirectional.backward_layer.get_config()
    assert backward_config["go_backwards"] is True
    differing = {key for key in set(forward_config) | set(backward_config)
                 if forward_config.get(key) != backward_config.get(key)}
    assert differing <= {"go_backwards", "name", "zero_output_for_mask"}, differing
    for attribute in ("use_cudnn",):  # not in Keras's configs, kept all the same
        if hasattr(layer, attribute):
            assert getattr(bidirectional.forward_layer, attribute) == getattr(layer, attribute)
            assert getattr(bidirectional.backward_layer, attribute) == getattr(layer, attribute)
    config = bidirectional.get_config()
    clone = type(bidirectional).from_config(config)
    assert clone.get_config() == config
    assert clone.backward_layer.get_config() == backward_config | {"name": clone.backward_layer.name}


# ---------------------------------------------------------------------------------------------
# Mixed precision


MIXED_CASES = {  # name: (subject, Keras, made under the global mixed_float16 policy or given dtype=)
    "Recurrent-SimpleRNNCell": (lambda: Recurrent(L.SimpleRNNCell(UNITS), return_sequences=True, return_state=True),
                                lambda: L.RNN(L.SimpleRNNCell(UNITS), return_sequences=True, return_state=True),
                                True),
    "Recurrent-LSTMCell": (lambda: Recurrent(L.LSTMCell(UNITS), return_state=True),
                           lambda: L.RNN(L.LSTMCell(UNITS), return_state=True), True),
    # A float32 cell in a mixed_float16 layer (as Keras's run_layer_test builds it): the loop runs
    # in the cell's dtype, the outputs (and returned states) are cast to the layer's.
    "Recurrent-float32-cell": (lambda: Recurrent(L.GRUCell(UNITS), return_sequences=True, return_state=True,
                                                 dtype="mixed_float16"),
                               lambda: L.RNN(L.GRUCell(UNITS), return_sequences=True, return_state=True,
                                             dtype="mixed_float16"), False),
    "VanillaRNN": (lambda: VanillaRNN(UNITS, return_sequences=True, return_state=True),
                   lambda: L.SimpleRNN(UNITS, return_sequences=True, return_state=True), True),
    "VanillaRNN-dtype-argument": (lambda: VanillaRNN(UNITS, return_state=True, dtype="mixed_float16"),
                                  lambda: L.SimpleRNN(UNITS, return_state=True, dtype="mixed_float16"), False),
    "Bidirectional": (lambda: Bidirectional(VanillaRNN(UNITS, return_sequences=True, return_state=True)),
                      lambda: L.Bidirectional(L.SimpleRNN(UNITS, return_sequences=True, return_state=True)), True),
    "Bidirectional-float32-layer": (
        lambda: Bidirectional(Recurrent(L.SimpleRNNCell(UNITS), return_sequences=True), dtype="mixed_float16"),
        lambda: L.Bidirectional(L.RNN(L.SimpleRNNCell(UNITS), return_sequences=True), dtype="mixed_float16"),
        False),
}


@pytest.mark.parametrize("name", list(MIXED_CASES), ids=list(MIXED_CASES))
def test_mixed_float16_like_keras(name):
    make_subject, make_keras, global_policy = MIXED_CASES[name]
    x = normal(BATCH, TIME, FEATURES)
    with_mask = {"mask": MASKS["right"]}
    if global_policy:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        subject, reference = pair(make_subject, make_keras, x)
        outputs = subject(x, **with_mask)
        reference_outputs = reference(x, **with_mask)
        symbolic = subject(keras.Input((TIME, FEATURES)))
    finally:
        keras.config.set_dtype_policy("float32")
    assert subject.compute_dtype == "float16"
    dtypes = [keras.backend.standardize_dtype(o.dtype) for o in tree.flatten(outputs)]
    assert dtypes == [keras.backend.standardize_dtype(o.dtype) for o in tree.flatten(reference_outputs)], dtypes
    assert dtypes[0] == "float16", dtypes
    assert [keras.backend.standardize_dtype(o.dtype) for o in tree.flatten(symbolic)] == dtypes
    assert all(keras.backend.standardize_dtype(w.dtype) == "float32" for w in subject.weights)
    for actual, wanted in zip(flat(outputs), flat(reference_outputs)):
        assert np.all(np.isfinite(actual))
        np.testing.assert_allclose(actual.astype("float32"), wanted.astype("float32"), atol=1e-2)


# ---------------------------------------------------------------------------------------------
# The explicit BPTT with dropout and masks


BPTT_CASES = list(itertools.product([False, True], [False, True], [False, True]))


@pytest.mark.parametrize("return_sequences, go_backwards, initial_state", BPTT_CASES,
                         ids=[f"{'seq' if r else 'last'}-{'back' if g else 'fwd'}{'-h0' if h else ''}"
                              for r, g, h in BPTT_CASES])
def test_explicit_bptt_with_dropout_and_masks_equals_autodiff(float64, return_sequences, go_backwards,
                                                              initial_state):
    x = np.random.default_rng(0).normal(size=(BATCH, TIME, FEATURES))
    mask = MASKS["right"].copy()
    mask[2, 2] = False
    kwargs = dict(dropout=0.3, recurrent_dropout=0.4, seed=9, return_sequences=return_sequences,
                  go_backwards=go_backwards, return_state=True, dtype="float64")
    bptt = rnnzoo.layers.VanillaRNN(UNITS, gradient="bptt", **kwargs)
    autodiff = rnnzoo.layers.VanillaRNN(UNITS, gradient="autodiff", **kwargs)
    no_dropout = rnnzoo.layers.VanillaRNN(UNITS, gradient="autodiff",
                                          **{**kwargs, "dropout": 0.0, "recurrent_dropout": 0.0})
    call_kwargs = {"mask": mask}
    if initial_state:
        call_kwargs["initial_state"] = [np.random.default_rng(1).normal(size=(BATCH, UNITS))]
    for layer in (bptt, autodiff, no_dropout):
        layer(x, **call_kwargs)
    randomize_weights(bptt)
    autodiff.set_weights(bptt.get_weights())
    no_dropout.set_weights(bptt.get_weights())
    [(outputs_bptt, gradients_bptt)] = loss_and_gradients(bptt, [x], call_kwargs)
    [(outputs_autodiff, gradients_autodiff)] = loss_and_gradients(autodiff, [x], call_kwargs)
    outputs_plain = no_dropout(x, training=True, **call_kwargs)
    assert not np.allclose(flat(outputs_bptt)[0], flat(outputs_plain)[0])  # the dropout is really on
    for a, e in zip(flat(outputs_bptt), flat(outputs_autodiff)):
        assert relative_error(a, e) <= 1e-12
    names = [w.path for w in bptt.trainable_weights] + ["inputs"]
    for name, a, e in zip(names, gradients_bptt, gradients_autodiff):
        assert a.dtype == np.float64
        assert relative_error(a, e) <= 1e-10, (name, relative_error(a, e))
