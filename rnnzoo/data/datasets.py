"""The zoo's tasks as tensorflow-datasets builders, generated locally, deterministic and versioned.

Importing this module registers the builders, after which the usual TFDS calls work offline:

>>> import tensorflow_datasets as tfds
>>> import rnnzoo.data.datasets  # registers rnnzoo_* builders
>>> sorted(name for name in tfds.list_builders() if name.startswith("rnnzoo_"))
['rnnzoo_adding_problem', 'rnnzoo_copy_memory', 'rnnzoo_dates', 'rnnzoo_delayed_recall', 'rnnzoo_negation_sentiment', 'rnnzoo_parallel_text', 'rnnzoo_plain_text', 'rnnzoo_running_parity', 'rnnzoo_sst', 'rnnzoo_string_reversal']

    train = tfds.load("rnnzoo_adding_problem/length_50", split="train", data_dir="~/tensorflow_datasets",
                      as_supervised=True)

Each builder generates its splits from a fixed seed with the NumPy generators of
`rnnzoo.data.tasks` (the same arrays those functions return), so two machines build identical
datasets; changing a generator means a new `VERSION`. No network is used.

Real data, read from your own files (`manual_dir`; nothing is downloaded): `rnnzoo_sst` builds
the Stanford Sentiment Treebank from its PTB files, `rnnzoo_parallel_text` reads a tab-separated
parallel text (an Anki/Tatoeba file), see `RnnzooParallelText`, and `rnnzoo_plain_text` (defined
in `rnnzoo.data.text`, registered here too) a plain text for language models. `load_imdb` loads the TFDS
`imdb_reviews` dataset for the zoo's sequence-to-one models once it is prepared in `data_dir`
(it never downloads).
"""

import os

import numpy as np
import tensorflow_datasets as tfds

from rnnzoo.data import tasks
from rnnzoo.data.text import RnnzooPlainText  # noqa: F401  (registers rnnzoo_plain_text with the others)

SPLIT_SIZES = {"train": 4000, "validation": 500, "test": 1000}


class GeneratedTaskBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the generated-task builders: subclasses set `generate`, the features and configs."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    SEED = 1234

    def generate(self, num_examples, seed):  # -> (x, y) NumPy arrays
        raise NotImplementedError

    def features(self):  # -> dict of tfds features for "x" and "y"
        raise NotImplementedError

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(self.features()),
            supervised_keys=("x", "y"),
            homepage="https://github.com/rnnzoo/rnnzoo",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the data is generated
        return {split: self._generate_examples(split, size) for split, size in SPLIT_SIZES.items()}

    def _generate_examples(self, split, size):
        seed = self.SEED + list(SPLIT_SIZES).index(split)
        x, y = self.generate(size, seed)
        for i in range(size):
            yield i, {"x": x[i], "y": y[i]}


def _length_configs(lengths):
    return [tfds.core.BuilderConfig(name=f"length_{n}", description=f"sequences of length {n}") for n in lengths]


def _length(builder):
    return int(builder.builder_config.name.split("_")[-1])


class RnnzooAddingProblem(GeneratedTaskBuilder):
    """The adding problem (Hochreiter & Schmidhuber 1997): sum the two marked values."""

    BUILDER_CONFIGS = _length_configs([20, 50, 100])

    def generate(self, num_examples, seed):
        return tasks.adding_problem(num_examples, _length(self), seed=seed)

    def features(self):
        return {"x": tfds.features.Tensor(shape=(_length(self), 2), dtype=np.float32),
                "y": tfds.features.Tensor(shape=(1,), dtype=np.float32)}


class RnnzooRunningParity(GeneratedTaskBuilder):
    """Running parity (XOR) of a bit stream, a label per step."""

    BUILDER_CONFIGS = _length_configs([12, 50])

    def generate(self, num_examples, seed):
        return tasks.running_parity(num_examples, _length(self), seed=seed)

    def features(self):
        return {"x": tfds.features.Tensor(shape=(_length(self), 1), dtype=np.float32),
                "y": tfds.features.Tensor(shape=(_length(self),), dtype=np.int32)}


class RnnzooDelayedRecall(GeneratedTaskBuilder):
    """The bit seen 4 steps earlier, a label per step."""

    BUILDER_CONFIGS = _length_configs([24])

    def generate(self, num_examples, seed):
        return tasks.delayed_recall(num_examples, _length(self), delay=4, seed=seed)

    def features(self):
        return {"x": tfds.features.Tensor(shape=(_length(self), 1), dtype=np.float32),
                "y": tfds.features.Tensor(shape=(_length(self),), dtype=np.int32)}


class RnnzooCopyMemory(GeneratedTaskBuilder):
    """The copy task: recall 5 symbols after a gap of `length` blanks."""

    BUILDER_CONFIGS = _length_configs([10, 50, 100])

    def generate(self, num_examples, seed):
        return tasks.copy_memory(num_examples, _length(self), seed=seed)

    def features(self):
        steps = _length(self) + 10
        return {"x": tfds.features.Tensor(shape=(steps, 10), dtype=np.float32),
                "y": tfds.features.Tensor(shape=(steps,), dtype=np.int32)}


class _TextPairBuilder(GeneratedTaskBuilder, skip_registration=True):
    """String-to-string tasks of section 10.4: features `source` and `target` (text)."""

    supervised = ("source", "target")

    def pairs(self, num_examples, seed):  # -> (sources, targets), lists of str
        raise NotImplementedError

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"source": tfds.features.Text(), "target": tfds.features.Text()}),
            supervised_keys=self.supervised,
        )

    def _generate_examples(self, split, size):
        sources, targets = self.pairs(size, self.SEED + list(SPLIT_SIZES).index(split))
        for i, (source, target) in enumerate(zip(sources, targets)):
            yield i, {"source": source, "target": target}


class RnnzooDates(_TextPairBuilder):
    """Date normalization: dates in dozens of human formats -> ISO 8601 (`2020-03-03`)."""

    def pairs(self, num_examples, seed):
        from rnnzoo.data import seq2seq_tasks

        return seq2seq_tasks.dates(num_examples, seed=seed)


class RnnzooStringReversal(_TextPairBuilder):
    """String reversal: 1-20 random lowercase letters -> the same letters reversed."""

    def pairs(self, num_examples, seed):
        from rnnzoo.data import seq2seq_tasks

        return seq2seq_tasks.reversal(num_examples, seed=seed)


class RnnzooNegationSentiment(GeneratedTaskBuilder):
    """Sentiment-like binary trees with scoped negation (section 10.6), in PTB bracket format.

    `tree` is the bracketed tree with a label on every node (read it back with
    `rnnzoo.data.trees.parse_tree`); `label` is the root's label.
    """

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"tree": tfds.features.Text(),
                                                 "label": tfds.features.ClassLabel(num_classes=3)}),
            supervised_keys=("tree", "label"),
        )

    def _generate_examples(self, split, size):
        from rnnzoo.data import trees

        for i, tree in enumerate(trees.negation_sentiment_trees(size, seed=self.SEED + list(SPLIT_SIZES).index(split))):
            yield i, {"tree": str(tree), "label": tree.label}


SST_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")


class RnnzooSst(tfds.core.GeneratorBasedBuilder):
    """The Stanford Sentiment Treebank (Socher et al. 2013) from your own copy of its PTB files.

    Nothing is downloaded: put SST's `train.txt`, `dev.txt` and `test.txt` (one bracketed tree
    per line, a label 0-4 on every node) in a directory and pass it as `manual_dir`:

        builder = tfds.builder("rnnzoo_sst", data_dir=data_dir)
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=sst_dir))
        train = builder.as_dataset(split="train", as_supervised=True)   # (tree text, root label)

    Splits `train`, `validation` (`dev.txt`) and `test`, in file order. Each example's `tree` is
    the tree as `rnnzoo.data.trees.read_trees` parsed it (words may hold any non-ASCII-space
    character, e.g. SST's no-break space in `8 1\\/2`), written back in bracketed form; read it
    with `rnnzoo.data.trees.parse_tree`. `label` is the root's label. A malformed line, or a
    label outside 0-4, stops the build with an error naming the file and line.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the Stanford Sentiment Treebank's train.txt, dev.txt and test.txt (PTB trees, e.g. from "
        "trainDevTestTrees_PTB.zip of https://nlp.stanford.edu/sentiment/) in a directory and pass it as "
        "`tfds.download.DownloadConfig(manual_dir=...)`."
    )
    FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"tree": tfds.features.Text(),
                                                 "label": tfds.features.ClassLabel(names=SST_LABELS)}),
            supervised_keys=("tree", "label"),
            homepage="https://nlp.stanford.edu/sentiment/",
        )

    def _split_generators(self, dl_manager):
        directory = os.fspath(dl_manager.manual_dir)
        missing = [name for name in self.FILES.values() if not os.path.isfile(os.path.join(directory, name))]
        if missing:
            raise FileNotFoundError(f"`rnnzoo_sst` needs {', '.join(missing)} in the manual directory {directory!r}. "
                                    + self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        return {split: self._generate_examples(os.path.join(directory, name)) for split, name in self.FILES.items()}

    def _generate_examples(self, path):
        from rnnzoo.data import trees

        for tree in trees.read_trees(path):
            labels = [node.label for node in tree.nodes()]
            if max(labels) >= len(SST_LABELS):
                raise ValueError(f"{path}, line {tree.line}: `rnnzoo_sst` takes labels 0-{len(SST_LABELS) - 1} "
                                 f"(SST's five classes). Received: label={max(labels)}")
            yield tree.line, {"tree": str(tree), "label": tree.label}


PARALLEL_TEXT_SPLITS = ("train", "validation", "test")


def parallel_text_splits(num_pairs, seed=0):
    """`num_pairs` indices permuted by `seed` and cut 80/10/10 (each split at least one pair)."""
    if num_pairs < 3:
        raise ValueError(f"A parallel text needs at least 3 pairs (train, validation, test). Received: {num_pairs} pairs")
    order = np.random.default_rng(seed).permutation(num_pairs)
    num_held_out = max(1, num_pairs // 10)
    num_train = num_pairs - 2 * num_held_out
    return dict(zip(PARALLEL_TEXT_SPLITS, np.split(order, [num_train, num_train + num_held_out])))


class RnnzooParallelText(tfds.core.GeneratorBasedBuilder):
    """Your tab-separated parallel text (`source`, `target`), read from `manual_dir`; never downloads.

    Put one `.txt` or `.tsv` file of `source<TAB>target[<TAB>...]` lines (an Anki/Tatoeba
    download such as `spa.txt`) in a folder and give that folder as `manual_dir`:

        import tensorflow_datasets as tfds
        import rnnzoo.data.datasets  # registers rnnzoo_parallel_text

        builder = tfds.builder("rnnzoo_parallel_text", data_dir="~/tensorflow_datasets")
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir="~/anki"))
        train = builder.as_dataset(split="train", as_supervised=True)   # (source, target) strings

    The file is read with `rnnzoo.data.parallel_text.read_parallel_text` (first two columns, blank
    lines skipped, bad lines an error naming `file:line`); the configs choose the Unicode
    normalization (`nfc`, the default, or `nfkc`). The pairs are split 80/10/10 into `train`,
    `validation` and `test` by a fixed permutation (seed 0), so every machine gets the same splits.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release."}
    BUILDER_CONFIGS = [
        tfds.core.BuilderConfig(name="nfc", description="Unicode NFC normalization (default)"),
        tfds.core.BuilderConfig(name="nfkc", description="Unicode NFKC normalization (compatibility forms folded)"),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put one UTF-8 .txt or .tsv file of `source<TAB>target` lines (e.g. an Anki/Tatoeba download such as "
        "spa.txt) in a folder and pass it as `download_config=tfds.download.DownloadConfig(manual_dir=FOLDER)`."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({"source": tfds.features.Text(), "target": tfds.features.Text()}),
            supervised_keys=("source", "target"),
        )

    def _split_generators(self, dl_manager):
        folder = os.fspath(dl_manager.manual_dir)
        files = sorted(name for name in os.listdir(folder) if name.endswith((".txt", ".tsv")))
        if len(files) != 1:
            raise ValueError(f"`rnnzoo_parallel_text` reads exactly one .txt or .tsv file from `manual_dir`. "
                             f"Received: manual_dir={folder!r} holding {files}")
        from rnnzoo.data.parallel_text import read_parallel_text

        sources, targets = read_parallel_text(os.path.join(folder, files[0]),
                                              normalization=self.builder_config.name.upper())
        indices = parallel_text_splits(len(sources))
        return {split: self._generate_examples(sources, targets, indices[split]) for split in PARALLEL_TEXT_SPLITS}

    def _generate_examples(self, sources, targets, indices):
        for i in indices.tolist():
            yield i, {"source": sources[i], "target": targets[i]}


def load_imdb(data_dir, split="train", *, vocabulary=None, max_length=200, batch_size=32, download=False):
    """IMDB movie reviews (`imdb_reviews`) as padded token ids for a sequence-to-one classifier.

    Needs the dataset prepared in `data_dir` (e.g. once, on a machine with network access:
    `tfds.load("imdb_reviews", data_dir=data_dir)`); with `download=False` it never downloads.

    Args:
        data_dir: str, the TFDS data directory holding `imdb_reviews`.
        split: str, a TFDS split, e.g. `"train"`, `"test[:10%]"`.
        vocabulary: list of str, the token vocabulary (index 0 padding, 1 out-of-vocabulary are
            added); None adapts one (at most 20,000 tokens) on the loaded split.
        max_length: int, reviews are truncated or zero-padded to this many tokens.
        batch_size: int.
        download: bool, passed to `tfds.load`.

    Returns:
        `(dataset, vocabulary)`: a `tf.data.Dataset` of `(token_ids (batch, max_length) int64,
        label (batch,) int64)` batches, and the vocabulary used.
    """
    import tensorflow as tf

    reviews = tfds.load("imdb_reviews", split=split, data_dir=data_dir, download=download, as_supervised=True)
    vectorize = tf.keras.layers.TextVectorization(
        max_tokens=None if vocabulary is not None else 20000,
        output_sequence_length=max_length,
        vocabulary=vocabulary,
    )
    if vocabulary is None:
        vectorize.adapt(reviews.map(lambda text, label: text).batch(256))
    dataset = reviews.batch(batch_size).map(lambda text, label: (vectorize(text), label))
    return dataset.prefetch(tf.data.AUTOTUNE), vectorize.get_vocabulary()
