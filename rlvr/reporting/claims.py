"""The papers' qualitative claims, checked on finished runs with a statistical test.

A claim compares one quantity of a row with that of a baseline row of the same table, over
seeds, in two windows side by side: the whole run and the late window (entropy: mean over all
steps vs over the last quarter; accuracy: mean over all evaluations vs the reported checkpoint).
Each window gets d = direction x (mean_row - mean_baseline) with a 95 % Welch interval and the
minimum detectable effect at the seed counts used (rlvr/reporting/stats.py). The verdict is taken
in the window the paper states (``Claim.window``):

- ``shown``: the interval excludes zero on the claimed side (and, for a claim the paper makes
  "at every training step", the seed-mean curves are ordered as claimed at every step);
- ``direction only``: d > 0 but the interval includes zero (or some step is out of order);
- ``not shown``: d <= 0 and the interval includes zero;
- ``contradicted``: the interval excludes zero on the other side;
- ``one seed``: a side has fewer than two seeds (no interval).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from rlvr.reporting.collect import RunRecords
from rlvr.reporting.stats import Difference, welch_difference

WINDOWS = ("whole", "late")


def entropy_in(run: RunRecords, selection: str, window: str) -> float:
    """Token-mean policy entropy averaged over all steps (``whole``) or the last quarter."""
    values = run.curve("train/entropy")[1]
    if not values:
        return math.nan
    return statistics.fmean(values if window == "whole" else values[-max(1, len(values) // 4):])


def accuracy_in(run: RunRecords, selection: str, window: str) -> float:
    """Eval average over all evaluations (``whole``) or at the reported checkpoint (``late``:
    ``final`` or ``best:<metric>``)."""
    if not run.evals:
        return math.nan
    if window == "whole":
        return statistics.fmean(r["eval/average"] for r in run.evals)
    return run.selected_eval(selection)["eval/average"]


def eval_std_in(run: RunRecords, selection: str, window: str) -> float:
    """Std of the eval average over the run's evaluations (SA-AH-GRPO's variance); one window."""
    return run.eval_spread()[1] if window == "whole" else math.nan


QUANTITIES: dict[str, Callable[[RunRecords, str, str], float]] = {
    "entropy (nats)": entropy_in,
    "accuracy": accuracy_in,
    "std of eval average over checkpoints": eval_std_in,
}
CURVES = {"entropy (nats)": "train/entropy", "accuracy": "eval/average"}


@dataclass(frozen=True)
class Claim:
    """``row`` has a larger (``direction`` +1) or smaller (-1) ``quantity`` than ``baseline``,
    in the ``window`` the paper states; ``every_step``: the paper says it holds at every step."""

    text: str
    source: str
    table: str
    row: str
    baseline: str
    quantity: str
    direction: int
    window: str
    every_step: bool = False


CLAIMS = (
    Claim("Pos-Only keeps policy entropy above REINFORCE at every training step",
          "AsymGRPO section 3.1", "table2", "pos_only", "reinforce", "entropy (nats)", +1,
          "whole", every_step=True),
    Claim("Neg-Only drives policy entropy below REINFORCE", "AsymGRPO section 3.1", "table2",
          "neg_only", "reinforce", "entropy (nats)", -1, "late"),
    Claim("EntDecrease (flipped positive channel) hurts accuracy vs GRPO",
          "AsymGRPO section 3.2", "flip_test", "ent_decrease", "grpo", "accuracy", -1, "late"),
    Claim("EntIncrease (flipped negative channel) hurts accuracy vs GRPO",
          "AsymGRPO section 3.2", "flip_test", "ent_increase", "grpo", "accuracy", -1, "late"),
    Claim("AsymGRPO beats GRPO", "AsymGRPO Table 2", "table2", "asym_grpo", "grpo", "accuracy",
          +1, "late"),
    Claim("SA-AH-GRPO trains with lower evaluation variance than GRPO", "SA-AH-GRPO abstract",
          "sa_ah_1.5b", "sa_ah_grpo", "grpo", "std of eval average over checkpoints", -1,
          "whole"),
)


def steps_in_direction(row: list[RunRecords], baseline: list[RunRecords], key: str,
                       direction: int) -> tuple[int, int]:
    """(k, K): at k of the K steps both rows logged, the seed-mean of ``key`` of ``row`` is on
    the claimed side of the baseline's (strictly)."""
    def seed_means(runs: list[RunRecords]) -> dict[int, float]:
        by_step: dict[int, list[float]] = {}
        for run in runs:
            for step, value in zip(*run.curve(key), strict=True):
                by_step.setdefault(step, []).append(value)
        return {s: statistics.fmean(v) for s, v in by_step.items()}

    a, b = seed_means(row), seed_means(baseline)
    common = sorted(set(a) & set(b))
    return sum(direction * (a[s] - b[s]) > 0 for s in common), len(common)


def verdict(diff: Difference | None, ordered: bool = True, ran: bool = True) -> str:
    """The module docstring's verdict of one window's ``Difference``; ``ordered``: the every-step
    condition holds (True for claims without one)."""
    if not ran:
        return "not run"
    if diff is None:
        return "one seed"
    if diff.low > 0:
        return "shown" if ordered else "direction only"
    if diff.high < 0:
        return "contradicted"
    return "direction only" if diff.estimate > 0 else "not shown"


@dataclass(frozen=True)
class ClaimResult:
    """Per-window seed values and differences of a claim, the every-step count, the verdict."""

    row: dict[str, list[float]]
    baseline: dict[str, list[float]]
    differences: dict[str, Difference | None]
    steps: tuple[int, int] | None
    verdict: str


def check(claim: Claim, runs: dict[str, list[RunRecords]], selection: str = "final"
          ) -> ClaimResult:
    """A claim on one table's finished runs (row id -> runs), the late accuracy read at the
    table's reported checkpoint ``selection``."""
    measure = QUANTITIES[claim.quantity]
    row_runs, base_runs = runs.get(claim.row, []), runs.get(claim.baseline, [])
    row = {w: [measure(r, selection, w) for r in row_runs] for w in WINDOWS}
    base = {w: [measure(r, selection, w) for r in base_runs] for w in WINDOWS}
    diffs = {w: welch_difference(row[w], base[w], claim.direction) for w in WINDOWS}
    steps = None
    if claim.every_step and row_runs and base_runs:
        steps = steps_in_direction(row_runs, base_runs, CURVES[claim.quantity], claim.direction)
    ordered = steps is None or (steps[1] > 0 and steps[0] == steps[1])
    result = verdict(diffs[claim.window], ordered, bool(row_runs and base_runs))
    return ClaimResult(row, base, diffs, steps, result)
