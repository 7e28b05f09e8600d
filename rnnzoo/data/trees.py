"""Trees as data (section 10.6): read bracketed treebanks, build a vocabulary, encode batches.

The format is the Penn-Treebank-style bracketing of the Stanford Sentiment Treebank (SST),
one tree per line, with an integer label on every node and a word at every leaf:

    (3 (2 It) (4 (4 (2 's) (4 (3 (2 a) (4 lovely)) (2 film))) (2 .)))

`parse_tree` / `parse_trees` / `read_trees` turn text into `Tree`s (malformed input raises a
`TreeFormatError` naming the file, line and column, or, with `on_error="skip"`, is skipped with
one warning), `build_vocabulary` makes a `Vocabulary` (id 0 is padding / "no word", id 1 the
unknown token), `encode_trees` turns a list of trees into padded NumPy arrays, and
`tree_dataset` is the same as a `tf.data` pipeline (from a list of trees or a treebank file)
that batches trees of different sizes.

Only ASCII whitespace separates tokens (space, tab, CR, VT, FF; a line ends at `\n` only).
Any other character, Unicode spaces and line separators included, belongs to a word: SST's leaf `(2 8 1\/2)`, whose `8 1\/2` holds a
no-break space (U+00A0), is one word.

An encoded batch of `B` trees padded to `N` nodes is a dict of int32 arrays:

* `token_ids` `(B, N)`: the word id of each leaf; 0 at internal nodes and padding.
* `children` `(B, N, K)`: the node indices (within the same tree) of each node's children,
  left to right; -1 where there is no child (leaves, padding, nodes with fewer than K).
* `labels` `(B, N)`: each node's label; -1 at padding nodes.
* `schedule` `(B, L, W)`: the level schedule. `schedule[b, l]` lists the nodes of tree `b` of
  height `l + 1` (leaves have height 0 and are not listed: they need no children), padded
  with -1. Nodes of one height depend only on lower nodes, so `TreeLayer` computes each
  level of the whole batch in one matrix product. A batch of single leaves gets one empty
  level (`L = W = 1`, all -1), since JAX-exported models need every dimension >= 1.

Nodes are numbered in pre-order, so node 0 is always the root.
"""

import collections
import dataclasses
import os
import re
import warnings

import numpy as np

DEFAULT_MAX_DEPTH = 512
MAX_LABEL = 2**31 - 1  # labels are stored as int32
PAD_TOKEN = "<pad>"
UNKNOWN_TOKEN = "<unk>"
INPUT_KEYS = ("token_ids", "children", "schedule")


class TreeFormatError(ValueError):
    """A malformed bracketed tree; the message names the file (or `<string>`), line and column."""


@dataclasses.dataclass(eq=False)
class Tree:
    """A labelled tree node: a leaf carries a `word`, an internal node `children`.

    Attributes:
        label: int >= 0, the node's label (SST: 0 very negative .. 4 very positive).
        children: tuple of `Tree`, left to right; empty for a leaf.
        word: str for a leaf, None for an internal node.
        source: str, where the tree was read from (a path or `"<string>"`), for error messages.
        line: int, the line of `source` it was read from.
    """

    label: int
    children: tuple = ()
    word: str = None
    source: str = "<string>"
    line: int = 1

    @property
    def is_leaf(self):
        return not self.children

    def nodes(self):
        """All nodes in pre-order (the root first); iterative, so deep trees are fine.

        Raises:
            ValueError: a node reached twice (a cycle, or a node shared by two parents), which
                `Tree`s built by hand can have; parsed trees never do.
        """
        out, stack, seen = [], [self], set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                raise ValueError(
                    f"{self.source}, line {self.line}: `Tree` is not a tree: a node is reached twice (a cycle "
                    f"or a node with two parents), each node must appear once. Received: node {node.label}"
                    f"{'' if node.word is None else ' ' + repr(node.word)} at pre-order position {len(out)}"
                )
            seen.add(id(node))
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def leaves(self):
        """The words at the leaves, left to right."""
        return [node.word for node in self.nodes() if node.is_leaf]

    @property
    def num_nodes(self):
        return len(self.nodes())

    def heights(self):
        """The height of every node, in pre-order (leaves 0, a parent 1 + its highest child)."""
        nodes = self.nodes()
        index = {id(node): i for i, node in enumerate(nodes)}
        heights = [0] * len(nodes)
        for i in range(len(nodes) - 1, -1, -1):  # children come after their parent in pre-order
            if nodes[i].children:
                heights[i] = 1 + max(heights[index[id(c)]] for c in nodes[i].children)
        return heights

    @property
    def height(self):
        return self.heights()[0]

    def __str__(self):
        """The bracketed form, e.g. `(3 (2 a) (4 lovely))`."""
        parts, stack = [], [self]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                parts.append(item)
                continue
            if item.is_leaf:
                parts.append(f"({item.label} {item.word})")
                continue
            parts.append(f"({item.label}")
            stack.append(")")
            for child in reversed(item.children):
                stack.append(child)
                stack.append(" ")
        return "".join(parts)


# Separators: ASCII space, tab, and (inside a line) CR, VT and FF; never a Unicode space such
# as U+00A0, which SST has inside words (`\s` in a `str` pattern would match it).
SEPARATORS = " \t\r\x0b\x0c"
_TOKEN = re.compile(r"\(|\)|[^ \t\r\x0b\x0c\n()]+")
ON_ERROR = ("raise", "skip")
_LABEL = re.compile(r"[0-9]+")


def _error(source, line, column, what, text):
    snippet = text if len(text) <= 80 else text[:77] + "..."
    return TreeFormatError(
        f"{source}, line {line}, column {column + 1}: {what}. Expected a bracketed tree with an "
        f"integer label on every node, like '(3 (2 It) (4 good))'. Received: {snippet!r}"
    )


def parse_tree(text, *, max_depth=DEFAULT_MAX_DEPTH, source="<string>", line=1):
    """Parses one bracketed tree, e.g. `"(3 (2 a) (4 lovely))"`.

    Args:
        text: str, one tree.
        max_depth: int, the deepest nesting accepted (the root has depth 1).
        source: str, the file name used in error messages.
        line: int, the line number used in error messages.

    Returns:
        A `Tree`.

    Raises:
        TreeFormatError: unbalanced brackets, a node without a label, a non-integer label, an
            empty tree or node, a leaf with several words, a node with both a word and
            children, text after the tree, or nesting deeper than `max_depth`.

    Example:

    >>> tree = parse_tree("(3 (2 a) (4 lovely))")
    >>> tree.label, tree.leaves(), tree.num_nodes, tree.height
    (3, ['a', 'lovely'], 3, 1)
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise ValueError(f"`parse_tree(max_depth=...)` must be an integer >= 1. Received: max_depth={max_depth!r}")
    tokens = [(m.group(), m.start()) for m in _TOKEN.finditer(text)]
    if not tokens:
        raise _error(source, line, 0, "empty tree", text)
    stack = []  # open nodes: [label, children, word, column]
    root = None
    i = 0
    while i < len(tokens):
        token, column = tokens[i]
        if root is not None:
            raise _error(source, line, column, "text after the end of the tree (one tree per line)", text)
        if token == "(":
            if len(stack) >= max_depth:
                raise _error(source, line, column, f"tree deeper than max_depth={max_depth}", text)
            if i + 1 >= len(tokens):
                raise _error(source, line, column, "unbalanced brackets: '(' is never closed", text)
            label, label_column = tokens[i + 1]
            if label in ("(", ")"):
                what = "empty node '()'" if label == ")" else "node without a label"
                raise _error(source, line, label_column, what, text)
            if not _LABEL.fullmatch(label):
                raise _error(source, line, label_column, f"non-integer label {label!r}", text)
            if len(label) > 10 or int(label) > MAX_LABEL:
                raise _error(source, line, label_column, f"label {label[:20]!r} larger than {MAX_LABEL} (int32)", text)
            stack.append([int(label), [], None, column])
            i += 2
            continue
        if token == ")":
            if not stack:
                raise _error(source, line, column, "unbalanced brackets: ')' without a matching '('", text)
            label, children, word, open_column = stack.pop()
            if word is None and not children:
                raise _error(source, line, open_column, "node with a label but no word and no children", text)
            node = Tree(label, tuple(children), word, source, line)
            if stack:
                if stack[-1][2] is not None:
                    raise _error(source, line, open_column, "node with both a word and children", text)
                stack[-1][1].append(node)
            else:
                root = node
            i += 1
            continue
        if not stack:
            raise _error(source, line, column, f"word {token!r} outside brackets", text)
        if stack[-1][1]:
            raise _error(source, line, column, "node with both a word and children", text)
        if stack[-1][2] is not None:
            raise _error(source, line, column, "leaf with more than one word", text)
        stack[-1][2] = token
        i += 1
    if stack:
        raise _error(source, line, stack[-1][3], "unbalanced brackets: '(' is never closed", text)
    return root


def _check_on_error(function, on_error):
    if on_error not in ON_ERROR:
        raise ValueError(f"`{function}(on_error=...)` must be 'raise' or 'skip'. Received: on_error={on_error!r}")


def _lines(text):
    """`(number, line)` for the lines of `text`, split at `\n` only (not at U+0085, U+2028, ...)."""
    return enumerate(text.split("\n"), start=1)


def _parse_lines(numbered_lines, *, max_depth, source, on_error):
    """Trees of the non-blank lines; `numbered_lines` yields `(number, text or TreeFormatError)`."""
    trees, skipped, first = [], 0, None
    for number, line in numbered_lines:
        try:
            if isinstance(line, TreeFormatError):
                raise line
            if not line.strip(SEPARATORS):
                continue
            trees.append(parse_tree(line, max_depth=max_depth, source=source, line=number))
        except TreeFormatError as error:
            if on_error == "raise":
                raise
            skipped += 1
            first = first or error
    if skipped:
        warnings.warn(
            f"{source}: skipped {skipped} malformed line{'s' if skipped > 1 else ''} "
            f"({len(trees)} trees read); the first: {first}",
            stacklevel=3,
        )
    return trees


def parse_trees(text, *, max_depth=DEFAULT_MAX_DEPTH, source="<string>", on_error="raise"):
    """Parses one tree per line of `text` (lines end at `\n`); blank lines are skipped.

    Args:
        text: str.
        max_depth: int, as in `parse_tree`.
        source: str, the file name used in error messages.
        on_error: `"raise"` (default): a malformed line raises a `TreeFormatError` naming
            `source`, the line and the column; `"skip"`: malformed lines are left out, with
            one warning that counts them and quotes the first one's error.

    Returns:
        list of `Tree`.
    """
    _check_on_error("parse_trees", on_error)
    return _parse_lines(_lines(text), max_depth=max_depth, source=source, on_error=on_error)


def read_trees(path, *, max_depth=DEFAULT_MAX_DEPTH, encoding="utf-8", on_error="raise"):
    """Reads a treebank file with one bracketed tree per line (SST's `train.txt` format).

    Blank lines are skipped. Only ASCII whitespace separates tokens, so words may hold any
    other character (SST's `8 1\\/2` holds a no-break space, U+00A0: one word).

    Args:
        path: str or path-like.
        max_depth: int, as in `parse_tree`.
        encoding: str, the file's text encoding.
        on_error: `"raise"` (default): a malformed line (or one that is not valid `encoding`)
            raises a `TreeFormatError` naming `path`, the line and the column; `"skip"`: such
            lines are left out with one warning counting them and naming the first.

    Returns:
        list of `Tree`, each with `source=str(path)` and its line number.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "train.txt")
    >>> with open(path, "w", encoding="utf-8") as f:
    ...     _ = f.write("(3 (2 a) (4 good))\\n(2 (2 8\\u00a01\\\\/2) (2 hours))\\n")
    >>> [tree.leaves() for tree in read_trees(path)]
    [['a', 'good'], ['8\\xa01\\\\/2', 'hours']]
    """
    _check_on_error("read_trees", on_error)
    with open(path, "rb") as f:
        data = f.read()

    def decoded():
        for number, raw in enumerate(data.split(b"\n"), start=1):
            try:
                yield number, raw.decode(encoding)
            except UnicodeDecodeError as error:
                yield number, TreeFormatError(
                    f"{path}, line {number}, column {error.start + 1}: not valid {encoding} text ({error.reason}); "
                    f"`read_trees(encoding=...)` reads other encodings. Received: bytes {raw[error.start:error.end]!r}"
                )

    return _parse_lines(decoded(), max_depth=max_depth, source=str(path), on_error=on_error)


class Vocabulary:
    """Words to ids: 0 is padding ("no word", used at internal nodes), 1 the unknown token.

    Args:
        tokens: iterable of str, the known words (duplicates and the special tokens ignored).
        unknown_token: str, the token unknown words map to.
        lowercase: bool, lowercase words before looking them up.

    Example:

    >>> vocabulary = Vocabulary(["good", "film"])
    >>> len(vocabulary), vocabulary.lookup(["good", "bad"])
    (4, [2, 1])
    """

    def __init__(self, tokens, unknown_token=UNKNOWN_TOKEN, lowercase=False):
        if not isinstance(unknown_token, str) or not unknown_token or unknown_token == PAD_TOKEN:
            raise ValueError(
                f"`Vocabulary(unknown_token=...)` must be a non-empty string other than {PAD_TOKEN!r}. "
                f"Received: unknown_token={unknown_token!r}"
            )
        self.unknown_token = unknown_token
        self.lowercase = bool(lowercase)
        self.tokens = [PAD_TOKEN, unknown_token]
        seen = set(self.tokens)
        for token in tokens:
            token = token.lower() if self.lowercase else token
            if token not in seen:
                seen.add(token)
                self.tokens.append(token)
        self._ids = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def token_id(self, word):
        return self._ids.get(word.lower() if self.lowercase else word, 1)

    def lookup(self, words):
        return [self.token_id(word) for word in words]

    def save(self, path):
        """Writes one token per line (ids are line numbers, from 0)."""
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(self.tokens) + "\n")

    @classmethod
    def load(cls, path, lowercase=False):
        with open(path, encoding="utf-8") as f:
            tokens = f.read().splitlines()
        if len(tokens) < 2 or tokens[0] != PAD_TOKEN:
            raise ValueError(f"{path!r} is not a saved `Vocabulary` (line 1 must be {PAD_TOKEN!r}).")
        return cls(tokens[2:], unknown_token=tokens[1], lowercase=lowercase)


def build_vocabulary(trees, *, min_count=1, max_size=None, unknown_token=UNKNOWN_TOKEN, lowercase=False):
    """The words at the leaves of `trees`, most frequent first (ties alphabetically).

    Args:
        trees: iterable of `Tree`.
        min_count: int, drop words seen fewer times (they map to the unknown token).
        max_size: int or None, keep at most this many words (plus the two special tokens).
        unknown_token: str.
        lowercase: bool.

    Example:

    >>> trees = parse_trees("(1 (1 not) (2 good))\\n(2 (2 good) (1 film))")
    >>> build_vocabulary(trees).tokens
    ['<pad>', '<unk>', 'good', 'film', 'not']
    """
    counts = collections.Counter(
        word.lower() if lowercase else word for tree in trees for word in tree.leaves()
    )
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
        words = words[:max_size]
    return Vocabulary(words, unknown_token=unknown_token, lowercase=lowercase)


def encode_tree(tree, vocabulary, *, max_children=2):
    """One tree as unpadded int32 arrays (see the module docstring for their meaning).

    Returns:
        dict with `token_ids` `(n,)`, `children` `(n, K)`, `labels` `(n,)`, `schedule`
        `(max(height, 1), W)`, where `K = max_children` (or the tree's largest arity if None) and `W`
        the size of the tree's widest internal level.
    """
    nodes = tree.nodes()
    index = {id(node): i for i, node in enumerate(nodes)}
    arity = max(len(node.children) for node in nodes)
    k = arity if max_children is None else max_children
    if arity > k:
        raise ValueError(
            f"{tree.source}, line {tree.line}: a node has {arity} children but `max_children={k}`; "
            "binarize the tree or pass `max_children=None` (and use `TreeLayer(combine='sum')`)."
        )
    for node in nodes:
        label = node.label
        if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label <= MAX_LABEL:
            raise ValueError(
                f"{tree.source}, line {tree.line}: `encode_tree` needs integer labels in [0, {MAX_LABEL}]. "
                f"Received: label={label!r}"
            )
    token_ids = np.zeros(len(nodes), np.int32)
    children = np.full((len(nodes), max(k, 1)), -1, np.int32)
    labels = np.zeros(len(nodes), np.int32)
    for i, node in enumerate(nodes):
        labels[i] = node.label
        if node.is_leaf:
            token_ids[i] = vocabulary.token_id(node.word)
        for j, child in enumerate(node.children):
            children[i, j] = index[id(child)]
    heights = np.asarray(tree.heights())
    levels = [np.flatnonzero(heights == h) for h in range(1, heights[0] + 1)]
    # A single leaf has no internal level; it still gets one empty level, because an exported
    # JAX model (shape polymorphism) requires every dynamic dimension to be >= 1.
    width = max((len(level) for level in levels), default=1)
    schedule = np.full((max(len(levels), 1), width), -1, np.int32)
    for h, level in enumerate(levels):
        schedule[h, : len(level)] = level
    check_tree_arrays(children[None], schedule[None], where=f"{tree.source}, line {tree.line}")
    return {"token_ids": token_ids, "children": children, "labels": labels, "schedule": schedule}


def check_tree_arrays(children, schedule, *, where="`check_tree_arrays`"):
    """Checks the structure of encoded trees (NumPy), as `TreeLayer` needs it.

    For every tree `b` of the batch: each child index is -1 or a node of the tree
    (`0 <= c < nodes`), no node is the child of two parents or of itself, each node is
    scheduled at most once, with indices in range, every node with children is scheduled, and
    each child is computed before its parent (a leaf, or scheduled at a lower level): this
    also rules out cycles.

    Args:
        children: int array `(batch, nodes, K)`, -1 where no child.
        schedule: int array `(batch, levels, width)`, -1 padding.
        where: str, what to name in error messages (a file and line).

    Raises:
        ValueError: naming the tree, the node and the offending indices.
    """
    children, schedule = np.asarray(children), np.asarray(schedule)
    if children.ndim != 3 or schedule.ndim != 3 or children.shape[0] != schedule.shape[0]:
        raise ValueError(
            f"{where}: expected `children` (batch, nodes, K) and `schedule` (batch, levels, width). "
            f"Received: children.shape={children.shape}, schedule.shape={schedule.shape}"
        )
    nodes = children.shape[1]
    for b in range(children.shape[0]):
        tree = f"{where}: tree {b} of the batch"
        bad = (children[b] < -1) | (children[b] >= nodes)
        if bad.any():
            n, j = np.argwhere(bad)[0]
            raise ValueError(
                f"{tree}: child indices must be -1 (no child) or in [0, {nodes}). "
                f"Received: children[{b}, {n}, {j}]={children[b, n, j]}"
            )
        level = np.zeros(nodes, np.int64)  # 0: a leaf (computed before the loop)
        for l, row in enumerate(schedule[b]):
            for node in row[row != -1]:
                if not 0 <= node < nodes:
                    raise ValueError(f"{tree}: schedule entries must be -1 (padding) or in [0, {nodes}). "
                                     f"Received: schedule[{b}, {l}]={row.tolist()}")
                if level[node]:
                    raise ValueError(f"{tree}: node {node} is scheduled twice, at levels {level[node] - 1} and {l}; "
                                     f"each node must be computed once. Received: schedule[{b}]={schedule[b].tolist()}")
                level[node] = l + 1
        parents = {}
        for n in range(nodes):
            for c in children[b, n][children[b, n] >= 0]:
                if c == n:
                    raise ValueError(f"{tree}: node {n} is its own child (a self-loop). "
                                     f"Received: children[{b}, {n}]={children[b, n].tolist()}")
                if c in parents:
                    raise ValueError(f"{tree}: node {c} is a child of both node {parents[c]} and node {n}; each "
                                     f"node must appear once. Received: children[{b}, {n}]={children[b, n].tolist()}")
                parents[c] = n
                if level[c] >= level[n]:
                    raise ValueError(
                        f"{tree}: node {n} is computed at level {level[n]} (0: as a leaf) but its child {c} at level "
                        f"{level[c]}; children must be computed before their parents (no cycles). "
                        f"Received: children[{b}, {n}]={children[b, n].tolist()}, schedule[{b}]={schedule[b].tolist()}"
                    )


def pad_encoded(encoded):
    """Pads a list of `encode_tree` dicts into one batch (the padding `tree_dataset` uses)."""
    batch = len(encoded)
    n = max(e["token_ids"].shape[0] for e in encoded)
    k = max(e["children"].shape[1] for e in encoded)
    levels = max(e["schedule"].shape[0] for e in encoded)
    width = max(e["schedule"].shape[1] for e in encoded)
    out = {
        "token_ids": np.zeros((batch, n), np.int32),
        "children": np.full((batch, n, k), -1, np.int32),
        "labels": np.full((batch, n), -1, np.int32),
        "schedule": np.full((batch, levels, width), -1, np.int32),
    }
    for b, e in enumerate(encoded):
        m = e["token_ids"].shape[0]
        out["token_ids"][b, :m] = e["token_ids"]
        out["children"][b, :m, : e["children"].shape[1]] = e["children"]
        out["labels"][b, :m] = e["labels"]
        s = e["schedule"]
        out["schedule"][b, : s.shape[0], : s.shape[1]] = s
    return out


def encode_trees(trees, vocabulary, *, max_children=2):
    """A batch of trees as padded int32 arrays: `token_ids`, `children`, `labels`, `schedule`.

    Example:

    >>> trees = parse_trees("(3 (2 a) (4 (3 very) (4 good)))\\n(2 film)")
    >>> batch = encode_trees(trees, build_vocabulary(trees))
    >>> {k: v.shape for k, v in batch.items()}
    {'token_ids': (2, 5), 'children': (2, 5, 2), 'labels': (2, 5), 'schedule': (2, 2, 1)}
    >>> batch["children"][0].tolist(), batch["schedule"][0].tolist()
    ([[1, 2], [-1, -1], [3, 4], [-1, -1], [-1, -1]], [[2], [0]])
    """
    if not trees:
        raise ValueError("`encode_trees` needs at least one tree. Received: trees=[]")
    return pad_encoded([encode_tree(t, vocabulary, max_children=max_children) for t in trees])


def split_inputs_targets(batch):
    """`(inputs, targets)` for `TreeClassifier`-style models from an encoded batch.

    `inputs` has `token_ids`, `children`, `schedule`; `targets` has `node_logits` (every
    node's label, -1 at padding) and `root_logits` (the root's label).
    """
    inputs = {key: batch[key] for key in INPUT_KEYS}
    return inputs, {"node_logits": batch["labels"], "root_logits": batch["labels"][:, 0]}


def leaf_sequences(trees, vocabulary):
    """The leaf words of each tree as a padded `(num_trees, max_leaves)` int32 array (0 = pad).

    The input of the bag-of-words and sequence baselines.
    """
    ids = [vocabulary.lookup(tree.leaves()) for tree in trees]
    out = np.zeros((len(ids), max(len(i) for i in ids)), np.int32)
    for b, row in enumerate(ids):
        out[b, : len(row)] = row
    return out


def tree_dataset(trees, vocabulary, batch_size, *, max_children=2, shuffle=False, seed=0, on_error="raise"):
    """A `tf.data.Dataset` of `(inputs, targets)` batches of trees of different sizes.

    Each batch is padded to its own largest tree (`padded_batch`), with the same padding as
    `encode_trees`. `inputs` and `targets` are as in `split_inputs_targets`, so it feeds
    `model.fit` of `rnnzoo.models.tree_classifier` directly. The dataset knows its number of
    batches (`cardinality`), so `fit` shows a progress bar from the first epoch and does not
    warn that the input "ran out of data".

    Args:
        trees: list of `Tree`, or a path (str or path-like) of a treebank file, read with
            `read_trees(path, on_error=on_error)`.
        vocabulary: `Vocabulary` (for a development or test file, the training vocabulary).
        batch_size: int.
        max_children: int (K, static) or None (the largest arity in `trees`).
        shuffle: bool, reshuffle the trees every epoch.
        seed: int, the shuffle seed.
        on_error: `"raise"` or `"skip"`, for a file's malformed lines (see `read_trees`).

    Example:

    >>> trees = parse_trees("(3 (2 a) (4 good))\\n(1 (2 a) (0 (1 not) (4 good)))\\n(2 film)")
    >>> dataset = tree_dataset(trees, build_vocabulary(trees), batch_size=2)
    >>> int(dataset.cardinality()), [tuple(x["token_ids"].shape) for x, y in dataset.as_numpy_iterator()]
    (2, [(2, 5), (1, 1)])
    """
    import tensorflow as tf

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`tree_dataset(batch_size=...)` must be a positive integer. Received: batch_size={batch_size!r}")
    if isinstance(trees, (str, os.PathLike)):
        trees = read_trees(trees, on_error=on_error)
    else:
        trees = list(trees)
    if not trees:
        raise ValueError("`tree_dataset` needs at least one tree. Received: trees=[] (an empty list or file)")
    if max_children is None:
        max_children = max(len(node.children) for tree in trees for node in tree.nodes())
    encoded = [encode_tree(t, vocabulary, max_children=max_children) for t in trees]
    k = max(e["children"].shape[1] for e in encoded)

    def generate():
        for e in encoded:
            yield e

    signature = {
        "token_ids": tf.TensorSpec((None,), tf.int32),
        "children": tf.TensorSpec((None, k), tf.int32),
        "labels": tf.TensorSpec((None,), tf.int32),
        "schedule": tf.TensorSpec((None, None), tf.int32),
    }
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    # A generator's length is unknown to tf.data; without it Keras's `fit` learns the number of
    # batches only when epoch 1 runs out, and warns "Your input ran out of data".
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(encoded)))
    if shuffle:
        dataset = dataset.shuffle(len(encoded), seed=seed, reshuffle_each_iteration=True)
    padding = {"token_ids": 0, "children": -1, "labels": -1, "schedule": -1}
    dataset = dataset.padded_batch(batch_size, padding_values=padding)
    dataset = dataset.map(split_inputs_targets)
    return dataset.prefetch(tf.data.AUTOTUNE)


# -- plain sentences -------------------------------------------------------------------------

BINARIZATIONS = ("left", "right")
_WORD = re.compile(r"[^ \t\r\x0b\x0c\n]+")


def split_sentence(text):
    """The words of a plain sentence: split at ASCII whitespace only, as the tree tokenizer.

    Space, tab, newline, CR, VT and FF separate words; any other character, Unicode spaces
    such as U+00A0 included, belongs to a word (`tf.strings.split` splits the same way, so
    `rnnzoo.models.tree_text.SentenceTree` finds the same words in the graph).

    Example:

    >>> split_sentence(" 8\u00a01/2 hours\tof  fun ")
    ['8\xa01/2', 'hours', 'of', 'fun']
    """
    if not isinstance(text, str):
        raise TypeError(f"`split_sentence` takes a str. Received: text={text!r}")
    return _WORD.findall(text)


def binarize(words, binarization="left", *, label=0):
    """A binary `Tree` over `words` by a fixed rule (no parser): the tree a plain sentence gets.

    * `"left"` (left-branching): `(((w0 w1) w2) w3)`, each internal node joins the tree of
      the words before a word with that word. In pre-order the internal nodes come first, the
      root at 0: node `j < n - 1` has children `[j + 1, 2n - 2 - j]` and height `n - 1 - j`,
      and word `i` is node `n - 1 + i`.
    * `"right"` (right-branching): `(w0 (w1 (w2 w3)))`, the shape English parse trees are
      closest to: node `2i` (`i < n - 1`) joins word `i` (node `2i + 1`) with the rest
      (node `2i + 2`), and the last word is node `2n - 2`.

    Either way a sentence of `n` words has `2n - 1` nodes and height `n - 1`; one word is a
    single leaf. Every node gets `label` (the labels of a sentence are what the model predicts).

    Args:
        words: non-empty list of str.
        binarization: `"left"` or `"right"`.
        label: int, the label of every node.

    Returns:
        A `Tree`; `encode_trees` numbers its nodes as described above.

    Example:

    >>> str(binarize(["a", "b", "c"], "left")), str(binarize(["a", "b", "c"], "right"))
    ('(0 (0 (0 a) (0 b)) (0 c))', '(0 (0 a) (0 (0 b) (0 c)))')
    """
    if binarization not in BINARIZATIONS:
        raise ValueError(f"`binarize(binarization=...)` must be one of {list(BINARIZATIONS)}. "
                         f"Received: binarization={binarization!r}")
    words = list(words)
    if not words:
        raise ValueError("`binarize` needs at least one word. Received: words=[]")
    leaves = [Tree(label, (), word) for word in words]
    if binarization == "left":
        tree = leaves[0]
        for leaf in leaves[1:]:
            tree = Tree(label, (tree, leaf))
    else:
        tree = leaves[-1]
        for leaf in reversed(leaves[:-1]):
            tree = Tree(label, (leaf, tree))
    return tree


def sentence_tree(text, binarization="left"):
    """The binary tree of a plain sentence: `binarize(split_sentence(text), binarization)`.

    A sentence with no word (empty, or whitespace only) is one leaf whose word is the empty
    string (`<unk>` for a vocabulary without it), so every sentence has a root. This is the
    NumPy-side twin of `rnnzoo.models.tree_text.SentenceTree` (tested to agree): encode its
    result with `encode_trees` to feed a numeric `tree_classifier`.

    Example:

    >>> str(sentence_tree("a lovely  film", "right")), str(sentence_tree(" "))
    ('(0 (0 a) (0 (0 lovely) (0 film)))', '(0 )')
    """
    return binarize(split_sentence(text) or [""], binarization)


# -- generated trees ---------------------------------------------------------------------------

POSITIVE_WORDS = ("good", "great", "fun", "lovely", "clever")
NEGATIVE_WORDS = ("bad", "dull", "awful", "poor", "weak")
NEUTRAL_WORDS = ("the", "film", "plot", "story", "actor", "a")
NEGATION_WORD = "not"


def negation_sentiment_trees(num_trees, *, min_leaves=3, max_leaves=9, negation_rate=0.3, seed=0):
    """Sentiment-like phrases composed by a known grammar, where structure decides the label.

    Words are positive (value +1), negative (-1) or neutral (0). A phrase is a word, a
    negation `(not P)` with value `-value(P)`, or a pair `(P Q)` with value
    `sign(value(P) + value(Q))`. Every node is labelled `value + 1`: 0 negative, 1 neutral
    (also the label of the leaf `not`), 2 positive. The scope of a negation is given only by the
    brackets: `((not good) bad)` is negative and `(not (good bad))` neutral, with the same words
    in the same order, so a bag of words or a sequence model cannot always tell.

    Returns:
        list of `Tree`, binary (`max_children=2`), deterministic for a `seed`.

    Example:

    >>> trees = negation_sentiment_trees(2, seed=0)
    >>> [t.num_nodes >= 5 for t in trees]
    [True, True]
    """
    rng = np.random.default_rng(seed)
    words = [(w, 1) for w in POSITIVE_WORDS] + [(w, -1) for w in NEGATIVE_WORDS] + [(w, 0) for w in NEUTRAL_WORDS]

    def phrase(num_leaves):
        if num_leaves == 1:
            word, value = words[rng.integers(len(words))]
            return Tree(value + 1, (), word), value
        if rng.random() < negation_rate:
            child, value = phrase(num_leaves - 1)
            return Tree(-value + 1, (Tree(1, (), NEGATION_WORD), child)), -value
        split = int(rng.integers(1, num_leaves))
        (left, a), (right, b) = phrase(split), phrase(num_leaves - split)
        value = int(np.sign(a + b))
        return Tree(value + 1, (left, right)), value

    return [phrase(int(rng.integers(min_leaves, max_leaves + 1)))[0] for _ in range(num_trees)]


def random_binary_trees(num_trees, *, min_nodes=10, max_nodes=60, num_words=100, num_classes=5, seed=0):
    """Random full binary trees with `min_nodes..max_nodes` nodes (odd counts), random words
    `w0..w{num_words-1}` and random labels: shapes for tests and benchmarks."""
    rng = np.random.default_rng(seed)

    def grow(num_leaves):
        if num_leaves == 1:
            return Tree(int(rng.integers(num_classes)), (), f"w{rng.integers(num_words)}")
        split = int(rng.integers(1, num_leaves))
        return Tree(int(rng.integers(num_classes)), (grow(split), grow(num_leaves - split)))

    low, high = max(1, (min_nodes + 1) // 2), max(1, (max_nodes + 1) // 2)
    return [grow(int(rng.integers(low, high + 1))) for _ in range(num_trees)]
