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
run without evaluation counts half). A round starts only when its busiest core, at the
core-minutes per unit of that work measured so far (``--minutes-per-run`` before any;
``round_minutes``), fits in what is left of the budget. At the end the tables of the runs are
written over every trained seed (``<runs>/_tables/<table>/``, what ``reproduce.py --check``
compares with), and the claims table (``rlvr.reporting.claims_report``) to ``--out``, with the
seeds per run group, the rounds, whether every claim resolved or the budget ran out, how the
runs were trained with the command that re-derives one of them, and ``Wall time: N min on
<workers> cores``.
"""

from __future__ import annotations

import argparse
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
    """A run's work relative to one with evaluation: half without, a round figure (measured
    under tiny_lownoise on one core: 1.3 min without its eleven evaluations, about 3.5 with;
    under ``tiny`` evaluation's share is smaller). The minutes per unit of weight that
    ``round_minutes`` measures absorb the difference."""
    return 0.5 if set(NO_EVALUATION) <= set(job.overrides) else 1.0


def queue_weight(queue: list[Job]) -> float:
    return sum(run_weight(job) * job.runs for job in queue)


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


def round_minutes(queues: list[list[Job]], workers: int, elapsed_min: float,
                  trained_weight: float, default_run_min: float) -> float:
    """Wall minutes a round takes: its busiest queue's weight (``run_weight``) times the minutes a
    unit of weight took one core so far (``elapsed_min`` on ``workers`` cores over the
    ``trained_weight`` trained; ``default_run_min`` before any)."""
    unit_min = elapsed_min * workers / trained_weight if trained_weight else default_run_min
    return unit_min * max((queue_weight(q) for q in queues), default=0.0)


def report_tables(groups: list[RunGroup], profile: str, runs_root: Path, seeds: int,
                  launch: Callable[[list[str], dict[str, str]], subprocess.Popen]) -> None:
    """Write ``<runs>/_tables/<table>/`` over all ``seeds`` of the rows each table trained
    (``reproduce.py --report-only``, with the overrides all its groups share, so that the rows
    plan as they trained): what ``--check`` compares a re-run with."""
    for table in dict.fromkeys(g.trained[0] for g in groups):
        mine = [g for g in groups if g.trained[0] == table]
        shared = [o for o in mine[0].overrides if all(o in g.overrides for g in mine)]
        command = [sys.executable, str(REPO / "scripts" / "reproduce.py"), table, "--profile",
                   profile, "--rows", *(g.trained[1] for g in mine), "--seeds",
                   *map(str, range(seeds)), "--runs", str(runs_root), "--out",
                   str(runs_root / "_tables" / table), "--report-only", *shared]
        if launch(command, {**os.environ, **AVX2_PIN, "PYTHONPATH": str(REPO)}).wait() != 0:
            raise SystemExit(f"error: the {table} table of the claims' runs failed")


def trained_as(groups: list[RunGroup], profile: str, runs_root: Path) -> str:
    """How the claims' runs were trained (rlvr/reporting/claim_runs.py), and the command that
    re-derives one of them (a group trained as its table states, seed 0) under the pins the
    runs trained with."""
    parts = [f"{g.describe()}: {' '.join(g.overrides) or 'as the table'}" for g in groups]
    lines = [f"Runs: the profile's overrides and these: {'; '.join(parts)}."]
    plain = next((g for g in groups if not g.overrides), None)
    if plain is not None:
        table, row = plain.trained
        where = runs_root.resolve()
        shown = where.relative_to(REPO) if where.is_relative_to(REPO) else where
        pins = " ".join(f"{k}={v}" for k, v in {**AVX2_PIN, "OMP_NUM_THREADS": "1",
                                                "VLLM_CPU_OMP_THREADS_BIND": "0"}.items())
        check = shlex.join(["python", "scripts/reproduce.py", table, "--profile", profile,
                            "--runs", str(shown), "--out", str(shown / "_tables" / table),
                            "--check", row, "0"])
        lines.append(f"Re-derive one: `{pins} {check}`.")
    return " ".join(lines)


def _launch(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def seeds_per_group(groups: list[RunGroup], seeds: dict[RowKey, int]) -> str:
    """``flip_test/grpo (also pos_reweight/grpo) 3, ...``: the seeds each group trained."""
    return ", ".join(f"{g.describe()} {max(seeds.get(m, 0) for m in g.members)}"
                     for g in groups)


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
    seeds: dict[RowKey, int] = {}
    rounds, trained, trained_weight, stop = 0, 0, 0.0, "every claim resolved"
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
        queues = split(jobs, args.workers)
        needed = round_minutes(queues, args.workers, elapsed, trained_weight,
                               args.minutes_per_run)
        if count and elapsed + needed > args.budget_min:
            stop = (f"budget of {args.budget_min:g} min ran out: round {rounds + 1} "
                    f"({count} runs, ~{needed:.0f} min) did not fit")
            break
        print(f"round {rounds + 1}: {count} runs on {args.workers} workers "
              f"(elapsed {elapsed:.1f} min)", flush=True)
        run_queues(queues, args.profile, runs_root, _launch)
        trained += count
        trained_weight += sum(queue_weight(q) for q in queues)
        seeds, rounds = nxt, rounds + 1
        _, results = claims_table(args.profile, runs_root, list(range(max(seeds.values()))),
                                  groups)
        labels = {i: str(results[c].verdict) for i, c in enumerate(CLAIMS)}
        if all(is_resolved(label) for label in labels.values()):
            break
    most = max(seeds.values(), default=0)
    lines, results = claims_table(args.profile, runs_root, list(range(most)), groups)
    if most:
        report_tables(groups, args.profile, runs_root, most, _launch)
    minutes = (time.perf_counter() - started) / 60
    lines += ["", f"Seeds per run group: {seeds_per_group(groups, seeds)}. Rounds: {rounds} "
              f"({trained} runs trained by this "
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
