"""The zoo's catalogue: every model and task, with its place in the book. `rnnzoo list` prints it."""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "layer", "model" or "task"
    section: str  # book section, e.g. "10.2"
    figure: str  # book figure(s), "" if none
    summary: str
    symbol: str  # the public Python name


ENTRIES = [
    Entry("vanilla_rnn", "layer", "10.2", "10.3", "a = b + W h + U x, h = tanh(a), o = c + V h; explicit BPTT gradient",
          "rnnzoo.layers.VanillaRNN"),
    Entry("vanilla_rnn_cell", "layer", "10.2", "10.3", "one step of the vanilla RNN (Keras cell contract)",
          "rnnzoo.cells.VanillaRNNCell"),
    Entry("vanilla_tagger", "model", "10.2", "10.3", "VanillaRNN with a per-step softmax output (sequence labelling)",
          "rnnzoo.models.vanilla_tagger"),
    Entry("delayed_recall", "task", "10.7", "", "output the input bit seen k steps earlier (needs memory)",
          "rnnzoo.data.tasks.delayed_recall"),
    Entry("running_parity", "task", "10.7", "", "running parity (XOR) of a bit stream",
          "rnnzoo.data.tasks.running_parity"),
    Entry("adding_problem", "task", "10.7", "", "sum of the two marked numbers in a sequence (Hochreiter & Schmidhuber)",
          "rnnzoo.data.tasks.adding_problem"),
]


def entries(kind=None):
    return [e for e in ENTRIES if kind is None or e.kind == kind]


def format_table(kind=None):
    rows = entries(kind)
    lines = [f"{'name':<20} {'kind':<6} {'section':<8} {'figure':<8} summary"]
    lines += [f"{e.name:<20} {e.kind:<6} {e.section:<8} {e.figure:<8} {e.summary}" for e in rows]
    return "\n".join(lines)
