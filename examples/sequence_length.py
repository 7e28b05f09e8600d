"""Three ways to decide the length of a generated sequence (section 10.2.3).

    python examples/sequence_length.py            # about 1 minute on 2 CPU cores

Training data (`rnnzoo.data.tasks.variable_length_sequences`): random tokens, lengths uniform in
[2, 8] (mean 5.0). Each generator samples 1000 sequences inside the graph (noise is an input).
Expected (TF backend, seed 0, 2000 training sequences, 5 epochs): mean generated length
eos 5.13, stop_unit 4.69, length_prior 4.90 (all within 10% of 5.0), every length 2..8 produced;
a few per cent fall just outside (EOS: lengths 0-1 and 9; stop unit: length 1) -- the learned
stop probabilities are smooth, not the hard 0/1 of the data. Then each sampling generator is
exported to TFLite (builtins only) and its tokens and lengths compared with Keras.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from rnnzoo import export  # noqa: E402
from rnnzoo.data import tasks  # noqa: E402
from rnnzoo.models import length_models as L  # noqa: E402

V, MAX_LENGTH = 4, 8


def main(out="exports/sequence_length"):
    tokens, lengths = tasks.variable_length_sequences(2000, V, 2, MAX_LENGTH, seed=0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rng = np.random.default_rng(5)
    u = lambda *shape: rng.uniform(size=shape).astype("float32")  # noqa: E731
    keras.utils.set_random_seed(0)
    eos = L.eos_generator(V, MAX_LENGTH, 32)
    labels, weights = L.eos_training_data(tokens, lengths)
    eos.compile(keras.optimizers.Adam(0.02), ce)
    eos.fit({"labels": labels}, labels, sample_weight=weights, batch_size=64, epochs=5, verbose=0)
    stop = L.stop_unit_generator(V, MAX_LENGTH, 32)
    labels, targets, weights = L.stop_unit_training_data(tokens, lengths)
    stop.compile(keras.optimizers.Adam(0.02), {"logits": ce, "stop_logits": keras.losses.BinaryCrossentropy(from_logits=True)})
    stop.fit({"labels": labels}, targets, sample_weight=weights, batch_size=64, epochs=5, verbose=0)
    prior = L.length_prior_generator(V, MAX_LENGTH, 32)
    inputs, targets, weights = L.length_prior_training_data(tokens, lengths)
    prior.compile(keras.optimizers.Adam(0.02), {"logits": ce, "length_logits": ce})
    prior.fit(inputs, targets, sample_weight=weights, batch_size=64, epochs=5, verbose=0)
    n = 1000
    runs = {
        "eos": (L.eos_generation_model(eos), u(n, MAX_LENGTH + 1, V + 1)),
        "stop_unit": (L.stop_unit_generation_model(stop), {"noise": u(n, MAX_LENGTH, V), "stop_noise": u(n, MAX_LENGTH)}),
        "length_prior": (L.length_prior_generation_model(prior), {"length_noise": u(n, MAX_LENGTH), "noise": u(n, MAX_LENGTH, V)}),
    }
    print("data: lengths uniform in [2, 8], mean 5.0")
    for name, (generate, noise) in runs.items():
        generated = generate.predict(noise, verbose=0)["lengths"]
        print(f"{name:<13} mean {generated.mean():.2f}  counts of lengths 0..9: "
              f"{np.bincount(generated, minlength=10).tolist()}")
        path = os.path.join(out, name)
        tflite = export.to_tflite(generate, path + ".tflite")
        small = {k: v[:7] for k, v in noise.items()} if isinstance(noise, dict) else noise[:7]
        got = {np.ndim(v): v for v in export.run_artifact(tflite, small)}
        expected = generate(small)
        same = np.array_equal(got[1], np.asarray(expected["lengths"])) and np.array_equal(got[2], np.asarray(expected["tokens"]))
        print(f"{'':<13} TFLite ops {export.tflite_ops(tflite)}; tokens and lengths equal Keras: {same}")


if __name__ == "__main__":
    main()
