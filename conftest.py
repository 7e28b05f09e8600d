"""Shared test set-up (tests and docstring examples): backend selection and seeds.

The suite runs twice, once per backend (see README): `KERAS_BACKEND=tensorflow pytest` and
`KERAS_BACKEND=jax pytest`. Tests marked `tensorflow` need the TensorFlow backend (TF-only
APIs such as `tf.GradientTape`, `tf.distribute`); tests marked `jax` need the JAX backend.
The other backend's tests are *deselected* (not skipped): they run in the other pass.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

BACKEND = keras.backend.backend()


def pytest_configure(config):
    config.addinivalue_line("markers", "tensorflow: needs the TensorFlow backend")
    config.addinivalue_line("markers", "jax: needs the JAX backend")
    config.addinivalue_line("markers", "slow: trains a model or exports (seconds to a minute)")


def pytest_collection_modifyitems(config, items):
    other = {"tensorflow": "jax", "jax": "tensorflow"}.get(BACKEND)
    keep, drop = [], []
    for item in items:
        wrong_backend = (other and item.get_closest_marker(other)) or (
            BACKEND not in ("tensorflow", "jax")
            and (item.get_closest_marker("tensorflow") or item.get_closest_marker("jax"))
        )
        (drop if wrong_backend else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    if BACKEND == "tensorflow":
        # `rnnzoo train` run in-process enables TensorFlow's op determinism for the whole process,
        # and Keras then quietly compiles no model with XLA (`jit_compile=True` -> False): the
        # tests after it in the same worker would not test XLA.
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()


@pytest.fixture
def float64():
    """Enables float64 on JAX for the test (its default silently makes float32 arrays)."""
    if keras.backend.backend() != "jax":
        yield
        return
    import jax

    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", previous)


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(np=np, keras=keras, ops=keras.ops)
