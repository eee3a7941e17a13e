"""Which of the papers' qualitative claims the finished runs of a profile show, with statistics.

    python scripts/reproduce.py table2 --profile tiny      # and flip_test, sa_ah_1.5b
    python scripts/claims.py --profile tiny                # -> results/claims_tiny.md
    python scripts/reproduce.py table2 --profile tiny --rows grpo asym_grpo \
        --seeds 3 4 5 --out /tmp/extra                     # extra seeds, table left alone
    python scripts/claims.py --profile tiny --study-seeds 0 1 2 3 4 5

Reads the runs the reproduce script filed (rlvr/reporting/claims.py has the claims, windows,
margins and the rule for a verdict) and writes one markdown table: each difference with its
95 % and 90 % intervals (paired over shared seeds), whole run and late window side by side, the
every-step test where the paper claims one, the verdict, and how many seeds per row would
resolve a 2-point accuracy difference at the observed seed spread, read over ``--study-seeds``
(with the accuracy claims again on those seeds). Claims whose runs are missing say "not run".
"""

from __future__ import annotations

import argparse
import math
import shlex
import statistics
import sys
from pathlib import Path

from rlvr.reporting.claims import (
    CLAIMS,
    EQUIVALENCE_LEVEL,
    LEVEL,
    MARGINS,
    WINDOWS,
    Claim,
    ClaimResult,
    check,
    verdict,
)
from rlvr.reporting.collect import finished_runs, mean_std
from rlvr.reporting.provenance import footer
from rlvr.reporting.stats import Interval, seeds_needed
from rlvr.reporting.tables import TABLES

REPO = Path(__file__).resolve().parents[1]
EFFECT = 0.02  # the accuracy difference the seed study resolves (2 points)


def _scale(quantity: str) -> tuple[float, int]:
    return (1.0, 3) if "entropy" in quantity else (100.0, 1)


def _values(values: dict[int, float], quantity: str) -> str:
    mean, std = mean_std(list(values.values()))
    if math.isnan(mean):
        return "-"
    scale, digits = _scale(quantity)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def _difference(diff: Interval | None, quantity: str) -> str:
    """``+1.23 [-0.50, +2.96] (90 %: [-0.20, +2.66]), paired``: the estimate with its 95 % and
    90 % intervals, in the quantity's display units."""
    if diff is None:
        return "-"
    scale, digits = _scale(quantity)

    def pair(bounds: tuple[float, float]) -> str:
        return f"[{scale * bounds[0]:+.{digits + 1}f}, {scale * bounds[1]:+.{digits + 1}f}]"

    return (f"{scale * diff.estimate:+.{digits + 1}f} {pair(diff.bounds(LEVEL))} "
            f"(90 %: {pair(diff.bounds(EQUIVALENCE_LEVEL))}), "
            f"{'paired' if diff.paired else 'Welch'}")


def verdict_of(claim: Claim, diff: Interval | None) -> str:
    """The verdict of one window's interval (the study's accuracy claims)."""
    return str(verdict(diff, MARGINS[claim.quantity]))


def _steps(result: ClaimResult) -> str:
    """``Holm: 48/50 steps shown, 0 contradicted``, or ``-`` for claims without one."""
    if result.steps is None:
        return "-"
    k = len(result.steps.steps)
    return (f"Holm: {sum(result.steps.claimed)}/{k} steps on the claimed side, "
            f"{sum(result.steps.other)} on the other")


def seed_study(profile: str, runs_root: Path, seeds: list[int] | None) -> list[str]:
    """Per table with accuracy claims: the pooled per-seed std of the reported accuracy over
    ``seeds`` (default: the profile's) and the seeds per row that resolve a 2-point difference
    at it; given ``seeds``, each accuracy claim again on every finished run among them."""
    claims = [c for c in CLAIMS if c.quantity == "accuracy"]
    names = list(dict.fromkeys(c.table for c in claims))
    runs = {name: finished_runs(TABLES[name], profile, runs_root, seeds) for name in names}
    lines = ["", f"## Seeds needed to resolve a {100 * EFFECT:.0f}-point accuracy difference", "",
             f"Seeds read: {', '.join(map(str, seeds)) if seeds else 'the profile seeds'}. "
             "Pooled per-seed std of the reported accuracy over the table's trained rows with "
             ">= 2 seeds; seeds per row for a two-sided Welch test at 5 % with 80 % power "
             "(rlvr/reporting/stats.py `seeds_needed`).", "",
             "| table | rows (seeds each) | pooled seed std (points) | seeds per row |",
             "|---|---|---|---|"]
    for name in names:
        selection = TABLES[name].selection(profile)
        trained = {row.id for row in TABLES[name].rows if row.algorithm is not None}
        samples = {row: [r.selected_eval(selection)["eval/average"] for r in records]
                   for row, records in runs[name].items() if row in trained and len(records) >= 2}
        if not samples:
            lines.append(f"| {name} | 0 | - | - |")
            continue
        pooled = math.sqrt(sum(statistics.variance(s) * (len(s) - 1) for s in samples.values())
                           / sum(len(s) - 1 for s in samples.values()))
        needed = seeds_needed(pooled, EFFECT) if pooled > 0 else 2
        counts = ", ".join(f"{row} {len(s)}" for row, s in samples.items())
        lines.append(f"| {name} | {counts} | {100 * pooled:.2f} | "
                     f"{needed if needed is not None else '> 1000'} |")
    if seeds is None:
        return lines
    lines += ["", "The accuracy claims on every finished run among these seeds:", "",
              "| claim | row | baseline | d (reported accuracy) | verdict |",
              "|---|---|---|---|---|"]
    for claim in claims:
        result = check(claim, runs[claim.table], TABLES[claim.table].selection(profile))
        q = claim.quantity
        lines.append(f"| {claim.text} | {claim.row}: {_values(result.row['late'], q)} "
                     f"(n={len(result.row['late'])}) | {claim.baseline}: "
                     f"{_values(result.baseline['late'], q)} (n={len(result.baseline['late'])}) "
                     f"| {_difference(result.differences['late'], q)} | "
                     f"{verdict_of(claim, result.differences['late'])} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", choices=["tiny", "demo", "paper"])
    parser.add_argument("--runs", default=str(REPO / "runs"))
    parser.add_argument("--out", help="default: results/claims_<profile>.md")
    parser.add_argument("--study-seeds", type=int, nargs="+",
                        help="seeds the seed study reads (default: the profile's); train extra "
                             "ones with reproduce.py --seeds ... --out <scratch>")
    args = parser.parse_args()
    runs = {name: finished_runs(TABLES[name], args.profile, Path(args.runs))
            for name in dict.fromkeys(c.table for c in CLAIMS)}
    margins = ", ".join(f"{q} {v:g}" for q, v in MARGINS.items())
    lines = [f"# The papers' claims on the `{args.profile}` profile", "",
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
        result = check(claim, runs[claim.table], TABLES[claim.table].selection(args.profile))
        q = claim.quantity
        row = " / ".join(_values(result.row[w], q) for w in WINDOWS)
        base = " / ".join(_values(result.baseline[w], q) for w in WINDOWS)
        seeds = f" (n={len(result.row['whole'])}/{len(result.baseline['whole'])})"
        steps = _steps(result)
        lines.append(f"| {claim.text} | {claim.source} | {claim.window} | {claim.row}: {row} | "
                     f"{claim.baseline}: {base}{seeds} | "
                     f"{_difference(result.differences['whole'], q)} | "
                     f"{_difference(result.differences['late'], q)} | {steps} | "
                     f"{result.verdict} |")
    lines += seed_study(args.profile, Path(args.runs), args.study_seeds)
    lines += ["", footer(shlex.join(["python", "scripts/claims.py", *sys.argv[1:]]))]
    text = "\n".join(lines) + "\n"
    out = Path(args.out) if args.out else REPO / "results" / f"claims_{args.profile}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
