"""Batch 0 and 0 time steps, the same on every path (eager, graph, SavedModel, LiteRT).

A batch of 0 works as in Keras (`SimpleRNN` returns an empty batch): every path returns outputs
of 0 rows with the shapes of the others. 0 time steps is an error everywhere (Keras's own layers
fail there with an out-of-range slice), one that says "at least one time step": eagerly (a
ValueError from the layer), in a TF graph or a SavedModel signature (an assertion in the graph),
and from rnnzoo's artifact runner for every format (LiteRT has no assertions, so the runner checks
before LiteRT runs).

A user of the bare LiteRT interpreter (no rnnzoo) gets the same empty batch, from the signature
itself, and at 0 time steps a failure of LiteRT (the message cannot say why; rnnzoo's runner can).
"""

import keras
import numpy as np
import pytest

from rnnzoo import export
from rnnzoo.layers import VanillaRNN

BACKEND = keras.backend.backend()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, 3))
    sequences, state = VanillaRNN(4, return_sequences=True, return_state=True)(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(2)(sequences), state])
    root = tmp_path_factory.mktemp("empty")
    saved_model = export.to_saved_model(model, str(root / "saved_model"))
    tflite = export.to_tflite(saved_model, str(root / "model.tflite"))
    return model, {"saved_model": saved_model, "tflite": tflite}


def shapes(outputs):
    return [tuple(np.shape(y)) for y in outputs]


def test_batch_of_zero_is_an_empty_batch_on_every_path(exported):
    model, artifacts = exported
    x = np.zeros((0, 5, 3), "float32")
    expected = [(0, 5, 2), (0, 4)]
    assert shapes(model(x)) == expected
    assert shapes(model.predict_on_batch(x)) == expected
    for fmt, path in artifacts.items():
        assert shapes(export.run_artifact(path, x)) == expected, fmt
    # And the paths agree with each other on the batch that follows.
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    for fmt, path in artifacts.items():
        for got, want in zip(export.run_artifact(path, x), model(x)):
            np.testing.assert_allclose(got, np.asarray(want), atol=1e-5, err_msg=fmt)


def test_zero_time_steps_is_a_clear_error_on_every_path(exported):
    model, artifacts = exported
    x = np.zeros((2, 0, 3), "float32")
    with pytest.raises(ValueError, match="at least one time step"):
        model(x)
    with pytest.raises(Exception, match="at least one time step"):
        model.predict_on_batch(x)
    for fmt, path in artifacts.items():
        with pytest.raises(ValueError, match=r"at least one time step.*Received: shape=\(2, 0, 3\)"):
            export.run_artifact(path, x)


def test_saved_model_signature_itself_refuses_zero_time_steps(exported):
    # A server calls the signature directly, without rnnzoo's runner: the graph checks.
    import tensorflow as tf

    _, artifacts = exported
    signature = tf.saved_model.load(artifacts["saved_model"]).signatures["serving_default"]
    name = list(signature.structured_input_signature[1])[0]
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least one time step"):
        signature(**{name: tf.zeros((2, 0, 3))})
    outputs = signature(**{name: tf.zeros((0, 7, 3))})
    assert sorted(tuple(v.shape) for v in outputs.values()) == [(0, 4), (0, 7, 2)]


def bare_litert(path, x):
    """Runs a `.tflite` file as a user without rnnzoo would: resize, allocate, set, invoke, get."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    (detail,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(detail["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(detail["index"], x)
    interpreter.invoke()
    return [interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()]


def test_bare_litert_interpreter_returns_an_empty_batch(exported):
    from ai_edge_litert.interpreter import Interpreter

    model, artifacts = exported
    outputs = bare_litert(artifacts["tflite"], np.zeros((0, 5, 3), "float32"))
    assert sorted(shapes(outputs)) == [(0, 4), (0, 5, 2)]
    runner = Interpreter(model_path=artifacts["tflite"]).get_signature_runner()
    (name,) = runner.get_input_details()
    outputs = runner(**{name: np.zeros((0, 7, 3), "float32")})
    assert sorted(shapes(outputs.values())) == [(0, 4), (0, 7, 2)]
    # The row added for a batch of 0 is not added to a batch of 1 or more.
    x = np.random.default_rng(1).normal(size=(3, 6, 3)).astype("float32")
    got = sorted(bare_litert(artifacts["tflite"], x), key=np.ndim)
    want = sorted((np.asarray(y) for y in model(x)), key=np.ndim)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 0, 3), (0, 0, 3)], ids=["time0", "batch0_time0"])
def test_bare_litert_interpreter_fails_at_zero_time_steps(exported, shape):
    # LiteRT has no assertion: the signature then gathers out of range before the model runs, so
    # the interpreter fails instead of returning the initial state as a last step.
    _, artifacts = exported
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        bare_litert(artifacts["tflite"], np.zeros(shape, "float32"))


def test_graph_loop_of_zero_steps_returns_nothing_wrongly_shaped():
    # Below the layers' checks, the TF inference loop itself: 0 steps give 0 outputs and the
    # initial carry (before, a reshape made a batch of 1 out of a batch of 2).
    from rnnzoo import recurrence

    def step(carry, x):
        return carry + x, carry * 2.0

    init = np.ones((2, 3), "float32")
    xs = np.zeros((0, 2, 3), "float32")
    final, ys = recurrence._replay_scan(step, init, xs, reverse=False)
    assert tuple(ys.shape) == (0, 2, 3)
    np.testing.assert_array_equal(np.asarray(final), init)
