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

from rlvr.reporting.claims import CLAIMS, check
from rlvr.reporting.claims_report import claims_table, difference_cell, values_cell, verdict_of
from rlvr.reporting.collect import finished_runs
from rlvr.reporting.provenance import footer
from rlvr.reporting.stats import seeds_needed
from rlvr.reporting.tables import PROFILES, TABLES

REPO = Path(__file__).resolve().parents[1]
EFFECT = 0.02  # the accuracy difference the seed study resolves (2 points)


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
             ">= 2 evaluated seeds; seeds per row for a two-sided Welch test at 5 % with 80 % "
             "power (rlvr/reporting/stats.py `seeds_needed`).", "",
             "| table | rows (seeds each) | pooled seed std (points) | seeds per row |",
             "|---|---|---|---|"]
    for name in names:
        selection = TABLES[name].selection(profile)
        trained = {row.id for row in TABLES[name].rows if row.algorithm is not None}
        # make claims trains the rows that only entropy claims read without evaluation
        evaluated = {row: [r for r in records if r.evals] for row, records in runs[name].items()
                     if row in trained}
        samples = {row: [r.selected_eval(selection)["eval/average"] for r in records]
                   for row, records in evaluated.items() if len(records) >= 2}
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
        base = result.baseline["late"]
        lines.append(f"| {claim.text} | {claim.row}: {values_cell(result.row['late'], q)} "
                     f"(n={len(result.row['late'])}) | {claim.baseline}: "
                     f"{values_cell(base, q)} (n={len(base)}) "
                     f"| {difference_cell(result.differences['late'], q)} | "
                     f"{verdict_of(claim, result.differences['late'])} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", choices=list(PROFILES))
    parser.add_argument("--runs", default=str(REPO / "runs"))
    parser.add_argument("--out", help="default: results/claims_<profile>.md")
    parser.add_argument("--study-seeds", type=int, nargs="+",
                        help="seeds the seed study reads (default: the profile's); train extra "
                             "ones with reproduce.py --seeds ... --out <scratch>")
    args = parser.parse_args()
    lines, _ = claims_table(args.profile, Path(args.runs))
    lines += seed_study(args.profile, Path(args.runs), args.study_seeds)
    lines += ["", footer(shlex.join(["python", "scripts/claims.py", *sys.argv[1:]]))]
    text = "\n".join(lines) + "\n"
    out = Path(args.out) if args.out else REPO / "results" / f"claims_{args.profile}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
