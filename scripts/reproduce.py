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
every stored value is reproduced exactly, exit 1 listing the differences otherwise.
"""

from __future__ import annotations

import argparse
import logging
import math
import shlex
import shutil
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rlvr.config import register_schema, validate
from rlvr.reporting.collect import RunRecords, finished_runs, is_finished
from rlvr.reporting.render import (
    benchmark_columns,
    load_reference,
    plot_curves,
    read_seed_lines,
    render_table,
    seed_lines,
)
from rlvr.reporting.tables import TABLES, Row, Table
from rlvr.train import Trainer

REPO = Path(__file__).resolve().parents[1]
log = logging.getLogger("reproduce")


def row_overrides(profile_overrides: tuple[str, ...], row: Row, seed: int, out: Path,
                  extra: list[str]) -> list[str]:
    steps = ["total_steps=0"] if row.algorithm is None else []
    return [*profile_overrides, f"algorithm={row.algorithm or 'grpo'}", *row.overrides, *steps,
            f"seed={seed}", f"output_dir={out}", *extra]


def train_missing(pending: list[tuple[Row, int, Path, list[str]]]) -> None:
    """Train each pending (row, seed) in this process; all rows share the first row's engine."""
    register_schema()
    engine = None
    for row, seed, out, overrides in pending:
        log.info("training %s seed %d -> %s", row.id, seed, out)
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        run = validate(cfg)
        trainer = Trainer(run, OmegaConf.to_container(cfg, resolve=True), engine=engine)
        try:
            trainer.fit()
        finally:
            trainer.sink.finish()
        engine = trainer.engine


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
    train_missing([(row, seed, out, row_overrides(table.profile(profile).overrides, row, seed,
                                                 out, extra))])
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
    parser.add_argument("--profile", default="tiny", choices=["tiny", "demo", "paper"])
    parser.add_argument("--seeds", type=int, nargs="+", help="default: the profile's seeds")
    parser.add_argument("--rows", nargs="+", help="train only these row ids (default: all)")
    parser.add_argument("--runs", default=str(REPO / "runs"))
    parser.add_argument("--out", help="default: results/<table>/<profile>")
    parser.add_argument("--report-only", action="store_true", help="train nothing")
    parser.add_argument("--check", nargs=2, metavar=("ROW", "SEED"),
                        help="re-run one (row, seed) and compare with the stored table.csv")
    args, extra = parser.parse_known_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

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
        differences = check_seed(table, args.profile, row, seed, extra, out_dir / "table.csv",
                                 runs_root / "_check" / table.experiment_name(args.profile))
        print("MATCH" if not differences else "MISMATCH\n" + "\n".join(differences))
        sys.exit(1 if differences else 0)
    planned = [(row, seed, table.run_dir(runs_root, args.profile, row, seed))
               for row in table.rows if not args.rows or row.id in args.rows for seed in seeds]
    pending = [(row, seed, out, row_overrides(profile.overrides, row, seed, out, extra))
               for row, seed, out in planned if not is_finished(out)]
    log.info("%s/%s: %d runs, %d to train", table.name, args.profile, len(planned), len(pending))
    if pending and not args.report_only:
        train_missing(pending)

    runs = finished_runs(table, args.profile, runs_root, seeds)
    command = shlex.join(["python", "scripts/reproduce.py", *sys.argv[1:]])
    reference = load_reference(REPO / table.reference if table.reference else None)
    print(render_table(table, args.profile, runs, reference, out_dir, command))
    for path in plot_curves(table, runs, out_dir, command):
        log.info("wrote %s", path)


if __name__ == "__main__":
    main()
