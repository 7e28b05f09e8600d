"""String-to-string tasks for sequence-to-sequence models (section 10.4), generated locally.

Every generator is deterministic in its `seed` and returns two lists of strings,
`(sources, targets)`. Each task also names its alphabets (`ALPHABETS[task]`), the character
vocabularies of its `rnnzoo.models.Seq2Seq` (`Seq2Seq(*ALPHABETS[task])`), so a vocabulary
never depends on which examples happened to be drawn. (Real text builds its vocabularies from
the training split instead: `Seq2Seq.from_corpus`.)

Tasks:

* `dates`: dates written in dozens of human formats -> ISO 8601 (`"tuesday 3 march 2020"`,
  `"03/03/20"`, `"March 3rd, 2020"` -> `"2020-03-03"`). Slashes are US order (month first),
  dots and the numeric `d-m-yyyy` form are day first; two-digit years 50-99 are 19xx, 00-49
  are 20xx, so every source has exactly one answer.
* `reversal`: random lowercase letters -> the same letters reversed.
* `sorting`: random lowercase letters -> the letters sorted.
* `addition`: `"123+4567"` -> `"4690"`.
"""

import datetime
import string

import numpy as np

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FIRST_DATE = datetime.date(1950, 1, 1)
LAST_DATE = datetime.date(2049, 12, 31)

ALPHABETS = {
    "dates": (string.ascii_letters + string.digits + " ,./-'", string.digits + "-"),
    "reversal": (string.ascii_lowercase, string.ascii_lowercase),
    "sorting": (string.ascii_lowercase, string.ascii_lowercase),
    "addition": (string.digits + "+", string.digits),
}


def _ordinal(day):
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _date_formats():
    """Each format: a function of (date, rng) -> string (rng picks spelling variations)."""
    def m(d):
        return MONTHS[d.month - 1]

    def mon(d):
        return MONTHS[d.month - 1][:3]

    def wd(d):
        return WEEKDAYS[d.weekday()]

    def yy(d):
        return f"{d.year % 100:02d}"

    return [
        lambda d: f"{wd(d)} {d.day} {m(d)} {d.year}",          # tuesday 3 march 2020
        lambda d: f"{wd(d)}, {m(d)} {d.day}, {d.year}",        # tuesday, march 3, 2020
        lambda d: f"{wd(d)[:3]}, {d.day} {mon(d)} {d.year}",   # tue, 3 mar 2020
        lambda d: f"{wd(d)[:3]} {mon(d)} {d.day:02d} {d.year}",  # tue mar 03 2020
        lambda d: f"{d.month:02d}/{d.day:02d}/{yy(d)}",        # 03/03/20
        lambda d: f"{d.month}/{d.day}/{yy(d)}",                # 3/3/20
        lambda d: f"{d.month}/{d.day}/{d.year}",               # 3/3/2020
        lambda d: f"{d.month:02d}/{d.day:02d}/{d.year}",       # 03/03/2020
        lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",       # 03.03.2020
        lambda d: f"{d.day}.{d.month}.{yy(d)}",                # 3.3.20
        lambda d: f"{d.day}-{d.month}-{d.year}",               # 3-3-2020
        lambda d: f"{d.year}-{d.month:02d}-{d.day:02d}",       # 2020-03-03
        lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",       # 2020/03/03
        lambda d: f"{d.year}{d.month:02d}{d.day:02d}",         # 20200303
        lambda d: f"{m(d).capitalize()} {_ordinal(d.day)}, {d.year}",  # March 3rd, 2020
        lambda d: f"{m(d).capitalize()} {d.day}, {d.year}",    # March 3, 2020
        lambda d: f"{m(d).upper()} {d.day}, {d.year}",         # MARCH 3, 2020
        lambda d: f"{m(d)} {d.day} {d.year}",                  # march 3 2020
        lambda d: f"{mon(d)} {d.day} {d.year}",                # mar 3 2020
        lambda d: f"{mon(d).capitalize()}. {d.day}, {d.year}",  # Mar. 3, 2020
        lambda d: f"{d.day} {m(d)} {d.year}",                  # 3 march 2020
        lambda d: f"{d.day:02d} {mon(d)} {d.year}",            # 03 mar 2020
        lambda d: f"{d.day} {mon(d).capitalize()} {d.year}",   # 3 Mar 2020
        lambda d: f"{d.day}-{mon(d)}-{d.year}",                # 3-mar-2020
        lambda d: f"{d.day:02d}-{mon(d).upper()}-{yy(d)}",     # 03-MAR-20
        lambda d: f"{_ordinal(d.day)} of {m(d)} {d.year}",     # 3rd of march 2020
        lambda d: f"the {_ordinal(d.day)} of {m(d).capitalize()}, {d.year}",  # the 3rd of March, 2020
        lambda d: f"{m(d).capitalize()} the {_ordinal(d.day)}, {d.year}",  # March the 3rd, 2020
        lambda d: f"{wd(d).capitalize()} {_ordinal(d.day)} {m(d).capitalize()} {d.year}",  # Tuesday 3rd March 2020
        lambda d: f"{mon(d)} {_ordinal(d.day)} '{yy(d)}",       # mar 3rd '20
        lambda d: f"{d.day} {m(d).upper()} {d.year}",          # 3 MARCH 2020
        lambda d: f"{wd(d).upper()[:3]} {d.day:02d}/{d.month:02d}/{d.year}".replace("/", ".", 2),  # TUE 03.03.2020
    ]


DATE_FORMATS = _date_formats()


def _check(name, num_examples, seed):
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 1:
        raise ValueError(f"`{name}(num_examples=...)` must be an integer >= 1. Received: num_examples={num_examples!r}")
    return np.random.default_rng(seed)


def dates(num_examples, seed=0, formats=None):
    """Human-written dates -> `"yyyy-mm-dd"`, uniform over 1950-2049 and over the formats.

    Args:
        num_examples: int.
        seed: int.
        formats: optional list of format indices into `DATE_FORMATS` (default: all).

    Example:

    >>> sources, targets = dates(3, seed=1)
    >>> [len(t) for t in targets]
    [10, 10, 10]
    >>> DATE_FORMATS[0](datetime.date(2020, 3, 3)), DATE_FORMATS[4](datetime.date(2020, 3, 3))
    ('tuesday 3 march 2020', '03/03/20')
    """
    rng = _check("dates", num_examples, seed)
    formats = list(range(len(DATE_FORMATS))) if formats is None else list(formats)
    span = (LAST_DATE - FIRST_DATE).days + 1
    days = rng.integers(0, span, size=num_examples)
    which = rng.choice(formats, size=num_examples)
    sources, targets = [], []
    for offset, f in zip(days, which):
        d = FIRST_DATE + datetime.timedelta(days=int(offset))
        sources.append(DATE_FORMATS[f](d))
        targets.append(d.isoformat())
    return sources, targets


def _letters(rng, num_examples, min_length, max_length):
    lengths = rng.integers(min_length, max_length + 1, size=num_examples)
    letters = np.array(list(string.ascii_lowercase))
    return ["".join(rng.choice(letters, size=n)) for n in lengths]


def _check_lengths(name, min_length, max_length):
    if not (isinstance(min_length, (int, np.integer)) and isinstance(max_length, (int, np.integer))
            and 1 <= min_length <= max_length):
        raise ValueError(
            f"`{name}` needs integers 1 <= min_length <= max_length. "
            f"Received: min_length={min_length!r}, max_length={max_length!r}"
        )


def reversal(num_examples, min_length=1, max_length=20, seed=0):
    """Random lowercase strings -> reversed.

    Example:

    >>> reversal(2, 3, 5, seed=0)[1] == [s[::-1] for s in reversal(2, 3, 5, seed=0)[0]]
    True
    """
    rng = _check("reversal", num_examples, seed)
    _check_lengths("reversal", min_length, max_length)
    sources = _letters(rng, num_examples, min_length, max_length)
    return sources, [s[::-1] for s in sources]


def sorting(num_examples, min_length=1, max_length=20, seed=0):
    """Random lowercase strings -> their letters sorted.

    Example:

    >>> sorting(1, 5, 5, seed=0)[1][0] == "".join(sorted(sorting(1, 5, 5, seed=0)[0][0]))
    True
    """
    rng = _check("sorting", num_examples, seed)
    _check_lengths("sorting", min_length, max_length)
    sources = _letters(rng, num_examples, min_length, max_length)
    return sources, ["".join(sorted(s)) for s in sources]


def addition(num_examples, max_digits=4, seed=0):
    """`"a+b"` with a, b of 1 to `max_digits` digits -> the decimal sum.

    Example:

    >>> sources, targets = addition(3, seed=0)
    >>> all(str(eval(s)) == t for s, t in zip(sources, targets))
    True
    """
    rng = _check("addition", num_examples, seed)
    if isinstance(max_digits, bool) or not isinstance(max_digits, (int, np.integer)) or max_digits < 1:
        raise ValueError(f"`addition(max_digits=...)` must be an integer >= 1. Received: max_digits={max_digits!r}")
    sources, targets = [], []
    for _ in range(num_examples):
        a, b = (int(rng.integers(0, 10 ** int(rng.integers(1, max_digits + 1)))) for _ in range(2))
        sources.append(f"{a}+{b}")
        targets.append(str(a + b))
    return sources, targets


def held_out(generate, num_examples, exclude, seed, **kwargs):
    """`num_examples` examples of `generate(...)` whose sources are not in `exclude` (a set).

    Held-out sets for the results are built this way, so no test source was seen in training.
    """
    sources, targets, seen = [], [], set(exclude)
    batch_seed = seed
    while len(sources) < num_examples:
        new_sources, new_targets = generate(num_examples, seed=batch_seed, **kwargs)
        for s, t in zip(new_sources, new_targets):
            if s not in seen and len(sources) < num_examples:
                seen.add(s)
                sources.append(s)
                targets.append(t)
        batch_seed += 1_000_003
    return sources, targets


TASKS = {"dates": dates, "reversal": reversal, "sorting": sorting, "addition": addition}
