"""float32 vs bfloat16 mixed precision on the tiny model: step time, accuracy and entropy curves.

Runs the default configuration (tiny model, arith, GRPO, vLLM rollouts) for ``--steps`` steps per
seed, once with ``model.dtype=float32`` and once with ``model.dtype=bfloat16`` (float32 master
weights and AdamW state, forward/backward under autocast, vLLM sampling in bfloat16), each as a
fresh process, without periodic evaluation. Accuracy is the training rollouts' mean reward (the
fraction verified correct), entropy the learner's mean token entropy of those rollouts.

    python benchmarks/mixed_precision.py [--seeds 0 1 2] [--steps 50] [overrides ...]

Writes results/mixed_precision.md (table, commit and command) and results/mixed_precision.png
(curves: mean over seeds, band = min..max over seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rlvr.reporting import provenance
from rlvr.reporting.stats import welch_difference

REPO = Path(__file__).resolve().parents[1]
DTYPES = ("float32", "bfloat16")
CURVES = {"adv/reward_mean": "accuracy (train reward)", "train/entropy": "entropy (nats/token)"}
TIMES = ("time/step", "time/generate", "time/update", "time/sync")
TAIL = 10


def run(dtype: str, seed: int, steps: int, overrides: list[str], out: Path) -> list[dict]:
    """The per-step metrics of one training run."""
    subprocess.run([sys.executable, "-m", "rlvr.train", f"seed={seed}", f"model.dtype={dtype}",
                    f"total_steps={steps}", "eval.benchmarks=[]", "checkpoint_every=0",
                    "logger=disabled", "resume=never", f"hydra.run.dir={out}", *overrides],
                   cwd=REPO, check=True, env={**os.environ, "WANDB_MODE": "disabled"},
                   capture_output=True)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "train/entropy" in r]


def _tail_means(runs: list[list[dict]], key: str) -> list[float]:
    """Per seed: the mean of ``key`` over the last TAIL steps."""
    return [statistics.fmean(r[key] for r in rows[-TAIL:]) for rows in runs]


def plot(results: dict[str, list[list[dict]]], path: Path, command: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVES), figsize=(11, 4))
    for ax, (key, label) in zip(axes, CURVES.items(), strict=True):
        for dtype, runs in results.items():
            steps = [r["step"] for r in runs[0]]
            per_step = list(zip(*[[r[key] for r in rows] for rows in runs], strict=True))
            ax.plot(steps, [statistics.fmean(v) for v in per_step], label=dtype)
            ax.fill_between(steps, [min(v) for v in per_step], [max(v) for v in per_step],
                            alpha=0.25)
        ax.set_xlabel("step")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"tiny model, {len(next(iter(results.values())))} seeds: float32 vs "
                 "bfloat16 mixed precision (mean, band = min..max over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=provenance.png_metadata(command))


def table(results: dict[str, list[list[dict]]], command: str, seeds: list[int]) -> str:
    lines = [
        f"float32 vs bfloat16 mixed precision (float32 master weights and AdamW state, autocast "
        f"compute, vLLM in bfloat16): tiny model, arith, GRPO, vLLM rollouts, {os.cpu_count()} "
        f"CPU cores, seeds {seeds}.", "",
        "Median seconds per step (steps 2 onward; all seeds):", "",
        "| dtype | " + " | ".join(t.split("/")[1] for t in TIMES) + " |",
        "|---|" + "---|" * len(TIMES),
    ]
    for dtype, runs in results.items():
        cells = [statistics.median(r[t] for rows in runs for r in rows[1:]) for t in TIMES]
        lines.append(f"| {dtype} | " + " | ".join(f"{c:.3f}" for c in cells) + " |")
    lines += ["", f"Mean over the last {TAIL} steps, per seed, then mean ± sd over seeds; the "
              "difference bfloat16 - float32 with its 95 % Welch interval "
              "(rlvr/reporting/stats.py); within seed noise when the interval contains 0:", "",
              "| metric | float32 | bfloat16 | difference [95 % interval] | within noise |",
              "|---|---|---|---|---|"]
    for key, label in CURVES.items():
        a, b = (_tail_means(results[d], key) for d in DTYPES)
        sd_a, sd_b = (statistics.stdev(v) if len(v) > 1 else 0.0 for v in (a, b))
        diff = welch_difference(b, a)
        interval = "- (one seed)" if diff is None else \
            f"{diff.estimate:+.3f} [{diff.low:+.3f}, {diff.high:+.3f}]"
        noise = "-" if diff is None else "yes" if diff.low <= 0 <= diff.high else "no"
        lines.append(f"| {label} | {statistics.fmean(a):.3f} ± {sd_a:.3f} | "
                     f"{statistics.fmean(b):.3f} ± {sd_b:.3f} | {interval} | {noise} |")
    lines += ["", "![curves](mixed_precision.png)", "", provenance.footer(command)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "mixed_precision.md")
    args, overrides = parser.parse_known_args()
    results: dict[str, list[list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in DTYPES:
            results[dtype] = [run(dtype, s, args.steps, overrides, Path(tmp) / f"{dtype}-{s}")
                              for s in args.seeds]
            print(f"{dtype}: done", flush=True)
    command = " ".join(["python benchmarks/mixed_precision.py --seeds", *map(str, args.seeds),
                        "--steps", str(args.steps), *overrides])
    text = table(results, command, args.seeds)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    plot(results, args.out.with_suffix(".png"), command)


if __name__ == "__main__":
    main()
