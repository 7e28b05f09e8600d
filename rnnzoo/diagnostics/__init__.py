"""Long-term-dependency diagnostics (Deep Learning, section 10.7).

- `gradient_decay`: `||grad_h(t) L||` against the distance `tau - t`, from the explicit BPTT
  of `rnnzoo.bptt` (no extra autodiff pass), with the Jacobian-product norms and W's spectrum;
- `eigenvalues`, `spectral_radius`, `linear_recurrence`, `jacobian_products`,
  `jacobian_norms`: the eigenvalue argument of eqs. 10.36-10.39;
- `composition_cross_section`: figure 10.15;
- `plot_gradient_decay`, `plot_cross_section`: PNGs (matplotlib, imported lazily).

Backend-agnostic `keras.ops`; results come back as NumPy arrays.
"""

from rnnzoo.diagnostics.composition import composition_cross_section
from rnnzoo.diagnostics.gradient_decay import GradientDecay, find_vanilla_rnn, format_table, gradient_decay
from rnnzoo.diagnostics.plots import plot_cross_section, plot_gradient_decay
from rnnzoo.diagnostics.spectrum import (
    eigenvalues,
    jacobian_norms,
    jacobian_products,
    linear_recurrence,
    spectral_radius,
)

__all__ = [
    "GradientDecay",
    "composition_cross_section",
    "eigenvalues",
    "find_vanilla_rnn",
    "format_table",
    "gradient_decay",
    "jacobian_norms",
    "jacobian_products",
    "linear_recurrence",
    "plot_cross_section",
    "plot_gradient_decay",
    "spectral_radius",
]
