"""Verifications per second of ``rlvr.rewards.score_batch`` on the machine's cores.

Workloads (each distinct gold answer twice, written as a model would, ``... \\boxed{}``: once
right, once the answer of another problem):

- ``gsm8k``: GSM8K test gold answers (integers), the typical training reward;
- ``math500``: MATH-500 gold answers (fractions, radicals, intervals, text), the typical eval;
- ``arith``: the embedded synthetic task's answers (no data files needed);
- ``symbolic``: distinct equivalent answers written differently (``2\\sqrt{2}`` vs
  ``\\sqrt{8}``), each of which goes to math-verify in the worker pool: the slow path.

Worker start-up is excluded (the pool is warmed first, as in training, where it persists).

    python benchmarks/verifier_throughput.py [--data-dir ../shared/data] [--workers 2]

Prints a table and writes it to results/verifier_throughput.md.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

from rlvr.data.arith import train_set
from rlvr.data.benchmarks import load_benchmark
from rlvr.reporting.provenance import footer
from rlvr.rewards import score_batch

REPO = Path(__file__).resolve().parents[1]
def symbolic_pairs(size: int) -> list[tuple[str, str]]:
    """Distinct (reference, predicted) pairs, equal in value but written differently, so that
    every one goes to math-verify: the slow path."""
    families = [
        lambda k: (f"{2 * k}\\sqrt{{2}}", f"\\sqrt{{{8 * k * k}}}"),
        lambda k: (f"(x+{k})^2", f"x^2+{2 * k}x+{k * k}"),
        lambda k: (f"\\frac{{\\pi}}{{{k + 1}}}", f"\\pi/{k + 1}"),
        lambda k: (f"\\frac{{{k}}}{{\\sqrt{{2}}}}", f"\\frac{{{k}\\sqrt{{2}}}}{{2}}"),
    ]
    return [families[i % len(families)](i // len(families) + 1) for i in range(size)]


def _pairs(answers: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Each distinct answer twice, written as a model would: once right, once replaced by the
    answer of another problem (which may coincide, hence a fraction correct a bit over 0.5)."""
    answers = list(dict.fromkeys(answers))
    completions, references = [], []
    for i, answer in enumerate(answers):
        for written in (answer, answers[(i + 7) % len(answers)]):
            completions.append(f"Step by step: {rng.randint(2, 99)} + {rng.randint(2, 99)} ... "
                               f"so the answer is \\boxed{{{written}}}.")
            references.append(answer)
    return completions, references


def workloads(data_dir: str | None, size: int) -> dict[str, tuple[list[str], list[str]]]:
    rng = random.Random(0)
    out = {}
    if data_dir:
        for name in ("gsm8k", "math500"):
            out[name] = _pairs([p.answer for p in load_benchmark(name, "test", data_dir)], rng)
    out["arith"] = _pairs([p.answer for p, _ in train_set([1, 2, 3], size, seed=0,
                                                          eval_size=10)], rng)
    symbolic = symbolic_pairs(size // 10)
    out["symbolic"] = ([f"so \\boxed{{{p}}}" for _, p in symbolic], [r for r, _ in symbolic])
    return out


def measure(completions: list[str], references: list[str], workers: int) -> tuple[float, float]:
    """(checks per second, fraction scored 1.0) of one pass: the pairs are distinct, so
    nothing is answered from a cache."""
    start = time.perf_counter()
    scores = score_batch(completions, references, workers=workers)
    return len(completions) / (time.perf_counter() - start), sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", default=str(REPO / "results" / "verifier_throughput.md"))
    args = parser.parse_args()
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    score_batch(["\\boxed{2\\sqrt{2}}"], ["\\sqrt{8}"], workers=args.workers)  # warm the pool
    lines = [f"Verifications per second of `score_batch`, {os.cpu_count()} cores, "
             f"{args.workers} symbolic workers (warm), one pass over distinct pairs.", "",
             "| workload | checks | checks/s | fraction correct |", "|---|---|---|---|"]
    for name, (completions, references) in workloads(data_dir, args.size).items():
        rate, correct = measure(completions, references, args.workers)
        lines.append(f"| {name} | {len(completions)} | {rate:,.0f} | {correct:.3f} |")
        print(lines[-1], flush=True)
    lines += ["", footer("python benchmarks/verifier_throughput.py"
                     + (" --data-dir ../shared/data" if data_dir else ""))]
    table = "\n".join(lines)
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
