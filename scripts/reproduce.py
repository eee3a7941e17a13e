"""Reproduce a paper table: train its missing rows, then write the table and the curves.

    python scripts/reproduce.py table2 --profile tiny     # CPU, embedded tiny model, 3 seeds
    python scripts/reproduce.py table2 --profile paper    # GPUs, Qwen3-4B, MATH (data.dir=...)
    python scripts/reproduce.py table2 --profile demo     # make demo: one seed, a few steps
    python scripts/reproduce.py table2 --profile paper --report-only   # runs done elsewhere
    python scripts/reproduce.py table2 --profile tiny --check pos_only 0   # re-run one, compare

Rows whose run directory holds a summary are not recomputed. Rows that are missing train one
after another in this process, sharing one rollout engine. Extra ``key=value`` arguments are
Hydra overrides for every row (e.g. ``data.dir=/data``). Output: results/<table>/<profile>/
table.md, table.csv (per-seed values) and one PNG per curve, each naming the commit and command.

``--check ROW SEED`` re-runs that (row, seed) from scratch in a scratch directory and compares
its per-seed values with the ones stored in the table's table.csv: exit 0 and ``MATCH`` when
every stored value is reproduced exactly, exit 1 listing the differences otherwise, with ``the
hardware differs`` and both machines when the stored file names another CPU or other kernel
instruction sets than this process (rlvr/reporting/machine.py).

Under ``RLVR_VLLM_CPU_ISA=avx2`` (the CPU profiles' ``make`` targets set it with the other AVX2
pins, ``machine.AVX2_PIN``) vLLM's CPU kernels are held to AVX2 before any engine starts.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlvr import cli, console
from rlvr.checks import register_schema
from rlvr.config import RunConfig
from rlvr.reporting import machine
from rlvr.reporting.collect import RunRecords, finished_runs, trained_to
from rlvr.reporting.planning import compose_run, row_overrides
from rlvr.reporting.provenance import stored_machine
from rlvr.reporting.render import (
    benchmark_columns,
    load_reference,
    plot_curves,
    read_seed_lines,
    render_table,
    seed_lines,
)
from rlvr.reporting.setting import describe_setting
from rlvr.reporting.tables import PROFILES, TABLES, Row, Table
from rlvr.run_dir import RunDirectory
from rlvr.train import Trainer

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("reproduce")


@dataclass
class PlannedRun:
    """One (row, seed) of the table: its run directory and validated configuration."""

    row: Row
    seed: int
    out: Path
    run: RunConfig
    resolved: dict[str, Any]


def plan(overrides: list[str], row: Row, seed: int, out: Path) -> PlannedRun:
    """Compose and validate one run's configuration (no model is loaded)."""
    return PlannedRun(row, seed, out, *compose_run(overrides))


def _minutes(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def progress_line(index: int, total: int, label: str, started: float) -> str:
    """``run 3/10: grpo seed 0 (elapsed 1:02, about 3:06 left)``: the time left is the mean
    time of the runs so far times the runs still to go."""
    elapsed = time.perf_counter() - started
    left = f", about {_minutes(elapsed / index * (total - index))} left" if index else ""
    return f"run {index + 1}/{total}: {label} (elapsed {_minutes(elapsed)}{left})"


def train_missing(pending: list[PlannedRun]) -> None:
    """Train each pending (row, seed) in this process, each logging to its ``train.log``; all
    rows share the first row's rollout engine."""
    engine = None
    started = time.perf_counter()
    for index, planned in enumerate(pending):
        console.setup(verbose=planned.run.logger.verbose)
        log.info(progress_line(index, len(pending), f"{planned.row.id} seed {planned.seed}",
                               started))
        with console.run_log(planned.out / "train.log"):
            trainer = Trainer(planned.run, planned.resolved, engine=engine)
            try:
                final = trainer.fit()
            finally:
                trainer.sink.finish()
        if planned.run.total_steps == 0:
            log.info("  starting policy: eval/average %.4f", final.get("eval/average", 0.0))
        engine = trainer.engine
    log.info("trained %d runs in %s", len(pending), _minutes(time.perf_counter() - started))


def check_seed(table: Table, profile: str, row: Row, seed: int, extra: list[str], stored: Path,
               scratch: Path) -> list[str]:
    """Re-run (row, seed) into ``scratch`` and compare with its line in ``stored`` table.csv;
    returns the differences (empty: an exact match)."""
    lines = [line for line in read_seed_lines(stored)
             if line["row"] == row.id and line["seed"] == str(seed)]
    if not lines:
        return [f"{stored} has no line for row {row.id} seed {seed}"]
    out = scratch / row.id / f"seed{seed}"
    shutil.rmtree(out, ignore_errors=True)
    with cli.reporting_errors():
        planned = plan(row_overrides(table.profile(profile).overrides, row, seed, out, extra),
                       row, seed, out)
    train_missing([planned])
    runs = {row.id: [RunRecords.load(out)]}
    got = seed_lines(table, runs, benchmark_columns(runs, table.selection(profile)),
                     table.selection(profile), {})[0]
    differences = []
    for key, value in lines[0].items():
        if key in ("row", "label", "seed", "paper_average"):
            continue
        new = got.get(key)
        if new is None or not (float(value) == new or (math.isnan(float(value))
                                                       and math.isnan(new))):
            differences.append(f"{key}: stored {value}, re-run {new!r}")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", choices=sorted(TABLES))
    parser.add_argument("--profile", default="tiny", choices=list(PROFILES))
    parser.add_argument("--seeds", type=int, nargs="+", help="default: the profile's seeds")
    parser.add_argument("--rows", nargs="+", help="train only these row ids (default: all)")
    parser.add_argument("--runs", default=str(REPO / "runs"))
    parser.add_argument("--out", help="default: results/<table>/<profile>")
    parser.add_argument("--report-only", action="store_true", help="train nothing")
    parser.add_argument("--check", nargs=2, metavar=("ROW", "SEED"),
                        help="re-run one (row, seed) and compare with the stored table.csv")
    args, extra = parser.parse_known_args()
    console.setup()
    register_schema()

    table = TABLES[args.table]
    profile = table.profile(args.profile)
    seeds = args.seeds or list(profile.seeds)
    runs_root = Path(args.runs)
    unknown = set(args.rows or ()) - {row.id for row in table.rows}
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)} of {table.name}; "
                     f"known: {[row.id for row in table.rows]}")
    out_dir = Path(args.out) if args.out else REPO / "results" / table.name / args.profile
    if args.check:
        row_id, seed = args.check[0], int(args.check[1])
        row = next((r for r in table.rows if r.id == row_id), None)
        if row is None:
            parser.error(f"unknown row {row_id!r} of {table.name}")
        stored = out_dir / "table.csv"
        differences = check_seed(table, args.profile, row, seed, extra, stored,
                                 runs_root / "_check" / table.experiment_name(args.profile))
        print(machine.check_report(differences, stored_machine(stored.read_text()),
                                   machine.describe()))
        sys.exit(1 if differences else 0)
    planned = []
    with cli.reporting_errors():
        for row in table.rows:
            for seed in seeds:
                if args.rows and row.id not in args.rows:
                    continue
                out = table.run_dir(runs_root, args.profile, row, seed)
                planned.append(plan(row_overrides(profile.overrides, row, seed, out, extra),
                                    row, seed, out))
                # a run directory of another configuration stops the table, never joins it
                RunDirectory.check(out, planned[-1].run)
    pending = [p for p in planned if not trained_to(p.out, p.run.total_steps)]
    log.info("%s, profile %s: %d runs, %d to train", table.name, args.profile, len(planned),
             len(pending))
    if pending and not args.report_only:
        train_missing(pending)

    runs = finished_runs(table, args.profile, runs_root, seeds)
    command = shlex.join(["python", "scripts/reproduce.py", *sys.argv[1:]])
    reference = load_reference(REPO / table.reference if table.reference else None)
    setting = describe_setting([p.run for p in planned])
    markdown = render_table(table, args.profile, runs, reference, out_dir, command, setting)
    plots = plot_curves(table, args.profile, runs, out_dir, setting, command)
    log.info("plots: %s", ", ".join(str(path) for path in plots))
    log.info("table: %s", out_dir / "table.md")
    sys.stderr.flush()
    print(markdown, end="", flush=True)


if __name__ == "__main__":
    main()
