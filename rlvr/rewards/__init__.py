"""Verifiable rewards: 1.0 when a completion's final answer equals the reference, else 0.0."""

from __future__ import annotations

from rlvr.rewards.equivalence import fast_equivalent, symbolic_equivalent
from rlvr.rewards.extract import extract_answer

__all__ = ["math_reward", "score_batch"]


def math_reward(completion: str, reference_answer: str) -> float:
    """1.0 if the completion's final answer is equivalent to ``reference_answer``, else 0.0."""
    predicted = extract_answer(completion)
    if predicted is None:
        return 0.0
    decided = fast_equivalent(reference_answer, predicted)
    if decided is None:
        decided = symbolic_equivalent(reference_answer, predicted)
    return 1.0 if decided else 0.0


def score_batch(completions: list[str], references: list[str]) -> list[float]:
    """``math_reward`` of each (completion, reference) pair."""
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} completions but {len(references)} references")
    return [math_reward(c, r) for c, r in zip(completions, references, strict=True)]
