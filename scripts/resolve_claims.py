"""Train what the papers' claims need, adding seeds until every claim resolves or the budget ends.

    make claims                                       # tiny profile, 60 min, 2 workers
    python scripts/resolve_claims.py --profile tiny --budget-min 60 --workers 2

Round 1 trains every row the claims compare (rlvr/reporting/claims.py ``CLAIMS``) for
``--start-seeds`` seeds; each later round adds ``--add-seeds`` seeds to the rows of the claims
still ``unresolved`` (or with one seed), up to ``--max-seeds``. The rows are trained as their
run groups (rlvr/reporting/claim_runs.py): rows of one configuration train once, rows no claim
evaluates train without evaluation, LoRA rows sync merged weights. Runs are trained by
``scripts/reproduce.py <table> --rows ... --seeds ... <the group's overrides>`` into ``--runs``
(``runs/claims`` by default, apart from the tables' runs; tables of the runs go to
``<runs>/_tables/``, never to results/), ``--workers`` at a time, worker w on core w
(``VLLM_CPU_OMP_THREADS_BIND=w``, one thread each, with the AVX2 kernel pins of
``rlvr.reporting.machine.AVX2_PIN``), each run dealt to the core with the least work so far (a
run without evaluation counts half). A round starts only when its runs, at the core-minutes
per run measured so far (``--minutes-per-run`` before any; ``round_minutes``), fit in what is
left of the budget. Then it writes the claims table
(``rlvr.reporting.claims_report``) over every trained seed to ``--out``, with the seeds per
row, the rounds, whether every claim resolved or the budget ran out, how the runs were trained
with the command that re-derives one of them, and ``Wall time: N min on <workers> cores``.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rlvr.reporting.claim_runs import (
    NO_EVALUATION,
    RowKey,
    RunGroup,
    group_of,
    run_dir,
    run_groups,
)
from rlvr.reporting.claims import CLAIMS
from rlvr.reporting.claims_report import claims_table
from rlvr.reporting.collect import is_finished
from rlvr.reporting.machine import AVX2_PIN
from rlvr.reporting.provenance import footer

REPO = Path(__file__).resolve().parents[1]
RESOLVED_LABELS = ("shown", "contradicted", "equivalent")


@dataclass(frozen=True)
class Job:
    """One reproduce.py call: a table's rows for some seeds, with the claims' ``overrides`` of
    their run group (``rlvr.reporting.claim_runs``)."""

    table: str
    rows: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[str, ...] = ()

    @property
    def runs(self) -> int:
        return len(self.rows) * len(self.seeds)


def is_resolved(label: str) -> bool:
    return label.startswith(RESOLVED_LABELS)


def wanted_seeds(current: dict[tuple[str, str], int], labels: dict[int, str], add: int,
                 limit: int) -> dict[tuple[str, str], int]:
    """Seeds per (table, row) for the next round: the rows of each claim not yet resolved
    (``labels``: claim index -> verdict label) get ``add`` more, up to ``limit``."""
    out = dict(current)
    for i, claim in enumerate(CLAIMS):
        if is_resolved(labels[i]):
            continue
        for row in (claim.row, claim.baseline):
            key = (claim.table, row)
            out[key] = min(limit, max(out.get(key, 0), current.get(key, 0) + add))
    return out


def jobs_for(profile: str, runs_root: Path, seeds: dict[RowKey, int],
             groups: list[RunGroup]) -> list[Job]:
    """The reproduce.py calls that train the runs not finished yet: per run group the most seeds
    any of its rows wants, trained as its first row with the group's overrides; calls grouped
    per table, seed set and overrides."""
    wanted: dict[RunGroup, int] = {}
    for key, count in seeds.items():
        group = group_of(groups, key)
        wanted[group] = max(wanted.get(group, 0), count)
    missing: dict[tuple[str, tuple[int, ...], tuple[str, ...]], list[str]] = {}
    for group, count in sorted(wanted.items(), key=lambda item: item[0].trained):
        todo = tuple(s for s in range(count)
                     if not any(is_finished(run_dir(runs_root, profile, m, s))
                                for m in group.members))
        if todo:
            table, row = group.trained
            missing.setdefault((table, todo, group.overrides), []).append(row)
    return [Job(t, tuple(rows), s, o) for (t, s, o), rows in missing.items()]


def split(jobs: list[Job], workers: int) -> list[list[Job]]:
    """Jobs one run each (table, row, seed), each dealt to the queue with the least work so far,
    the longest first: a run without evaluation counts half (``run_weight``)."""
    singles = [Job(j.table, (row,), (seed,), j.overrides)
               for j in jobs for row in j.rows for seed in j.seeds]
    queues: list[list[Job]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for job in sorted(singles, key=run_weight, reverse=True):
        w = loads.index(min(loads))
        queues[w].append(job)
        loads[w] += run_weight(job)
    return queues


def run_weight(job: Job) -> float:
    """A run's work relative to one with evaluation: about half without (a tiny_lownoise run's
    eleven evaluations take about as long as its 50 steps)."""
    return 0.5 if set(NO_EVALUATION) <= set(job.overrides) else 1.0


def run_queues(queues: list[list[Job]], profile: str, runs_root: Path,
               launch: Callable[[list[str], dict[str, str]], subprocess.Popen]) -> None:
    """Run each queue on its own core, the queues in parallel; raise if a run fails."""
    procs = []
    for core, queue in enumerate(queues):
        if not queue:
            continue
        env = {**os.environ, **AVX2_PIN, "OMP_NUM_THREADS": "1",
               "VLLM_CPU_OMP_THREADS_BIND": str(core), "PYTHONPATH": str(REPO)}
        script = " && ".join(shlex.join([
            sys.executable, str(REPO / "scripts" / "reproduce.py"), job.table, "--profile",
            profile, "--rows", *job.rows, "--seeds", *map(str, job.seeds), "--runs",
            str(runs_root), "--out", str(runs_root / "_tables" / job.table), *job.overrides])
            for job in queue)
        procs.append(launch(["bash", "-c", script], env))
    failed = [p.args for p in procs if p.wait() != 0]
    if failed:
        raise SystemExit(f"error: a training run failed: {failed[0][-1][:300]}")


def round_minutes(runs: int, workers: int, elapsed_min: float, trained: int,
                  default_run_min: float) -> float:
    """Wall minutes a round of ``runs`` takes on ``workers`` cores: each run takes one core for
    the minutes the runs so far took (``elapsed_min`` on ``workers`` cores over ``trained``
    runs; ``default_run_min`` before any), the cores taking ceil(runs / workers) runs each."""
    run_min = elapsed_min * workers / trained if trained else default_run_min
    return run_min * math.ceil(runs / workers)


def trained_as(groups: list[RunGroup], profile: str, runs_root: Path) -> str:
    """How the claims' runs were trained (rlvr/reporting/claim_runs.py), and the command that
    re-derives one of them."""
    parts = [f"{g.describe()}: {' '.join(g.overrides) or 'as the table'}" for g in groups]
    first = next(g for g in groups if not g.overrides)
    table, row = first.trained
    check = shlex.join(["python", "scripts/reproduce.py", table, "--profile", profile, "--runs",
                        str(runs_root), "--out", str(runs_root / "_tables" / table), "--check",
                        row, "0"])
    return (f"Runs (under `{runs_root}`, the profile's overrides and these): "
            f"{'; '.join(parts)}. Re-derive one (pinned as above): `{check}`.")


def _launch(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", choices=["tiny", "tiny_lownoise", "demo"])
    parser.add_argument("--runs", default=str(REPO / "runs" / "claims"),
                        help="a runs root of the claims' own (rlvr/reporting/claim_runs.py)")
    parser.add_argument("--budget-min", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--start-seeds", type=int, default=3)
    parser.add_argument("--add-seeds", type=int, default=3)
    parser.add_argument("--max-seeds", type=int, default=30)
    parser.add_argument("--minutes-per-run", type=float, default=3.1,
                        help="minutes one run takes on one core before a run of this call is "
                             "measured (3.1: a tiny run on a shared core)")
    parser.add_argument("--out", help="default: results/claims_<profile>.md")
    args = parser.parse_args()
    # the runs train under the AVX2 pins; this process too, so that its footer names them
    os.environ.update(AVX2_PIN)
    runs_root = Path(args.runs)
    started = time.perf_counter()
    groups = run_groups(args.profile)
    labels = {i: "not run" for i in range(len(CLAIMS))}
    seeds: dict[tuple[str, str], int] = {}
    rounds, trained, stop = 0, 0, "every claim resolved"
    while True:
        nxt = wanted_seeds(seeds, labels, args.start_seeds if rounds == 0 else args.add_seeds,
                           args.max_seeds)
        jobs = jobs_for(args.profile, runs_root, nxt, groups)
        if nxt == seeds and not jobs:
            if not all(is_resolved(label) for label in labels.values()):
                stop = f"unresolved claims reached --max-seeds {args.max_seeds}"
            break
        elapsed = (time.perf_counter() - started) / 60
        count = sum(j.runs for j in jobs)
        needed = round_minutes(count, args.workers, elapsed, trained, args.minutes_per_run)
        if count and elapsed + needed > args.budget_min:
            stop = (f"budget of {args.budget_min:g} min ran out: round {rounds + 1} "
                    f"({count} runs, ~{needed:.0f} min) did not fit")
            break
        print(f"round {rounds + 1}: {count} runs on {args.workers} workers "
              f"(elapsed {elapsed:.1f} min)", flush=True)
        run_queues(split(jobs, args.workers), args.profile, runs_root, _launch)
        trained += count
        seeds, rounds = nxt, rounds + 1
        _, results = claims_table(args.profile, runs_root, list(range(max(seeds.values()))),
                                  groups)
        labels = {i: str(results[c].verdict) for i, c in enumerate(CLAIMS)}
        if all(is_resolved(label) for label in labels.values()):
            break
    lines, results = claims_table(args.profile, runs_root,
                                  list(range(max(seeds.values(), default=0))), groups)
    minutes = (time.perf_counter() - started) / 60
    per_row = ", ".join(f"{t}/{r} {n}" for (t, r), n in sorted(seeds.items()))
    lines += ["", f"Seeds per row: {per_row}. Rounds: {rounds} ({trained} runs trained by this "
              f"command). Stopped: {stop}.", "", trained_as(groups, args.profile, runs_root),
              "", f"Wall time: {minutes:.0f} min on {args.workers} core"
              f"{'s' if args.workers > 1 else ''}", "",
              footer(shlex.join(["python", "scripts/resolve_claims.py", *sys.argv[1:]]))]
    text = "\n".join(lines) + "\n"
    out = Path(args.out) if args.out else REPO / "results" / f"claims_{args.profile}.md"
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
