"""Verifiable rewards: 1.0 when a completion's final answer equals the reference, else 0.0.

Pipeline per completion: extract the final answer (rlvr/rewards/extract.py: the last stated
answer, read from its sentence by fixed rules) -> normalise both sides (normalize.py) -> decide
by ordered in-process rules (equivalence.fast_equivalent, microseconds) -> otherwise math-verify
in a worker pool with a hard time bound (pool.py). Nothing the model wrote is ever evaluated
as Python.
"""

from __future__ import annotations

from rlvr.rewards.equivalence import compared_forms, fast_equivalent, too_risky
from rlvr.rewards.extract import final_statement
from rlvr.rewards.normalize import normalize_answer
from rlvr.rewards.pool import default_pool

__all__ = ["math_reward", "score_batch"]


def _undecided(completion: str, reference: str) -> tuple[float | None, tuple[str, str] | None]:
    """(score, None) when decided in process, else (None, normalised pair for math-verify)."""
    statement = final_statement(completion)
    if statement is None:
        return 0.0, None
    span, predicted = statement
    if normalize_answer(span) == normalize_answer(reference):  # written exactly as the reference
        return 1.0, None
    decided = fast_equivalent(reference, predicted)
    if decided is not None:
        return float(decided), None
    pair = compared_forms(reference, predicted)
    if too_risky(pair[1]) or too_risky(pair[0]):
        return 0.0, None
    return None, pair


def score_batch(completions: list[str], references: list[str], *, workers: int | None = None,
                timeout_s: float = 2.0) -> list[float]:
    """``math_reward`` of each (completion, reference) pair: fast cases in process, the rest
    in parallel in the worker pool (each distinct pair once), each bounded by ``timeout_s``
    seconds."""
    if len(completions) != len(references):
        raise ValueError(f"{len(completions)} completions but {len(references)} references")
    scores: list[float] = []
    pending: list[tuple[int, tuple[str, str]]] = []
    for i, (completion, reference) in enumerate(zip(completions, references, strict=True)):
        score, pair = _undecided(completion, reference)
        scores.append(0.0 if score is None else score)
        if pair is not None:
            pending.append((i, pair))
    if pending:
        unique = list(dict.fromkeys(pair for _, pair in pending))  # G rollouts often agree
        verdicts = default_pool(workers, timeout_s).check(unique)
        verdict_of = dict(zip(unique, verdicts, strict=True))
        for i, pair in pending:
            scores[i] = float(verdict_of[pair])
    return scores


def math_reward(completion: str, reference_answer: str) -> float:
    """1.0 if the completion's final answer is equivalent to ``reference_answer``, else 0.0."""
    return score_batch([completion], [reference_answer])[0]
