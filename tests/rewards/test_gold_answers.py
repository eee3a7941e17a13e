"""Every gold answer of the evaluation benchmarks and of the ``math`` training split (the Table 2
training rewards), written as a model would, scores 1.0 against itself; the same answer
perturbed scores 0.0 (local benchmark files; without them the skip is reported in the summary,
tests/conftest.py)."""

import re

import pytest

from rlvr.data.benchmarks import load_benchmark
from rlvr.rewards import score_batch
from rlvr.rewards.closed_form import clearly_different
from rlvr.rewards.equivalence import fast_equivalent, symbolic_equivalent
from rlvr.rewards.normalize import normalize_answer

SPLITS = [("gsm8k", "test"), ("math500", "test"), ("aime24", "test"), ("aime25", "test"),
          ("amc23", "test"), ("olympiadbench", "test"), ("math", "train")]
# math-verify folds symbol case: it reads the gold "N=n" as Eq(n, n) and accepts "N=n+1"; it
# compares the last sides of two equations ("1.56 = 56%") and calls numbers within its
# tolerance equal (2/2^98 and 1/2^98). (It also takes "A5_{12}" for "A5_{11}": the in-process
# base-numeral rule rejects that one.)
KNOWN_PERTURBATION_MISSES = {("olympiadbench", "N=n"), ("math", "0.56 = 56\\%"),
                             ("math", "\\frac{1}{2^{98}}")}


def perturb(answer: str) -> str:
    """A different answer: the first number + 1, else the first choice letter shifted, else +1."""
    number = re.search(r"(?<![\\a-zA-Z])\d+", answer)
    if number:
        return f"{answer[:number.start()]}{int(number.group()) + 1}{answer[number.end():]}"
    letter = re.search(r"\b([A-E])\b", answer)
    if letter:
        return answer.replace(letter.group(1), "BCDEA"["ABCDE".index(letter.group(1))], 1)
    return f"{answer}+1"


def test_perturbation_changes_the_answer():
    assert perturb("\\frac{3}{4}") == "\\frac{4}{4}"
    assert perturb("\\text{(C)}") == "\\text{(D)}"
    assert perturb("\\pi") == "\\pi+1"


@pytest.mark.parametrize("name,split", SPLITS)
def test_gold_answers_score_one(name, split, data_dir):
    golds = [p.answer for p in load_benchmark(name, split, str(data_dir))]
    same = score_batch([f"Let me work it out. So the answer is \\boxed{{{g}}}." for g in golds],
                       golds)
    wrong = [g for g, s in zip(golds, same, strict=True) if s != 1.0]
    assert not wrong, wrong[:10]


# the 7,498 training answers need ~40 s of math-verify on 2 cores: slow-marked
PERTURBED_SPLITS = [*SPLITS[:-1], pytest.param(*SPLITS[-1], marks=pytest.mark.slow)]


@pytest.mark.parametrize("name,split", PERTURBED_SPLITS)
def test_perturbed_gold_answers_score_zero(name, split, data_dir):
    golds = [p.answer for p in load_benchmark(name, split, str(data_dir))]
    perturbed = score_batch([f"So the answer is \\boxed{{{perturb(g)}}}." for g in golds], golds)
    misses = {(name, g) for g, s in zip(golds, perturbed, strict=True) if s != 0.0}
    assert misses <= KNOWN_PERTURBATION_MISSES, sorted(misses)[:10]


@pytest.mark.parametrize("name", ["math500", "olympiadbench"])
def test_fast_rejections_agree_with_math_verify(name, data_dir):
    """Every pair of gold answers of two problems that the in-process checks reject (numbers,
    free variables, far-apart constants, scalar vs tuple), math-verify (the reference grader)
    also calls different."""
    golds = [normalize_answer(p.answer) for p in load_benchmark(name, "test", str(data_dir))]
    pairs = [(g, golds[(i + 7) % len(golds)]) for i, g in enumerate(golds)]
    rejected = [pair for pair in pairs if fast_equivalent(*pair) is False]
    assert sum(clearly_different(*pair) for pair in rejected) >= 50  # the reader earns its keep
    assert not [pair for pair in rejected if symbolic_equivalent(*pair)]
