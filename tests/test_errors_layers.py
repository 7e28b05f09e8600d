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


def _cell_cases():
    from rnnzoo.cells.deep_transition_cell import DeepTransitionCell
    from rnnzoo.cells.output_recurrence_cell import OutputRecurrenceCell

    def states(cell):
        return [np.zeros((2, size), "float32") for size in ([cell.state_size] if isinstance(cell.state_size, int)
                                                           else cell.state_size)]

    return [VanillaRNNCell(4), DeepTransitionCell(4), OutputRecurrenceCell(4, 3)], states


@pytest.mark.parametrize("index", [0, 1, 2], ids=["VanillaRNNCell", "DeepTransitionCell", "OutputRecurrenceCell"])
@pytest.mark.parametrize("fault", ["features", "state"])
def test_cell_called_by_hand_with_wrong_sizes(index, fault):
    # A cell stepped by hand after it was built: a Keras-style error, not a size-incompatible matmul.
    cells, states = _cell_cases()
    cell = cells[index]
    good = states(cell)
    cell(np.ones((2, 3), "float32"), good)
    if fault == "features":
        args, words = (np.ones((2, 5), "float32"), good), "built for inputs with 3 features (last axis) but received 5"
    else:
        args, words = (np.ones((2, 3), "float32"), [np.zeros((2, 6), "float32")] + good[1:]), "`states[0]` of shape (batch, 4)"
    with pytest.raises(ValueError, match="Received: ") as info:
        cell(*args)
    assert words in str(info.value)


@pytest.mark.parametrize(
    "inputs, words",
    [
        ((np.ones((2, 5), "float32"), np.zeros((2, 2, 4), "float32")), "built for inputs with 3 features"),
        ((np.ones((2, 3), "float32"), np.zeros((2, 2, 5), "float32")), "children_states of shape (rows, num_children, 4)"),
    ],
    ids=["features", "children-units"],
)
def test_tree_cell_called_by_hand_with_wrong_sizes(inputs, words):
    from rnnzoo.cells.tree_cell import TreeCell

    cell = TreeCell(4)
    cell(np.ones((2, 3), "float32"), np.zeros((2, 2, 4), "float32"))
    with pytest.raises(ValueError, match="Received: ") as info:
        cell(*inputs)
    assert words in str(info.value)


def test_tree_layer_features_after_build():
    from rnnzoo.layers.tree_layer import TreeLayer

    layer = TreeLayer(3)
    children, schedule = np.array([[[1, 2], [-1, -1], [-1, -1]]], "int32"), np.array([[[0]]], "int32")
    layer([np.ones((1, 3, 2), "float32"), children, schedule])
    with pytest.raises(ValueError, match=r"built for `x` with 2 features \(last axis\) but received 4\. Received: x.shape"):
        layer([np.ones((1, 3, 4), "float32"), children, schedule])
