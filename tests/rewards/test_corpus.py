"""The verifier against hand-written labels: the corpus of tests/rewards/corpus.jsonl, the
answer sentences of issue 15, and the rule that the last stated answer decides."""

import pytest

from benchmarks.verifier_agreement import (
    KNOWN_FALSE_POSITIVES,
    counts,
    load_corpus,
    raw_math_verify,
)
from rlvr.rewards import math_reward, score_batch

STYLES = {"boxed", "hash", "answer_is", "answer_colon", "markdown", "inline_latex", "no_marker",
          "several", "hedging", "truncated", "words", KNOWN_FALSE_POSITIVES}


def test_the_corpus_is_large_labelled_and_covers_every_style():
    rows = load_corpus()
    assert len(rows) >= 300
    assert len({(r["completion"], r["reference"]) for r in rows}) == len(rows)
    assert {r["label"] for r in rows} == {0, 1}
    assert {r["style"] for r in rows} >= STYLES
    for style in STYLES - {"truncated"}:  # a truncated completion states no answer: all 0
        assert {r["label"] for r in rows if r["style"] == style} == {0, 1}, style


def _scored(rows: list[dict]) -> list[float]:
    return score_batch([r["completion"] for r in rows], [r["reference"] for r in rows])


def test_math_reward_agrees_with_the_labels_without_false_positives():
    rows = load_corpus()
    ours = counts(_scored(rows), rows)
    assert ours["false_pos"] == 0, ours
    assert ours["agree"] >= 0.97 * ours["n"], ours


@pytest.mark.slow  # math-verify's own signal timeouts: ~10 s for the corpus
def test_math_reward_agrees_at_least_as_well_as_math_verify():
    rows = load_corpus()
    theirs = counts([raw_math_verify(r["completion"], r["reference"]) for r in rows], rows)
    assert counts(_scored(rows), rows)["agree"] >= theirs["agree"]


def test_known_false_positives_of_math_verify_score_zero():
    rows = [r for r in load_corpus() if r["style"] == KNOWN_FALSE_POSITIVES and r["label"] == 0]
    assert len(rows) >= 10
    assert _scored(rows) == [0.0] * len(rows)


ISSUE_SENTENCES = [  # (right, the same with a wrong number, reference)
    ("The answer is 3 bolts.", "The answer is 4 bolts.", "3"),
    ("The answer is x equals 2.", "The answer is x equals 3.", "2"),
    ("The answer is \\(x = 60\\) meters.", "The answer is \\(x = 61\\) meters.", "60"),
    ("The answer is Melanie started with 18 vacuum cleaners.",
     "The answer is Melanie started with 17 vacuum cleaners.", "18"),
    ("The answer is: The trader should select the jewelry option ..., with an expected profit "
     "of $125.", "The answer is: The trader should select the jewelry option ..., with an "
     "expected profit of $126.", "125"),
    ("\\boxed{1e3}", "\\boxed{1e4}", "1000"),
]


@pytest.mark.parametrize("right,wrong,reference", ISSUE_SENTENCES)
def test_answer_sentences_score_one_and_a_wrong_number_zero(right, wrong, reference):
    assert score_batch([right, wrong], [reference, reference]) == [1.0, 0.0]


@pytest.mark.parametrize("completion,reference,score", [
    ("The answer is 3. Wait, I forgot a bag: the answer is 5.", "5", 1.0),
    ("The answer is 3. Wait, I forgot a bag: the answer is 5.", "3", 0.0),
    ("\\boxed{3} ... no: 2 + 3 = 5, so the answer is 5.", "5", 1.0),
    ("\\boxed{3} ... no: 2 + 3 = 5, so the answer is 5.", "3", 0.0),
    ("#### 40\nThe discount applies twice.\n#### 32", "32", 1.0),
    ("The answer is 9. Let me verify: 3^2 = 9, so the answer is correct.", "9", 1.0),
    ("The answer is 8. Let me verify: 3^2 = 9, so the answer is correct.", "9", 0.0),
])
def test_the_last_stated_answer_decides(completion, reference, score):
    """Words alone ("the answer is correct") state no answer that overrides a number."""
    assert math_reward(completion, reference) == score
