"""The Keras layer contract (`rnnzoo.testing.run_layer_test`) for every layer and cell of the zoo.

Every class in `rnnzoo.layers.__all__` and `rnnzoo.cells.__all__` that is a Keras layer must
have at least one case here (`test_every_layer_and_cell_has_a_case`), so a new layer without a
contract test fails the suite. Each case checks: the config and JSON round-trips (with equal
outputs given the same weights), build, symbolic vs eager calls, weight and loss counts,
padded-equals-unpadded masking for the sequence layers, one `fit` step that changes every
trainable weight, the `.keras` round-trip, and `mixed_float16`.

Some cases use the Keras arguments the recurrent layers take per issue #11 (`dropout`,
constraints, `stateful`, `zero_output_for_mask`, a list of cells, `backward_layer`, ...).
"""

import inspect

import keras
import numpy as np
import pytest
from keras import ops

import rnnzoo.cells
import rnnzoo.layers
from rnnzoo.cells import AttentionDecoderCell, DeepTransitionCell, OutputRecurrenceCell, TreeCell, VanillaRNNCell
from rnnzoo.data import trees as T
from rnnzoo.layers import (
    BahdanauAttention,
    Bidirectional,
    DeepRNN,
    OutputRecurrentRNN,
    Recurrent,
    TreeLayer,
    VanillaRNN,
)
from rnnzoo.testing import IndexingCell, run_layer_test

BATCH, TIME, FEATURES, UNITS = 3, 5, 4, 4


def normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def tree_batch():
    trees = T.random_binary_trees(3, min_nodes=3, max_nodes=11, seed=6)
    vocabulary = T.Vocabulary([f"w{i}" for i in range(100)])
    batch = T.encode_trees(trees, vocabulary, max_children=2)
    table = normal(len(vocabulary), FEATURES, seed=3)
    return [table[batch["token_ids"]], batch["children"], batch["schedule"]]


def one_hot_states(batch, num_classes, seed=0):
    return np.eye(num_classes, dtype="float32")[np.random.default_rng(seed).integers(num_classes, size=batch)]


@keras.saving.register_keras_serializable(package="rnnzoo_tests")
class AttentionDecoderStep(keras.layers.Layer):
    """One `AttentionDecoderCell` step as rnnzoo's decoders run it: the constants from
    `cell.memory(annotations, mask)`, computed inside a layer (in a functional graph, a method
    that reads the cell's variables must run inside a layer's `call`)."""

    def __init__(self, cell, **kwargs):
        super().__init__(**kwargs)
        self.cell = cell

    def build(self, inputs_shape, state_shape=None, annotations_shape=None, mask_shape=None):
        if not self.cell.built:  # a deserialized cell comes built
            self.cell.build(inputs_shape, annotations_shape)

    def call(self, inputs, state, annotations, mask):
        return self.cell(inputs, [state], self.cell.memory(annotations, mask))

    def get_config(self):
        return {**super().get_config(), "cell": keras.saving.serialize_keras_object(self.cell)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"])
        return cls(**config)


SEQUENCE = normal(BATCH, TIME, FEATURES)
STEP = normal(BATCH, FEATURES)
STATE = normal(BATCH, UNITS, seed=1)
# With the activity regularizer: 3 weight losses and one per output tensor (a layer's output; a
# cell's output and its state), as keras.layers.Layer adds them. (keras.layers.SimpleRNN accepts
# `activity_regularizer` but drops it: its layer has 3 losses, ours 4.)
KERAS_ARGUMENTS = dict(
    dropout=0.2, recurrent_dropout=0.3, seed=5,
    kernel_regularizer="l2", recurrent_regularizer="l2", bias_regularizer="l1", activity_regularizer="l2",
    kernel_constraint="max_norm", recurrent_constraint="max_norm", bias_constraint="max_norm",
)

# id -> (class under test, make the layer, run_layer_test keyword arguments)
CASES = {
    # VanillaRNN
    "VanillaRNN-sequences-projection": (
        VanillaRNN, lambda: VanillaRNN(UNITS, output_units=2, return_sequences=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=5)),
    "VanillaRNN-backwards-state-relu": (
        VanillaRNN, lambda: VanillaRNN(UNITS, go_backwards=True, return_sequences=True, return_state=True,
                                       activation="relu", bias_initializer="ones"),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=3)),
    "VanillaRNN-autodiff-no-bias": (
        VanillaRNN, lambda: VanillaRNN(UNITS, use_bias=False, gradient="autodiff"),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=2)),
    "VanillaRNN-initial-state": (
        VanillaRNN, lambda: VanillaRNN(UNITS, return_state=True),
        dict(inputs=SEQUENCE, call_kwargs={"initial_state": STATE}, expected_num_trainable_weights=3)),
    "VanillaRNN-stateful": (
        VanillaRNN, lambda: VanillaRNN(UNITS, stateful=True, return_sequences=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=3)),
    "VanillaRNN-keras-arguments": (
        VanillaRNN, lambda: VanillaRNN(UNITS, return_sequences=True, unroll=True, zero_output_for_mask=True,
                                       **KERAS_ARGUMENTS),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=3, expected_num_losses=4)),
    # Recurrent
    "Recurrent-SimpleRNNCell": (
        Recurrent, lambda: Recurrent(keras.layers.SimpleRNNCell(UNITS), return_sequences=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=3)),
    "Recurrent-LSTMCell-state-backwards": (
        Recurrent, lambda: Recurrent(keras.layers.LSTMCell(UNITS), return_state=True, go_backwards=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=3)),
    "Recurrent-VanillaRNNCell-projection": (
        Recurrent, lambda: Recurrent(VanillaRNNCell(UNITS, output_units=2), return_sequences=True, return_state=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=5)),
    "Recurrent-DeepTransitionCell": (
        Recurrent, lambda: Recurrent(DeepTransitionCell(UNITS, transition_depth=2, skip_connection=True)),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "Recurrent-indexing-user-cell": (
        Recurrent, lambda: Recurrent(IndexingCell(UNITS, activation="tanh"), return_sequences=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=2)),
    "Recurrent-list-of-cells": (
        Recurrent, lambda: Recurrent([keras.layers.GRUCell(UNITS), VanillaRNNCell(3)], return_sequences=True,
                                     return_state=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "Recurrent-stateful-zero-output-unrolled": (
        Recurrent, lambda: Recurrent(keras.layers.GRUCell(UNITS, dropout=0.2, seed=1), stateful=True,
                                     zero_output_for_mask=True, unroll=True, return_sequences=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=3)),
    # Bidirectional
    "Bidirectional-VanillaRNN-concat": (
        Bidirectional, lambda: Bidirectional(VanillaRNN(UNITS, output_units=2, return_sequences=True)),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=10)),
    "Bidirectional-Recurrent-GRU-sum-state": (
        Bidirectional, lambda: Bidirectional(Recurrent(keras.layers.GRUCell(UNITS), return_state=True),
                                             merge_mode="sum"),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "Bidirectional-no-merge": (
        Bidirectional, lambda: Bidirectional(VanillaRNN(UNITS, return_sequences=True), merge_mode=None),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "Bidirectional-backward-layer": (
        Bidirectional, lambda: Bidirectional(VanillaRNN(UNITS, return_sequences=True),
                                             backward_layer=VanillaRNN(UNITS, activation="relu", return_sequences=True,
                                                                       go_backwards=True),
                                             merge_mode="concat"),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "Bidirectional-VanillaRNN-keras-arguments": (
        Bidirectional, lambda: Bidirectional(VanillaRNN(UNITS, return_sequences=True, **KERAS_ARGUMENTS)),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6, expected_num_losses=8)),
    # DeepRNN
    "DeepRNN-residual": (
        DeepRNN, lambda: DeepRNN([VanillaRNNCell(UNITS), VanillaRNNCell(UNITS)], residual=True,
                                 return_sequences=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "DeepRNN-deep-transition-backwards-state": (
        DeepRNN, lambda: DeepRNN([DeepTransitionCell(UNITS), keras.layers.GRUCell(3)], go_backwards=True,
                                 return_state=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=8)),
    # OutputRecurrentRNN
    "OutputRecurrentRNN-closed-loop": (
        OutputRecurrentRNN, lambda: OutputRecurrentRNN(UNITS, num_classes=3, hidden_recurrence=True),
        dict(inputs=SEQUENCE, expected_num_trainable_weights=6)),
    "OutputRecurrentRNN-teacher-forcing": (
        OutputRecurrentRNN, lambda: OutputRecurrentRNN(UNITS, num_classes=3, return_hidden_states=True),
        dict(inputs=SEQUENCE,
             call_kwargs={"labels": np.random.default_rng(2).integers(3, size=(BATCH, TIME)).astype("int32")},
             expected_num_trainable_weights=5)),
    # TreeLayer
    "TreeLayer": (TreeLayer, lambda: TreeLayer(UNITS), dict(inputs=tree_batch(), expected_num_trainable_weights=3)),
    # BahdanauAttention
    "BahdanauAttention-masked": (
        BahdanauAttention, lambda: BahdanauAttention(3),
        dict(inputs=normal(BATCH, 5), call_args=(normal(BATCH, 6, 2, seed=1),),
             call_kwargs={"mask": np.array([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]], bool)},
             build_shapes=((None, 5), (None, 6, 2)), expected_num_trainable_weights=4)),
    # Cells
    "VanillaRNNCell": (
        VanillaRNNCell, lambda: VanillaRNNCell(UNITS),
        dict(inputs=STEP, call_args=([STATE],), expected_num_trainable_weights=3)),
    "VanillaRNNCell-projection": (
        VanillaRNNCell, lambda: VanillaRNNCell(UNITS, output_units=2, activation="relu"),
        dict(inputs=STEP, call_args=([STATE],), expected_num_trainable_weights=5)),
    "VanillaRNNCell-keras-arguments": (
        # Without dropout: a Keras cell's dropout masks are made and reset by the layer that runs it
        # (keras.layers.SimpleRNNCell alone in `fit` fails); VanillaRNN's cases cover them.
        VanillaRNNCell, lambda: VanillaRNNCell(UNITS, **{**KERAS_ARGUMENTS, "dropout": 0.0, "recurrent_dropout": 0.0}),
        dict(inputs=STEP, call_args=([STATE],), expected_num_trainable_weights=3, expected_num_losses=5)),
    "DeepTransitionCell": (
        DeepTransitionCell, lambda: DeepTransitionCell(UNITS, transition_depth=3, transition_units=5,
                                                       skip_connection=True),
        dict(inputs=STEP, call_args=([STATE],), expected_num_trainable_weights=8)),
    "OutputRecurrenceCell": (
        OutputRecurrenceCell, lambda: OutputRecurrenceCell(UNITS, num_classes=3, hidden_recurrence=True),
        dict(inputs=STEP, call_args=([STATE, one_hot_states(BATCH, 3)],), expected_num_trainable_weights=6)),
    "TreeCell": (
        TreeCell, lambda: TreeCell(UNITS),
        dict(inputs=STEP, call_args=(normal(BATCH, 2, UNITS, seed=2),), expected_num_trainable_weights=3)),
    "TreeCell-sum": (
        TreeCell, lambda: TreeCell(UNITS, combine="sum", activation="relu", bias_initializer="ones"),
        dict(inputs=STEP, call_args=(normal(BATCH, 3, UNITS, seed=2),), expected_num_trainable_weights=3)),
    "AttentionDecoderCell-attention": (
        AttentionDecoderCell, lambda: AttentionDecoderStep(AttentionDecoderCell(UNITS, vocabulary_size=7,
                                                                                attention_units=3)),
        dict(inputs=STEP, call_args=(STATE, normal(BATCH, 6, 2, seed=3), np.array([[1] * 6, [1] * 3 + [0] * 3,
                                                                                   [1] + [0] * 5], bool)),
             build_shapes=((None, FEATURES), (None, UNITS), (None, 6, 2), (None, 6)),
             expected_num_trainable_weights=9)),
    "AttentionDecoderCell-fixed-context": (
        AttentionDecoderCell, lambda: AttentionDecoderStep(AttentionDecoderCell(UNITS, vocabulary_size=7)),
        dict(inputs=STEP, call_args=(STATE, normal(BATCH, 1, 2, seed=3), np.ones((BATCH, 1), bool)),
             build_shapes=((None, FEATURES), (None, UNITS), (None, 1, 2), (None, 1)),
             expected_num_trainable_weights=5)),
}


def zoo_layer_classes():
    """Every public Keras layer class of `rnnzoo.layers` and `rnnzoo.cells`."""
    classes = set()
    for package in (rnnzoo.layers, rnnzoo.cells):
        for name in package.__all__:
            obj = getattr(package, name)
            if inspect.isclass(obj) and issubclass(obj, keras.layers.Layer):
                classes.add(obj)
    return classes


def test_every_layer_and_cell_has_a_case():
    covered = {cls for cls, _, _ in CASES.values()}
    missing = zoo_layer_classes() - covered
    assert not missing, f"no contract case for {sorted(c.__name__ for c in missing)}"
    # What `__all__` holds besides layers must be no layer at all (today: the ScheduledSampling callback).
    others = {
        name for package in (rnnzoo.layers, rnnzoo.cells) for name in package.__all__
        if getattr(package, name) not in zoo_layer_classes()
    }
    assert others == {"ScheduledSampling"}, others
    assert issubclass(rnnzoo.layers.ScheduledSampling, keras.callbacks.Callback)


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_layer_contract(case):
    _, make_layer, kwargs = CASES[case]
    kwargs = dict(kwargs)
    inputs = kwargs.pop("inputs")
    run_layer_test(make_layer(), inputs, **kwargs)
