"""Tab-separated parallel text (Anki/Tatoeba files): the reader, its tf.data pipeline, its TFDS builder."""

import os
import unicodedata
import warnings

import pytest

from rnnzoo.data.parallel_text import parallel_text_dataset, read_parallel_text

# An Anki-style file: a third attribution column, accents, a blank line, and one line whose
# accent is decomposed (e + U+0301 COMBINING ACUTE ACCENT) that NFC must fold into U+00E9.
LINES = [
    "Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #4986655 (cueyayotl)",
    "Thanks.\tGracias.",
    "",
    "Coffee.\tCafe\u0301.\tCC-BY 2.0",
    "Where is the café?\t¿Dónde está el café?",
    "   ",
    "Fine.\tﬁno.",  # U+FB01 LATIN SMALL LIGATURE FI: NFKC folds it, NFC keeps it
]


def write(path, lines):
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("\r\n".join(lines) + "\n")
    return str(path)


def test_reader_takes_two_columns_normalizes_and_skips_blank_lines(tmp_path):
    path = write(tmp_path / "spa.txt", LINES)
    sources, targets = read_parallel_text(path)
    assert sources == ["Go.", "Thanks.", "Coffee.", "Where is the café?", "Fine."]
    assert targets == ["Ve.", "Gracias.", "Café.", "¿Dónde está el café?", "ﬁno."]
    assert targets[2] == unicodedata.normalize("NFC", "Cafe\u0301.") and "\u0301" not in targets[2]
    assert read_parallel_text(path, normalization="NFKC")[1][4] == "fino."
    assert read_parallel_text(path, normalization=None)[1][2] == "Cafe\u0301."


def test_bad_lines_raise_with_file_and_line_or_are_skipped_with_one_warning(tmp_path):
    path = write(tmp_path / "bad.tsv", ["a\tb", "no tab here", "c\td", "\tempty source", "e\tf"])
    with pytest.raises(ValueError, match=r"bad\.tsv:2: expected a source and a target"):
        read_parallel_text(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sources, targets = read_parallel_text(path, on_error="skip")
    assert (sources, targets) == (["a", "c", "e"], ["b", "d", "f"])
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "skipped 2 bad line(s)" in messages[0] and "bad.tsv:2" in messages[0]
    with pytest.raises(ValueError, match=r"`read_parallel_text\(normalization=...\)`.*Received: normalization='NFD'"):
        read_parallel_text(path, normalization="NFD")
    with pytest.raises(ValueError, match=r"Received: on_error='ignore'"):
        read_parallel_text(path, on_error="ignore")


@pytest.mark.tensorflow
def test_tf_data_pipeline_and_tfds_builder_read_the_same_pairs(tmp_path):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from rnnzoo.data import datasets

    lines = LINES + [f"sentence {i}\tfrase {i} é" for i in range(20)]
    path = write(tmp_path / "spa.txt", lines)
    expected = list(zip(*read_parallel_text(path)))
    dataset = parallel_text_dataset(path)
    assert dataset.element_spec == (tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.string))
    read = [(s.decode(), t.decode()) for s, t in dataset.as_numpy_iterator()]
    assert read == expected and read[2] == ("Coffee.", "Café.")

    bad = write(tmp_path / "bad.txt", ["a\tb", "oops"])
    with pytest.raises(Exception, match=r"bad\.txt:2"):
        list(parallel_text_dataset(bad).as_numpy_iterator())

    manual = tmp_path / "manual"
    os.makedirs(manual)
    write(manual / "spa.txt", lines)
    builder = tfds.builder("rnnzoo_parallel_text", data_dir=str(tmp_path / "tfds"))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    splits = {name: [(s.decode(), t.decode()) for s, t in tfds.as_numpy(builder.as_dataset(split=name,
                                                                                          as_supervised=True))]
              for name in ("train", "validation", "test")}
    assert sorted(sum(splits.values(), [])) == sorted(expected)  # every pair once, normalized
    assert [len(splits[name]) for name in ("train", "validation", "test")] == [21, 2, 2]
    indices = datasets.parallel_text_splits(len(expected))
    assert sorted(splits["test"]) == sorted(expected[i] for i in indices["test"])
    two = tmp_path / "two"
    os.makedirs(two)
    write(two / "a.txt", lines), write(two / "b.tsv", lines)
    with pytest.raises(ValueError, match=r"exactly one .txt or .tsv file.*\['a.txt', 'b.tsv'\]"):
        tfds.builder("rnnzoo_parallel_text", data_dir=str(tmp_path / "tfds2")).download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=str(two)))
