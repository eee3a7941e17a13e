"""A table's rows as markdown and csv, ours next to the paper's, and its training curves."""

from __future__ import annotations

import csv
import math
import re
import textwrap
from pathlib import Path
from typing import Any

from rlvr.reporting.collect import RunRecords, mean_std
from rlvr.reporting.provenance import footer, png_metadata
from rlvr.reporting.tables import Table

_BENCH = re.compile(r"^eval/(?P<name>[^/]+)/avg@\d+$")
_SEED = re.compile(r"^seed(?P<seed>\d+)$")


def benchmark_columns(runs: dict[str, list[RunRecords]], selection: str) -> list[str]:
    """The avg@k metric keys present in the reported evaluations, in first-seen order (runs
    trained without evaluation have none)."""
    columns: list[str] = []
    for records in runs.values():
        for run in records:
            for key in run.selected_eval(selection) if run.evals else ():
                if _BENCH.match(key) and key not in columns:
                    columns.append(key)
    return columns


def load_reference(path: Path | None) -> dict[str, dict[str, str]]:
    """Paper numbers by row id, or nothing."""
    if path is None or not path.exists():
        return {}
    with path.open() as f:
        return {row["row"]: row for row in csv.DictReader(f)}


def _cell(values: list[float]) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "-"
    return f"{100 * mean:.1f}" if len(values) == 1 else f"{100 * mean:.1f} ± {100 * std:.1f}"


def row_values(records: list[RunRecords], columns: list[str], selection: str
               ) -> dict[str, list[float]]:
    """Per reported quantity, one value per seed; NaN (shown ``-``) for the evaluation values
    of a row trained without evaluation (the claims' entropy-only rows,
    ``rlvr.reporting.claim_runs``).

    Raises:
        ValueError: when some of the row's runs were evaluated and others not (their mean
            would silently be over fewer seeds than the row shows).
    """
    silent = [str(run.path) for run in records if not run.evals]
    if silent and len(silent) < len(records):
        raise ValueError(f"{silent[0]} has no evaluation records, unlike the row's other runs: "
                         "a row mixes runs trained with and without evaluation")
    out: dict[str, list[float]] = {c: [] for c in
                                   [*columns, "eval/average", "best", "entropy", "eval_std"]}
    for run in records:
        chosen = run.selected_eval(selection) if run.evals else {}
        for c in columns:
            out[c].append(chosen.get(c, math.nan))
        out["eval/average"].append(chosen.get("eval/average", math.nan))
        out["best"].append(max((r["eval/average"] for r in run.evals), default=math.nan))
        entropies = run.curve("train/entropy")[1]
        out["entropy"].append(entropies[-1] if entropies else math.nan)
        out["eval_std"].append(run.eval_spread()[1])
    return out


def run_seed(run: RunRecords, position: int) -> int:
    """The seed of a run filed as ``.../seed<k>`` (the tables' layout), else its position."""
    match = _SEED.match(run.path.name)
    return int(match["seed"]) if match else position


def seed_lines(table: Table, runs: dict[str, list[RunRecords]], columns: list[str],
               selection: str, reference: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    """table.csv's lines: per row, one line per seed with that seed's values (exact floats, for
    ``scripts/reproduce.py --check``), then its ``mean`` and ``std`` (sample) lines."""
    names = [_BENCH.match(c)["name"] for c in columns]
    fields = dict(zip(names, columns, strict=True)) | {
        "average": "eval/average", "best_average": "best", "entropy": "entropy",
        "eval_std": "eval_std"}
    out: list[dict[str, Any]] = []
    for row in table.rows:
        if row.id not in runs:
            continue
        values = row_values(runs[row.id], columns, selection)
        paper = reference.get(row.id, {}).get("average") or "-"
        for i, run in enumerate(runs[row.id]):
            out.append({"row": row.id, "label": row.label, "seed": run_seed(run, i),
                        **{name: values[key][i] for name, key in fields.items()},
                        "paper_average": paper})
        for stat, index in (("mean", 0), ("std", 1)):
            out.append({"row": row.id, "label": row.label, "seed": stat,
                        **{name: mean_std(values[key])[index] for name, key in fields.items()},
                        "paper_average": paper})
    return out


def render_table(table: Table, profile: str, runs: dict[str, list[RunRecords]],
                 reference: dict[str, dict[str, str]], out_dir: Path, command: str,
                 setting: str) -> str:
    """Write ``table.md`` and ``table.csv`` (per-seed values, then mean and std) under
    ``out_dir``, both naming the commit and ``command``; returns the markdown.
    ``setting``: what the runs were (``rlvr.reporting.setting.describe_setting``)."""
    selection = table.selection(profile)
    columns = benchmark_columns(runs, selection)
    names = [_BENCH.match(c)["name"] for c in columns]
    seeds = max((len(r) for r in runs.values()), default=0)
    header = ["method", *names, "average", "best avg", "entropy (nats)", "std of avg",
              "paper avg"]
    lines = [f"# {table.title}, profile `{profile}`", "", f"Setting: {setting}.", "",
             f"{seeds} seed(s) per row, mean ± std over seeds, accuracy in "
             f"%; checkpoint: {selection}. `entropy`: token-mean policy entropy at the last step; "
             "`std of avg`: spread of the eval average over the run's checkpoints; `paper avg`: "
             "the paper's number for the row (different model and benchmarks unless the profile "
             "is `paper`). Per-seed values: `table.csv`.", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table.rows:
        if row.id not in runs:
            continue
        values = row_values(runs[row.id], columns, selection)
        paper = reference.get(row.id, {}).get("average") or "-"
        entropy_mean = mean_std(values["entropy"])[0]
        cells = [row.label, *(_cell(values[c]) for c in columns), _cell(values["eval/average"]),
                 _cell(values["best"]),
                 "-" if math.isnan(entropy_mean) else f"{entropy_mean:.3f}",
                 _cell(values["eval_std"]), paper]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", footer(command)]
    markdown = "\n".join(lines) + "\n"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table.md").write_text(markdown)
    rows_csv = seed_lines(table, runs, columns, selection, reference)
    if rows_csv:
        with (out_dir / "table.csv").open("w", newline="") as f:
            f.write(f"# {footer(command)}\n")
            writer = csv.DictWriter(f, fieldnames=list(rows_csv[0]))
            writer.writeheader()
            writer.writerows(rows_csv)
    return markdown


def read_seed_lines(path: Path) -> list[dict[str, str]]:
    """table.csv's lines (``seed_lines``), skipping its provenance comment."""
    with path.open() as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


CURVES = (("eval/average", "held-out accuracy (eval average)"),
          ("train/entropy", "token-mean entropy"),
          ("adv/none_solved", "groups none solved (p = 0)"),
          ("adv/all_solved", "groups all solved (p = 1)"))


def seed_band(curves: list[list[float]]) -> tuple[list[float], list[float], list[float]]:
    """Mean, minimum and maximum over seeds at each point of the common prefix of ``curves``
    (one list of values per seed)."""
    length = min(len(c) for c in curves)
    columns = [[c[i] for c in curves] for i in range(length)]
    return ([sum(col) / len(col) for col in columns], [min(col) for col in columns],
            [max(col) for col in columns])


def plot_curves(table: Table, profile: str, runs: dict[str, list[RunRecords]], out_dir: Path,
                setting: str, command: str) -> list[Path]:
    """One PNG per curve: each row's seed mean against the step, with the band from the
    lowest to the highest seed when a row has several; titled with the table, the profile and
    ``setting`` (what the runs were); the commit and ``command`` are in its text metadata."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = max((len(r) for r in runs.values()), default=0)
    spread = "line: mean over seeds, band: lowest to highest seed" if seeds > 1 else "one seed"
    heading = textwrap.fill(f"{table.title}, profile {profile}: {setting}", width=100)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, title in CURVES:
        fig, ax = plt.subplots(figsize=(7.5, 4.8))
        for row in table.rows:
            curves = [run.curve(key) for run in runs.get(row.id, []) if run.curve(key)[0]]
            if not curves:
                continue
            mean, low, high = seed_band([values for _, values in curves])
            steps = curves[0][0][:len(mean)]
            line, = ax.plot(steps, mean, label=f"{row.label} ({len(curves)} seeds)"
                            if len(curves) > 1 else row.label,
                            marker="o" if len(mean) < 15 else None)
            if len(curves) > 1:
                ax.fill_between(steps, low, high, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("training step")
        ax.set_title(f"{heading}\n{title} ({spread})", fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        path = out_dir / f"{key.replace('/', '_')}.png"
        fig.savefig(path, dpi=120, metadata=png_metadata(command))
        plt.close(fig)
        written.append(path)
    return written
