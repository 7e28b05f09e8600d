"""Parallel text for translation: tab-separated files, as the Anki/Tatoeba downloads are.

A line holds a source sentence, a tab, its translation, and optionally more tab-separated
columns that are ignored (the Anki files' third column is the attribution):

    Go.\tVe.\tCC-BY 2.0 (France) Attribution: tatoeba.org #2877272 (CM) & #4986655 (cueyayotl)

Only the first two columns are read. Blank lines are skipped. A line with fewer than two
columns, or with an empty source or target, is bad: it raises a `ValueError` naming
`file:line` (`on_error="raise"`, the default) or is skipped, with one `UserWarning` counting the
skipped lines when the file has been read (`on_error="skip"`). Text is Unicode-normalized
(`normalization="NFC"` by default, `"NFKC"` to also fold compatibility characters such as
ligatures and full-width forms, None to keep it as written): a decomposed `e` + U+0301 becomes
the `é` a keyboard types, so the vocabulary does not hold both.

Three ways to read a file, all through `read_parallel_text`'s rules:

* `read_parallel_text(path)` -> `(sources, targets)`, lists of str (in memory);
* `parallel_text_dataset(path)` -> a `tf.data.Dataset` of `(source, target)` scalar strings,
  read lazily line by line (TensorFlow is imported only here);
* `rnnzoo.data.datasets.RnnzooParallelText` (`rnnzoo_parallel_text`), a TFDS builder that reads a file you put
  in its `manual_dir` (it never downloads).
"""

import os
import unicodedata
import warnings

NORMALIZATIONS = ("NFC", "NFKC", None)
ON_ERROR = ("raise", "skip")


def _check(name, normalization, on_error):
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"`{name}(normalization=...)` must be one of {list(NORMALIZATIONS)}. "
                         f"Received: normalization={normalization!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"`{name}(on_error=...)` must be 'raise' or 'skip'. Received: on_error={on_error!r}")


def iter_parallel_text(path, *, normalization="NFC", on_error="raise", name="read_parallel_text"):
    """Yields `(source, target)` pairs of a tab-separated file, lazily (see the module's rules)."""
    _check(name, normalization, on_error)
    path = os.fspath(path)
    skipped, first_bad = 0, None
    with open(path, encoding="utf-8", newline="") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            columns = line.split("\t")
            problem = None
            if len(columns) < 2:
                problem = "expected a source and a target separated by a tab"
            else:
                source, target = columns[0].strip(), columns[1].strip()
                if not source or not target:
                    problem = "the source or the target is empty"
            if problem:
                if on_error == "raise":
                    raise ValueError(f"{path}:{number}: {problem} (pass `on_error='skip'` to skip bad lines). "
                                     f"Received: line={line!r}")
                skipped += 1
                first_bad = first_bad or f"{path}:{number}"
                continue
            if normalization:
                source = unicodedata.normalize(normalization, source)
                target = unicodedata.normalize(normalization, target)
            yield source, target
    if skipped:
        warnings.warn(f"{name}: skipped {skipped} bad line(s) of {path} (the first at {first_bad}): "
                      "lines need a source and a target separated by a tab.", UserWarning, stacklevel=2)


def read_parallel_text(path, *, normalization="NFC", on_error="raise"):
    """Reads a tab-separated parallel text file into memory.

    Args:
        path: str, a UTF-8 file, one `source<TAB>target[<TAB>anything]` pair per line.
        normalization: `"NFC"` (default), `"NFKC"` or None, the Unicode normalization applied
            to both columns.
        on_error: `"raise"` (a bad line is a `ValueError` naming `file:line`) or `"skip"` (bad
            lines are skipped; one `UserWarning` says how many).

    Returns:
        `(sources, targets)`, two lists of str of the same length.

    Example:

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "spa.txt")
    >>> with open(path, "w", encoding="utf-8") as f:
    ...     _ = f.write("Go.\\tVe.\\tCC-BY 2.0\\n\\nThanks.\\tGracias.\\n")
    >>> read_parallel_text(path)
    (['Go.', 'Thanks.'], ['Ve.', 'Gracias.'])
    """
    sources, targets = [], []
    for source, target in iter_parallel_text(path, normalization=normalization, on_error=on_error):
        sources.append(source)
        targets.append(target)
    return sources, targets


def parallel_text_dataset(path, *, normalization="NFC", on_error="raise"):
    """A `tf.data.Dataset` of `(source, target)` scalar `tf.string` pairs read lazily from `path`.

    The same rules as `read_parallel_text` (columns, blank lines, bad lines, normalization);
    the file is read again, line by line, each time the dataset is iterated. Tokenize and batch
    it with `rnnzoo.models.Seq2Seq.dataset`.
    """
    _check("parallel_text_dataset", normalization, on_error)
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`parallel_text_dataset(path=...)`: no file at {path!r}")
    import tensorflow as tf

    def pairs():
        for source, target in iter_parallel_text(path, normalization=normalization, on_error=on_error,
                                                 name="parallel_text_dataset"):
            yield source.encode("utf-8"), target.encode("utf-8")

    spec = tf.TensorSpec((), tf.string)
    return tf.data.Dataset.from_generator(pairs, output_signature=(spec, spec))
