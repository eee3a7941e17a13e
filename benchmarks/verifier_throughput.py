"""Verifications per second of ``rlvr.rewards.score_batch`` on the machine's cores.

Workloads (each distinct gold answer twice, written as a model would, ``... \\boxed{}``: once
right, once the answer of another problem):

- ``gsm8k``: GSM8K test gold answers (integers), the typical training reward;
- ``math500``: MATH-500 gold answers (fractions, radicals, intervals, text), the typical eval;
- ``math500_training_batch``: a training-shaped batch, 8 rollouts per MATH-500 problem as a
  math model writes them (``training_batch``): the throughput a GRPO step needs;
- ``arith``: the embedded synthetic task's answers (no data files needed);
- ``symbolic``: distinct equivalent answers written differently (``2\\sqrt{2}`` vs
  ``\\sqrt{8}``), each of which goes to math-verify in the worker pool: the slow path.

Worker start-up is excluded (the pool is warmed first, as in training, where it persists).
Each workload is scored ``--repeats`` times, each time by fresh workers warmed up on answers of
other kinds (``WARM_UP``) and with an empty normalisation cache; the table gives the median
and the range (the cores may be shared).

    PYTHONPATH=. python benchmarks/verifier_throughput.py [--data-dir ../shared/data] [--workers 2]
        [--repeats 3]

Prints a table and writes it to results/verifier_throughput.md.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import time
from pathlib import Path

from rlvr.data.arith import train_set
from rlvr.data.benchmarks import load_benchmark
from rlvr.reporting.provenance import commit, footer, publish
from rlvr.rewards import score_batch
from rlvr.rewards.normalize import strip_formatting
from rlvr.rewards.pool import default_pool

REPO = Path(__file__).resolve().parents[1]
ROLLOUTS = 8


def _shifted(answer: str, by: int) -> str:
    """``answer`` with its first integer increased by ``by`` (else ``+by`` appended)."""
    number = re.search(r"(?<![\\a-zA-Z])\d+", answer)
    if number is None:
        return f"{answer}+{by}"
    return f"{answer[:number.start()]}{int(number.group()) + by}{answer[number.end():]}"


def training_batch(answers: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """``ROLLOUTS`` completions per problem, in the mix of a policy that solves about half:
    the right answer boxed (twice, identical, as agreeing rollouts are), in a final-answer
    sentence and in an answer sentence with words; the answer off by one and by two; another
    problem's answer; and a completion cut off by the token limit."""
    completions, references = [], []
    for i, answer in enumerate(answers):
        work = f"We have {rng.randint(2, 99)} + {rng.randint(2, 99)}, and simplifying,"
        completions += [f"{work} the answer is $\\boxed{{{answer}}}$.",
                        f"{work} the answer is $\\boxed{{{answer}}}$.",
                        f"{work}\nFinal Answer: The final answer is ${answer}$. I hope it is "
                        "correct.",
                        f"{work} so the answer is ${answer}$ in total.",
                        f"{work} the answer is $\\boxed{{{_shifted(answer, 1)}}}$.",
                        f"{work} the answer is $\\boxed{{{_shifted(answer, 2)}}}$.",
                        f"{work} the answer is $\\boxed{{{answers[(i + 7) % len(answers)]}}}$.",
                        f"{work} so we substitute {rng.randint(2, 9)} into the"]
        references += [answer] * ROLLOUTS
    return completions, references


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
        out["math500_training_batch"] = training_batch(
            [p.answer for p in load_benchmark("math500", "test", data_dir)], rng)
    out["arith"] = _pairs([p.answer for p, _ in train_set([1, 2, 3], size, seed=0,
                                                          eval_size=10)], rng)
    symbolic = symbolic_pairs(size // 10)
    out["symbolic"] = ([f"so \\boxed{{{p}}}" for _, p in symbolic], [r for r, _ in symbolic])
    return out


# answers of kinds none of the workloads holds, to warm fresh workers up as earlier training
# steps would (lazy imports and parser paths), without caching any answer that is measured
WARM_UP = [("\\begin{pmatrix}1&9\\\\2&7\\end{pmatrix}", "\\begin{pmatrix}1&9\\\\2&8\\end{pmatrix}"),
           ("[3,11)", "(3,11]"), ("(-\\infty,13]\\cup[17,\\infty)", "x\\le13"),
           ("(t+19)^2", "t^2+38t+361"), ("\\frac{\\sqrt{23}}{29}", "\\sqrt{\\frac{23}{841}}"),
           ("\\{31,37\\}", "\\{37,31\\}"), ("41-43i", "(41-43i)"),
           ("47^\\circ", "\\frac{47\\pi}{180}"),
           ("y=53x-59", "53x-59"), ("\\pi/61", "\\frac{\\pi}{61}"), ("67\\%", "0.67"),
           ("\\sqrt[3]{71}", "71^{1/3}")]


def _fresh_warm_pool(workers: int) -> None:
    """Start new symbolic workers (nothing cached in them), warm them up on ``WARM_UP``;
    forget the in-process normalisation cache."""
    default_pool(workers).close()
    score_batch([f"\\boxed{{{p}}}" for _, p in WARM_UP], [r for r, _ in WARM_UP],
                workers=workers)
    strip_formatting.cache_clear()


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc); 0.0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(completions: list[str], references: list[str], workers: int,
            repeats: int) -> tuple[list[float], list[float], float]:
    """(checks per wall-clock second of each of ``repeats`` ``score_batch`` calls, checks per
    second each would take on ``workers`` + 1 idle cores, fraction scored 1.0). Each call runs
    on fresh warmed-up workers with an empty normalisation cache, so nothing is answered from
    a cache across calls. The idle-core figure is checks / (this process's CPU seconds +
    the workers' CPU seconds / ``workers``): what the call costs, whoever else shares the
    cores."""
    rates, idle_rates = [], []
    for _ in range(repeats):
        _fresh_warm_pool(workers)
        pids = default_pool(workers).worker_pids
        cpu_before = [_cpu_seconds(pid) for pid in pids]
        start, own_start = time.perf_counter(), time.process_time()
        scores = score_batch(completions, references, workers=workers)
        wall, own = time.perf_counter() - start, time.process_time() - own_start
        spent = sum(_cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before,
                                                                       strict=True))
        rates.append(len(completions) / wall)
        idle_rates.append(len(completions) / (own + max(spent, 0.0) / workers))
    return rates, idle_rates, sum(scores) / len(scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results" / "verifier_throughput.md"))
    args = parser.parse_args()
    data_dir = args.data_dir if Path(args.data_dir).is_dir() else None
    load = os.getloadavg()[0]  # the cores are shared: other processes slow the workers
    lines = [f"Verifications per second of `score_batch`, {os.cpu_count()} cores (load average "
             f"{load:.1f} at the start), {args.workers} symbolic workers (fresh and warmed up for "
             f"each call), median and range of {args.repeats} calls per workload, commit "
             f"{commit()}.", "",
             "| workload | checks | checks/s (median) | range | checks/s on idle cores "
             "(median, from CPU time) | fraction correct |", "|---|---|---|---|---|---|"]
    for name, (completions, references) in workloads(data_dir, args.size).items():
        rates, idle, correct = measure(completions, references, args.workers, args.repeats)
        lines.append(f"| {name} | {len(completions)} | {statistics.median(rates):,.0f} | "
                     f"{min(rates):,.0f}-{max(rates):,.0f} | {statistics.median(idle):,.0f} | "
                     f"{correct:.3f} |")
        print(lines[-1], flush=True)
    lines += ["", footer("PYTHONPATH=. python benchmarks/verifier_throughput.py"
                         + (" --data-dir ../shared/data" if data_dir else ""))]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
