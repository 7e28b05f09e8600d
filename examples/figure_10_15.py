"""Figure 10.15 of the Deep Learning book: repeated composition of a tanh layer.

    python examples/figure_10_15.py --out figure_10_15.png     # a few seconds

A 100-unit transition h -> tanh(W h + b), W with i.i.d. N(0, gain^2 / 100) entries (gain 3
by default, the chaotic regime), is composed 0..5 times (--depths). The initial state moves
along a random direction d, h(0) = s d with s in [-50, 50], and the y axis is the projection
of the result on a random unit vector. Expected picture: depth 0 is a straight line, depth 1
a tanh-like curve, and each further composition adds alternations: flat almost everywhere
with a few steep places. The script also prints, per depth, the median and the largest
|slope| of the curve and its number of turns. With the defaults (seed 0): the largest slope
grows from 0.22 (one composition) to 8.4 (five) and the turns from 2 to 16, while the median
|slope| stays near 0.01 -- tiny derivatives almost everywhere, huge ones in a few places,
the picture of section 10.7.

Options: --units, --gain, --depths, --points, --extent, --seed, --out.
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from rnnzoo import diagnostics  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100)
    parser.add_argument("--gain", type=float, default=3.0)
    parser.add_argument("--depths", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--points", type=int, default=2001)
    parser.add_argument("--extent", type=float, default=50.0, help="s runs over [-extent, extent]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="figure_10_15.png")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    W = rng.normal(scale=args.gain / np.sqrt(args.units), size=(args.units, args.units)).astype("float32")
    b = np.zeros(args.units, "float32")
    direction = rng.normal(size=args.units)
    direction = (direction / np.linalg.norm(direction)).astype("float32")
    projection = rng.normal(size=args.units)
    projection = (projection / np.linalg.norm(projection)).astype("float32")
    coordinates = np.linspace(-args.extent, args.extent, args.points, dtype="float32")

    curves = diagnostics.composition_cross_section(coordinates, W, b, direction, projection, max(max(args.depths), 1))
    spacing = coordinates[1] - coordinates[0]
    print(f"W: {args.units} units, gain {args.gain}, spectral radius {diagnostics.spectral_radius(W):.2f}")
    print(f"{'depth':>5}  {'median |slope|':>14}  {'max |slope|':>11}  {'turns':>5}")
    for k in args.depths:
        slope = np.abs(np.diff(curves[k])) / spacing
        turns = int(np.sum(np.diff(np.sign(np.diff(curves[k]))) != 0))
        print(f"{k:>5}  {np.median(slope):14.3g}  {slope.max():11.3g}  {turns:>5}")
    diagnostics.plot_cross_section(coordinates, {k: curves[k] for k in args.depths}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
