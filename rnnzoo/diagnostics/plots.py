"""Plots of the diagnostics (matplotlib, the `plots` extra, imported only when plotting)."""

import numpy as np


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib: `pip install rnnzoo[plots]` (or `pip install matplotlib`)."
        ) from None
    return plt


def plot_gradient_decay(decay, path, title=None):
    """Writes a PNG: `||grad_h(t) L||` and `||dh(tau)/dh(t)||` against `tau - t`, log scale.

    Args:
        decay: a `GradientDecay` (from `gradient_decay`).
        path: str, where to write the PNG.
        title: optional str.

    Returns:
        `path`.
    """
    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    k = decay.distance
    left.semilogy(k, decay.gradient_norm_per_example.T, color="tab:blue", alpha=0.15, linewidth=0.8)
    left.semilogy(k, decay.gradient_norm, color="tab:blue", linewidth=2, label="||grad_h(t) L|| (batch mean)")
    if decay.jacobian_norm is not None:
        scale = decay.gradient_norm[0]
        left.semilogy(k, scale * decay.jacobian_norm, color="tab:orange", linestyle="--",
                      label="||grad_h(tau) L|| x ||dh(tau)/dh(t)||_2")
    left.set_xlabel("tau - t (steps back from the loss)")
    left.set_ylabel("gradient norm")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)
    values = decay.eigenvalues
    circle = np.linspace(0, 2 * np.pi, 200)
    right.plot(np.cos(circle), np.sin(circle), color="gray", linewidth=0.8)
    right.scatter(values.real, values.imag, s=12)
    right.set_aspect("equal")
    right.set_title(f"eigenvalues of W, spectral radius {decay.spectral_radius:.3f}", fontsize=10)
    right.set_xlabel("Re lambda")
    right.set_ylabel("Im lambda")
    figure.suptitle(title or f"gradient decay ({decay.loss_name} loss {decay.loss:.4f})")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_cross_section(coordinates, curves, path, title=None):
    """Writes the PNG of figure 10.15: one curve per number of compositions.

    Args:
        coordinates: `(points,)`, the x axis.
        curves: `(depth + 1, points)` from `composition_cross_section`; `{k: curve}` also works.
        path: str.
    """
    plt = _pyplot()
    items = curves.items() if isinstance(curves, dict) else enumerate(curves)
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for k, curve in items:
        axes.plot(coordinates, curve, label=str(k), linewidth=1.2)
    axes.set_xlabel("input coordinate")
    axes.set_ylabel("projection of output")
    axes.legend(title="compositions", fontsize=8)
    axes.set_title(title or "Repeated composition of a tanh layer (Deep Learning, fig. 10.15)", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


__all__ = ["plot_gradient_decay", "plot_cross_section"]
