"""Output recurrence (figs. 10.4, 10.6, 10.10): teacher forcing vs scheduled sampling, closed loop.

    python examples/teacher_forcing.py            # about 1 minute on 2 CPU cores

Task (`rnnzoo.data.tasks.noisy_markov_labels`): tag each step of a sticky two-state Markov chain
seen through Gaussian noise. The optimal causal tagger (HMM filter) scores about 0.773.
Four models, each fed y(t-1): output-only recurrence (fig. 10.4) and the hybrid with h->h
(fig. 10.10), trained with teacher forcing or with scheduled sampling (linear schedule).
Expected (TF backend, seed 0; per-step accuracy, teacher-forced / closed-loop):

    output_only teacher forcing      0.884 / 0.571
    output_only scheduled sampling   0.770 / 0.722
    hybrid      teacher forcing      0.885 / 0.575
    hybrid      scheduled sampling   0.758 / 0.769

Teacher forcing looks excellent when fed the truth but is near chance closed-loop (it learned
to copy y(t-1)); scheduled sampling closes most of the gap to the optimum. Then the hybrid
closed-loop model is exported (SavedModel + builtins-only TFLite) with a parity table.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from rnnzoo import export  # noqa: E402
from rnnzoo.data import tasks  # noqa: E402
from rnnzoo.layers import ScheduledSampling  # noqa: E402
from rnnzoo.models import closed_loop_tagger, output_recurrent_tagger  # noqa: E402


def main(out="exports/teacher_forcing"):
    x, y = tasks.noisy_markov_labels(2000, 20, seed=0)
    x_test, y_test = tasks.noisy_markov_labels(500, 20, seed=1)
    print(f"optimal filter accuracy {tasks.markov_filter_accuracy(x_test, y_test):.3f}")
    for hidden in (False, True):
        for scheduled in (False, True):
            keras.utils.set_random_seed(0)
            model = output_recurrent_tagger(2, 1, 16, hidden_recurrence=hidden, scheduled_sampling=scheduled, seed=0)
            model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit({"x": x, "labels": y}, y, batch_size=64, epochs=6, verbose=0,
                      callbacks=[ScheduledSampling("linear", decay_steps=60)] if scheduled else [])
            forced = np.argmax(model.predict({"x": x_test, "labels": y_test}, verbose=0), -1)
            closed_model = closed_loop_tagger(model)
            closed = np.argmax(closed_model.predict(x_test, verbose=0), -1)
            print(f"{'hybrid' if hidden else 'output_only':<11} "
                  f"{'scheduled sampling' if scheduled else 'teacher forcing':<20} "
                  f"{np.mean(forced == y_test):.3f} / {np.mean(closed == y_test):.3f}")
    saved_model = export.to_saved_model(closed_model, os.path.join(out, "saved_model"))
    tflite = export.to_tflite(closed_model, os.path.join(out, "model.tflite"))  # on JAX: converted on TensorFlow
    print("TFLite ops:", export.tflite_ops(tflite))
    print(export.parity_report(closed_model, [saved_model, tflite], [x_test[:1, :7], x_test[:5]]))


if __name__ == "__main__":
    main()
