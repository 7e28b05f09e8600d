"""One training epoch of `rnnzoo.models.Seq2Seq` (attention) against a Keras GRU model of the same size.

The anchor is the plain Keras translation model a user would write: `Embedding ->
Bidirectional(GRU(hidden_dim, return_sequences, return_state))` encoder, a `Dense(tanh)` bridge
to the decoder's initial state, `Embedding -> GRU(hidden_dim, return_sequences)` decoder,
`keras.layers.AdditiveAttention` over the encoder's outputs read *after* the decoder GRU
(Luong-style: the attention is outside the recurrence, so Keras's fused GRU runs the decoder),
and `Dense(vocabulary)` on `[decoder output, context]`. rnnzoo's decoder feeds the context into
the GRU at every step (Bahdanau et al.), which puts the attention inside the loop: the two
models have the same sizes (embedding, hidden_dim, vocabularies), not the same computation.

Both train on the same generated `dates` pairs (character ids, padded to the same widths), or
with `--vocabulary-size N` on random pairs of word ids from N-word vocabularies (12 tokens a
side: a translation-sized output layer), with Adam and batch 64, in the same process. rnnzoo's
model is compiled as `Seq2Seq.compile` does by default (on TensorFlow, `jit_compile=True`: XLA);
the Keras model as a user compiles it (Keras's `jit_compile="auto"`, no XLA on a CPU) and, as a
second anchor, with `jit_compile=True`. After a warm-up epoch (compilation) each is timed over
`--repeats` interleaved epochs; the script prints the median seconds per epoch and the ratios
(rnnzoo / Keras; below 1.0 means rnnzoo is faster).

    KERAS_BACKEND=tensorflow python bench/seq2seq.py [--examples 4000] [--repeats 2] [--vocabulary-size 8000]
"""

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rnnzoo.data import seq2seq_tasks  # noqa: E402
from rnnzoo.models.seq2seq import MaskedSequenceCrossentropy, Seq2Seq  # noqa: E402


def keras_gru_model(source_vocabulary, target_vocabulary, embedding_dim, hidden_dim):
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    embedded = keras.layers.Embedding(source_vocabulary, embedding_dim, mask_zero=True)(source)
    annotations, forward, backward = keras.layers.Bidirectional(
        keras.layers.GRU(hidden_dim, return_sequences=True, return_state=True))(embedded)
    state = keras.layers.Dense(hidden_dim, activation="tanh")(keras.layers.Concatenate()([forward, backward]))
    decoded = keras.layers.Embedding(target_vocabulary, embedding_dim, mask_zero=True)(target_in)
    decoded = keras.layers.GRU(hidden_dim, return_sequences=True)(decoded, initial_state=state)
    query = keras.layers.Dense(2 * hidden_dim)(decoded)
    context = keras.layers.AdditiveAttention()([query, annotations])
    logits = keras.layers.Dense(target_vocabulary)(keras.layers.Concatenate()([decoded, context]))
    return keras.Model({"source": source, "target_in": target_in}, logits, name="keras_gru")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=4000)
    parser.add_argument("--hidden-dim", type=int, default=64)
    parser.add_argument("--embedding-dim", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vocabulary-size", type=int, default=None,
                        help="random pairs of word ids from vocabularies of this size instead of dates")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    if args.vocabulary_size:
        words, length = [f"w{i}" for i in range(args.vocabulary_size)], 12
        ours = Seq2Seq(words, words, split="word", embedding_dim=args.embedding_dim, hidden_dim=args.hidden_dim,
                       max_source_length=length, max_target_length=length)
        rng = np.random.default_rng(0)
        x = {key: rng.integers(4, len(ours.target_tokenizer), (args.examples, length + 1)).astype("int32")
             for key in ("source", "target_in")}
        y = rng.integers(4, len(ours.target_tokenizer), (args.examples, length + 1)).astype("int32")
        data = f"random pairs of {args.vocabulary_size}-word vocabularies"
    else:
        sources, targets = seq2seq_tasks.dates(args.examples, seed=0)
        ours = Seq2Seq(*seq2seq_tasks.ALPHABETS["dates"], embedding_dim=args.embedding_dim,
                       hidden_dim=args.hidden_dim, max_source_length=max(map(len, sources)),
                       max_target_length=max(map(len, targets)))
        x = {"source": ours.encode_source(sources)}
        x["target_in"], y = ours.encode_targets(targets)
        data = "dates pairs"
    ours.compile(optimizer=keras.optimizers.Adam(1e-3))  # the model's default: XLA on TensorFlow
    models = {"rnnzoo Seq2Seq": ours}
    for name, jit_compile in (("Keras GRU + AdditiveAttention", "auto"), ("the same, jit_compile=True", True)):
        models[name] = keras_gru_model(len(ours.source_tokenizer), len(ours.target_tokenizer), args.embedding_dim,
                                       args.hidden_dim)
        models[name].compile(optimizer=keras.optimizers.Adam(1e-3), loss=MaskedSequenceCrossentropy(),
                             jit_compile=jit_compile)
    print(f"{platform.node()} {keras.backend.backend()} keras {keras.__version__}; {args.examples} {data}, "
          f"source {x['source'].shape[1]} x target {y.shape[1]} ids, batch {args.batch_size}, "
          f"hidden {args.hidden_dim}, embedding {args.embedding_dim}")
    for name, model in models.items():
        print(f"  {name}: {model.count_params():,} weights")
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)  # warm-up: compilation
    times = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            start = time.perf_counter()
            model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name}: {value:.2f} s per epoch (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    for name in list(models)[1:]:
        print(f"ratio rnnzoo / {name}: {medians['rnnzoo Seq2Seq'] / medians[name]:.2f} (below 1.0: rnnzoo is faster)")


if __name__ == "__main__":
    main()
