"""Bad inputs at the layers' boundaries: Keras-style errors naming the argument and the received value."""

import numpy as np
import pytest

from rnnzoo.attention import BahdanauAttention
from rnnzoo.cells.vanilla_rnn_cell import VanillaRNNCell
from rnnzoo.layers.deep_rnn import DeepRNN

QUERY, VALUES = np.ones((2, 3), "float32"), np.ones((2, 5, 6), "float32")


@pytest.mark.parametrize(
    "query, values, mask, error, words",
    [
        (np.ones((2, 4), "float32"), VALUES, None, ValueError, "built for `query` with 3 features (last axis) but received 4"),
        (QUERY, np.ones((2, 5, 7), "float32"), None, ValueError, "built for `values` with 6 features"),
        (QUERY.astype("int32"), VALUES, None, TypeError, "floating-point `query`"),
        (QUERY, VALUES.astype("int32"), None, TypeError, "floating-point `values`"),
        (QUERY, VALUES, np.ones((2, 4), bool), ValueError, "mask of shape (batch, source_time) = (2, 5)"),
        (np.ones((3, 3), "float32"), VALUES, None, ValueError, "the same batch size"),
        (np.ones((2, 1, 3), "float32"), VALUES, None, ValueError, "expects query (batch, query_dim)"),
    ],
    ids=["query-features", "values-features", "int-query", "int-values", "mask-length", "batch", "query-rank"],
)
def test_bahdanau_attention_bad_inputs(query, values, mask, error, words):
    layer = BahdanauAttention(4)
    layer(QUERY, VALUES)
    with pytest.raises(error, match="Received: ") as info:
        layer(query, values, mask=mask)
    assert words in str(info.value)


def test_bahdanau_attention_batch_zero_is_an_empty_batch():
    layer = BahdanauAttention(4)
    context, weights = layer(np.ones((0, 3), "float32"), np.ones((0, 5, 6), "float32"))
    assert tuple(context.shape) == (0, 6) and tuple(weights.shape) == (0, 5)


@pytest.mark.parametrize(
    "x, mask, words",
    [
        (np.ones((2, 3, 6), "float32"), None, "built for inputs with 5 features (last axis) but received 6"),
        (np.ones((2, 3, 5), "float32"), np.ones((2, 4), bool), "mask of shape (batch, time) = (2, 3)"),
        (np.ones((2, 3), "float32"), None, "rank 3"),
    ],
    ids=["features-after-build", "mask-length", "rank"],
)
def test_deep_rnn_bad_inputs(x, mask, words):
    layer = DeepRNN([VanillaRNNCell(4), VanillaRNNCell(3)])
    layer(np.ones((2, 3, 5), "float32"))
    with pytest.raises(ValueError, match="Received: ") as info:
        layer(x, mask=mask)
    assert words in str(info.value)


def test_tree_layer_batch_zero_is_an_empty_batch():
    from rnnzoo.layers.tree_layer import TreeLayer

    root, nodes = TreeLayer(3)(
        [np.ones((0, 3, 2), "float32"), np.full((0, 3, 2), -1, "int32"), np.full((0, 1, 1), -1, "int32")]
    )
    assert tuple(root.shape) == (0, 3) and tuple(nodes.shape) == (0, 3, 3)


def test_seq2seq_translate_of_no_texts_is_empty():
    from rnnzoo.models.seq2seq import Seq2Seq

    model = Seq2Seq("abc", "abc", hidden_dim=4, embedding_dim=3)
    assert model.translate([]) == [] and model.translate([], return_details=True) == ([], {})
