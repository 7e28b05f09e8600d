"""The zoo's tasks as TFDS builders (offline, deterministic, versioned) and the imdb loader."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from rnnzoo.data import datasets, tasks

pytestmark = pytest.mark.tensorflow  # tf.data


def _rows(x):
    return np.array(sorted(map(tuple, np.asarray(x).reshape(len(x), -1))))


@pytest.mark.parametrize(
    "name, generate, length",
    [
        ("rnnzoo_adding_problem/length_20", lambda n, seed: tasks.adding_problem(n, 20, seed=seed), 20),
        ("rnnzoo_running_parity/length_12", lambda n, seed: tasks.running_parity(n, 12, seed=seed), 12),
        ("rnnzoo_delayed_recall/length_24", lambda n, seed: tasks.delayed_recall(n, 24, delay=4, seed=seed), 24),
        ("rnnzoo_copy_memory/length_10", lambda n, seed: tasks.copy_memory(n, 10, seed=seed), 20),
    ],
    ids=["adding", "parity", "recall", "copy"],
)
def test_tfds_load_builds_the_generated_task_offline(tmp_path, name, generate, length):
    test = tfds.load(name, split="test", data_dir=str(tmp_path), as_supervised=True)
    x = np.stack([x for x, _ in tfds.as_numpy(test)])
    assert x.shape[:2] == (datasets.SPLIT_SIZES["test"], length)
    expected_x, _ = generate(datasets.SPLIT_SIZES["test"], datasets.GeneratedTaskBuilder.SEED + 2)
    np.testing.assert_array_equal(_rows(x), _rows(expected_x))  # same examples (TFDS shuffles the order)
    builder = tfds.builder(name, data_dir=str(tmp_path))
    assert str(builder.info.version) == "1.0.0"
    assert builder.info.splits["train"].num_examples == datasets.SPLIT_SIZES["train"]


def test_builds_are_deterministic(tmp_path):
    first = tfds.load("rnnzoo_running_parity/length_12", split="validation", data_dir=str(tmp_path / "a"))
    second = tfds.load("rnnzoo_running_parity/length_12", split="validation", data_dir=str(tmp_path / "b"))
    a = [e["x"] for e in tfds.as_numpy(first)]
    b = [e["x"] for e in tfds.as_numpy(second)]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


def test_load_imdb_with_mock_data():
    with tfds.testing.mock_data(num_examples=12):
        dataset, vocabulary = datasets.load_imdb("/no/such/dir", split="train", max_length=16, batch_size=4)
        x, y = next(iter(dataset))
    assert tuple(x.shape) == (4, 16) and tuple(y.shape) == (4,)
    assert vocabulary[:2] == ["", "[UNK]"]
    assert int(np.max(x)) < len(vocabulary)


def test_text_and_tree_builders(tmp_path):
    from rnnzoo.data import seq2seq_tasks, trees

    dates = tfds.load("rnnzoo_dates", split="test", data_dir=str(tmp_path), as_supervised=True)
    pairs = sorted((s.decode(), t.decode()) for s, t in tfds.as_numpy(dates))
    sources, targets = seq2seq_tasks.dates(datasets.SPLIT_SIZES["test"], seed=datasets.GeneratedTaskBuilder.SEED + 2)
    assert pairs == sorted(zip(sources, targets))
    reversal = tfds.load("rnnzoo_string_reversal", split="validation", data_dir=str(tmp_path), as_supervised=True)
    for source, target in tfds.as_numpy(reversal.take(20)):
        assert source.decode()[::-1] == target.decode()
    sentiment = tfds.load("rnnzoo_negation_sentiment", split="train", data_dir=str(tmp_path), as_supervised=True)
    for text, label in tfds.as_numpy(sentiment.take(20)):
        assert trees.parse_tree(text.decode()).label == label


def test_sst_builder_reads_the_manual_directory(tmp_path):
    """`rnnzoo_sst` from train/dev/test files the user has (here written by the test), never downloading."""
    from rnnzoo.data import trees

    sst = tmp_path / "sst"
    sst.mkdir()
    builder = tfds.builder("rnnzoo_sst", data_dir=str(tmp_path / "data"))
    config = tfds.download.DownloadConfig(manual_dir=str(sst))
    (sst / "train.txt").write_text("(3 (2 a) (4 good))\n")
    with pytest.raises(FileNotFoundError, match="needs dev.txt, test.txt in the manual directory"):
        builder.download_and_prepare(download_config=config)
    nbsp_tree = "(1 (2 (2 8\u00a01\\/2) (2 hours)) (0 dull))"
    (sst / "train.txt").write_text(f"(3 (2 a) (4 good))\n{nbsp_tree}\n\n(4 (4 fun) (2 film))\n", encoding="utf-8")
    (sst / "dev.txt").write_text("(0 (0 bad) (2 film))\n", encoding="utf-8")
    (sst / "test.txt").write_text("(2 film)\n(1 (1 dull) (2 plot))\n", encoding="utf-8")
    builder.download_and_prepare(download_config=config)
    assert {s: builder.info.splits[s].num_examples for s in ("train", "validation", "test")} == {
        "train": 3, "validation": 1, "test": 2}
    examples = sorted((tree.decode(), int(label)) for tree, label in
                      tfds.as_numpy(builder.as_dataset(split="train", as_supervised=True)))
    assert examples == sorted([("(3 (2 a) (4 good))", 3), (nbsp_tree, 1), ("(4 (4 fun) (2 film))", 4)])
    assert trees.parse_tree(nbsp_tree).leaves() == ["8\u00a01\\/2", "hours", "dull"]  # the no-break space kept
    assert builder.info.features["label"].names[4] == "very positive"
