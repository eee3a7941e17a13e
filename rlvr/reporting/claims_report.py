"""The claims table of ``results/claims_<profile>.md``: each claim's rows, intervals and verdict."""

from __future__ import annotations

import math
from pathlib import Path

from rlvr.reporting.claim_runs import RunGroup, claim_runs, run_groups
from rlvr.reporting.claims import (
    CLAIMS,
    EQUIVALENCE_LEVEL,
    LEVEL,
    MARGINS,
    WINDOWS,
    Claim,
    ClaimResult,
    Verdict,
    check,
    verdict,
)
from rlvr.reporting.collect import mean_std
from rlvr.reporting.stats import Interval
from rlvr.reporting.tables import TABLES


def scale_of(quantity: str) -> tuple[float, int]:
    """(display scale, digits): entropy in nats to 3 digits, the rest in points to 1."""
    return (1.0, 3) if "entropy" in quantity else (100.0, 1)


def values_cell(values: dict[int, float], quantity: str) -> str:
    """``mean ± sample std`` over seeds in display units, ``-`` when there is none."""
    mean, std = mean_std(list(values.values()))
    if math.isnan(mean):
        return "-"
    scale, digits = scale_of(quantity)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def difference_cell(diff: Interval | None, quantity: str) -> str:
    """``+1.23 [-0.50, +2.96] (90 %: [-0.20, +2.66]), paired``: the estimate with its 95 % and
    90 % intervals, in the quantity's display units."""
    if diff is None:
        return "-"
    scale, digits = scale_of(quantity)

    def pair(bounds: tuple[float, float]) -> str:
        return f"[{scale * bounds[0]:+.{digits + 1}f}, {scale * bounds[1]:+.{digits + 1}f}]"

    return (f"{scale * diff.estimate:+.{digits + 1}f} {pair(diff.bounds(LEVEL))} "
            f"(90 %: {pair(diff.bounds(EQUIVALENCE_LEVEL))}), "
            f"{'paired' if diff.paired else 'Welch'}")


def margin_cell(quantity: str, margin: float | None = None) -> str:
    """An equivalence margin d of ``quantity`` (default: its :data:`MARGINS` entry) in display
    units: ``0.005 nats``, ``1 point``, ``0.5 points`` (the tables print accuracy and its std in
    points)."""
    scale, _ = scale_of(quantity)
    value = scale * (MARGINS[quantity] if margin is None else margin)
    if "entropy" in quantity:  # the one quantity scale_of leaves in its own units
        return f"{value:g} nats"
    return f"{value:g} point{'' if value == 1 else 's'}"


def verdict_cell(judged: Verdict, quantity: str) -> str:
    """A verdict as the tables print it, the margin of ``equivalent`` in display units."""
    return judged.describe(None if judged.margin is None else margin_cell(quantity, judged.margin))


def verdict_of(claim: Claim, diff: Interval | None) -> str:
    """The verdict of one window's interval (the study's accuracy claims)."""
    return verdict_cell(verdict(diff, MARGINS[claim.quantity]), claim.quantity)


def steps_cell(result: ClaimResult) -> str:
    """``Holm: 48/50 steps on the claimed side, 0 on the other``, or ``-`` for claims without
    an every-step test."""
    if result.steps is None:
        return "-"
    k = len(result.steps.steps)
    return (f"Holm: {sum(result.steps.claimed)}/{k} steps on the claimed side, "
            f"{sum(result.steps.other)} on the other")


def claims_table(profile: str, runs_root: Path, seeds: list[int] | None = None,
                 groups: list[RunGroup] | None = None
                 ) -> tuple[list[str], dict[Claim, ClaimResult]]:
    """The markdown lines of the claims table over the finished runs among ``seeds`` (default:
    the profile's), rows of one configuration sharing their runs (``groups``, default
    ``claim_runs.run_groups(profile)``), and each claim's result."""
    runs = claim_runs(groups if groups is not None else run_groups(profile), profile, runs_root,
                      seeds)
    results: dict[Claim, ClaimResult] = {}
    margins = ", ".join(f"{q.removesuffix(' (nats)')} {margin_cell(q)}" for q in MARGINS)
    lines = [f"# The papers' claims on the `{profile}` profile", "",
             "Per row: mean ± sample std over seeds in the whole run / late window (accuracy in "
             "%, entropy in nats). Difference d = claimed direction x (row - baseline), paired "
             "over the seeds both rows ran (Welch otherwise), with its 95 % and 90 % intervals. "
             "Windows: entropy over all steps vs the last quarter; accuracy over all "
             "evaluations vs the reported number. Verdict in the window the paper states: "
             "`shown` / `contradicted` when the 95 % interval excludes zero on the claimed / "
             f"other side, `equivalent within ±d` when the 90 % interval lies inside ±d (d: "
             f"{margins}), otherwise `unresolved` with the seeds per row that would resolve it "
             "at the observed estimate and spread. Every-step claims: a paired interval per "
             "step, Holm's correction at family-wise 5 % (rlvr/reporting/claims.py).", "",
             "| claim | source | stated window | row (whole / late) | baseline (whole / late) "
             "| d whole run | d late window | every step | verdict |",
             "|---|---|---|---|---|---|---|---|---|"]
    for claim in CLAIMS:
        compared = {r: runs[(claim.table, r)] for r in (claim.row, claim.baseline)}
        result = results[claim] = check(claim, compared, TABLES[claim.table].selection(profile))
        q = claim.quantity
        row = " / ".join(values_cell(result.row[w], q) for w in WINDOWS)
        base = " / ".join(values_cell(result.baseline[w], q) for w in WINDOWS)
        counts = f" (n={len(result.row['whole'])}/{len(result.baseline['whole'])})"
        steps = steps_cell(result)
        lines.append(f"| {claim.text} | {claim.source} | {claim.window} | {claim.row}: {row} | "
                     f"{claim.baseline}: {base}{counts} | "
                     f"{difference_cell(result.differences['whole'], q)} | "
                     f"{difference_cell(result.differences['late'], q)} | {steps} | "
                     f"{verdict_cell(result.verdict, q)} |")
    return lines, results
