"""Heatmap of a finished beta_pos x beta_neg sweep (AsymGRPO Fig. 4(d)).

    python -m rlvr.train -m experiment=beta_grid            # or any sweep over the two betas
    python scripts/beta_heatmap.py runs/beta_grid [--metric eval/average] [--select final]

Reads every run directory below the sweep directory that holds a summary, takes beta_pos and
beta_neg from the run's resolved config (config.yaml, written by rlvr/run_dir.py once the run
directory is checked), and plots the chosen
evaluation metric (mean over seeds). Writes <sweep>/beta_heatmap.png and .csv, or --out.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import defaultdict
from pathlib import Path

import yaml

from rlvr.reporting.collect import RunRecords, is_finished
from rlvr.reporting.provenance import png_metadata
from rlvr.run_dir import CONFIG_FILE


def sweep_cells(root: Path, metric: str, selection: str) -> dict[tuple[float, float], list[float]]:
    """{(beta_pos, beta_neg): [metric per seed]} over the finished runs under ``root``."""
    cells: dict[tuple[float, float], list[float]] = defaultdict(list)
    for config in sorted(root.rglob(CONFIG_FILE)):
        run_dir = config.parent
        if not is_finished(run_dir):
            continue
        algorithm = yaml.safe_load(config.read_text())["algorithm"]
        if algorithm.get("beta_pos") is None or algorithm.get("beta_neg") is None:
            continue
        chosen = RunRecords.load(run_dir).selected_eval(selection)
        cells[(float(algorithm["beta_pos"]), float(algorithm["beta_neg"]))].append(chosen[metric])
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    parser.add_argument("--metric", default="eval/average")
    parser.add_argument("--select", default="final", help="final or best:<metric>")
    parser.add_argument("--out", type=Path, help="default: <sweep>/beta_heatmap.png")
    args = parser.parse_args()
    cells = sweep_cells(args.sweep, args.metric, args.select)
    if not cells:
        raise SystemExit(f"no finished runs with beta_pos and beta_neg under {args.sweep}")
    pos = sorted({p for p, _ in cells})
    neg = sorted({n for _, n in cells})
    grid = [[sum(cells[(p, n)]) / len(cells[(p, n)]) if (p, n) in cells else float("nan")
             for p in pos] for n in neg]

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = args.out or args.sweep / "beta_heatmap.png"
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    image = ax.imshow(grid, origin="lower", cmap="viridis")
    ax.set_xticks(range(len(pos)), [f"{p:g}" for p in pos])
    ax.set_yticks(range(len(neg)), [f"{n:g}" for n in neg])
    ax.set_xlabel("beta_pos")
    ax.set_ylabel("beta_neg")
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            ax.text(j, i, f"{100 * value:.1f}", ha="center", va="center", fontsize=7,
                    color="white")
    fig.colorbar(image, ax=ax, label=f"{args.metric} ({args.select})")
    ax.set_title(f"AsymGRPO beta grid: {args.sweep.name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=120, metadata=png_metadata(
        " ".join(["python scripts/beta_heatmap.py", *sys.argv[1:]])))
    with out.with_suffix(".csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["beta_pos", "beta_neg", "seeds", args.metric])
        for (p, n), values in sorted(cells.items()):
            writer.writerow([p, n, len(values), sum(values) / len(values)])
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
