"""Does the default run learn? Held-out accuracy gain of ``python -m rlvr.train`` per seed.

Runs the default configuration (tiny model, arith task, GRPO, vLLM rollouts) as a fresh process
per seed, and reports the held-out eval average at step 0, its best and final values, the gain,
and the wall seconds (process start to exit, model build excluded when cached) until the gain
first reached 15 points. The issue's target: >= 15 points within 5 minutes on 2 cores, median
of 3 seeds.

    python benchmarks/default_run.py [--seeds 0 1 2] [overrides ...]

Prints a table and writes it to results/default_run.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rlvr.reporting.provenance import footer, publish

REPO = Path(__file__).resolve().parents[1]
TARGET_GAIN = 0.15


def run_seed(seed: int, overrides: list[str], out: Path) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rlvr.train", f"seed={seed}", "logger=disabled",
                    f"hydra.run.dir={out}", "resume=never", *overrides], cwd=REPO, check=True,
                   env={**os.environ, "WANDB_MODE": "disabled"}, capture_output=True)
    wall = time.perf_counter() - start
    evals = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if "eval/average" in r]
    first = evals[0]["eval/average"]
    reached = [r for r in evals if r["eval/average"] - first >= TARGET_GAIN]
    startup = wall - evals[-1]["time/elapsed"]
    return {
        "seed": seed, "start": first, "final": evals[-1]["eval/average"],
        "best": max(r["eval/average"] for r in evals), "steps": evals[-1]["step"],
        "wall": wall,
        "to_target": startup + reached[0]["time/elapsed"] if reached else float("nan"),
        "target_step": reached[0]["step"] if reached else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default=str(REPO / "results" / "default_run.md"))
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_seed(s, overrides, Path(tmp) / f"seed{s}") for s in args.seeds]
    lines = [
        "Default `python -m rlvr.train` (tiny model, arith, GRPO, vLLM rollouts, "
        f"{os.cpu_count()} CPU cores): held-out eval average (mean avg@4 over arith levels 1-3).",
        "", "| seed | step 0 | best | final | gain (final) | steps | wall s (whole run) | "
        "s until +15 pts (step) |", "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['start']:.3f} | {r['best']:.3f} | {r['final']:.3f} | "
                     f"{r['final'] - r['start']:+.3f} | {r['steps']} | {r['wall']:.0f} | "
                     f"{r['to_target']:.0f} ({r['target_step']}) |")
    gains = [r["final"] - r["start"] for r in rows]
    lines += ["", f"Median gain {statistics.median(gains):+.3f}; median wall seconds "
              f"{statistics.median(r['wall'] for r in rows):.0f}; median seconds until +15 "
              f"points {statistics.median(r['to_target'] for r in rows):.0f}.", "",
              footer(" ".join(["python benchmarks/default_run.py --seeds",
                               *map(str, args.seeds), *overrides]))]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
