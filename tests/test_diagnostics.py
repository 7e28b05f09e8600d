"""`rnnzoo.diagnostics` (section 10.7), `rnnzoo.initializers`, clipping, `rnnzoo diagnose`.

The numerical tests run in float64 (JAX's x64 switched on per test, as in test_bptt.py), so
the eigenvalue argument and the gradient norms are checked to rounding. The same tests run in
both backend passes.
"""

import importlib.util
import json
import os

import keras
import numpy as np
import pytest
from keras import ops

from rnnzoo import bptt, bptt_wiring, diagnostics, initializers
from rnnzoo.app.cli import main as cli_main
from rnnzoo.layers import VanillaRNN
from rnnzoo.models import vanilla_tagger
from rnnzoo.testing import gradients

EXACT = 1e-10
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def orthogonal(units, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(units, units)))
    return q * np.sign(np.diag(r))


def random_layer(units=4, features=3, output_units=1, dtype="float64", seed=0, **kwargs):
    """A built VanillaRNN with random weights (W of spectral radius about 1)."""
    layer = VanillaRNN(units, output_units=output_units, dtype=dtype, **kwargs)
    layer.build((None, None, features))
    rng = np.random.default_rng(seed)
    weights = [rng.normal(size=w.shape) * (1.0 / np.sqrt(w.shape[0]) if len(w.shape) == 2 else 0.2)
               for w in layer.weights]
    layer.set_weights(weights)
    return layer


# --- The eigenvalue argument (eqs. 10.36-10.39) -------------------------------------------

EIGENVALUES = np.array([0.5, -0.8, 0.95, 1.05, -1.2, 1.3])


@pytest.mark.usefixtures("float64")
def test_linear_recurrence_components_along_eigenvectors_scale_as_lambda_to_the_t():
    # W = P diag(lambda) P^-1 with a random (non-orthogonal) P; h(t) = h(t-1) @ W, so the
    # coordinates c(t) = h(t) @ P obey c(t) = c(0) * lambda^t, one eigenvector at a time.
    units, steps = len(EIGENVALUES), 20
    rng = np.random.default_rng(0)
    P = np.eye(units) + 0.3 * rng.normal(size=(units, units))
    W = P @ np.diag(EIGENVALUES) @ np.linalg.inv(P)
    h0 = rng.normal(size=(2, units))
    hs = ops.convert_to_numpy(diagnostics.linear_recurrence(h0, W, steps))
    assert hs.shape == (2, steps + 1, units) and hs.dtype == np.float64
    components = hs @ P  # (batch, time, units)
    expected = components[:, :1] * EIGENVALUES ** np.arange(steps + 1)[:, None]
    # Every element, every step, to 1e-7 relative: the one rounding limit is that the
    # 0.5^20 ~ 1e-6 component is read off a state whose largest component is 1.3^20 ~ 190
    # (float64 eps * 190 / 1e-6 ~ 2e-8).
    np.testing.assert_allclose(components, expected, rtol=1e-7, atol=0)
    # After 20 steps the |lambda| < 1 components have shrunk, the |lambda| > 1 grown.
    ratio = np.abs(components[:, -1] / components[:, 0]).mean(axis=0)
    np.testing.assert_allclose(ratio, np.abs(EIGENVALUES) ** steps, rtol=1e-7)
    assert (ratio[np.abs(EIGENVALUES) < 1] < 0.36).all() and (ratio[np.abs(EIGENVALUES) > 1] > 2.6).all()
    found = diagnostics.eigenvalues(W)
    np.testing.assert_allclose(found.real, EIGENVALUES[np.argsort(-np.abs(EIGENVALUES))], atol=EXACT)
    np.testing.assert_allclose(found.imag, 0.0, atol=EXACT)
    assert diagnostics.spectral_radius(W) == pytest.approx(1.3, abs=EXACT)


@pytest.mark.usefixtures("float64")
def test_symmetric_W_book_form_power_is_Q_lambda_power_Q_transposed():
    # The book's eq. 10.38-10.39: W = Q Lambda Q^T, h(t) = Q^T Lambda^t Q h(0) (column form).
    units, steps = len(EIGENVALUES), 15
    Q = orthogonal(units, seed=1)
    W = Q @ np.diag(EIGENVALUES) @ Q.T
    h0 = np.random.default_rng(2).normal(size=(3, units))
    hs = ops.convert_to_numpy(diagnostics.linear_recurrence(h0, W, steps))
    np.testing.assert_allclose(hs[:, -1], h0 @ Q @ np.diag(EIGENVALUES**steps) @ Q.T, rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("float64")
def test_jacobian_products_at_the_zero_state_are_powers_of_W():
    # h = 0: tanh'(0) = 1, so dh(tau)/dh(tau - k) = (W_book)^k = (W^T)^k, with spectral norm
    # rho^k for a symmetric W.
    units, time = 5, 6
    W = orthogonal(units, seed=3) @ np.diag([0.9, -0.7, 0.5, 0.3, 0.1]) @ orthogonal(units, seed=3).T
    hs = np.zeros((2, time, units))
    products, first = diagnostics.jacobian_products(hs, W)
    products = ops.convert_to_numpy(products)
    for k in range(time):
        np.testing.assert_allclose(products[:, time - 1 - k], np.broadcast_to(np.linalg.matrix_power(W.T, k), (2, units, units)), atol=EXACT)
    np.testing.assert_allclose(ops.convert_to_numpy(first)[0], np.linalg.matrix_power(W.T, time), atol=EXACT)
    norms = diagnostics.jacobian_norms(hs, W)
    np.testing.assert_allclose(norms, np.broadcast_to(0.9 ** np.arange(time + 1), (2, time + 1)), rtol=1e-9)
    frobenius = diagnostics.jacobian_norms(hs, W, ord="fro")
    np.testing.assert_allclose(frobenius[0, 1], np.linalg.norm(W), rtol=1e-9)


# --- Gradient decay from the explicit BPTT ----------------------------------------------------


@pytest.mark.usefixtures("float64")
def test_gradient_decay_equals_autodiff_of_the_loss_with_respect_to_each_state():
    # The reference for grad_h(t) L, by its definition: restart the network from h(t) on the
    # rest of the sequence, and differentiate the loss with respect to that initial state.
    batch, time, features = 3, 5, 3
    layer = random_layer(features=features)
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(batch, time, features)), rng.normal(size=(batch, 1))
    decay = diagnostics.gradient_decay(layer, x, y, loss="mse")
    U, W, b, V, c = (ops.convert_to_numpy(w) for w in layer.cell.weight_tensors())
    hs = ops.convert_to_numpy(bptt.forward(x, np.zeros((batch, 4)), U, W, b))
    for t in range(1, time + 1):  # h(t) is hs[:, t - 1]; the rest of the sequence is x[:, t:]
        def loss_from(h, t=t):
            if t == time:
                o = ops.matmul(h, V) + c
            else:
                o, _ = bptt_wiring.vanilla_rnn(x[:, t:], h, U, W, b, V, c, gradient="autodiff")
            return ops.sum(ops.square(o - y)) / y.size

        (expected,) = gradients(loss_from, [hs[:, t - 1]])
        np.testing.assert_allclose(decay.gradient_norm_per_example[:, time - t], np.linalg.norm(expected, axis=-1),
                                   rtol=EXACT)
    assert decay.loss == pytest.approx(float(np.mean((hs[:, -1] @ V + c - y) ** 2)), rel=EXACT)
    np.testing.assert_allclose(decay.gradient_norm, decay.gradient_norm_per_example.mean(axis=0))
    assert decay.relative_gradient_norm[0] == 1.0


@pytest.mark.usefixtures("float64")
def test_gradient_decay_of_a_tagger_per_step_softmax_loss_last_and_all():
    # return_sequences + softmax: at="last" is the gradient of the last step's loss, which
    # equals grad_h(tau) L @ dh(tau)/dh(t); at="all" adds each step's own loss term.
    batch, time, features, classes = 2, 6, 3, 3
    layer = random_layer(features=features, output_units=classes, return_sequences=True, seed=4)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(batch, time, features)), rng.integers(0, classes, size=(batch, time))
    last = diagnostics.gradient_decay(layer, x, y, loss="sparse_categorical_crossentropy", at="last")
    everything = diagnostics.gradient_decay(layer, x, y, loss="sparse_categorical_crossentropy", at="all")
    U, W, b, V, c = (ops.convert_to_numpy(w) for w in layer.cell.weight_tensors())
    hs = ops.convert_to_numpy(bptt.forward(x, np.zeros((batch, 4)), U, W, b))
    logits = hs @ V + c
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    do = (p - np.eye(classes)[y])  # grad_o(t) of the summed cross-entropy
    dh_tau = do[:, -1] @ V.T / batch
    products, _ = diagnostics.jacobian_products(hs, W)
    expected_last = np.linalg.norm(np.einsum("bu,btuv->btv", dh_tau, ops.convert_to_numpy(products)), axis=-1)
    np.testing.assert_allclose(last.gradient_norm_per_example, expected_last[:, ::-1], rtol=EXACT)
    np.testing.assert_allclose(last.jacobian_norm, np.linalg.norm(ops.convert_to_numpy(products), ord=2, axis=(-2, -1)).mean(0)[::-1],
                               rtol=1e-9)
    # at="all": grad_h(t) L = sum_{s >= t} (V^T grad_o(s) L) dh(s)/dh(t), with L the mean over steps.
    expected_all = np.zeros((batch, time, 4))
    for s in range(time):
        products_s, _ = diagnostics.jacobian_products(hs[:, : s + 1], W)
        expected_all[:, : s + 1] += np.einsum("bu,btuv->btv", do[:, s] @ V.T / (batch * time), ops.convert_to_numpy(products_s))
    np.testing.assert_allclose(everything.gradient_norm_per_example, np.linalg.norm(expected_all, axis=-1)[:, ::-1], rtol=1e-9)
    assert everything.loss == pytest.approx(-np.mean(np.log(np.take_along_axis(p, y[..., None], -1))), rel=1e-10)


@pytest.mark.parametrize("scale, vanishes", [(0.5, True), (2.0, False)], ids=["contracting", "expanding"])
@pytest.mark.usefixtures("float64")
def test_gradient_decay_follows_the_spectral_radius(scale, vanishes):
    # W = scale * orthogonal (every |lambda| = scale). With tanh' <= 1 the gradient can only
    # shrink faster than scale^k; with tiny inputs (tanh' ~ 1) it follows scale^k.
    units, time = 6, 12
    layer = random_layer(units=units, features=2)
    U, W, b, V, c = layer.get_weights()
    layer.set_weights([U * 1e-8, scale * orthogonal(units, seed=6), b * 0, V, c])
    x = np.random.default_rng(7).normal(size=(4, time, 2))
    decay = diagnostics.gradient_decay(layer, x, np.ones((4, 1)))
    k = decay.distance
    assert decay.spectral_radius == pytest.approx(scale, rel=1e-9)
    assert (decay.relative_gradient_norm <= scale**k * (1 + 1e-9)).all()
    np.testing.assert_allclose(decay.relative_gradient_norm, scale**k, rtol=1e-6)
    if vanishes:
        assert decay.relative_gradient_norm[-1] < 1e-3
    else:
        assert decay.relative_gradient_norm[-1] > 1e3


def test_gradient_decay_explains_what_it_cannot_read():
    inputs = keras.Input((5, 2))
    with_head = keras.Model(inputs, keras.layers.Dense(1)(VanillaRNN(4)(inputs)))
    with pytest.raises(ValueError, match="must be the model's output"):
        diagnostics.gradient_decay(with_head, np.zeros((1, 5, 2)), np.zeros((1, 1)))
    no_rnn = keras.Sequential([keras.Input((5, 2)), keras.layers.Dense(1)])
    with pytest.raises(ValueError, match="exactly one `rnnzoo.layers.VanillaRNN`"):
        diagnostics.gradient_decay(no_rnn, np.zeros((1, 5, 2)), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="loss"):
        diagnostics.gradient_decay(VanillaRNN(4), np.zeros((1, 5, 2)), np.zeros((1, 4)), loss="hinge")


def test_gradient_decay_runs_layers_before_the_recurrence():
    inputs = keras.Input((5, 3))
    features = keras.layers.Dense(2)(inputs)
    model = keras.Model(inputs, VanillaRNN(4, output_units=1)(features))
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    decay = diagnostics.gradient_decay(model, x, np.zeros((2, 1), "float32"))
    assert decay.loss == pytest.approx(float(np.mean(ops.convert_to_numpy(model(x)) ** 2)), rel=1e-5)


# --- Figure 10.15 -----------------------------------------------------------------------------


def test_composition_cross_section_is_the_repeated_tanh_layer():
    rng = np.random.default_rng(0)
    units = 7
    W, b = rng.normal(size=(units, units)).astype("float32"), rng.normal(size=units).astype("float32")
    d, p = rng.normal(size=units).astype("float32"), rng.normal(size=units).astype("float32")
    s = np.linspace(-2, 2, 9).astype("float32")
    curves = diagnostics.composition_cross_section(s, W, b, d, p, 3)
    h = s[:, None] * d
    expected = [h @ p]
    for _ in range(3):
        h = np.tanh(h @ W + b)
        expected.append(h @ p)
    np.testing.assert_allclose(curves, np.array(expected), rtol=1e-5, atol=1e-5)


# --- Initialization and clipping as options ---------------------------------------------------


def test_scaled_identity_keeps_its_gain_through_config_and_saving(tmp_path):
    layer = VanillaRNN(3, output_units=1, recurrent_initializer=initializers.ScaledIdentity(0.5))
    model = keras.Sequential([keras.Input((4, 2)), layer])
    np.testing.assert_allclose(ops.convert_to_numpy(layer.cell.W), 0.5 * np.eye(3))
    clone = VanillaRNN.from_config(layer.get_config())
    clone.build((None, 4, 2))
    np.testing.assert_allclose(ops.convert_to_numpy(clone.cell.W), 0.5 * np.eye(3))
    path = str(tmp_path / "irnn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.layers[-1].cell.recurrent_initializer.gain == 0.5
    with pytest.raises(ValueError, match="2D matrices"):
        initializers.ScaledIdentity()((2, 2, 2))


@pytest.mark.parametrize(
    "spec, kind, gain",
    [("identity", "ScaledIdentity", 1.0), ("identity:0.9", "ScaledIdentity", 0.9),
     ("orthogonal:1.2", "Orthogonal", 1.2), ("glorot_uniform", "GlorotUniform", None)],
    ids=["identity", "identity-gain", "orthogonal-gain", "keras-name"],
)
def test_recurrent_initializer_parses_command_line_specs(spec, kind, gain):
    initializer = initializers.recurrent_initializer(spec)
    assert type(initializer).__name__ == kind
    if gain is not None:
        assert initializer.gain == gain


def test_recurrent_initializer_rejects_bad_specs():
    with pytest.raises(ValueError, match="numeric gain"):
        initializers.recurrent_initializer("identity:big")
    with pytest.raises(ValueError, match="take a gain"):
        initializers.recurrent_initializer("glorot_uniform:2")


@pytest.mark.slow
def test_global_clipnorm_bounds_the_explicit_bptt_update():
    # One SGD step (lr 1) on a huge loss: without clipping the weights move far; with
    # global_clipnorm=1e-3 the whole update has norm 1e-3 (Pascanu et al.'s clipping).
    x = np.random.default_rng(0).normal(size=(8, 6, 2)).astype("float32")
    y = np.full((8, 1), 100.0, "float32")

    def update_norm(optimizer):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6, 2)), VanillaRNN(5, output_units=1)])
        model.compile(optimizer=optimizer, loss="mse")
        before = [np.array(w) for w in model.trainable_weights]
        model.fit(x, y, batch_size=8, epochs=1, verbose=0)
        return np.sqrt(sum(np.sum((np.array(w) - b) ** 2) for w, b in zip(model.trainable_weights, before)))

    assert update_norm(keras.optimizers.SGD(1.0)) > 1.0
    assert update_norm(keras.optimizers.SGD(1.0, global_clipnorm=1e-3)) == pytest.approx(1e-3, rel=1e-3)


# --- rnnzoo diagnose, plots, the experiment script --------------------------------------------


def test_cli_diagnose_prints_the_decay_table_and_writes_a_png(tmp_path, capsys):
    model = keras.Sequential([keras.Input((None, 2)), VanillaRNN(6, output_units=1, name="vanilla_rnn")])
    path = str(tmp_path / "adder.keras")
    model.save(path)
    png = str(tmp_path / "decay.png")
    assert cli_main(["diagnose", path, "--task", "adding_problem", "--length", "7", "--batch-size", "5",
                     "--output", png]) == 0
    out = capsys.readouterr().out
    radius = float(out.split("spectral radius of W: ")[1].split()[0])
    assert radius == pytest.approx(diagnostics.spectral_radius(model.layers[-1].cell.W), abs=1e-4)
    rows = [line.split() for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == list(range(7))
    assert float(rows[0][2]) == 1.0  # relative norm at distance 0
    with open(png, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE


def test_cli_diagnose_a_tagger_on_delayed_recall(tmp_path, capsys):
    path = str(tmp_path / "tagger.keras")
    vanilla_tagger(num_classes=2, features=1, units=4).save(path)
    assert cli_main(["diagnose", path, "--task", "delayed_recall", "--length", "20", "--batch-size", "3"]) == 0
    out = capsys.readouterr().out
    assert "sparse_categorical_crossentropy loss" in out
    rows = [line.split() for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 5, 10, 19]  # long sequences: a log-spaced subset
    with open(str(tmp_path / "tagger_gradient_decay.png"), "rb") as f:
        assert f.read(8) == PNG_SIGNATURE


def _example(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "examples", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_long_term_experiment_script_runs_a_tiny_grid(tmp_path, capsys):
    experiment = _example("long_term_experiment")
    assert experiment.main(["--lags", "4", "6", "--seeds", "1", "--steps", "3", "--units", "4", "--train-size", "64",
                            "--test-size", "32", "--batch-size", "16", "--variants", "plain", "irnn",
                            "--out", str(tmp_path)]) == 0
    with open(tmp_path / "results.json") as f:
        results = json.load(f)
    runs = results["runs"]
    assert sorted((r["lag"], r["variant"]) for r in runs) == [(4, "irnn"), (4, "plain"), (6, "irnn"), (6, "plain")]
    assert all(r["steps_run"] == 3 and np.isfinite(r["test_mse"]) for r in runs)
    assert all(r["success"] == (r["test_mse"] < 0.05) for r in runs)
    irnn = [r for r in runs if r["variant"] == "irnn"]
    assert all(r["spectral_radius_before"] == pytest.approx(1.0) for r in irnn)
    out = capsys.readouterr().out
    assert "T=4" in out and "T=6" in out and "irnn" in out
    with open(tmp_path / "success_rate.png", "rb") as f:
        assert f.read(8) == PNG_SIGNATURE


def test_figure_10_15_script_writes_the_figure(tmp_path, capsys):
    _example("figure_10_15").main(["--units", "20", "--points", "101", "--depths", "0", "1", "3",
                                   "--out", str(tmp_path / "f.png")])
    out = capsys.readouterr().out
    depths = [int(line.split()[0]) for line in out.splitlines() if line.strip() and line.split()[0].isdigit()]
    assert depths == [0, 1, 3]
    with open(tmp_path / "f.png", "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
