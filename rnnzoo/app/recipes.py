"""The recipes behind `rnnzoo.app.registry`: each task's data and each model's builder.

`load_data(config)` gives a `Data` (train, validation and test splits, and what the model
needs to know about them: classes, vocabularies, lengths); `build_model(config, data)` the
compiled model. Three families share that interface, so that `rnnzoo train`, `evaluate`
and `export` treat them alike:

- sequences (`rnnzoo.data.tasks`): arrays `x (batch, time, features)`;
- trees (`rnnzoo.data.trees`): the generated `negation_sentiment` task or a bracketed-tree file;
- string pairs (`rnnzoo.data.seq2seq_tasks`): a generated task or a tab-separated pairs file;
- text (`rnnzoo.data.text`): the generated `generated_text` or a plain-text file, as `tf.data`
  windows for truncated BPTT.

A tree or pairs file is split by a fixed permutation of its lines (`seed`): 80% train, 10%
validation, 10% test. A treebank directory (`trees`, SST's layout) gives the three splits as they
are: `train.txt`, `dev.txt` (validation) and `test.txt`. A text file is cut by position
(`rnnzoo.data.text.split_text`): the first 90% train, the next 5% validation, the last 5% test; a
text directory holds the three (`rnnzoo.data.text.read_manual_dir`: train.txt, valid.txt, test.txt).
"""

import dataclasses
import importlib
import os

import keras
import numpy as np

from rnnzoo import losses
from rnnzoo.app.registry import RECIPES, TASKS, TREEBANK_FILES


SUBWORD_MAX_TOKENS = 4000  # `split="subword"` without `max_tokens`: ids per side, special tokens included


@dataclasses.dataclass
class Data:
    """The three splits of a run's data, each `(inputs, targets)`, and what describes them.

    `info` is JSON-able (saved in RUN_DIR/data.json): for trees `num_classes` and the
    vocabulary's `tokens`; for string pairs the vocabularies, split rule and maximum lengths. For
    string pairs `train` is the training `(sources, targets)` strings (the model's `dataset` pads
    them per batch), and `test_texts` holds the test split's strings.
    """

    family: str  # "sequence", "tree", "translation" or "language_model"
    train: tuple
    validation: tuple
    test: tuple
    info: dict
    test_texts: tuple = None


def family(task_kind):
    return {"tree_labels": "tree", "translation": "translation", "language_model": "language_model"}.get(
        task_kind, "sequence")


def _generator(spec):
    module, _, name = spec.generator.partition(":")
    function = getattr(importlib.import_module(module), name)
    options = dict(spec.options)
    return lambda *args, **kwargs: function(*args, **{**options, **kwargs})


def _split_seed(seed, index):
    # Each split has its own stream: the test data is never generated from the training seed.
    return 1000 * seed + index


def generate(task, num_examples, length, seed=0):
    """`num_examples` examples of a generated sequence task at `length`, with the task's options."""
    return _generator(TASKS[task])(num_examples, length, seed=seed)


def sequence_split(task, split, seed=0, length=None, num_examples=None):
    """`(x, y)` of a generated sequence task's split (`"train"`, `"validation"` or `"test"`)."""
    spec = TASKS[task]
    index = ("train", "validation", "test").index(split)
    return _generator(spec)(num_examples or spec.sizes[index], length or spec.length, seed=_split_seed(seed, index))


def _file_splits(items, seed, what, path):
    if len(items) < 3:
        raise ValueError(f"{path!r} holds {len(items)} {what}; at least 3 are needed (train, validation and test "
                         f"take 80%, 10%, 10%). Received: {len(items)} {what}")
    order = np.random.default_rng(seed).permutation(len(items))
    num_test = num_validation = max(1, len(items) // 10)
    num_train = len(items) - num_test - num_validation
    parts = np.split(order, [num_train, num_train + num_validation])
    return [[items[i] for i in part] for part in parts]


# -- trees ---------------------------------------------------------------------------------------


def treebank_splits(directory):
    """The train, validation and test trees of a treebank directory (`train.txt`, `dev.txt`, `test.txt`)."""
    from rnnzoo.data import trees as T

    splits = []
    for name in TREEBANK_FILES:
        path = os.path.join(directory, name)
        split = T.read_trees(path)
        if not split:
            raise ValueError(f"{path} holds no trees; each of {', '.join(TREEBANK_FILES)} needs at least one. "
                             f"Received: an empty {name}")
        splits.append(split)
    return splits


def _tree_data(config):
    from rnnzoo.data import trees as T

    if config.trees:
        splits = treebank_splits(config.trees)
        # One fixed order of the training trees (a treebank file may be sorted), the same on a resume.
        order = np.random.default_rng(config.seed).permutation(len(splits[0]))
        splits[0] = [splits[0][i] for i in order]
        num_classes = 1 + max(node.label for tree in sum(splits, []) for node in tree.nodes())
    elif config.data:
        splits = _file_splits(T.read_trees(config.data), config.seed, "trees", config.data)
        num_classes = 1 + max(node.label for tree in sum(splits, []) for node in tree.nodes())
    else:
        spec = TASKS[config.task]
        generate = _generator(spec)
        splits = [generate(n, seed=_split_seed(config.seed, i)) for i, n in enumerate(spec.sizes)]
        num_classes = spec.num_classes
    vocabulary = T.build_vocabulary(splits[0])
    encoded = [T.split_inputs_targets(T.encode_trees(s, vocabulary)) for s in splits]
    return Data("tree", *encoded, info={"num_classes": int(num_classes), "tokens": vocabulary.tokens})


def tree_batches(trees_info, trees):
    """Encodes a list of `Tree`s with a run's vocabulary: the model's input dict."""
    from rnnzoo.data import trees as T

    vocabulary = T.Vocabulary(trees_info["tokens"][2:], unknown_token=trees_info["tokens"][1])
    return T.split_inputs_targets(T.encode_trees(trees, vocabulary))[0]


# -- string pairs ----------------------------------------------------------------------------------


def read_pairs(path):
    """`(sources, targets)` of a tab-separated parallel text file (Anki/Tatoeba: the first two
    columns, NFC-normalized, blank lines skipped; see `rnnzoo.data.parallel_text`)."""
    from rnnzoo.data.parallel_text import read_parallel_text

    return read_parallel_text(path)


def _translation_data(config):
    from rnnzoo.data import seq2seq_tasks
    from rnnzoo.models.seq2seq.seq2seq_tokenizer import Tokenizer, build_vocabulary

    split = getattr(config, "split", None) or "character"
    max_tokens = getattr(config, "max_tokens", None)
    if split == "subword" and max_tokens is None:
        max_tokens = SUBWORD_MAX_TOKENS
    if config.data:
        pairs = list(zip(*read_pairs(config.data)))
        splits = [tuple(map(list, zip(*part))) for part in _file_splits(pairs, config.seed, "pairs", config.data)]
    else:
        spec = TASKS[config.task]
        generate = _generator(spec)
        train = generate(spec.sizes[0], seed=_split_seed(config.seed, 0))
        seen = set(train[0])
        validation = seq2seq_tasks.held_out(generate, spec.sizes[1], seen, seed=_split_seed(config.seed, 1))
        test = seq2seq_tasks.held_out(generate, spec.sizes[2], seen | set(validation[0]), seed=_split_seed(config.seed, 2))
        splits = [train, validation, test]
    if config.data or split != "character" or max_tokens is not None:
        # From the training split only (the others may hold unseen tokens: <unk>).
        source_vocabulary = build_vocabulary(splits[0][0], split, max_tokens=max_tokens)
        target_vocabulary = build_vocabulary(splits[0][1], split, max_tokens=max_tokens)
    else:  # a generated task's alphabets
        source_vocabulary, target_vocabulary = map(list, seq2seq_tasks.ALPHABETS[config.task])
    if not source_vocabulary or not target_vocabulary:
        raise ValueError(f"The training pairs of {config.data!r} have empty sources or targets only. "
                         f"Received: {len(splits[0][0])} training pairs")
    source_tokenizer, target_tokenizer = Tokenizer(source_vocabulary, split), Tokenizer(target_vocabulary, split)
    # Length limits from the data: the longest source and target of every split in the model's
    # tokens, so nothing is truncated. Training batches are padded per batch (`Seq2Seq.dataset`, by
    # length buckets); the validation and test arrays to the corpus's longest pair.
    info = {
        "source_vocabulary": source_vocabulary,
        "target_vocabulary": target_vocabulary,
        "split": split,
        "max_source_length": max(1, max(len(s) for part in splits for s in source_tokenizer.split_texts(part[0]))),
        "max_target_length": max(1, max(len(t) for part in splits for t in target_tokenizer.split_texts(part[1]))),
    }

    def encode(sources, targets):  # the model's tokenizers, padded to the corpus's longest pair
        source, _ = source_tokenizer.encode(list(sources), info["max_source_length"], pad_to=info["max_source_length"] + 1)
        target_in, target_out, _ = target_tokenizer.teacher_forcing(list(targets), pad_to=info["max_target_length"] + 1)
        return {"source": source, "target_in": target_in}, target_out

    encoded = [encode(*part) for part in splits[1:]]
    return Data("translation", tuple(splits[0]), *encoded, info=info, test_texts=tuple(splits[2]))


# -- text ------------------------------------------------------------------------------------------


def _language_model_data(config):
    """`tf.data` windows of the three parts of the text, for a stateful `LanguageModel`.

    Each split is one dataset of `(ids, next_ids)` batches (`rnnzoo.data.text.language_model_dataset`,
    `batch_size` tracks, windows of `sequence_length`); `info` holds the vocabulary (built from the
    training part) and the number of predicted tokens of each split.
    """
    from rnnzoo.data import text as T
    from rnnzoo.models.language_model import text_vectorization

    if config.data and os.path.isdir(config.data):  # train.txt, valid.txt, test.txt
        splits = list(T.read_manual_dir(config.data).values())
    elif config.data:
        splits = T.split_text(T.read_text(config.data))
    else:
        spec = TASKS[config.task]
        generate = _generator(spec)
        splits = [generate(n, seed=_split_seed(config.seed, i)) for i, n in enumerate(spec.sizes)]
    split = getattr(config, "split", None) or "character"
    vocabulary = T.build_vocabulary(splits[0], split)
    tokenizer = text_vectorization(vocabulary, split)  # the model's tokenizer, as the model builds it
    datasets, tokens = [], {}
    for name, text in zip(("train", "validation", "test"), splits):
        try:
            datasets.append(T.language_model_dataset(text, tokenizer, config.batch_size, config.sequence_length))
        except ValueError as error:
            raise ValueError(f"The {name} part of {config.source!r} ({len(text)} characters): {error}") from None
        tokens[name] = int(sum(int(x.shape[0]) * int(x.shape[1]) for x, _ in datasets[-1]))
    info = {"vocabulary": vocabulary, "split": split, "batch_size": config.batch_size,
            "sequence_length": config.sequence_length, "tokens": tokens}
    return Data("language_model", (datasets[0],), (datasets[1],), (datasets[2],), info=info)


# -- sequences ------------------------------------------------------------------------------------


def _sequence_data(config):
    spec = TASKS[config.task]
    x_train, y_train = sequence_split(config.task, "train", config.seed)
    # One fixed order, so that a resumed run sees exactly the batches an uninterrupted one sees.
    order = np.random.default_rng(config.seed).permutation(len(x_train))
    return Data("sequence", (x_train[order], y_train[order]), sequence_split(config.task, "validation", config.seed),
                sequence_split(config.task, "test", config.seed),
                info={"num_classes": spec.num_classes, "features": spec.features, "length": spec.length})


def load_data(config):
    """The `Data` of a `rnnzoo.app.runs.TrainConfig`."""
    kind = family(TASKS[config.task].kind if config.task else RECIPES[config.model].task_kinds[0])
    return {"sequence": _sequence_data, "tree": _tree_data, "translation": _translation_data,
            "language_model": _language_model_data}[kind](config)


# -- models ----------------------------------------------------------------------------------------


def vanilla_tagger(info, units, recurrent_initializer):
    from rnnzoo.models.vanilla_tagger import vanilla_tagger as build

    return build(info["num_classes"], info["features"], units, recurrent_initializer=recurrent_initializer)


def vanilla_regressor(info, units, recurrent_initializer):
    """`VanillaRNN` read at the last step, `output_units` real outputs (sequence to one)."""
    from rnnzoo.layers.vanilla_rnn import VanillaRNN

    inputs = keras.Input((None, info["features"]), name="x")
    outputs = VanillaRNN(units, output_units=info["num_classes"], recurrent_initializer=recurrent_initializer,
                         name="vanilla_rnn")(inputs)
    return keras.Model(inputs, outputs, name="vanilla_regressor")


def bidirectional_tagger(info, units, recurrent_initializer):
    """`Bidirectional(VanillaRNN)` with a per-step softmax output."""
    from rnnzoo.layers.bidirectional import Bidirectional
    from rnnzoo.layers.vanilla_rnn import VanillaRNN

    inputs = keras.Input((None, info["features"]), name="x")
    h = Bidirectional(VanillaRNN(units, return_sequences=True, recurrent_initializer=recurrent_initializer,
                                 name="vanilla_rnn"))(inputs)
    return keras.Model(inputs, keras.layers.Dense(info["num_classes"], name="logits")(h), name="bidirectional_tagger")


def deep_transition_tagger(info, units, recurrent_initializer):
    """`DeepTransitionCell` (depth 2, skip connection) with a per-step softmax output."""
    from rnnzoo.cells.deep_transition_cell import DeepTransitionCell
    from rnnzoo.layers.recurrent import Recurrent

    inputs = keras.Input((None, info["features"]), name="x")
    cell = DeepTransitionCell(units, transition_depth=2, skip_connection=True, recurrent_initializer=recurrent_initializer)
    h = Recurrent(cell, return_sequences=True, name="deep_transition")(inputs)
    return keras.Model(inputs, keras.layers.Dense(info["num_classes"], name="logits")(h), name="deep_transition_tagger")


def sequence_classifier(info, units, recurrent_initializer):
    from rnnzoo.models.sequence_classifier import sequence_classifier as build

    return build(info["num_classes"], info["features"], units, mask_value=-1.0, recurrent_initializer=recurrent_initializer)


def tree_classifier(info, units, recurrent_initializer, embedding_dim=16):
    from rnnzoo.models.tree_classifier import tree_classifier as build

    return build(len(info["tokens"]), info["num_classes"], embedding_dim=embedding_dim, units=units)


def _seq2seq(attention, name):
    def build(info, units, recurrent_initializer, embedding_dim=32):
        from rnnzoo.models.seq2seq import Seq2Seq

        # Runs saved before word vocabularies wrote `source_characters` / `target_characters`.
        source = info.get("source_vocabulary", info.get("source_characters"))
        target = info.get("target_vocabulary", info.get("target_characters"))
        return Seq2Seq(source, target, split=info.get("split", "character"), embedding_dim=embedding_dim,
                       hidden_dim=units, attention=attention, max_source_length=info["max_source_length"],
                       max_target_length=info["max_target_length"], name=name)

    build.__name__ = name
    return build


def char_lm(info, units, recurrent_initializer, embedding_dim=32):
    """`LanguageModel` over the run's vocabulary, stateful for the run's batch size (truncated BPTT)."""
    from rnnzoo.models.language_model import LanguageModel

    model = LanguageModel(info["vocabulary"], split=info["split"], embedding_dim=embedding_dim, units=units,
                          stateful=True, recurrent_initializer=recurrent_initializer, name="char_lm")
    model.build((info["batch_size"], None))
    return model


seq2seq_attention = _seq2seq(True, "seq2seq_attention")
seq2seq_fixed_context = _seq2seq(False, "seq2seq_fixed_context")

BUILDERS = {
    "vanilla_tagger": vanilla_tagger,
    "vanilla_regressor": vanilla_regressor,
    "bidirectional_tagger": bidirectional_tagger,
    "deep_transition_tagger": deep_transition_tagger,
    "sequence_classifier": sequence_classifier,
    "tree_classifier": tree_classifier,
    "seq2seq_attention": seq2seq_attention,
    "seq2seq_fixed_context": seq2seq_fixed_context,
    "char_lm": char_lm,
}


def build_model(config, info):
    """The compiled model of a `TrainConfig` on data described by `info` (`Data.info`)."""
    from rnnzoo.initializers import recurrent_initializer

    sizes = {} if config.embedding_dim is None else {"embedding_dim": config.embedding_dim}
    model = BUILDERS[config.model](info, config.units, recurrent_initializer(config.recurrent_initializer), **sizes)
    # Pascanu et al. (2013) rescale the whole gradient when its norm exceeds the threshold:
    # Keras's `global_clipnorm` (its `clipnorm` would clip each weight separately).
    optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm)
    kind = TASKS[config.task].kind if config.task else RECIPES[config.model].task_kinds[0]
    if kind == "tree_labels":
        from rnnzoo.models.tree_classifier import compile_tree_classifier

        return compile_tree_classifier(model, optimizer=optimizer)
    if kind in ("translation", "language_model"):
        model.compile(optimizer=optimizer)  # the model's own loss and metrics (LanguageModel: bits per token)
    elif kind == "regression":
        model.compile(optimizer=optimizer, loss=keras.losses.MeanSquaredError(), metrics=["mae"])
    else:
        model.compile(optimizer=optimizer, loss=losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    return model


def parity_inputs(config, data):
    """Real test inputs for the export parity check: several batch sizes (and longer sequences)."""
    if data.family == "tree":
        from rnnzoo.data import trees as T

        if config.trees:
            test = treebank_splits(config.trees)[2]
        elif config.data:
            test = _file_splits(T.read_trees(config.data), config.seed, "trees", config.data)[2]
        else:
            test = _generator(TASKS[config.task])(TASKS[config.task].sizes[2], seed=_split_seed(config.seed, 2))
        largest = sorted(test, key=lambda t: -t.num_nodes)[:2]
        return [tree_batches(data.info, part) for part in (test[:1], test[1:4], test[4:12], largest) if part]
    x = data.test[0]
    if data.family == "language_model":  # ids of the test text, for the `step` signature
        ids = next(iter(x))[0].numpy()
        return [ids[:1, :7], ids[-2:, :16], ids[:, :33]]
    if data.family == "translation":
        return [x["source"][:1], x["source"][1:4], x["source"][4:12]]
    spec = TASKS[config.task]
    x_long, _ = sequence_split(config.task, "test", config.seed, length=spec.length + 8, num_examples=2)
    return [x[:1], x[1:4], x[4:12], x_long]  # the last longer than trained on

