"""The recursive network over batches of trees, computed level by level (section 10.6)."""

import keras
import numpy as np
from keras import ops

from rnnzoo.cells.tree_cell import TreeCell


def _check_tree_inputs(layer, shapes, dtypes=None):
    name = type(layer).__name__
    if not isinstance(shapes, (list, tuple)) or len(shapes) != 3 or not all(
        isinstance(s, (list, tuple)) for s in shapes
    ):
        raise ValueError(
            f"`{name}` takes a list of three tensors [x, children, schedule] (see "
            f"`rnnzoo.data.trees.encode_trees`). Received: {shapes!r}"
        )
    x, children, schedule = (tuple(s) for s in shapes)
    for arg, shape, what in (
        ("x", x, "(batch, nodes, features)"),
        ("children", children, "(batch, nodes, num_children)"),
        ("schedule", schedule, "(batch, levels, width)"),
    ):
        if len(shape) != 3:
            raise ValueError(f"`{name}` expects `{arg}` of shape {what}, i.e. rank 3. Received: {arg}.shape={shape}")
    for axis, label in ((0, "batch"), (1, "nodes")):
        known = isinstance(x[axis], int) and isinstance(children[axis], int)  # not None or symbolic
        if known and x[axis] != children[axis]:
            raise ValueError(
                f"`{name}` expects `x` and `children` to agree on the {label} axis. "
                f"Received: x.shape={x}, children.shape={children}"
            )
    if x[-1] is None:
        raise ValueError(f"`{name}` needs a known feature size (last axis of `x`). Received: x.shape={x}")
    built_features = layer.cell.U.shape[0] if layer.built and getattr(layer.cell, "U", None) is not None else None
    if built_features is not None and x[-1] != built_features:
        raise ValueError(
            f"`{name}` was built for `x` with {built_features} features (last axis) but received {x[-1]}. "
            f"Received: x.shape={x}"
        )
    if layer.combine == "concat" and children[-1] not in (None, layer.num_children):
        raise ValueError(
            f"`{name}(combine='concat', num_children={layer.num_children})` expects `children` of shape "
            f"(batch, nodes, {layer.num_children}); use `combine='sum'` for any number of children. "
            f"Received: children.shape={children}"
        )
    if dtypes is not None:
        x_dtype, children_dtype, schedule_dtype = dtypes
        if not keras.backend.is_float_dtype(x_dtype):
            raise TypeError(
                f"`{name}` expects floating-point `x` (embed token ids first, e.g. with "
                f"`keras.layers.Embedding`). Received: x.dtype={x_dtype}"
            )
        for arg, dtype in (("children", children_dtype), ("schedule", schedule_dtype)):
            if not keras.backend.is_int_dtype(dtype):
                raise TypeError(f"`{name}` expects integer `{arg}` (node indices). Received: {arg}.dtype={dtype}")


def _concrete(value):
    """`value` as NumPy when it holds numbers (eager), None when it is symbolic (traced, graph)."""
    try:
        return ops.convert_to_numpy(value)
    except Exception:  # a JAX tracer or a TF graph tensor: not knowable at trace time
        return None


def _guard_tree_structure(layer, x, children, schedule):
    """Checks the tree structure cheaply, in graph, before the level loop.

    A tree is well formed when every child index is -1 or in `[0, nodes)`, every schedule
    entry is -1 or in `[0, nodes)`, no node is scheduled twice, and every child is computed
    before its parent (a leaf, or at a lower level of the schedule; this also rules out
    self-loops and cycles). Eagerly, a malformed tree raises a `ValueError` (use
    `rnnzoo.data.trees.check_tree_arrays` for the full NumPy check with the offending indices).
    In a traced graph (`fit`, `jit`, an exported artifact) a malformed tree's out-of-range
    indices are replaced by -1 so no gather reads another tree, and its input is set to NaN,
    so all its states and outputs are NaN, never a silently wrong number (and `TerminateOnNaN`
    stops training on it).

    Returns:
        `(x, children, schedule)`, the indices clamped as above.
    """
    # Linear in the number of nodes: one scatter of every entry's id, one gather per entry and per child.
    batch, nodes = ops.shape(children)[0], ops.shape(children)[1]  # from `children`: a JAX export's symbolic shapes agree
    child_ok = (children >= -1) & (children < nodes)  # (batch, nodes, K)
    sched_ok = (schedule >= -1) & (schedule < nodes)  # (batch, levels, width)
    children = ops.where(child_ok, children, -1)
    schedule = ops.where(sched_ok, schedule, -1)
    # Every schedule entry writes its own id (its flat index + 1) to its node's slot, padding to
    # one extra slot; an entry that does not read its id back shares its node with another entry
    # (a node scheduled twice). The level of a node follows from the id that stays.
    num_levels, width = ops.shape(schedule)[1], ops.shape(schedule)[2]
    tree_start = ops.reshape(ops.arange(batch, dtype="int32") * nodes, (-1, 1, 1))
    scheduled = schedule >= 0
    slot = ops.reshape(ops.where(scheduled, schedule + tree_start, batch * nodes), (-1,))
    ids = ops.arange(1, batch * num_levels * width + 1, dtype="int32")
    written = ops.scatter_update(ops.zeros((batch * nodes + 1,), "int32"), ops.expand_dims(slot, 1), ids)
    once = ops.reshape((ops.take(written, slot) == ids) | ~ops.reshape(scheduled, (-1,)), (batch, num_levels * width))
    # level[b * nodes + n]: 1 + the schedule level of node n of tree b, 0 for a leaf (computed before the loop)
    level = ops.where(written > 0, ((written - 1) // ops.maximum(width, 1)) % ops.maximum(num_levels, 1) + 1, 0)
    child_level = ops.take(level, ops.where(children >= 0, children + tree_start, batch * nodes))  # (batch, nodes, K)
    parent_level = ops.expand_dims(ops.reshape(ops.slice(level, [0], [batch * nodes]), (batch, nodes)), -1)
    order_ok = (children < 0) | (child_level < parent_level)
    tree_ok = ops.all(child_ok & order_ok, axis=(1, 2)) & ops.all(sched_ok, axis=(1, 2)) & ops.all(once, axis=1)
    known = _concrete(tree_ok)
    if known is not None and not known.all():
        b = int(np.flatnonzero(~known)[0])
        raise ValueError(
            f"`{type(layer).__name__}` received a malformed tree (tree {b} of the batch): child indices must be "
            "-1 or in [0, nodes), schedule entries -1 or in [0, nodes), and every child computed before its "
            "parent (no cycles or self-loops); `rnnzoo.data.trees.check_tree_arrays` names the node. "
            f"Received: children[{b}]={ops.convert_to_numpy(children)[b].tolist()}, "
            f"schedule[{b}]={ops.convert_to_numpy(schedule)[b].tolist()}"
        )
    poison = ops.where(tree_ok, 0.0, float("nan"))
    x = x + ops.cast(ops.reshape(poison, (-1, 1, 1)), x.dtype)
    return x, children, schedule


@keras.saving.register_keras_serializable(package="rnnzoo")
class TreeLayer(keras.layers.Layer):
    """A recursive network (fig. 10.14) over a batch of trees, one level at a time.

    Every node `n` gets a state

        h(n) = tanh(b + W c(n) + U x(n))

    where `c(n) = [h(left); h(right)]` for binary trees (`combine="concat"`,
    `num_children=2`; K children in general), or the sum of the children's states for any
    number of children (`combine="sum"`, the child-sum form). A leaf has no children, so
    `h(leaf) = tanh(b + U x(leaf))`; internal nodes of a treebank usually have `x(n) = 0`.

    All leaves of the batch are computed in one product. Then, for each height `1..L`, the
    nodes of that height in *all* trees of the batch are gathered with their children's
    states and computed in one matrix product. In training (and on JAX) the new states are
    scattered back into a fixed-shape buffer inside one loop over heights (scatter indices
    kept unique: padded schedule entries go to per-tree scratch slots). For inference on
    TensorFlow (`predict`, SavedModel, TFLite; not under XLA) the heights run in blocks, so no
    loop carries the buffer of all states from level to level (a chain of n nodes costs
    O(n^1.5), where a loop carrying the buffer costs O(n^2); see `_levels_in_blocks`), the same
    states. Both export to TFLite builtins with the number of trees, nodes, levels and level
    width all dynamic.

    Args:
        units: int, size of the node state `h(n)`.
        num_children: int, K, the arity `combine="concat"` expects (2 for binary trees).
        combine: `"concat"` or `"sum"`.
        activation: `"tanh"` (the book's), `"relu"` or `"sigmoid"`.
        use_bias: bool, whether to use `b`.
        kernel_initializer, recurrent_initializer, bias_initializer: initializers for `U`,
            `W`, `b`.
        kernel_regularizer, recurrent_regularizer: regularizers for `U` and `W`.
        **kwargs: base `keras.layers.Layer` arguments.

    Call arguments:
        inputs: list `[x, children, schedule]`, as `rnnzoo.data.trees.encode_trees` makes them:
            `x` `(batch, nodes, features)` float, the input at each node (node 0 is the root);
            `children` `(batch, nodes, K)` int, each node's children's indices in its own tree,
            -1 where none; `schedule` `(batch, levels, width)` int, `schedule[b, l]` the nodes
            of tree `b` with height `l + 1`, padded with -1. A malformed tree (an index out of
            range, a node scheduled twice, a child not computed before its parent) raises a
            `ValueError` eagerly and gives NaN states in a traced graph (see
            `_guard_tree_structure`).
        training: bool, Keras's; selects the loop on TensorFlow (above), not the result.

    Returns:
        `[root_states, node_states]`: `(batch, units)` and `(batch, nodes, units)`. States at
        padding nodes are unspecified (mask them with the labels).

    Example:

    >>> layer = TreeLayer(4)
    >>> x = np.ones((1, 3, 5), "float32")          # a root with two leaves
    >>> children = np.array([[[1, 2], [-1, -1], [-1, -1]]], "int32")
    >>> schedule = np.array([[[0]]], "int32")       # height 1: node 0
    >>> root, nodes = layer([x, children, schedule])
    >>> tuple(root.shape), tuple(nodes.shape)
    ((1, 4), (1, 3, 4))

    Reference:
        Goodfellow, Bengio, Courville, *Deep Learning*, section 10.6, fig. 10.14;
        Socher et al., "Parsing natural scenes and natural language with recursive neural
        networks", 2011; Tai et al., "Improved semantic representations from tree-structured
        LSTM networks", 2015 (child-sum).
    """

    def __init__(
        self,
        units,
        num_children=2,
        combine="concat",
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = TreeCell(
            units,
            num_children=num_children,
            combine=combine,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            recurrent_regularizer=recurrent_regularizer,
            dtype=self.dtype_policy,
            name="cell",
        )
        self.units = units
        self.num_children = num_children
        self.combine = combine
        self.activation = activation
        self.use_bias = use_bias

    def build(self, inputs_shape):
        _check_tree_inputs(self, inputs_shape)
        self.cell.build(inputs_shape[0])

    def call(self, inputs, training=None):
        _check_tree_inputs(self, [tuple(t.shape) for t in inputs], [t.dtype for t in inputs])
        x, children, schedule = inputs
        children = ops.cast(children, "int32")
        schedule = ops.cast(schedule, "int32")
        x = ops.cast(x, self.compute_dtype)
        x, children, schedule = _guard_tree_structure(self, x, children, schedule)
        units = self.units
        batch, nodes = ops.shape(x)[0], ops.shape(x)[1]
        num_levels, width = ops.shape(schedule)[1], ops.shape(schedule)[2]
        k = self.num_children if self.combine == "concat" else ops.shape(children)[2]
        # Each tree owns `nodes + width` slots: its nodes, then `width` scratch slots where
        # padded schedule entries (-1) are sent, so every level's scatter indices are unique.
        slots = nodes + width

        projected = self.cell.project_inputs(x)  # (batch, nodes, units): b + U x
        states = self.cell.activate(projected)  # every node computed as a leaf
        scratch = ops.zeros((batch, width, units), dtype=self.compute_dtype)
        projected = ops.reshape(ops.concatenate([projected, scratch], axis=1), (-1, units))
        states = ops.reshape(ops.concatenate([states, scratch], axis=1), (-1, units))  # (batch*slots, units)
        no_children = -ops.ones((batch, width, k), dtype="int32")
        children = ops.reshape(ops.concatenate([children, no_children], axis=1), (-1, k))  # (batch*slots, K)
        offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * slots, 1)  # (batch, 1)
        scratch_slots = ops.expand_dims(ops.arange(width, dtype="int32") + nodes, 0)  # (1, width)
        schedule = ops.transpose(schedule, (1, 0, 2))  # (levels, batch, width)
        W = self.cell.recurrent_kernel()  # read once: a variable read inside the loop would be
        # accumulated per iteration by the TF while-loop gradient, which XLA cannot compile

        def level(height, states):
            level_nodes = ops.reshape(ops.slice(schedule, [height, 0, 0], [1, batch, width]), (batch, width))
            level_nodes = ops.where(level_nodes >= 0, level_nodes, scratch_slots)
            rows = ops.reshape(level_nodes + offsets, (-1,))  # (batch*width,) unique flat slots
            child = ops.take(children, rows, axis=0)  # (batch*width, K)
            present = child >= 0
            tree_start = ops.expand_dims((rows // slots) * slots, 1)
            child_rows = ops.where(present, child + tree_start, ops.zeros_like(child))
            child_states = ops.take(states, ops.reshape(child_rows, (-1,)), axis=0)
            child_states = ops.where(ops.expand_dims(present, -1), ops.reshape(child_states, (-1, k, units)),
                                     0.0)  # (batch*width, K, units); a select: another tree's NaN x 0 is NaN
            new = self.cell.from_children(ops.take(projected, rows, axis=0), child_states, W)
            return ops.scatter_update(states, ops.expand_dims(rows, 1), new)

        if keras.backend.backend() == "tensorflow" and not training and not _in_xla_context():
            # Inference and export: the loop in blocks of levels (see `_levels_in_blocks`). Its
            # sizes come from the data, which XLA cannot compile; XLA updates the scatter loop's
            # buffer in place anyway (`jit_compile=True`: `evaluate`, `predict`, validation).
            entries = ops.where(schedule >= 0, schedule, ops.expand_dims(scratch_slots, 0)) + offsets
            entries = ops.reshape(entries, (num_levels, -1))  # (levels, batch*width) flat slots
            valid = ops.reshape(schedule >= 0, (num_levels, -1))
            states = _levels_in_blocks(self.cell, W, projected, states, children, entries, valid, slots)
        elif keras.backend.backend() == "tensorflow":
            # A bounded while loop: XLA (jit_compile=True) needs `maximum_iterations` to
            # differentiate it; it exports as a builtin TFLite WHILE.
            _, states = ops.while_loop(
                lambda height, states: height < num_levels,
                lambda height, states: (height + 1, level(height, states)),
                (ops.convert_to_tensor(0, "int32"), states),
                maximum_iterations=num_levels,
            )
        else:
            # JAX: static bounds make `fori_loop` a differentiable `lax.scan`. Its body is traced
            # (and, exported, shape-checked) even for zero levels, when a slice of the schedule
            # would be out of bounds: give the schedule one more, never-used level.
            schedule = ops.concatenate([schedule, -ops.ones((1, batch, width), dtype="int32")], axis=0)
            states = ops.fori_loop(0, num_levels, level, states)
        states = ops.reshape(states, (batch, slots, units))
        node_states = ops.slice(states, [0, 0, 0], [batch, nodes, units])  # (batch, nodes, units)
        root_states = ops.reshape(ops.slice(states, [0, 0, 0], [batch, 1, units]), (batch, units))
        return [root_states, node_states]

    def compute_output_shape(self, inputs_shape):
        _check_tree_inputs(self, inputs_shape)
        batch, nodes = inputs_shape[0][0], inputs_shape[0][1]
        return [(batch, self.units), (batch, nodes, self.units)]

    def get_config(self):
        cell_config = self.cell.get_config()
        config = {
            key: cell_config[key]
            for key in (
                "units", "num_children", "combine", "activation", "use_bias", "kernel_initializer",
                "recurrent_initializer", "bias_initializer", "kernel_regularizer", "recurrent_regularizer",
            )
        }
        return {**super().get_config(), **config}


def _in_xla_context():
    """Whether TensorFlow is tracing for XLA (`jit_compile=True`), which needs static shapes."""
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util  # no public API says it
    except ImportError:  # pragma: no cover
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def _levels_in_blocks(cell, kernel, projected, states, children, entries, valid, slots):
    """Every slot's state after the level loop, for inference on TensorFlow (`predict`, SavedModel, TFLite).

    A loop whose carry holds every node's state copies it at every level: TF graph mode's
    scatter writes a new buffer, and LiteRT's WHILE copies each body output back to its input
    (it skips only a loop variable passed through unchanged), so a chain of n nodes costs
    O(n^2). Here the levels run in blocks of G = max(16, ceil(sqrt(levels))). Inside a block,
    each level's states go to `recent` (the block's states, in level order, valid entries
    compacted) and the buffer of all states is passed through unchanged; the buffer takes in
    `recent` once per block. A child is read from the buffer, or from `recent` when its level
    is in the current block. Each level computes `width` rows (the most nodes of any level).
    Cost: per level, `width` rows and `capacity` (the most states of any block); per block, all
    n states: O(levels * (width + capacity) + n * levels / G), where the scatter loop copies all
    n states at every level. A chain of n nodes: O(n^1.5) (was O(n^2)); a balanced tree:
    O(n log n), as before but without the copies. Not linear in every case: a batch that holds
    one wide tree and one deep tree pays the wide block's `capacity` at every level of the deep
    one. Measured in bench/RESULTS_tree.md. Every index the loop needs is gathered per level
    before it; no scatter inside the loops, and every shape inside them follows from the loop
    inputs'.

    Args:
        cell: the `TreeCell`; kernel: its recurrent kernel `W`.
        projected, states: `(rows, units)`, `b + U x` and the leaf state of every slot.
        children: `(rows, K)` the children of every slot, in its tree, -1 where none.
        entries: `(levels, E)` the flat slot of every schedule entry (padding: a scratch slot).
        valid: `(levels, E)` bool, whether the entry is a node (not padding).
        slots: slots per tree.

    Returns:
        `(rows, units)`: the final state of every slot.
    """
    import tensorflow as tf  # this loop runs on TensorFlow only

    # `tf.gather`, not `ops.take`: every index here is in range, and `take`'s handling of negative
    # indices adds five ops per gather (a third of the loop body's ops in TFLite).
    take = tf.gather
    rows, units = ops.shape(states)[0], ops.shape(states)[1]
    num_levels, num_entries = ops.shape(entries)[0], ops.shape(entries)[1]
    counted = ops.cast(valid, "int32")
    count = ops.sum(counted, axis=1)  # (levels,) states per level
    starts = ops.cumsum(count) - count  # the first state of each level, in level order
    total = ops.sum(count)
    rank = ops.cumsum(counted, axis=1) - 1  # (levels, E) position of a valid entry in its level
    # The buffer: the `rows` leaf states, then every computed state in level order (row
    # `rows + starts[l] + rank`), then `capacity` rows that a block's update may overwrite.
    delta = ops.where(valid, rows + ops.expand_dims(starts, 1) + rank - entries, 0)
    node_row = ops.arange(rows, dtype="int32") + ops.scatter(  # the row of each slot's final state
        ops.reshape(entries, (-1, 1)), ops.reshape(delta, (-1,)), (rows,))
    node_row = ops.clip(node_row, 0, ops.maximum(rows + total - 1, 0))  # a node scheduled twice (NaN anyway)
    # Each level's entries, valid first, `width` (the most nodes of any level) per level: the
    # loop computes no padding of the schedule beyond that, and level l's j-th state is row j.
    position = ops.where(valid, rank, ops.expand_dims(count, 1) + ops.cumsum(1 - counted, axis=1) - 1)
    position = position + ops.expand_dims(ops.arange(num_levels, dtype="int32") * num_entries, 1)
    order = ops.reshape(ops.scatter(ops.reshape(position, (-1, 1)), ops.reshape(entries, (-1,)),
                                    (num_levels * num_entries,)), (num_levels, num_entries))
    width = ops.max(ops.concatenate([count, ops.zeros((1,), "int32")]))
    entries = ops.slice(order, [0, 0], [num_levels, width])  # (levels, width) flat slots

    group = ops.maximum(ops.cast(ops.ceil(ops.sqrt(ops.cast(num_levels, "float32"))), "int32"), 16)  # levels per block
    num_blocks = ops.where(width > 0, (num_levels + group - 1) // group, 0)
    bounds = ops.concatenate([starts, ops.reshape(total, (1,))])  # (levels + 1,)
    firsts = ops.arange(num_blocks, dtype="int32") * group
    sizes = take(bounds, ops.minimum(firsts + group, num_levels)) - take(bounds, firsts)
    capacity = ops.max(ops.concatenate([sizes, ops.ones((1,), "int32")]))

    # Everything the loop reads that does not depend on the states, gathered per level now.
    # Level l's block starts at buffer row `block_start[l]`; a child at or after it is read
    # from `recent` (the block's states), one before it from the buffer.
    block_start = rows + take(starts, (ops.arange(num_levels, dtype="int32") // group) * group)  # (levels,)
    child = take(children, entries, axis=0)  # (levels, width, K)
    present = child >= 0
    tree_start = ops.expand_dims((entries // slots) * slots, -1)
    child_row = take(node_row, ops.where(present, child + tree_start, 0))  # (levels, width, K)
    in_block = child_row >= ops.reshape(block_start, (-1, 1, 1))
    zero_row = rows + total + capacity  # a row of zeros no block writes: the state of a missing child
    from_recent = ops.reshape(ops.where(in_block, ops.minimum(
        child_row - ops.reshape(block_start, (-1, 1, 1)), capacity - 1), 0), (num_levels, -1))
    from_buffer = ops.reshape(ops.where(present & ~in_block, child_row, zero_row), (num_levels, -1))
    in_block = ops.reshape(in_block & present, (num_levels, -1, 1))
    level_projected = take(projected, entries, axis=0)  # (levels, width, units)
    # writes[l, j]: the state of level l that goes to row j of `recent`, -1 for none.
    j = ops.expand_dims(ops.arange(capacity, dtype="int32"), 0) - ops.expand_dims(rows + starts - block_start, 1)
    writes = ops.where((j >= 0) & (j < ops.expand_dims(count, 1)), j, -1)  # (levels, capacity)

    dtype = states.dtype
    buffer = ops.concatenate([states, ops.zeros((total + capacity + 1, units), dtype)], axis=0)
    buffer_rows = ops.arange(rows + total + capacity + 1, dtype="int32")
    k = ops.shape(children)[1]

    def block(b, buffer, recent):
        first = b * group

        def level(height, recent):
            child_states = ops.where(take(in_block, height, axis=0),
                                     take(recent, take(from_recent, height, axis=0), axis=0),
                                     take(buffer, take(from_buffer, height, axis=0), axis=0))
            new = cell.from_children(take(level_projected, height, axis=0),
                                     ops.reshape(child_states, (-1, k, units)), kernel)  # (E, units)
            write = take(writes, height, axis=0)
            new = take(new, ops.maximum(write, 0), axis=0)
            return height + 1, ops.where(ops.expand_dims(write >= 0, 1), new, recent)

        last = ops.minimum(first + group, num_levels)
        _, recent = ops.while_loop(lambda height, recent: height < last, level, (first, recent),
                                   maximum_iterations=group)
        offset = buffer_rows - take(block_start, first)
        written = (offset >= 0) & (offset < capacity)
        buffer = ops.where(ops.expand_dims(written, 1), take(recent, ops.clip(offset, 0, capacity - 1), axis=0),
                           buffer)
        return b + 1, buffer, recent

    _, buffer, _ = ops.while_loop(
        lambda b, buffer, recent: b < num_blocks, block,
        (ops.convert_to_tensor(0, "int32"), buffer, ops.zeros((capacity, units), dtype)),
        maximum_iterations=num_blocks,
    )
    return take(buffer, node_row, axis=0)


def recursive_tree_states(cell, x, children, node=0, states=None):
    """The plain recursive definition, node by node (eager; the reference and the slow anchor).

    Args:
        cell: a built `TreeCell`.
        x: `(nodes, features)` array, one tree's node inputs.
        children: `(nodes, K)` int array, -1 where no child.
        node: int, the subtree's root.

    Returns:
        `(nodes, units)` NumPy array; rows of nodes not under `node` are zero.
    """
    x, children = np.asarray(x), np.asarray(children)
    if states is None:
        states = np.zeros((x.shape[0], cell.units), "float32")
    child_states = np.zeros((1, children.shape[1], cell.units), "float32")
    for j, child in enumerate(children[node]):
        if child >= 0:
            recursive_tree_states(cell, x, children, int(child), states)
            child_states[0, j] = states[child]
    states[node] = np.asarray(cell(x[node : node + 1], child_states))[0]
    return states
