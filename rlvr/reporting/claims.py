"""The papers' qualitative claims, checked on finished runs: one verdict per claim, with numbers.

A claim compares one quantity of a row with that of a baseline row of the same table, over
seeds. With d = direction x (mean_row - mean_baseline) and noise = the larger of the two rows'
seed standard deviations, the verdict is

- ``shown``: d > noise (the claimed direction, beyond seed-to-seed spread);
- ``direction only``: 0 < d <= noise (the claimed direction, within seed noise);
- ``not shown``: -noise <= d <= 0;
- ``contradicted``: d < -noise.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from rlvr.reporting.collect import RunRecords, mean_std


def late_entropy(run: RunRecords, selection: str) -> float:
    """Token-mean policy entropy averaged over the last quarter of training steps."""
    values = run.curve("train/entropy")[1]
    if not values:
        return math.nan
    return statistics.fmean(values[-max(1, len(values) // 4):])


def reported_accuracy(run: RunRecords, selection: str) -> float:
    """Evaluation average at the checkpoint the table reports (``final`` or ``best:<metric>``)."""
    return run.selected_eval(selection)["eval/average"] if run.evals else math.nan


def eval_std(run: RunRecords, selection: str) -> float:
    """Std of the evaluation average over the run's evaluations (SA-AH-GRPO's variance)."""
    return run.eval_spread()[1]


QUANTITIES: dict[str, Callable[[RunRecords, str], float]] = {
    "late entropy (nats)": late_entropy,
    "reported accuracy": reported_accuracy,
    "std of eval average over checkpoints": eval_std,
}


@dataclass(frozen=True)
class Claim:
    """``row`` has a larger (``direction`` +1) or smaller (-1) ``quantity`` than ``baseline``."""

    text: str
    source: str
    table: str
    row: str
    baseline: str
    quantity: str
    direction: int


CLAIMS = (
    Claim("Pos-Only keeps policy entropy above REINFORCE", "AsymGRPO section 3.1", "table2",
          "pos_only", "reinforce", "late entropy (nats)", +1),
    Claim("Neg-Only drives policy entropy below REINFORCE", "AsymGRPO section 3.1", "table2",
          "neg_only", "reinforce", "late entropy (nats)", -1),
    Claim("EntDecrease (flipped positive channel) hurts accuracy vs GRPO",
          "AsymGRPO section 3.2", "flip_test", "ent_decrease", "grpo", "reported accuracy", -1),
    Claim("EntIncrease (flipped negative channel) hurts accuracy vs GRPO",
          "AsymGRPO section 3.2", "flip_test", "ent_increase", "grpo", "reported accuracy", -1),
    Claim("AsymGRPO beats GRPO", "AsymGRPO Table 2", "table2", "asym_grpo", "grpo",
          "reported accuracy", +1),
    Claim("SA-AH-GRPO trains with lower evaluation variance than GRPO", "SA-AH-GRPO abstract",
          "sa_ah_1.5b", "sa_ah_grpo", "grpo", "std of eval average over checkpoints", -1),
)


def verdict(row: list[float], baseline: list[float], direction: int) -> str:
    """The verdict of the module docstring for per-seed values of the two rows (NaN values
    ignored); with a single seed on either side there is no noise estimate, so nothing is
    ``shown``."""
    if not row or not baseline:
        return "not run"
    (row_mean, row_std), (base_mean, base_std) = mean_std(row), mean_std(baseline)
    if math.isnan(row_mean) or math.isnan(base_mean):
        return "no data"
    d = direction * (row_mean - base_mean)
    if min(sum(not math.isnan(v) for v in values) for values in (row, baseline)) < 2:
        return "direction only (one seed)" if d > 0 else "not shown (one seed)"
    noise = max(row_std, base_std)
    if d > noise:
        return "shown"
    if d > 0:
        return "direction only"
    return "not shown" if d >= -noise else "contradicted"


def check(claim: Claim, runs: dict[str, list[RunRecords]], selection: str = "final"
          ) -> tuple[list[float], list[float], str]:
    """(row values, baseline values, verdict) of a claim on one table's finished runs, the
    accuracy read at the table's reported checkpoint ``selection``."""
    measure = QUANTITIES[claim.quantity]
    row = [measure(r, selection) for r in runs.get(claim.row, [])]
    baseline = [measure(r, selection) for r in runs.get(claim.baseline, [])]
    return row, baseline, verdict(row, baseline, claim.direction)
