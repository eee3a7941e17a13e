"""The verifier on hand-labelled cases of the failure classes of issue 25
(tests/rewards/failure_classes.jsonl): thousands separators against tuples and lists, LaTeX
separators, several boxes, chat-template tokens, bare answers, relations and approximations,
percent, words in math mode, brace-less root and fraction arguments, degenerate text after a box.
Each class holds right answers and near misses; a label says whether the answer is right."""

import pytest

from benchmarks.verifier_agreement import FAILURE_CLASSES, load_corpus
from rlvr.rewards import score_batch

CLASSES = {"thousands_vs_items", "latex_separators", "several_boxes", "chat_tokens",
           "bare_answer", "relations", "percent", "math_mode_words", "bare_arguments",
           "degenerate_tail"}
ROWS = load_corpus(FAILURE_CLASSES)


def test_every_class_has_ten_cases_right_and_wrong():
    assert {row["class"] for row in ROWS} == CLASSES
    for name in CLASSES:
        labels = [row["label"] for row in ROWS if row["class"] == name]
        assert len(labels) >= 10, name
        assert set(labels) == {0, 1}, name
    assert len({(row["completion"], row["reference"]) for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['class']}-{i}" for i, r in enumerate(ROWS)])
def test_each_case_scores_its_label(row):
    assert score_batch([row["completion"]], [row["reference"]]) == [float(row["label"])]
