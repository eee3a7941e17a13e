"""Which of the papers' qualitative claims the finished runs of a profile show.

    python scripts/reproduce.py table2 --profile tiny      # and flip_test, sa_ah_1.5b
    python scripts/claims.py --profile tiny                # -> results/claims_tiny.md

Reads the runs the reproduce script filed (rlvr/reporting/claims.py has the claims and the rule
for a verdict) and writes one markdown table; claims whose runs are missing say "not run".
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from pathlib import Path

from rlvr.reporting.claims import CLAIMS, check
from rlvr.reporting.collect import finished_runs, mean_std
from rlvr.reporting.tables import TABLES

REPO = Path(__file__).resolve().parents[1]


def _cell(values: list[float], quantity: str) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "-"
    scale, digits = (1.0, 3) if "entropy" in quantity else (100.0, 1)
    seeds = sum(not math.isnan(v) for v in values)
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f} (n={seeds})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny", choices=["tiny", "demo", "paper"])
    parser.add_argument("--runs", default=str(REPO / "runs"))
    parser.add_argument("--out", help="default: results/claims_<profile>.md")
    args = parser.parse_args()
    runs = {name: finished_runs(TABLES[name], args.profile, Path(args.runs))
            for name in dict.fromkeys(c.table for c in CLAIMS)}
    lines = [f"# The papers' claims on the `{args.profile}` profile", "",
             "Mean ± sample std over seeds (accuracy and its spread in %, entropy in nats). "
             "Verdict: `shown` when the difference has the claimed sign and exceeds the larger "
             "seed std of the two rows; `direction only` when it has the claimed sign but "
             "within that noise (with one seed on a side there is no noise estimate and "
             "nothing is `shown`); `not shown` / `contradicted` otherwise "
             "(rlvr/reporting/claims.py).", "",
             "| claim | source | quantity | row | baseline | verdict |",
             "|---|---|---|---|---|---|"]
    for claim in CLAIMS:
        row, baseline, result = check(claim, runs[claim.table],
                                      TABLES[claim.table].selection(args.profile))
        lines.append(f"| {claim.text} | {claim.source} | {claim.quantity} | "
                     f"{claim.row}: {_cell(row, claim.quantity)} | "
                     f"{claim.baseline}: {_cell(baseline, claim.quantity)} | "
                     f"{result} |")
    lines += ["", "Command: `" + shlex.join(["python", "scripts/claims.py", *sys.argv[1:]]) + "`"]
    text = "\n".join(lines) + "\n"
    out = Path(args.out) if args.out else REPO / "results" / f"claims_{args.profile}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
