"""Long-term dependencies (Deep Learning, section 10.7): success rate against the lag T.

A vanilla RNN (`rnnzoo.layers.VanillaRNN`, explicit BPTT) learns the adding problem
(Hochreiter & Schmidhuber 1997; `rnnzoo.data.tasks.adding_problem`) for several sequence
lengths T, several seeds each, in three variants:

    plain      tanh, W ~ glorot_uniform (spectral radius about 1), no clipping
    clip       the same with the global gradient norm clipped to 1 (Pascanu et al. 2013)
    irnn       relu, W = I (`rnnzoo.initializers.ScaledIdentity`), clipped to 1 (Le et al. 2015)
    orthogonal tanh, W orthogonal, no clipping (not in the default set; add with --variants)

A run succeeds when its held-out mean squared error is below --threshold (0.05; always
answering 1.0, the mean, scores about 0.167). The script prints the table of successes per
(variant, T), and writes `results.json` (every run: test MSE, time, W's spectral radius and
the gradient decay ||grad_h(1) L|| / ||grad_h(T) L|| before and after training, from
`rnnzoo.diagnostics.gradient_decay`) and `success_rate.png` to --out.

Backend-agnostic Keras, NumPy data: it runs with KERAS_BACKEND=jax without TensorFlow.

    # the full grid (5 lags x 5 seeds x 3 variants = 75 runs of 3000 Adam steps):
    KERAS_BACKEND=jax python examples/long_term_experiment.py --out results/long_term --jobs 8
    # a smoke test (about 2 minutes on 2 CPU cores):
    KERAS_BACKEND=jax python examples/long_term_experiment.py --lags 5 20 --seeds 2 --steps 200 --out /tmp/lt

Expected result (Bengio et al. 1994): the success rate of `plain` falls as T grows; clipping
removes the explosions but not the vanishing; the identity initialization keeps the
gradient alive longer. See docs/long_term.md for what was measured.
"""

import argparse
import json
import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

VARIANTS = {
    "plain": dict(activation="tanh", recurrent_initializer="glorot_uniform", clipnorm=None),
    "clip": dict(activation="tanh", recurrent_initializer="glorot_uniform", clipnorm=1.0),
    "irnn": dict(activation="relu", recurrent_initializer="identity:1.0", clipnorm=1.0),
    "orthogonal": dict(activation="tanh", recurrent_initializer="orthogonal", clipnorm=None),
}
BASELINE_MSE = 1.0 / 6.0  # predicting the mean 1.0: Var(u1 + u2) for u ~ U[0, 1)


def make_optimizer(keras, name, learning_rate, clipnorm):
    # `global_clipnorm` rescales the whole gradient when its norm exceeds the threshold, as in
    # Pascanu et al.; Keras's `clipnorm` would clip each weight's gradient separately.
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, global_clipnorm=clipnorm)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, global_clipnorm=clipnorm)


def run_one(config):
    """Trains one model; returns a dict of results. Imports Keras here (one process per job)."""
    import keras
    import numpy as np

    from rnnzoo import diagnostics, initializers
    from rnnzoo.data import tasks
    from rnnzoo.layers import VanillaRNN

    lag, seed, variant = config["lag"], config["seed"], config["variant"]
    spec = VARIANTS[variant]
    keras.utils.set_random_seed(seed)
    data_seed = 1000 * lag + seed
    x_train, y_train = tasks.adding_problem(config["train_size"], lag, seed=data_seed)
    x_test, y_test = tasks.adding_problem(config["test_size"], lag, seed=data_seed + 500_000)
    model = keras.Sequential([
        keras.Input((lag, 2)),
        VanillaRNN(
            config["units"], output_units=1, activation=spec["activation"],
            recurrent_initializer=initializers.recurrent_initializer(spec["recurrent_initializer"]),
            name="vanilla_rnn",
        ),
    ])
    model.compile(optimizer=make_optimizer(keras, config["optimizer"], config["learning_rate"], spec["clipnorm"]),
                  loss="mse")
    probe_x, probe_y = x_test[:128], y_test[:128]

    def decay_ratio():
        decay = diagnostics.gradient_decay(model, probe_x, probe_y, loss="mse", jacobians=False)
        return float(decay.relative_gradient_norm[-1]), decay.spectral_radius

    ratio_before, radius_before = decay_ratio()
    # Whole batches only; a run shorter than an epoch uses the first `steps` batches.
    steps_per_epoch = min(config["train_size"] // config["batch_size"], config["steps"])
    epochs = max(1, math.ceil(config["steps"] / steps_per_epoch))
    x_train, y_train = x_train[: steps_per_epoch * config["batch_size"]], y_train[: steps_per_epoch * config["batch_size"]]
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=config["batch_size"], epochs=epochs, verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    mse = float(model.evaluate(x_test, y_test, batch_size=500, verbose=0))
    if not np.isfinite(mse):
        mse = float("inf")
    ratio_after, radius_after = decay_ratio()
    return {
        **config,
        "test_mse": mse,
        "success": bool(mse < config["threshold"]),
        "final_train_loss": float(history.history["loss"][-1]),
        "steps_run": epochs * steps_per_epoch,
        "seconds": seconds,
        "spectral_radius_before": radius_before,
        "spectral_radius_after": radius_after,
        "gradient_ratio_before": ratio_before,  # ||grad_h(1) L|| / ||grad_h(T) L||
        "gradient_ratio_after": ratio_after,
    }


def summarize(runs, lags, variants):
    lines = [f"{'variant':<11}" + "".join(f"{'T=' + str(t):>16}" for t in lags)]
    for variant in variants:
        cells = []
        for lag in lags:
            mine = [r for r in runs if r["variant"] == variant and r["lag"] == lag]
            if not mine:
                cells.append(f"{'-':>16}")
                continue
            successes = sum(r["success"] for r in mine)
            median = sorted(r["test_mse"] for r in mine)[len(mine) // 2]
            cells.append(f"{successes}/{len(mine)} ({median:.3f})".rjust(16))
        lines.append(f"{variant:<11}" + "".join(cells))
    lines.append("cell: successes/runs (median test MSE); baseline MSE 0.167")
    return "\n".join(lines)


def plot(runs, lags, variants, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["o-", "s--", "^:", "d-."]
    for number, variant in enumerate(variants):
        rates, medians = [], []
        for lag in lags:
            mine = [r for r in runs if r["variant"] == variant and r["lag"] == lag]
            rates.append(sum(r["success"] for r in mine) / max(1, len(mine)))
            medians.append(sorted(min(r["test_mse"], 1.0) for r in mine)[len(mine) // 2] if mine else float("nan"))
        offset = 0.015 * (number - (len(variants) - 1) / 2)  # overlapping curves stay visible
        left.plot(lags, [r + offset for r in rates], styles[number % 4], label=variant)
        right.plot(lags, medians, styles[number % 4], label=variant)
    for axes in (left, right):
        axes.set_xscale("log")
        axes.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    left.set_xticks(lags, [str(t) for t in lags])
    left.set_ylim(-0.05, 1.05)
    left.set_xlabel("T (sequence length of the adding problem)")
    left.set_ylabel("success rate (test MSE < threshold)")
    left.legend()
    left.grid(alpha=0.3)
    right.set_yscale("log")
    right.set_xticks(lags, [str(t) for t in lags])
    right.axhline(BASELINE_MSE, color="gray", linestyle="--", label="predict the mean")
    right.set_xlabel("T")
    right.set_ylabel("median test MSE")
    right.legend()
    right.grid(alpha=0.3, which="both")
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lags", type=int, nargs="+", default=[5, 10, 20, 50, 100])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per (variant, lag)")
    parser.add_argument("--variants", nargs="+", default=["plain", "clip", "irnn"], choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=3000, help="optimizer steps per run")
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--train-size", type=int, default=10000)
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--optimizer", choices=["adam", "sgd"], default="adam")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--threshold", type=float, default=0.05, help="success: test MSE below this")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel (processes)")
    parser.add_argument("--out", required=True, help="directory for results.json and success_rate.png")
    args = parser.parse_args(argv)

    import keras

    os.makedirs(args.out, exist_ok=True)
    configs = [
        dict(lag=lag, seed=seed, variant=variant, steps=args.steps, units=args.units,
             batch_size=args.batch_size, train_size=args.train_size, test_size=args.test_size,
             optimizer=args.optimizer, learning_rate=args.learning_rate, threshold=args.threshold)
        for lag in args.lags for variant in args.variants for seed in range(args.seeds)
    ]
    print(f"{len(configs)} runs on the {keras.backend.backend()} backend, {args.jobs} at a time", flush=True)
    start = time.perf_counter()
    runs = []

    def save(total=None):  # after every run, so an interrupted grid keeps what it has
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"arguments": vars(args), "backend": keras.backend.backend(), "keras": keras.__version__,
                       "total_seconds": total, "command": " ".join(sys.argv), "runs": runs}, f, indent=1)

    def report(result):
        runs.append(result)
        save()
        print(f"[{len(runs)}/{len(configs)}] T={result['lag']:<4} {result['variant']:<10} seed {result['seed']}: "
              f"test MSE {result['test_mse']:.4f} {'ok  ' if result['success'] else 'fail'} "
              f"({result['seconds']:.0f}s; grad ratio {result['gradient_ratio_before']:.1e} -> "
              f"{result['gradient_ratio_after']:.1e}; radius {result['spectral_radius_after']:.2f})", flush=True)

    if args.jobs > 1:
        import concurrent.futures
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            # Longest runs first, results as they come: the pool stays busy to the end.
            futures = [pool.submit(run_one, c) for c in sorted(configs, key=lambda c: -c["lag"])]
            for future in concurrent.futures.as_completed(futures):
                report(future.result())
    else:
        for config in configs:
            report(run_one(config))
    total = time.perf_counter() - start

    title = (f"vanilla RNN ({args.units} units) on the adding problem, {args.steps} {args.optimizer} steps, "
             f"{args.seeds} seeds, {keras.backend.backend()} backend")
    save(total)
    table = summarize(runs, args.lags, args.variants)
    print(table)
    with open(os.path.join(args.out, "table.txt"), "w") as f:
        f.write(table + "\n")
    try:
        plot(runs, args.lags, args.variants, os.path.join(args.out, "success_rate.png"), title)
    except ImportError:
        print("matplotlib is not installed: no PNG (pip install matplotlib)")
    print(f"total {total:.0f}s; wrote {args.out}/results.json, table.txt, success_rate.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
