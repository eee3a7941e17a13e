"""Plot AsymGRPO's prompt-level gradient pressure (arXiv 2604.04894, Fig. 1 / Proposition 2).

    M+(p) = p * A+(p)         = p^(1 - beta_pos) (1 - p)^beta_pos,   peak at p* = 1 - beta_pos
    M-(p) = (1 - p) * |A-(p)| = p^beta_neg (1 - p)^(1 - beta_neg),  peak at p* = beta_neg

with the advantage channels A+(p), A-(p) taken from ``rlvr.algorithms.advantages`` (v1
exponents: GRPO is beta = 0.5). Usage:

    python scripts/plot_gradient_pressure.py --beta-pos 0 0.5 0.9 --beta-neg 0 0.4 0.5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import torch

from rlvr.algorithms.advantages import asym_negative, asym_positive
from rlvr.reporting.provenance import png_metadata


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beta-pos", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 0.9],
                        help="positive-channel exponents (v1 parameterisation)")
    parser.add_argument("--beta-neg", type=float, nargs="+", default=[0.0, 0.25, 0.4, 0.5, 0.75],
                        help="negative-channel exponents (v1 parameterisation)")
    parser.add_argument("--points", type=int, default=1001, help="grid points on p in [0, 1]")
    parser.add_argument("--out", type=Path, default=Path("results/gradient_pressure.png"))
    args = parser.parse_args(argv)
    for key in ("beta_pos", "beta_neg"):
        bad = [b for b in getattr(args, key) if b < 0]
        if bad:
            parser.error(f"{key} must be >= 0, got {bad}")
    if args.points < 3:
        parser.error(f"points must be >= 3, got {args.points}")
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    p = torch.linspace(0.0, 1.0, args.points, dtype=torch.float64)
    fig, (ax_pos, ax_neg) = plt.subplots(1, 2, figsize=(12, 4.5))
    for beta in args.beta_pos:
        pressure = p * asym_positive(p, beta)
        line = ax_pos.plot(p, pressure, label=f"beta_pos = {beta:g}")[0]
        if beta <= 1:
            ax_pos.axvline(1 - beta, color=line.get_color(), linestyle=":", linewidth=0.8)
    for beta in args.beta_neg:
        pressure = (1 - p) * asym_negative(p, beta).abs()
        line = ax_neg.plot(p, pressure, label=f"beta_neg = {beta:g}")[0]
        if beta <= 1:
            ax_neg.axvline(beta, color=line.get_color(), linestyle=":", linewidth=0.8)
    ax_pos.set_title("M+(p) = p A+(p), peak at p = 1 - beta_pos (dotted)")
    ax_neg.set_title("M-(p) = (1-p) |A-(p)|, peak at p = beta_neg (dotted)")
    for ax in (ax_pos, ax_neg):
        ax.set_xlabel("group accuracy p")
        ax.set_ylabel("gradient pressure")
        ax.set_xlim(0, 1)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("AsymGRPO Proposition 2 (v1 exponents; GRPO = 0.5, REINFORCE = 0)")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python scripts/plot_gradient_pressure.py", *(argv or sys.argv[1:])])
    fig.savefig(args.out, dpi=150, metadata=png_metadata(command))
    plt.close(fig)
    print(f"wrote {args.out}")
    return args.out


if __name__ == "__main__":
    main()
