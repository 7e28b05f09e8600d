"""The explicit BPTT of `rnnzoo.bptt` against autodiff, finite differences and NumPy loops.

Everything here is float64, so the explicit gradients must equal the backend's autodiff
(`tf.GradientTape` on TensorFlow, `jax.grad` on JAX) to rounding: <= 1e-10 relative.
The same tests run in both backend passes.
"""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo import bptt, bptt_wiring
from rnnzoo.foundation import activate
from rnnzoo.testing import gradients, relative_error

BATCH, TIME, FEATURES, UNITS, OUTPUTS = 3, 6, 3, 4, 2
EXACT = 1e-10  # float64 explicit vs autodiff, relative

# Row 0 is full, row 1 right-padded (3 valid steps), row 2 left-padded (2 padded steps).
MIXED_MASK = np.array(
    [[1, 1, 1, 1, 1, 1],
     [1, 1, 1, 0, 0, 0],
     [0, 0, 1, 1, 1, 1]],
    dtype="float64",
)


@pytest.fixture(autouse=True)
def _float64(float64):
    """Every test here is float64 (the `float64` fixture of the root conftest)."""


def make_problem(seed=0, activation="tanh", time=TIME):
    """Random float64 inputs, weights and the coefficients of a linear loss."""
    rng = np.random.default_rng(seed)
    problem = {
        "x": rng.normal(size=(BATCH, time, FEATURES)),
        "h0": rng.normal(size=(BATCH, UNITS)) * 0.5,
        "U": rng.normal(size=(FEATURES, UNITS)) * 0.6,
        "W": rng.normal(size=(UNITS, UNITS)) * 0.5,
        "b": rng.normal(size=(UNITS,)) * 0.2,
        "V": rng.normal(size=(UNITS, OUTPUTS)),
        "c": rng.normal(size=(OUTPUTS,)),
        # L = <A, outputs> + <B, h_last>: a random linear functional of outputs and state.
        "A_seq_out": rng.normal(size=(BATCH, time, OUTPUTS)),
        "A_seq": rng.normal(size=(BATCH, time, UNITS)),
        "A_last_out": rng.normal(size=(BATCH, OUTPUTS)),
        "A_last": rng.normal(size=(BATCH, UNITS)),
        "B": rng.normal(size=(BATCH, UNITS)),
    }
    if activation == "relu":
        problem["b"] = problem["b"] + 0.3  # keep a good share of the units active
    return problem


def linear_loss(problem, return_sequences, projection):
    key = ("A_seq" if return_sequences else "A_last") + ("_out" if projection else "")
    A, B = ops.convert_to_tensor(problem[key]), ops.convert_to_tensor(problem["B"])

    def loss(outputs, h_last):
        return ops.sum(outputs * A) + ops.sum(h_last * B)

    return loss


CASES = list(itertools.product(
    [False, True],  # masked
    [False, True],  # go_backwards
    [False, True],  # initial state given
    [False, True],  # return_sequences
    [False, True],  # output projection
))
CASE_IDS = [
    "-".join([
        "masked" if m else "unmasked",
        "backwards" if g else "forwards",
        "h0" if h else "zeros",
        "sequences" if r else "last",
        "projection" if p else "hidden",
    ])
    for m, g, h, r, p in CASES
]


def explicit_and_autodiff_gradients(problem, activation, masked, go_backwards, initial_state,
                                    return_sequences, projection, training=True):
    x = problem["x"]
    mask = MIXED_MASK if masked else None
    if go_backwards:  # as VanillaRNN does: reverse the time axis of inputs and mask
        x = np.flip(x, axis=1).copy()
        mask = None if mask is None else np.flip(mask, axis=1).copy()
    h0 = problem["h0"] if initial_state else np.zeros((BATCH, UNITS))
    args = [x, h0, problem["U"], problem["W"], problem["b"]]
    if projection:
        args += [problem["V"], problem["c"]]
    loss = linear_loss(problem, return_sequences, projection)

    def make_fn(gradient):
        def fn(x, h0, U, W, b, V=None, c=None):
            mask_tensor = None if mask is None else ops.convert_to_tensor(mask)
            outputs, h_last = bptt_wiring.vanilla_rnn(
                x, h0, U, W, b, V, c, mask_tensor, activation=activation,
                return_sequences=return_sequences, gradient=gradient, training=training,
            )
            return loss(outputs, h_last)

        return fn

    names = ["x", "h0", "U", "W", "b"] + (["V", "c"] if projection else [])
    explicit = dict(zip(names, gradients(make_fn("bptt"), args)))
    autodiff = dict(zip(names, gradients(make_fn("autodiff"), args)))
    return explicit, autodiff


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("masked, go_backwards, initial_state, return_sequences, projection", CASES, ids=CASE_IDS)
def test_explicit_gradients_equal_autodiff(activation, masked, go_backwards, initial_state,
                                           return_sequences, projection):
    problem = make_problem(activation=activation)
    explicit, autodiff = explicit_and_autodiff_gradients(
        problem, activation, masked, go_backwards, initial_state, return_sequences, projection
    )
    for name in explicit:
        assert explicit[name].dtype == np.float64, name
        assert np.any(autodiff[name] != 0), f"d{name} is identically zero: the test would be vacuous"
        error = relative_error(explicit[name], autodiff[name])
        assert error <= EXACT, f"d{name}: relative error {error:.2e}"


@pytest.mark.parametrize("training", [True, False], ids=["training_loop", "inference_loop"])
def test_explicit_gradients_equal_autodiff_on_both_loops(training):
    # On TensorFlow `training` picks the TensorArray or the fixed-buffer loop; both must give
    # the same exact gradients (on JAX both are lax.scan).
    problem = make_problem(seed=1)
    explicit, autodiff = explicit_and_autodiff_gradients(
        problem, "tanh", True, False, True, True, True, training=training
    )
    for name in explicit:
        assert relative_error(explicit[name], autodiff[name]) <= EXACT, name


@pytest.mark.parametrize("return_sequences", [True, False], ids=["sequences", "last"])
def test_xla_compiled_chunked_backward_equals_autodiff(return_sequences):
    # With `jit_compile=True` on TensorFlow the loops are XLA-compiled, and sequences of 32 or
    # more steps (static) run the backward recurrence in chunks whose parameter-gradient GEMMs
    # overlap the next chunk's loop. Same function: gradients equal autodiff, in a compiled graph.
    time = 40
    problem = make_problem(seed=3, time=time)
    mask = np.ones((BATCH, time))
    mask[1, 29:] = 0  # right-padded across a chunk boundary
    mask[2, :12] = 0  # left-padded across one
    loss = linear_loss(problem, return_sequences, True)
    args = [problem[k] for k in ("x", "h0", "U", "W", "b", "V", "c")]

    def make_fn(gradient):
        def fn(x, h0, U, W, b, V, c):
            outputs, h_last = bptt_wiring.vanilla_rnn(
                x, h0, U, W, b, V, c, ops.convert_to_tensor(mask), return_sequences=return_sequences,
                gradient=gradient, training=True, jit_compile=True,
            )
            return loss(outputs, h_last)

        return fn

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        def compiled_gradients(fn):
            tensors = [tf.constant(a) for a in args]

            @tf.function
            def run():
                with tf.GradientTape() as tape:
                    tape.watch(tensors)
                    value = fn(*tensors)
                return tape.gradient(value, tensors)

            return [g.numpy() for g in run()]
    else:
        compiled_gradients = lambda fn: gradients(fn, args)  # noqa: E731  (JAX: jit happens in fit)
    explicit = compiled_gradients(make_fn("bptt"))
    autodiff = compiled_gradients(make_fn("autodiff"))
    for name, e, a in zip(("x", "h0", "U", "W", "b", "V", "c"), explicit, autodiff):
        assert relative_error(e, a) <= EXACT, name


def reference_loop(x, h0, U, W, b, mask, perturbations, activation):
    """A hand-written forward loop with `h(t) += e(t)`, so that `grad_e(t) L = grad_h(t) L`."""
    h, hs = h0, []
    for t in range(x.shape[1]):
        h_new = activate(ops.matmul(x[:, t], U) + ops.matmul(h, W) + b, activation)
        if mask is not None:
            h_new = h + mask[:, t : t + 1] * (h_new - h)
        h = h_new + perturbations[:, t]
        hs.append(h)
    return ops.stack(hs, axis=1)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
def test_backward_dh_is_the_total_gradient_of_each_state(activation, masked):
    problem = make_problem(seed=2, activation=activation)
    x, h0, U, W, b = (problem[k] for k in ("x", "h0", "U", "W", "b"))
    mask = MIXED_MASK if masked else None
    G = problem["A_seq"]  # L = sum_t <G(t), h(t)>, so the gradient arriving from outside is G

    def loss(perturbations, h0):
        mask_tensor = None if mask is None else ops.convert_to_tensor(mask)
        hs = reference_loop(ops.convert_to_tensor(x), h0, ops.convert_to_tensor(U),
                            ops.convert_to_tensor(W), ops.convert_to_tensor(b), mask_tensor,
                            perturbations, activation)
        return ops.sum(hs * ops.convert_to_tensor(G))

    dh_reference, dh0_reference = gradients(loss, [np.zeros((BATCH, TIME, UNITS)), h0])

    mask_tensor = None if mask is None else ops.convert_to_tensor(mask)
    tensors = [ops.convert_to_tensor(v) for v in (x, h0, U, W, b)]
    hs = bptt.forward(*tensors, mask_tensor, activation=activation)
    result = bptt.backward(tensors[0], tensors[1], hs, tensors[2], tensors[3],
                           ops.convert_to_tensor(G), mask_tensor, activation=activation)
    dh = np.asarray(ops.convert_to_numpy(result["dh"]))
    assert dh.dtype == np.float64
    assert relative_error(dh, dh_reference) <= EXACT
    assert relative_error(ops.convert_to_numpy(result["dh0"]), dh0_reference) <= EXACT
    # Far from the end the total gradient differs from the direct one: the recurrence matters.
    assert relative_error(dh[:, 0], G[:, 0]) > 1e-3


def test_explicit_gradients_agree_with_central_finite_differences():
    # Independent of any autodiff: 3 random entries of each parameter, with the mixed mask.
    problem = make_problem(seed=3)
    mask = ops.convert_to_tensor(MIXED_MASK)
    names = ["x", "h0", "U", "W", "b", "V", "c"]
    parameters = ["U", "W", "b", "V", "c"]
    values = {name: problem[name] for name in names}
    A, B = problem["A_seq_out"], problem["B"]

    def loss(x, h0, U, W, b, V, c):
        outputs, h_last = bptt_wiring.vanilla_rnn(x, h0, U, W, b, V, c, mask, return_sequences=True)
        return ops.sum(outputs * ops.convert_to_tensor(A)) + ops.sum(h_last * ops.convert_to_tensor(B))

    explicit = dict(zip(names, gradients(loss, [values[n] for n in names])))

    def loss_value(changed_name, changed_value):
        args = [ops.convert_to_tensor(changed_value if n == changed_name else values[n]) for n in names]
        return float(ops.convert_to_numpy(loss(*args)))

    eps = 1e-6
    rng = np.random.default_rng(4)
    for name in parameters:
        flat_size = values[name].size
        numeric, analytic = [], []
        for index in rng.choice(flat_size, size=min(3, flat_size), replace=False):
            plus, minus = values[name].copy().ravel(), values[name].copy().ravel()
            plus[index] += eps
            minus[index] -= eps
            shape = values[name].shape
            numeric.append((loss_value(name, plus.reshape(shape)) - loss_value(name, minus.reshape(shape))) / (2 * eps))
            analytic.append(explicit[name].ravel()[index])
        error = relative_error(numeric, analytic)
        assert error <= 1e-6, f"d{name}: finite differences {numeric} vs explicit {analytic}"


def test_softmax_cross_entropy_output_gradient_equals_autodiff():
    rng = np.random.default_rng(5)
    logits = rng.normal(size=(BATCH, TIME, 5)) * 2.0
    labels = rng.integers(0, 5, size=(BATCH, TIME))

    def loss(o):
        log_probabilities = ops.log_softmax(o, axis=-1)
        return -ops.sum(log_probabilities * ops.one_hot(ops.convert_to_tensor(labels), 5, dtype=o.dtype))

    (reference,) = gradients(loss, [logits])
    explicit = ops.convert_to_numpy(
        bptt.softmax_cross_entropy_output_gradient(ops.convert_to_tensor(logits), ops.convert_to_tensor(labels))
    )
    assert explicit.dtype == np.float64
    assert relative_error(explicit, reference) <= EXACT


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_parameter_gradients_are_sums_over_time(activation):
    # backward() forms dW, dU, db, dx with one matrix product over (batch * time) after the
    # loop; they must equal the book's per-step sums, written out here as a NumPy loop.
    problem = make_problem(seed=6, activation=activation)
    x, h0, U, W, b, V = (problem[k] for k in ("x", "h0", "U", "W", "b", "V"))
    mask = MIXED_MASK
    tensors = {k: ops.convert_to_tensor(v) for k, v in dict(x=x, h0=h0, U=U, W=W, b=b, V=V, mask=mask).items()}
    hs = bptt.forward(tensors["x"], tensors["h0"], tensors["U"], tensors["W"], tensors["b"],
                      tensors["mask"], activation=activation)
    do = problem["A_seq_out"]
    dhs, dV, dc = bptt.output_backward(hs, tensors["V"], ops.convert_to_tensor(do))
    g = bptt.backward(tensors["x"], tensors["h0"], hs, tensors["U"], tensors["W"], dhs,
                      tensors["mask"], activation=activation)
    g = {k: ops.convert_to_numpy(v) for k, v in g.items()}
    hs = ops.convert_to_numpy(hs)

    derivative = (1 - hs**2) if activation == "tanh" else (hs > 0).astype("float64")
    np.testing.assert_allclose(g["da"], derivative * mask[:, :, None] * g["dh"], rtol=0, atol=1e-14)

    dW = np.zeros_like(W)
    dU = np.zeros_like(U)
    db = np.zeros_like(problem["b"])
    dV_loop = np.zeros_like(V)
    dc_loop = np.zeros(OUTPUTS)
    dx = np.zeros_like(x)
    h_prev = h0
    for t in range(TIME):
        da_t = g["da"][:, t]  # (batch, units)
        dW += h_prev.T @ da_t  # sum_t diag(f'(a(t))) grad_h(t) L h(t-1)^T, transposed layout
        dU += x[:, t].T @ da_t
        db += da_t.sum(axis=0)
        dx[:, t] = da_t @ U.T
        dV_loop += hs[:, t].T @ do[:, t]
        dc_loop += do[:, t].sum(axis=0)
        h_prev = hs[:, t]
    for name, loop_value, value in [("dW", dW, g["dW"]), ("dU", dU, g["dU"]), ("db", db, g["db"]),
                                    ("dx", dx, g["dx"]), ("dV", dV_loop, ops.convert_to_numpy(dV)),
                                    ("dc", dc_loop, ops.convert_to_numpy(dc))]:
        assert relative_error(value, loop_value) <= 1e-12, name
    # The padded steps of the left-padded row contribute nothing to the input gradient.
    assert np.all(g["dx"][2, :2] == 0)


def test_unknown_activation_is_an_error():
    problem = make_problem()
    with pytest.raises(ValueError, match=r"`activate\(activation=\.\.\.\)` must be one of .*Received: activation='softplus'"):
        bptt.forward(problem["x"], problem["h0"], problem["U"], problem["W"], problem["b"], activation="softplus")
