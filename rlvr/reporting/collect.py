"""Reading finished runs: their evaluation records, training curves and summaries."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from rlvr.reporting.tables import Table


@dataclass
class RunRecords:
    """One run directory's ``metrics.jsonl``, split into evaluation and training records."""

    path: Path
    evals: list[dict]
    steps: list[dict]

    @classmethod
    def load(cls, path: Path) -> RunRecords:
        records = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()
                   if line.strip()]
        return cls(path, [r for r in records if "eval/average" in r],
                   [r for r in records if "adv/reward_mean" in r])

    def selected_eval(self, selection: str) -> dict:
        """The evaluation record a table reports: ``final``, ``best:<metric>``, or
        ``window:<n>``: every metric averaged over the last n evaluations (the metrics all of
        them logged; ``step`` is the last one's)."""
        if not self.evals:
            raise ValueError(f"{self.path} has no evaluation records")
        if selection == "final":
            return self.evals[-1]
        if selection.startswith("window:"):
            last = self.evals[-int(selection.removeprefix("window:")):]
            keys = [k for k in last[-1] if k != "step" and all(k in r for r in last)]
            return {"step": last[-1]["step"], **{k: statistics.fmean(r[k] for r in last)
                                                  for k in keys}}
        if selection.startswith("best:"):
            metric = selection.removeprefix("best:")
            return max(self.evals, key=lambda r: r.get(metric, -math.inf))
        raise ValueError(f"unknown checkpoint selection {selection!r}: use final, "
                         "best:<metric> or window:<n>")

    def curve(self, key: str) -> tuple[list[int], list[float]]:
        """(steps, values) of a metric over training or evaluation records."""
        source = self.evals if key.startswith("eval/") else self.steps
        points = [(r["step"], r[key]) for r in source if key in r]
        return [p[0] for p in points], [p[1] for p in points]

    def eval_spread(self) -> tuple[float, float]:
        """Variance and std (population) of the eval average over all evaluations."""
        values = [r["eval/average"] for r in self.evals]
        if len(values) < 2:
            return math.nan, math.nan
        return statistics.pvariance(values), statistics.pstdev(values)


def is_finished(run_dir: Path) -> bool:
    """A run is finished when it wrote its summary (the last thing ``Trainer.fit`` does)."""
    return (run_dir / "summary.json").exists()


def trained_to(run_dir: Path, total_steps: int) -> bool:
    """Finished (``is_finished``) and its metrics reach ``total_steps``: a run finished at a
    shorter horizon is continued, not reported as the longer one."""
    if not is_finished(run_dir):
        return False
    steps = [json.loads(line)["step"] for line in
             (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return max(steps, default=0) >= total_steps


def finished_runs(table: Table, profile: str, runs_root: Path, seeds: list[int] | None = None
                  ) -> dict[str, list[RunRecords]]:
    """The finished runs of each row of ``table`` (row id -> one record per seed), by default
    for the profile's seeds; rows with none are left out."""
    out: dict[str, list[RunRecords]] = {}
    for row in table.rows:
        for seed in seeds or table.profile(profile).seeds:
            run_dir = table.run_dir(runs_root, profile, row, seed)
            if is_finished(run_dir):
                out.setdefault(row.id, []).append(RunRecords.load(run_dir))
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std (0 for a single value) of finite values; NaN when none."""
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan, math.nan
    return statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0
