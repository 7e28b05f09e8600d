"""Bahdanau attention and the decoder cell: the formula by hand, padding, the cell stepped by hand."""

import numpy as np
import pytest
from keras import ops

from rnnzoo.cells.attention_decoder_cell import AttentionDecoderCell
from rnnzoo.layers import BahdanauAttention
from rnnzoo.models.seq2seq import Seq2Seq


def test_attention_equals_the_formula_and_ignores_padding():
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 3)).astype("float32")
    values = rng.normal(size=(2, 5, 4)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    layer = BahdanauAttention(6)
    context, weights = layer(query, values, mask=mask)
    W, U, b, v = (np.array(w) for w in (layer.W_a, layer.U_a, layer.b_a, layer.v_a))
    energies = np.tanh((query @ W)[:, None] + values @ U + b) @ v  # e(t, j) = v^T tanh(W s + U h)
    energies = np.where(mask, energies, -np.inf)
    expected = np.exp(energies - energies.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.array(weights), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.array(weights)[1, 2:], 0.0)  # exactly zero at padding
    np.testing.assert_allclose(np.array(context), (expected[..., None] * values).sum(1), rtol=1e-5, atol=1e-6)
    # Padding contents do not matter.
    values2 = values.copy()
    values2[1, 2:] = 100.0
    np.testing.assert_allclose(np.array(layer(query, values2, mask=mask)[0])[1], np.array(context)[1], atol=1e-6)


def test_attention_config_and_bad_arguments():
    layer = BahdanauAttention(7, name="a")
    assert BahdanauAttention.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="units"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match="expects query"):
        BahdanauAttention(3)(np.zeros((2, 3, 1), "float32"), np.zeros((2, 4, 2), "float32"))


def test_all_padding_gives_zero_weights_not_nan():
    layer = BahdanauAttention(3)
    context, weights = layer(np.ones((1, 2), "float32"), np.ones((1, 4, 2), "float32"), mask=np.zeros((1, 4), bool))
    assert np.all(np.array(weights) == 0) and np.all(np.isfinite(np.array(context)))


@pytest.mark.parametrize("attention", [True, False], ids=["attention", "fixed_context"])
def test_cell_stepped_by_hand_equals_the_model(attention):
    model = Seq2Seq("abcd", "abcd", embedding_dim=4, hidden_dim=6, attention=attention,
                    max_source_length=6, max_target_length=5)
    source = model.encode_source(["abc", "d", "dcba"])
    target_in, _ = model.encode_targets(["cba", "d", "ab"])
    logits = np.array(model({"source": source, "target_in": target_in}))
    constants, state = model.encode(source)
    for t in range(target_in.shape[1]):
        step_logits, state, weights = model.decoder_cell.step(model.target_embedding(target_in[:, t]), state, constants)
        np.testing.assert_allclose(np.array(step_logits), logits[:, t], rtol=1e-5, atol=1e-5)
        # Keras contract: call(inputs, states, constants) -> (logits, [state])
        keras_logits, _ = model.decoder_cell(model.target_embedding(target_in[:, t]), [state], constants)
    weights = np.array(weights)
    if attention:
        np.testing.assert_array_equal(weights[1, 2:], 0.0)  # "d" + <end>: two real positions
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    else:
        np.testing.assert_array_equal(weights, 1.0)  # one "position": C


def test_padded_source_equals_unpadded():
    model = Seq2Seq("abcd", "abcd", embedding_dim=4, hidden_dim=6, max_source_length=10, max_target_length=4)
    short = model.encode_source(["abca"])[:, :5]  # 4 characters + <end>, no padding
    padded = model.encode_source(["abca"])  # padded to 11
    target_in, _ = model.encode_targets(["acba"])
    a = np.array(model({"source": short, "target_in": target_in}))
    b = np.array(model({"source": padded, "target_in": target_in}))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cell_validation_and_config():
    cell = AttentionDecoderCell(4, vocabulary_size=9, attention_units=3, name="c")
    config = cell.get_config()
    assert AttentionDecoderCell.from_config(config).get_config() == config
    with pytest.raises(ValueError, match="vocabulary_size"):
        AttentionDecoderCell(4, vocabulary_size=0)
    with pytest.raises(ValueError, match="annotations' shape"):
        AttentionDecoderCell(4, 9).build((None, 3))
    assert cell.state_size == 4 and cell.output_size == 9
    assert ops.shape(cell.get_initial_state(batch_size=2)[0]) == (2, 4)


def test_masked_attention_is_finite_under_mixed_precision():
    import keras

    keras.config.set_dtype_policy("mixed_float16")  # reset by the root conftest's fixture
    layer = BahdanauAttention(4)
    mask = np.array([[True, True, False], [False, False, False]])
    context, weights = layer(np.ones((2, 3), "float32"), np.ones((2, 3, 2), "float32"), mask=mask)
    weights = np.asarray(weights, "float32")
    assert np.all(np.isfinite(weights)) and np.all(np.isfinite(np.asarray(context, "float32")))
    np.testing.assert_allclose(weights[0], [0.5, 0.5, 0.0], atol=1e-3)
    np.testing.assert_array_equal(weights[1], [0.0, 0.0, 0.0])  # everything padded: zeros, not NaN
