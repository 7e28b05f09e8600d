"""GPU: train-step time of `VanillaRNN` (JAX backend) against cuDNN's `torch.nn.RNN` and Keras `SimpleRNN`.

The GPU host has JAX and PyTorch but no TensorFlow (see ../shared/GPU.md), so rnnzoo runs there
from the source tree with `KERAS_BACKEND=jax`:

    KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false python bench/vanilla_rnn_gpu.py

Every model is `recurrent layer (tanh, return_sequences) -> Linear/Dense(16) at every step`,
softmax cross-entropy, one SGD step per call, float32 (TF32 off for PyTorch; JAX's default
matmul precision on the GPU is noted in the header). Keras models run `train_on_batch` under
`jit_compile=True`; PyTorch runs eager cuDNN. All run in one process, interleaved; the script
first checks on the GPU that the explicit BPTT gradient equals `jax.grad`, then prints median
milliseconds of 20 timed steps after warm-up and the ratio VanillaRNN / cuDNN.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rnnzoo  # noqa: E402
from rnnzoo import bptt  # noqa: E402

GPU_SHAPES = [(128, 128, 128, 512), (64, 512, 64, 256), (256, 64, 256, 1024), (1, 256, 64, 256)]
NUM_CLASSES = 16


def check_gradients():
    """Explicit BPTT equals `jax.grad` of the same forward on this device (float32, relative)."""
    rng = np.random.default_rng(0)
    B, T, D, H = 8, 32, 16, 64
    x, h0 = rng.normal(size=(B, T, D)), np.zeros((B, H))
    U, W, b = rng.normal(size=(D, H)) / 4, rng.normal(size=(H, H)) / 8, np.zeros(H)
    r = rng.normal(size=(B, T, H))
    args = [np.asarray(a, "float32") for a in (x, h0, U, W, b)]

    def loss(gradient):
        return lambda x, h0, U, W, b: (bptt.vanilla_rnn(x, h0, U, W, b, return_sequences=True,
                                                         gradient=gradient)[0] * r).sum()

    explicit = jax.grad(loss("bptt"), argnums=(0, 1, 2, 3, 4))(*args)
    auto = jax.grad(loss("autodiff"), argnums=(0, 1, 2, 3, 4))(*args)
    errors = [float(np.abs(e - a).max() / np.abs(a).max()) for e, a in zip(explicit, auto)]
    print(f"explicit BPTT vs jax.grad on {jax.devices()[0].device_kind}: max relative error {max(errors):.2e}")
    return max(errors)


def keras_model(kind, shape, unroll):
    batch, time_steps, features, units = shape
    keras.utils.set_random_seed(0)
    inputs = keras.Input((time_steps, features), batch_size=batch)
    if kind == "rnnzoo":
        h = rnnzoo.layers.VanillaRNN(units, return_sequences=True, unroll=unroll)(inputs)
    else:
        h = keras.layers.SimpleRNN(units, return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(h))
    model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    return lambda x, y: model.train_on_batch(x, y)


def torch_step(shape, device):
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    batch, time_steps, features, units = shape
    torch.manual_seed(0)
    rnn = torch.nn.RNN(features, units, nonlinearity="tanh", batch_first=True).to(device)
    head = torch.nn.Linear(units, NUM_CLASSES).to(device)
    optimizer = torch.optim.SGD(list(rnn.parameters()) + list(head.parameters()), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        logits = head(rnn(x)[0])
        loss = loss_fn(logits.reshape(-1, NUM_CLASSES), y.reshape(-1))
        loss.backward()
        optimizer.step()
        return loss

    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", help="B,T,D,H ...")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--unroll", type=int, default=8)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split(",")) for s in args.shapes] if args.shapes else GPU_SHAPES
    print(f"jax={jax.__version__} keras={keras.__version__} device={jax.devices()[0].device_kind} "
          f"jax_default_matmul_precision={jax.config.jax_default_matmul_precision} unroll={args.unroll}")
    check_gradients()
    torch = None
    if not args.no_torch:
        import torch
        print(f"torch={torch.__version__} cudnn={torch.backends.cudnn.version()}")
    device = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    print(f"{'B, T, D, H':<22} {'cuDNN fp32':>10} {'SimpleRNN':>10} {'VanillaRNN':>11} {'ratio vs cuDNN':>15} {'vs SimpleRNN':>13}")
    for shape in shapes:
        batch, time_steps, features, _ = shape
        rng = np.random.default_rng(0)
        x = rng.normal(size=(batch, time_steps, features)).astype("float32")
        y = rng.integers(0, NUM_CLASSES, size=(batch, time_steps)).astype("int32")
        runs = {"rnnzoo": (keras_model("rnnzoo", shape, args.unroll), (x, y)),
                "keras": (keras_model("keras", shape, args.unroll), (x, y))}
        sync = {"rnnzoo": lambda v: float(np.asarray(v)), "keras": lambda v: float(np.asarray(v))}
        if torch is not None:
            tx, ty = torch.tensor(x, device=device), torch.tensor(y, dtype=torch.long, device=device)
            runs["torch"] = (torch_step(shape, device), (tx, ty))
            sync["torch"] = lambda v: float(v.item())
        for name, (fn, data) in runs.items():
            for _ in range(args.warmup):
                sync[name](fn(*data))
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, (fn, data) in runs.items():
                start = time.perf_counter()
                sync[name](fn(*data))
                times[name].append(1000 * (time.perf_counter() - start))
        ms = {name: statistics.median(t) for name, t in times.items()}
        cudnn = ms.get("torch", float("nan"))
        print(f"{str(shape):<22} {cudnn:>10.2f} {ms['keras']:>10.2f} {ms['rnnzoo']:>11.2f} "
              f"{ms['rnnzoo'] / cudnn:>15.3f} {ms['rnnzoo'] / ms['keras']:>13.3f}", flush=True)


if __name__ == "__main__":
    main()
