"""Agreement of ``rlvr.rewards.math_reward`` and of raw math-verify with hand-written labels.

The corpus (tests/rewards/corpus.jsonl) holds completion / reference / label triples in the
styles instruct, base and math models write: ``\\boxed{}``, GSM8K ``####``, "the answer is",
answer sentences with units and words, markdown, inline LaTeX, several answers, hedging,
truncation, word and choice answers, and math-verify's known false positives. Raw math-verify
is ``verify(parse(f"${reference}$"), parse(completion))`` with its default extraction (LaTeX
and plain expressions), as a user of the library would call it. The cases of the failure classes
of issue 25 (tests/rewards/failure_classes.jsonl: thousands separators against tuples, several
boxes, chat-template tokens, ...; right answers and near misses) are reported per class.

    PYTHONPATH=. python benchmarks/verifier_agreement.py

Prints a table and writes it to results/verifier_agreement.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from rlvr.reporting.provenance import commit, footer
from rlvr.rewards import score_batch

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "tests" / "rewards" / "corpus.jsonl"
FAILURE_CLASSES = REPO / "tests" / "rewards" / "failure_classes.jsonl"
COMMAND = "PYTHONPATH=. python benchmarks/verifier_agreement.py"
KNOWN_FALSE_POSITIVES = "known_false_positive"


def load_corpus(path: Path = CORPUS) -> list[dict]:
    """The labelled triples: dicts with ``completion``, ``reference``, ``label`` and ``style``
    (the corpus) or ``class`` (the failure classes)."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def raw_math_verify(completion: str, reference: str) -> float:
    """math-verify as its README shows: the gold answer wrapped in ``$...$``, default extraction
    on both sides, gold first."""
    from math_verify import parse, verify

    try:
        return float(verify(parse(f"${reference}$"), parse(completion)))
    except Exception:  # a parse or comparison error is no match
        return 0.0


def counts(scores: list[float], rows: list[dict]) -> dict[str, int]:
    """Agreements, false positives (scored 1, labelled 0) and false negatives of ``scores``."""
    labels = [row["label"] for row in rows]
    return {"agree": sum(s == y for s, y in zip(scores, labels, strict=True)),
            "false_pos": sum(s == 1 and y == 0 for s, y in zip(scores, labels, strict=True)),
            "false_neg": sum(s == 0 and y == 1 for s, y in zip(scores, labels, strict=True)),
            "n": len(rows)}


def _row(name: str, counts: dict[str, int]) -> str:
    return (f"| {name} | {counts['n']} | {counts['agree']} ({counts['agree'] / counts['n']:.1%})"
            f" | {counts['false_pos']} | {counts['false_neg']} |")


def report(rows: list[dict], graders: dict[str, list[float]]) -> str:
    """Markdown: overall and per-style agreement of each grader, then every disagreement of
    the first grader with the labels."""
    lines = [f"Agreement with the labels of the hand-written corpus `{CORPUS.relative_to(REPO)}` "
             f"({len(rows)} triples), commit {commit()}, {platform.machine()} machine with "
             f"{os.cpu_count()} CPU cores.", "",
             "| grader | triples | agree | false positives | false negatives |",
             "|---|---|---|---|---|"]
    known = [i for i, row in enumerate(rows) if row["style"] == KNOWN_FALSE_POSITIVES]
    for name, scores in graders.items():
        lines.append(_row(name, counts(scores, rows)))
    for name, scores in graders.items():
        subset = counts([scores[i] for i in known], [rows[i] for i in known])
        lines.append(_row(f"{name}, known false-positive cases only", subset))
    lines += ["", "Agreement per style:", "",
              "| style | triples | " + " | ".join(graders) + " |",
              "|---|---|" + "---|" * len(graders)]
    by_style: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_style[row["style"]].append(i)
    for style, indices in sorted(by_style.items()):
        cells = [counts([scores[i] for i in indices], [rows[i] for i in indices])["agree"]
                 for scores in graders.values()]
        lines.append(f"| {style} | {len(indices)} | " + " | ".join(map(str, cells)) + " |")
    first, scores = next(iter(graders.items()))
    lines += ["", f"Disagreements of {first} with the labels:", ""]
    for row, score in zip(rows, scores, strict=True):
        if score != row["label"]:
            text = row["completion"].replace("\n", " ").replace("|", "\\|")
            lines.append(f"- label {row['label']}, scored {score:.0f}, reference "
                         f"`{row['reference']}`: {text[-160:]}")
    return "\n".join(lines)


def class_report(rows: list[dict], graders: dict[str, list[float]]) -> str:
    """Markdown: agreement and false positives of each grader per failure class."""
    lines = [f"Failure classes of issue 25 (`{FAILURE_CLASSES.relative_to(REPO)}`, {len(rows)} "
             "hand-labelled cases, right answers and near misses): agreement (false positives).",
             "", "| class | cases | " + " | ".join(graders) + " |",
             "|---|---|" + "---|" * len(graders)]
    by_class: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_class[row["class"]].append(i)
    for name, indices in [*by_class.items(), ("all", list(range(len(rows))))]:
        cells = [counts([scores[i] for i in indices], [rows[i] for i in indices])
                 for scores in graders.values()]
        lines.append(f"| {name} | {len(indices)} | "
                     + " | ".join(f"{c['agree']} ({c['false_pos']})" for c in cells) + " |")
    return "\n".join(lines)


def _graded(rows: list[dict]) -> dict[str, list[float]]:
    completions = [row["completion"] for row in rows]
    references = [row["reference"] for row in rows]
    graders: dict[str, Callable[[], list[float]]] = {
        "math_reward": lambda: score_batch(completions, references),
        "raw math-verify": lambda: [raw_math_verify(c, r) for c, r in
                                    zip(completions, references, strict=True)],
    }
    return {name: grade() for name, grade in graders.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "results" / "verifier_agreement.md"))
    args = parser.parse_args()
    rows = load_corpus()
    table = report(rows, _graded(rows))
    table += ("\n\nThe triples were written by hand, not sampled from a model, by the engineer who "
              "wrote the extraction rules: they measure the rules on the styles they were built "
              "for; agreement on real model outputs is to be measured on labelled samples.\n\n")
    classes = load_corpus(FAILURE_CLASSES)
    table += class_report(classes, _graded(classes)) + "\n\n" + footer(COMMAND) + "\n"
    print(table)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
