"""Is a predicted final answer equivalent to the reference? Fast path first, then math-verify."""

from __future__ import annotations

from rlvr.rewards.normalize import as_number, normalize_answer

MAX_SYMBOLIC_CHARS = 200


def fast_equivalent(reference: str, predicted: str) -> bool | None:
    """Decide by normalised text or exact numeric value; None when neither side settles it."""
    ref, pred = normalize_answer(reference), normalize_answer(predicted)
    if ref == pred:
        return True
    ref_num, pred_num = as_number(ref), as_number(pred)
    if ref_num is not None and pred_num is not None:
        return ref_num == pred_num
    if ref_num is not None and pred_num is None and pred.lstrip("-").isdigit():
        return False
    return None


def symbolic_equivalent(reference: str, predicted: str) -> bool:
    """math-verify with the gold first, both wrapped in ``$...$`` so bare LaTeX parses. Its own
    signal-based timeouts are off (they fail outside the main thread); callers bound the time."""
    if len(reference) > MAX_SYMBOLIC_CHARS or len(predicted) > MAX_SYMBOLIC_CHARS:
        return False
    from math_verify import parse, verify

    try:
        gold = parse(f"${reference}$", parsing_timeout=None)
        pred = parse(f"${predicted}$", parsing_timeout=None)
        return bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=None))
    except Exception:  # math-verify raises many types on malformed LaTeX: not equivalent
        return False
