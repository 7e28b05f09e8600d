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
    Entry("tree_layer", "layer", "10.6", "10.14", "recursive net h = tanh(b + W [h_l; h_r] + U x), level-batched",
          "rnnzoo.layers.TreeLayer"),
    Entry("tree_cell", "layer", "10.6", "10.14", "one node of the recursive net (concat or child-sum)",
          "rnnzoo.cells.TreeCell"),
    Entry("tree_classifier", "model", "10.6", "10.14", "TreeLayer with a softmax at every node and the root (SST-style)",
          "rnnzoo.models.tree_classifier"),
    Entry("negation_sentiment", "task", "10.6", "", "phrases with scoped negation; labels at every node need the tree",
          "rnnzoo.data.trees.negation_sentiment_trees"),
    Entry("bidirectional", "layer", "10.3", "10.11", "forward layer + go_backwards copy, merged (concat/sum/ave/mul/None)",
          "rnnzoo.layers.Bidirectional"),
    Entry("deep_rnn", "layer", "10.5", "10.13a", "stacked recurrent layers over any cells, optional residual connections",
          "rnnzoo.layers.DeepRNN"),
    Entry("deep_transition_cell", "layer", "10.5", "10.13b,c", "MLP of depth L from h(t-1) to h(t), optional skip h(t-1) S",
          "rnnzoo.cells.DeepTransitionCell"),
    Entry("future_recall", "task", "10.3", "", "the label at step t is the input bit at step t + k (needs the future)",
          "rnnzoo.data.tasks.future_recall"),
    Entry("output_recurrence_cell", "layer", "10.2.1", "10.4", "one step with output->hidden recurrence (optionally also h->h)",
          "rnnzoo.cells.OutputRecurrenceCell"),
    Entry("output_recurrent_rnn", "layer", "10.2.1", "10.4,10.6", "teacher forcing (no loop), scheduled sampling, closed loop",
          "rnnzoo.layers.OutputRecurrentRNN"),
    Entry("output_recurrent_tagger", "model", "10.2.1", "10.4,10.6", "tagger fed y(t-1): teacher-forced training, closed-loop inference",
          "rnnzoo.models.output_recurrent_tagger"),
    Entry("hybrid_tagger", "model", "10.2.4", "10.10", "h->h and o->h; y conditioned on x(1..tau); scheduled sampling",
          "rnnzoo.models.output_recurrent_tagger(hidden_recurrence=True)"),
    Entry("sequence_classifier", "model", "10.2", "10.5", "sequence to one: reads the whole sequence, one output at the end",
          "rnnzoo.models.sequence_classifier"),
    Entry("sequence_regressor", "model", "10.2", "10.5", "sequence to one with a real-valued output (adding problem)",
          "rnnzoo.models.sequence_regressor"),
    Entry("conditional_generator", "model", "10.2.4", "10.9", "generates y(1..tau) from a vector x (input each step and/or h(0))",
          "rnnzoo.models.conditional_generator"),
    Entry("eos_generator", "model", "10.2.3", "", "stops by sampling an end-of-sequence symbol",
          "rnnzoo.models.length_models.eos_generator"),
    Entry("stop_unit_generator", "model", "10.2.3", "", "stops by a Bernoulli (sigmoid) output trained with cross-entropy",
          "rnnzoo.models.length_models.stop_unit_generator"),
    Entry("length_prior_generator", "model", "10.2.3", "", "samples tau ~ P(tau) first, then tau steps",
          "rnnzoo.models.length_models.length_prior_generator"),
    Entry("majority_bit", "task", "10.2", "10.5", "one label per sequence: more ones than zeros (variable lengths)",
          "rnnzoo.data.tasks.majority_bit"),
    Entry("noisy_markov_labels", "task", "10.2.1", "", "tag a sticky Markov chain seen through noise (exposure bias)",
          "rnnzoo.data.tasks.noisy_markov_labels"),
    Entry("arithmetic_sequences", "task", "10.2.4", "10.9", "generate start + step*t mod V from a context vector",
          "rnnzoo.data.tasks.arithmetic_sequences"),
    Entry("variable_length_seqs", "task", "10.2.3", "", "random tokens, lengths uniform in [min, max]",
          "rnnzoo.data.tasks.variable_length_sequences"),
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
]


def entries(kind=None):
    return [e for e in ENTRIES if kind is None or e.kind == kind]


def format_table(kind=None):
    rows = entries(kind)
    width = max(len(e.name) for e in rows) + 1
    lines = [f"{'name':<{width}} {'kind':<6} {'section':<8} {'figure':<9} summary"]
    lines += [f"{e.name:<{width}} {e.kind:<6} {e.section:<8} {e.figure:<9} {e.summary}" for e in rows]
    return "\n".join(lines)
