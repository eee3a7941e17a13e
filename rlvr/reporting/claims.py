"""The papers' qualitative claims, checked on finished runs with a statistical test.

A claim compares one quantity of a row with that of a baseline row of the same table, over
seeds, in two windows side by side: the whole run and the late window (entropy: mean over all
steps vs over the last quarter; accuracy: mean over all evaluations vs the reported number,
see ``accuracy_in``). Each window gets d = direction x (row - baseline): paired over the seeds
both rows ran (rows that share a seed share its prompt order and sampling streams,
``rlvr.seeding``), Welch's interval when they share fewer than two (rlvr/reporting/stats.py).
The verdict is taken in the window the paper states (``Claim.window``), with the margin d of
its kind of quantity (:data:`MARGINS`: 1 accuracy point, 0.005 nats, 0.5 points of std):

- ``shown``: the two-sided 95 % interval excludes 0 on the claimed side;
- ``contradicted``: it excludes 0 on the other side;
- ``equivalent within +-d``: the 90 % interval lies inside [-d, +d] (two one-sided tests at 5 %,
  Schuirmann 1987);
- ``unresolved``: none of these, with the seeds per row that would resolve it if the estimate
  and the per-seed spread stayed as observed (``stats.seeds_to_resolve``);
- ``one seed``: fewer than two seeds on a side (no interval); ``not run``: no runs.

A claim the paper makes "at every training step" is judged per step: a paired interval at each
of the K steps both rows logged, one-sided p-values, Holm's step-down correction at family-wise
5 % (Holm 1979). ``shown`` when Holm rejects "d <= 0" at every step; ``contradicted`` when it
rejects "d >= 0" at some step; ``equivalent`` when every step's Bonferroni interval at
1 - 0.10/K lies inside +-d; else ``unresolved``, with the seeds needed at the step whose
t-statistic is smallest (Bonferroni level 1 - 0.05/K). (Requiring every step to reject is an
intersection-union test, valid even without a correction; Holm makes it conservative.)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from rlvr.reporting.collect import RunRecords
from rlvr.reporting.render import run_seed
from rlvr.reporting.stats import (
    Interval,
    holm_rejections,
    paired_interval,
    seeds_to_resolve,
    welch_interval,
)

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
    Claim("Positive-advantage reweighting (lambda < 1 on positive tokens) keeps entropy above "
          "GRPO", "Positive-Advantage Reweighting section 7.3", "pos_reweight", "pos_reweight",
          "grpo", "entropy (nats)", +1, "late"),
)


# The margin d of "equivalent within +-d", per kind of quantity (in the quantity's own units).
MARGINS = {"entropy (nats)": 0.005, "accuracy": 0.01,
           "std of eval average over checkpoints": 0.005}
LEVEL, EQUIVALENCE_LEVEL, FAMILY_ALPHA = 0.95, 0.90, 0.05


@dataclass(frozen=True)
class Verdict:
    """A claim's verdict; when ``unresolved``, the seeds per row that would resolve it (None:
    more than the projection's limit); when ``equivalent``, its margin d (the quantity's own
    units: a fraction for accuracy, nats for entropy)."""

    label: str
    seeds_needed: int | None = None
    margin: float | None = None

    def __post_init__(self) -> None:
        if (self.label == "equivalent") != (self.margin is not None):
            raise ValueError(f"a margin belongs to an 'equivalent' verdict only: {self!r}")

    def describe(self, margin: str | None = None) -> str:
        """The verdict as a table prints it, ``margin`` the margin in display units (default:
        the quantity's own)."""
        if self.label == "equivalent":
            return f"equivalent within ±{margin or f'{self.margin:g}'}"
        if self.label != "unresolved":
            return self.label
        more = f"~{self.seeds_needed}" if self.seeds_needed is not None else "> 200"
        return f"unresolved ({more} seeds per row needed)"

    def __str__(self) -> str:
        return self.describe()


def verdict(diff: Interval | None, margin: float, ran: bool = True) -> Verdict:
    """The module docstring's verdict of one window's interval."""
    if not ran:
        return Verdict("not run")
    if diff is None:
        return Verdict("one seed")
    low, high = diff.bounds(LEVEL)
    if low > 0:
        return Verdict("shown")
    if high < 0:
        return Verdict("contradicted")
    low90, high90 = diff.bounds(EQUIVALENCE_LEVEL)
    if -margin < low90 and high90 < margin:
        return Verdict("equivalent", margin=margin)
    return Verdict("unresolved", seeds_to_resolve(diff.estimate, diff.spread, margin,
                                                  diff.paired, LEVEL, EQUIVALENCE_LEVEL))


def by_seed(runs: list[RunRecords], measure: Callable[[RunRecords], float]) -> dict[int, float]:
    """seed -> ``measure(run)`` for runs filed as ``.../seed<k>``."""
    return {run_seed(run, i): measure(run) for i, run in enumerate(runs)}


def compare(row: dict[int, float], baseline: dict[int, float], direction: int
            ) -> Interval | None:
    """Paired over shared seeds when there are two or more, else Welch over all values."""
    paired = paired_interval(row, baseline, direction)
    return paired if paired is not None else welch_interval(list(row.values()),
                                                            list(baseline.values()), direction)


@dataclass(frozen=True)
class StepResult:
    """The every-step test: per step its paired interval, Holm's decisions, the verdict."""

    steps: list[int]
    intervals: list[Interval]
    claimed: list[bool]
    other: list[bool]
    verdict: Verdict


def _t_statistic(diff: Interval) -> float:
    """d / se, signed (+-inf or 0 when se = 0)."""
    if diff.se > 0:
        return diff.estimate / diff.se
    return math.copysign(math.inf, diff.estimate) if diff.estimate else 0.0


def every_step(row: list[RunRecords], baseline: list[RunRecords], key: str, direction: int,
               margin: float) -> StepResult | None:
    """The module docstring's per-step test of ``key`` at the steps every seed of both rows
    logged; None when fewer than two seeds are shared."""
    def curves(runs: list[RunRecords]) -> dict[int, dict[int, float]]:
        return {run_seed(run, i): dict(zip(*run.curve(key), strict=True))
                for i, run in enumerate(runs)}

    a, b = curves(row), curves(baseline)
    seeds = sorted(set(a) & set(b))
    if len(seeds) < 2:
        return None
    steps = sorted(set.intersection(*(set(a[s]) & set(b[s]) for s in seeds)))
    intervals = [paired_interval({s: a[s][k] for s in seeds}, {s: b[s][k] for s in seeds},
                                 direction) for k in steps]
    claimed = holm_rejections([i.p_claimed() for i in intervals], FAMILY_ALPHA)
    other = holm_rejections([i.p_other() for i in intervals], FAMILY_ALPHA)
    if steps and all(claimed):
        result = Verdict("shown")
    elif any(other):
        result = Verdict("contradicted")
    elif steps and all(-margin < lo and hi < margin for lo, hi in
                       (i.bounds(1 - (1 - EQUIVALENCE_LEVEL) / len(steps))
                        for i in intervals)):
        result = Verdict("equivalent", margin=margin)
    else:
        worst = min(intervals, key=_t_statistic)
        result = Verdict("unresolved", seeds_to_resolve(
            worst.estimate, worst.spread, margin, True, 1 - FAMILY_ALPHA / len(steps),
            1 - (1 - EQUIVALENCE_LEVEL) / len(steps)) if steps else None)
    return StepResult(steps, intervals, claimed, other, result)


@dataclass(frozen=True)
class ClaimResult:
    """Per-window seed values (seed -> value) and intervals of a claim, the every-step test
    (claims made at every step), the verdict."""

    row: dict[str, dict[int, float]]
    baseline: dict[str, dict[int, float]]
    differences: dict[str, Interval | None]
    steps: StepResult | None
    verdict: Verdict


def check(claim: Claim, runs: dict[str, list[RunRecords]], selection: str = "final"
          ) -> ClaimResult:
    """A claim on one table's finished runs (row id -> runs), the late accuracy read at the
    table's reported checkpoint ``selection``."""
    measure = QUANTITIES[claim.quantity]
    margin = MARGINS[claim.quantity]
    row_runs, base_runs = runs.get(claim.row, []), runs.get(claim.baseline, [])
    row = {w: by_seed(row_runs, lambda r, w=w: measure(r, selection, w)) for w in WINDOWS}
    base = {w: by_seed(base_runs, lambda r, w=w: measure(r, selection, w)) for w in WINDOWS}
    diffs = {w: compare(row[w], base[w], claim.direction) for w in WINDOWS}
    ran = bool(row_runs and base_runs)
    steps = None
    if claim.every_step and ran:
        steps = every_step(row_runs, base_runs, CURVES[claim.quantity], claim.direction, margin)
    result = steps.verdict if steps is not None else verdict(diffs[claim.window], margin, ran)
    return ClaimResult(row, base, diffs, steps, result)
