"""The seed std of the reported accuracy under candidate tiny protocols, over training seeds.

    python scripts/reproduce.py table2 --profile tiny_lownoise --rows grpo --seeds 0 ... 9 \
        --runs /tmp/pn/A
    python scripts/reproduce.py table2 --profile tiny_lownoise --rows grpo --seeds 0 ... 9 \
        --runs /tmp/pn/B prompts_per_step=32
    python scripts/protocol_noise.py --set "tiny_lownoise=/tmp/pn/A" \
        --set "tiny_lownoise, 32 prompts per step=/tmp/pn/B" --windows 1 3 5
    python scripts/protocol_noise.py --set "GRPO=/tmp/pn/A" --set "AsymGRPO=/tmp/pn/C" \
        --paired AsymGRPO=GRPO

Each ``--set LABEL=RUNS`` is one protocol: the finished runs under ``RUNS`` of one
configuration, differing only in their seed (checked on their recorded identities,
``run.json``). ``scripts/noise_study.py`` splits one protocol's variance into training and
evaluation shares by re-evaluating checkpoints; this script needs no re-evaluation: each run's
own logged evaluations give its reported number for every window ``w`` of ``--windows`` (the
mean of ``eval/average`` over its last w evaluations, the checkpoint selection ``window:<w>``),
and the seed std over the runs is the std a table row's seeds scatter by, training and
evaluation noise together, with its 90 % chi-square interval (``stats.std_interval``).
Writes the table (with each protocol's minutes per run, from the runs' own ``time/elapsed``) to
``--out``. ``--paired ROW=BASELINE`` (two sets' labels: two rows of one protocol, run with the
same seeds, so that a seed gives both the same prompt order and sampling streams) adds, per
window, the paired difference row - baseline over the seeds both ran, its std (what a claim's
paired interval scales with, against sqrt(2) x a row's seed std for unpaired rows), its 95 %
interval, and the seeds per row at which a claim on it would resolve (``stats.seeds_to_resolve``
with the claims' 1-point margin).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
from pathlib import Path

from rlvr.reporting.claims import EQUIVALENCE_LEVEL, LEVEL, MARGINS
from rlvr.reporting.collect import RunRecords, is_finished
from rlvr.reporting.provenance import footer
from rlvr.reporting.stats import paired_interval, seeds_to_resolve, std_interval

REPO = Path(__file__).resolve().parents[1]
TARGET_POINTS = 1.2  # issue 27: seed std of the reported accuracy


class ProtocolError(ValueError):
    """A set's runs are not one configuration over seeds."""


def load_protocol(root: Path) -> dict[int, RunRecords]:
    """seed -> the finished run of that seed under ``root``; every run must have the same
    identity apart from its seed (``run.json``)."""
    runs: dict[int, RunRecords] = {}
    reference: tuple[Path, dict] | None = None
    for record in sorted(root.rglob("run.json")):
        run_dir = record.parent
        if not is_finished(run_dir) or "_check" in run_dir.parts:
            continue
        identity = dict(json.loads(record.read_text())["identity"])
        seed = identity.pop("seed")
        if reference is None:
            reference = (run_dir, identity)
        elif identity != reference[1]:
            key = next(k for k in sorted(set(identity) | set(reference[1]))
                       if identity.get(k) != reference[1].get(k))
            raise ProtocolError(f"{run_dir} and {reference[0]} differ in {key}: "
                                f"{identity.get(key)!r} vs {reference[1].get(key)!r}")
        if seed in runs:
            raise ProtocolError(f"two finished runs of seed {seed} under {root}")
        runs[seed] = RunRecords.load(run_dir)
    if len(runs) < 2:
        raise ProtocolError(f"{root}: {len(runs)} finished run(s); a std needs >= 2 seeds")
    return runs


def window_value(run: RunRecords, window: int) -> float:
    """The reported accuracy under ``window:<window>``: mean eval/average of the last
    ``window`` evaluations."""
    if len(run.evals) < window:
        raise ProtocolError(f"{run.path} logged {len(run.evals)} evaluations, fewer than the "
                            f"window of {window}")
    return run.selected_eval(f"window:{window}")["eval/average"]


def minutes_per_run(run: RunRecords) -> float:
    """Minutes from the run's first logged record to its last (start-up and the model build
    excluded)."""
    stamps = [r["time/elapsed"] for r in (*run.evals, *run.steps) if "time/elapsed" in r]
    return (max(stamps) - min(stamps)) / 60


def report(protocols: dict[str, dict[int, RunRecords]], windows: list[int], command: str,
           pairs: list[tuple[str, str]] = ()) -> str:
    lines = ["# Seed std of the reported accuracy, per tiny protocol", "",
             "Each protocol: one configuration's finished runs over training seeds. Reported "
             "number: the mean of `eval/average` over the run's last w evaluations (checkpoint "
             "selection `window:<w>`; w = 1 is the final evaluation). `seed std`: the sample "
             "std over the seeds of that number (training and evaluation noise together; "
             "`results/noise_tiny.md` splits them), with its 90 % chi-square interval. "
             f"Target: seed std <= {TARGET_POINTS} points: **target met** when the whole "
             "interval is below it, `estimate within target` when only the estimate is. "
             "Minutes per run: from the run's "
             "first logged record to its last, mean over the seeds (start-up excluded).", "",
             "| protocol | seeds | window | steps averaged | mean accuracy | seed std [90 %] | "
             "final training entropy, seed std | minutes per run |",
             "|---|---|---|---|---|---|---|---|"]
    for label, runs in protocols.items():
        seeds = sorted(runs)
        entropy = [runs[s].curve("train/entropy")[1][-1] for s in seeds]
        minutes = statistics.fmean(minutes_per_run(runs[s]) for s in seeds)
        for window in windows:
            values = [100 * window_value(runs[s], window) for s in seeds]
            steps = [r["step"] for r in runs[seeds[0]].evals[-window:]]
            s, low, high = std_interval(values)
            mark = (" **(target met)**" if high <= TARGET_POINTS
                    else " (estimate within target)" if s <= TARGET_POINTS else "")
            lines.append(
                f"| {label} | {len(seeds)} ({seeds[0]}-{seeds[-1]}) | {window} | "
                f"{', '.join(map(str, steps))} | {statistics.fmean(values):.2f} % | "
                f"{s:.2f} [{low:.2f}, {high:.2f}]{mark} | "
                f"{statistics.stdev(entropy):.4f} nats | {minutes:.1f} |")
    made = sorted({(summary.get("machine", "not recorded"), summary.get("commit", "not recorded"))
                   for runs in protocols.values() for run in runs.values()
                   for summary in [json.loads((run.path / "summary.json").read_text())]})
    lines += ["", "The runs were made on: " + "; ".join(
        f"`{where}` at commit `{commit}`" for where, commit in made) + "."]
    for row, baseline in pairs:
        lines += ["", f"Paired: {row} - {baseline} (accuracy points), over the seeds both ran.", "",
                  "| window | seeds | difference [95 %] | std of the paired differences | "
                  "unpaired equivalent sqrt(s_row^2 + s_base^2), same seeds | "
                  "seeds per row to resolve |",
                  "|---|---|---|---|---|---|"]
        for window in windows:
            values = {label: {s: 100 * window_value(r, window)
                              for s, r in protocols[label].items()}
                      for label in (row, baseline)}
            diff = paired_interval(values[row], values[baseline])
            if diff is None:
                raise ProtocolError(f"{row} and {baseline} share fewer than two seeds")
            low, high = diff.bounds(LEVEL)
            shared = sorted(set(values[row]) & set(values[baseline]))
            unpaired = sum(statistics.variance([values[label][s] for s in shared])
                           for label in (row, baseline)) ** 0.5
            needed = seeds_to_resolve(diff.estimate, diff.spread,
                                      100 * MARGINS["accuracy"], True, LEVEL,
                                      EQUIVALENCE_LEVEL)
            lines.append(f"| {window} | {diff.n_row} | {diff.estimate:+.2f} [{low:+.2f}, "
                         f"{high:+.2f}] | {diff.spread:.2f} | {unpaired:.2f} | "
                         f"{needed if needed is not None else '> 200'} |")
    return "\n".join([*lines, "", footer(command)]) + "\n"


def parse_set(text: str) -> tuple[str, Path]:
    label, sep, root = text.rpartition("=")
    if not sep or not label or not root:
        raise argparse.ArgumentTypeError(f"--set {text!r}: expected LABEL=RUNS_DIR")
    if not Path(root).is_dir():
        raise argparse.ArgumentTypeError(f"--set {text!r}: {root} is not a directory")
    return label, Path(root)


def parse_pair(text: str) -> tuple[str, str]:
    row, sep, baseline = text.partition("=")
    if not sep or not row or not baseline:
        raise argparse.ArgumentTypeError(f"--paired {text!r}: expected ROW=BASELINE")
    return row, baseline


def window_size(text: str) -> int:
    window = int(text)
    if window < 1:
        raise argparse.ArgumentTypeError(f"--windows {text}: a window is >= 1 evaluation")
    return window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="sets", type=parse_set, action="append", required=True,
                        metavar="LABEL=RUNS", help="one protocol's runs (repeat per protocol)")
    parser.add_argument("--windows", type=window_size, nargs="+", default=[1, 3])
    parser.add_argument("--paired", type=parse_pair, action="append", default=[],
                        metavar="ROW=BASELINE", help="two --set labels to compare seed by seed")
    parser.add_argument("--out", default=str(REPO / "results" / "protocol_noise_tiny.md"))
    args = parser.parse_args()
    try:
        protocols = {label: load_protocol(root) for label, root in args.sets}
        unknown = sorted({label for pair in args.paired for label in pair} - set(protocols))
        if unknown:
            raise ProtocolError(f"--paired names no --set label {', '.join(unknown)}; "
                                f"the sets are {', '.join(protocols)}")
        text = report(protocols, args.windows,
                      shlex.join(["python", "scripts/protocol_noise.py", *sys.argv[1:]]),
                      args.paired)
    except ProtocolError as error:
        parser.exit(2, f"protocol_noise: {error}\n")
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
