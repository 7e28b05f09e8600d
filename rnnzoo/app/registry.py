"""The zoo's one catalogue: every layer, model and task, with its place in the book, and what trains.

Plain data, no Keras: `rnnzoo list`, the choices and help of `rnnzoo train`, and the README's
zoo tables (`python -m rnnzoo.app.registry` prints them; a test checks the README holds exactly
that text) all come from here, so they cannot disagree.

- `ENTRIES`: the catalogue, one `Entry` per layer, model and task.
- `TASKS`: the tasks `rnnzoo train` can train on (`TaskSpec`): how to generate them, their size.
- `RECIPES`: the models `rnnzoo train` can train (`RecipeSpec`): which task kinds they take,
  their default task, whether they also read a data file (`--data`).

The builders and data pipelines these names stand for are in `rnnzoo.app.recipes`.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Entry:
    """One row of the catalogue."""

    name: str
    kind: str  # "layer", "model", "task" or "tool" (diagnostics, initializers)
    section: str  # book section, e.g. "10.2"
    figure: str  # book figure(s), "" if none
    summary: str
    symbol: str  # the public Python name


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A task `rnnzoo train` trains on.

    `kind` says what a model must produce: "per_step_classification", "sequence_classification",
    "regression" (arrays from `rnnzoo.data.tasks`), "tree_labels" (labelled trees) or
    "translation" (string pairs) or "language_model" (a text). `options` are the generator's keyword arguments; `length` the
    sequence length of the array tasks; `sizes` the train, validation and test examples (characters of
    a text task).
    """

    name: str
    kind: str
    generator: str  # "module:function"
    options: tuple = ()  # ((name, value), ...)
    num_classes: int = 0
    features: int = 0
    length: int = 0
    sizes: tuple = (4000, 500, 1000)


@dataclasses.dataclass(frozen=True)
class RecipeSpec:
    """A model `rnnzoo train` trains: the task kinds it takes and its default task."""

    name: str
    task_kinds: tuple
    default_task: str
    data_file: str = ""  # what `--data FILE` holds for this model, "" if it takes none
    trees_dir: str = ""  # what `--trees DIR` holds for this model, "" if it takes none


ENTRIES = [
    Entry("vanilla_rnn", "layer", "10.2", "10.3", "a = b + W h + U x, h = tanh(a), o = c + V h; explicit BPTT gradient",
          "rnnzoo.layers.VanillaRNN"),
    Entry("vanilla_rnn_cell", "layer", "10.2", "10.3", "one step of the vanilla RNN (Keras cell contract)",
          "rnnzoo.cells.VanillaRNNCell"),
    Entry("recurrent", "layer", "10.2", "", "any Keras cell on rnnzoo's exportable loop (the drop-in for keras.layers.RNN)",
          "rnnzoo.layers.Recurrent"),
    Entry("vanilla_tagger", "model", "10.2", "10.3", "VanillaRNN with a per-step softmax output (sequence labelling)",
          "rnnzoo.models.vanilla_tagger"),
    Entry("vanilla_regressor", "model", "10.2", "10.5", "VanillaRNN read at the last step, one real output (sequence to one)",
          "rnnzoo.app.recipes.vanilla_regressor"),
    Entry("sequence_classifier", "model", "10.2", "10.5", "sequence to one: reads the whole sequence, one output at the end",
          "rnnzoo.models.sequence_classifier"),
    Entry("sequence_regressor", "model", "10.2", "10.5", "sequence to one with a real-valued output (adding problem)",
          "rnnzoo.models.sequence_regressor"),
    Entry("delayed_recall", "task", "10.7", "", "output the input bit seen k steps earlier (needs memory)",
          "rnnzoo.data.tasks.delayed_recall"),
    Entry("running_parity", "task", "10.7", "", "running parity (XOR) of a bit stream",
          "rnnzoo.data.tasks.running_parity"),
    Entry("adding_problem", "task", "10.7", "", "sum of the two marked numbers in a sequence (Hochreiter & Schmidhuber)",
          "rnnzoo.data.tasks.adding_problem"),
    Entry("majority_bit", "task", "10.2", "10.5", "one label per sequence: more ones than zeros (variable lengths)",
          "rnnzoo.data.tasks.majority_bit"),
    Entry("output_recurrence_cell", "layer", "10.2.1", "10.4", "one step with output->hidden recurrence (optionally also h->h)",
          "rnnzoo.cells.OutputRecurrenceCell"),
    Entry("output_recurrent_rnn", "layer", "10.2.1", "10.4,10.6", "teacher forcing (no loop), scheduled sampling, closed loop",
          "rnnzoo.layers.OutputRecurrentRNN"),
    Entry("output_recurrent_tagger", "model", "10.2.1", "10.4,10.6", "tagger fed y(t-1): teacher-forced training, closed-loop inference",
          "rnnzoo.models.output_recurrent_tagger"),
    Entry("noisy_markov_labels", "task", "10.2.1", "", "tag a sticky Markov chain seen through noise (exposure bias)",
          "rnnzoo.data.tasks.noisy_markov_labels"),
    Entry("eos_generator", "model", "10.2.3", "", "stops by sampling an end-of-sequence symbol",
          "rnnzoo.models.length_models.eos_generator"),
    Entry("stop_unit_generator", "model", "10.2.3", "", "stops by a Bernoulli (sigmoid) output trained with cross-entropy",
          "rnnzoo.models.length_models.stop_unit_generator"),
    Entry("length_prior_generator", "model", "10.2.3", "", "samples tau ~ P(tau) first, then tau steps",
          "rnnzoo.models.length_models.length_prior_generator"),
    Entry("char_lm", "model", "10.2.3", "", "language model over characters or words: truncated BPTT, bits per "
          "character, sampling in the graph", "rnnzoo.models.LanguageModel"),
    Entry("generated_text", "task", "10.2.3", "", "sentences of a small random grammar (non-ASCII words too), as text",
          "rnnzoo.data.text.generated_text"),
    Entry("variable_length_seqs", "task", "10.2.3", "", "random tokens, lengths uniform in [min, max]",
          "rnnzoo.data.tasks.variable_length_sequences"),
    Entry("conditional_generator", "model", "10.2.4", "10.9", "generates y(1..tau) from a vector x (input each step and/or h(0))",
          "rnnzoo.models.conditional_generator"),
    Entry("hybrid_tagger", "model", "10.2.4", "10.10", "h->h and o->h; y conditioned on x(1..tau); scheduled sampling",
          "rnnzoo.models.output_recurrent_tagger(hidden_recurrence=True)"),
    Entry("arithmetic_sequences", "task", "10.2.4", "10.9", "generate start + step*t mod V from a context vector",
          "rnnzoo.data.tasks.arithmetic_sequences"),
    Entry("bidirectional", "layer", "10.3", "10.11", "forward layer + go_backwards copy, merged (concat/sum/ave/mul/None)",
          "rnnzoo.layers.Bidirectional"),
    Entry("bidirectional_tagger", "model", "10.3", "10.11", "Bidirectional(VanillaRNN) with a per-step softmax output",
          "rnnzoo.app.recipes.bidirectional_tagger"),
    Entry("future_recall", "task", "10.3", "", "the label at step t is the input bit at step t + k (needs the future)",
          "rnnzoo.data.tasks.future_recall"),
    Entry("seq2seq_fixed_context", "model", "10.4", "10.12", "encoder-decoder through a fixed context C (Seq2Seq(attention=False))",
          "rnnzoo.models.Seq2Seq"),
    Entry("seq2seq_attention", "model", "10.4", "", "Bahdanau attention seq2seq; greedy/beam decoding in the graph",
          "rnnzoo.models.Seq2Seq"),
    Entry("bahdanau_attention", "layer", "10.4", "", "additive attention e = v^T tanh(W s + U h), zero weight at padding",
          "rnnzoo.layers.BahdanauAttention"),
    Entry("attention_decoder_cell", "layer", "10.4", "10.12", "one decoder step: GRU on [y(t-1), c(t)], attention or fixed C",
          "rnnzoo.cells.AttentionDecoderCell"),
    Entry("dates", "task", "10.4", "", "32 human date formats -> ISO yyyy-mm-dd", "rnnzoo.data.seq2seq_tasks.dates"),
    Entry("reversal", "task", "10.4", "", "string -> reversed string", "rnnzoo.data.seq2seq_tasks.reversal"),
    Entry("sorting", "task", "10.4", "", "string -> its characters sorted", "rnnzoo.data.seq2seq_tasks.sorting"),
    Entry("addition", "task", "10.4", "", "'123+4567' -> '4690'", "rnnzoo.data.seq2seq_tasks.addition"),
    Entry("deep_rnn", "layer", "10.5", "10.13a", "stacked recurrent layers over any cells, optional residual connections",
          "rnnzoo.layers.DeepRNN"),
    Entry("deep_transition_cell", "layer", "10.5", "10.13b,c", "MLP of depth L from h(t-1) to h(t), optional skip h(t-1) S",
          "rnnzoo.cells.DeepTransitionCell"),
    Entry("deep_transition_tagger", "model", "10.5", "10.13b,c", "DeepTransitionCell (depth 2, skip) with a per-step softmax",
          "rnnzoo.app.recipes.deep_transition_tagger"),
    Entry("tree_layer", "layer", "10.6", "10.14", "recursive net h = tanh(b + W [h_l; h_r] + U x), level-batched",
          "rnnzoo.layers.TreeLayer"),
    Entry("tree_cell", "layer", "10.6", "10.14", "one node of the recursive net (concat or child-sum)",
          "rnnzoo.cells.TreeCell"),
    Entry("tree_classifier", "model", "10.6", "10.14", "TreeLayer with a softmax at every node and the root (SST-style)",
          "rnnzoo.models.tree_classifier"),
    Entry("negation_sentiment", "task", "10.6", "", "phrases with scoped negation; labels at every node need the tree",
          "rnnzoo.data.trees.negation_sentiment_trees"),
    Entry("gradient_decay", "tool", "10.7", "10.15", "||grad_h(t) L|| against tau - t from the explicit BPTT; W's spectrum",
          "rnnzoo.diagnostics.gradient_decay"),
    Entry("scaled_identity", "tool", "10.7", "", "W = gain * I initializer (IRNN, Le et al. 2015)",
          "rnnzoo.initializers.ScaledIdentity"),
]

TASKS = {
    t.name: t
    for t in [
        TaskSpec("delayed_recall", "per_step_classification", "rnnzoo.data.tasks:delayed_recall", (("delay", 4),),
                 num_classes=2, features=1, length=24),
        TaskSpec("running_parity", "per_step_classification", "rnnzoo.data.tasks:running_parity",
                 num_classes=2, features=1, length=12),
        TaskSpec("adding_problem", "regression", "rnnzoo.data.tasks:adding_problem", num_classes=1, features=2, length=20),
        TaskSpec("future_recall", "per_step_classification", "rnnzoo.data.tasks:future_recall", (("advance", 2),),
                 num_classes=2, features=1, length=10),
        TaskSpec("majority_bit", "sequence_classification", "rnnzoo.data.tasks:majority_bit", (("min_length", 3),),
                 num_classes=2, features=1, length=9),
        TaskSpec("negation_sentiment", "tree_labels", "rnnzoo.data.trees:negation_sentiment_trees", num_classes=3,
                 sizes=(1500, 200, 400)),
        TaskSpec("generated_text", "language_model", "rnnzoo.data.text:generated_text", sizes=(40000, 4000, 4000)),
        TaskSpec("dates", "translation", "rnnzoo.data.seq2seq_tasks:dates", sizes=(8000, 500, 1000)),
        TaskSpec("reversal", "translation", "rnnzoo.data.seq2seq_tasks:reversal", (("max_length", 8),),
                 sizes=(8000, 500, 1000)),
        TaskSpec("sorting", "translation", "rnnzoo.data.seq2seq_tasks:sorting", (("max_length", 8),),
                 sizes=(8000, 500, 1000)),
        TaskSpec("addition", "translation", "rnnzoo.data.seq2seq_tasks:addition", (("max_digits", 3),),
                 sizes=(8000, 500, 1000)),
    ]
}

TREE_FILE = "bracketed trees, one per line, an integer label on every node (SST format)"
PAIRS_FILE = "tab-separated pairs, one per line: source<TAB>target[<TAB>ignored] (Anki/Tatoeba files; also --pairs)"
TREEBANK_FILES = ("train.txt", "dev.txt", "test.txt")  # `--trees DIR`: the train, validation and test splits
TREE_DIR = "train.txt, dev.txt and test.txt of bracketed trees (SST's layout), used as the three splits"
TEXT_FILE = ("plain UTF-8 text, split 90/5/5 into train/validation/test by position, or a directory of "
             "train.txt, valid.txt, test.txt")

RECIPES = {
    r.name: r
    for r in [
        RecipeSpec("vanilla_tagger", ("per_step_classification",), "delayed_recall"),
        RecipeSpec("vanilla_regressor", ("regression",), "adding_problem"),
        RecipeSpec("bidirectional_tagger", ("per_step_classification",), "future_recall"),
        RecipeSpec("deep_transition_tagger", ("per_step_classification",), "delayed_recall"),
        RecipeSpec("sequence_classifier", ("sequence_classification",), "majority_bit"),
        RecipeSpec("tree_classifier", ("tree_labels",), "negation_sentiment", data_file=TREE_FILE, trees_dir=TREE_DIR),
        RecipeSpec("char_lm", ("language_model",), "generated_text", data_file=TEXT_FILE),
        RecipeSpec("seq2seq_attention", ("translation",), "dates", data_file=PAIRS_FILE),
        RecipeSpec("seq2seq_fixed_context", ("translation",), "reversal", data_file=PAIRS_FILE),
    ]
}

KINDS = ("layer", "model", "task", "tool")


def entries(kind=None):
    """The catalogue's entries in the book's order of sections, optionally of one `kind` (see `KINDS`)."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"`entries(kind=...)` must be one of {list(KINDS)} or None. Received: kind={kind!r}")
    rows = [e for e in ENTRIES if kind is None or e.kind == kind]
    return sorted(rows, key=lambda e: tuple(int(part) for part in e.section.split(".")))


def tasks_for(model):
    """The task names `model` trains on, its default task first."""
    recipe = RECIPES[model]
    names = sorted(n for n, t in TASKS.items() if t.kind in recipe.task_kinds and n != recipe.default_task)
    return [recipe.default_task, *names]


def _trains_on(entry):
    if entry.kind == "model" and entry.name in RECIPES:
        recipe = RECIPES[entry.name]
        return (", ".join(tasks_for(entry.name)) + (" or `--data FILE`" if recipe.data_file else "")
                + (" or `--trees DIR`" if recipe.trees_dir else ""))
    if entry.kind == "task" and entry.name in TASKS:
        return ", ".join(sorted(m for m in RECIPES if entry.name in tasks_for(m)))
    return ""


def format_table(kind=None):
    """The catalogue as `rnnzoo list` prints it: name, kind, section, figure, `rnnzoo train`, summary."""
    rows = entries(kind)
    width = max(len(e.name) for e in rows) + 1
    lines = [f"{'name':<{width}} {'kind':<6} {'section':<8} {'figure':<9} summary"]
    for e in rows:
        trains = _trains_on(e)
        extra = f" [rnnzoo train: {trains.replace('`', '')}]" if e.kind == "model" and trains else ""
        lines.append(f"{e.name:<{width}} {e.kind:<6} {e.section:<8} {e.figure:<9} {e.summary}{extra}")
    return "\n".join(lines)


def readme_tables():
    """The README's zoo tables (markdown), generated from `ENTRIES`, `TASKS` and `RECIPES`."""

    def code(text):
        return f"`{text}`" if text else ""

    lines = ["| book | figure | name | kind | Python | what it is | `rnnzoo train` tasks |", "|---|---|---|---|---|---|---|"]
    for e in entries():
        if e.kind == "task":
            continue
        trains = _trains_on(e)
        if trains:
            names, _, data = trains.partition(" or ")
            trains = ", ".join(code(n) for n in names.split(", ")) + (f" or {data}" if data else "")
        lines.append(f"| {e.section} | {e.figure or '—'} | {code(e.name)} | {e.kind} | {code(e.symbol)} | "
                     f"{e.summary.replace('|', chr(92) + '|')} | {trains or '—'} |")
    lines += ["", "| book | task | Python | what it is | trained by |", "|---|---|---|---|---|"]
    for e in entries("task"):
        trained_by = ", ".join(code(m) for m in _trains_on(e).split(", ") if m)
        lines.append(f"| {e.section} | {code(e.name)} | {code(e.symbol)} | {e.summary.replace('|', chr(92) + '|')} | "
                     f"{trained_by or '—'} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(readme_tables())
