"""Is a predicted final answer equivalent to the reference? Fast path first, then math-verify."""

from __future__ import annotations

import re

from rlvr.rewards.normalize import as_number, normalize_answer

MAX_SYMBOLIC_CHARS = 200
_MATH_WORDS = {"sqrt", "frac", "pi", "infty", "sin", "cos", "tan", "log", "ln", "exp", "cdot",
               "times", "div", "pm", "mp", "circ", "le", "ge", "neq", "left", "right"}
_WORD = re.compile(r"(?<!\\)\b[A-Za-z]{2,}\b|(?<![\\A-Za-z])[A-Za-z]{2,}")


def _not_an_expression(answer: str) -> bool:
    """True for text that cannot be a math expression: control or non-ASCII characters, or a
    word of two or more letters that is not a LaTeX command or function name."""
    if any(not (32 <= ord(c) < 127) for c in answer):
        return True
    return any(w.lower() not in _MATH_WORDS for w in _WORD.findall(answer))


def fast_equivalent(reference: str, predicted: str) -> bool | None:
    """Decide by normalised text or exact numeric value; None when neither side settles it."""
    ref, pred = normalize_answer(reference), normalize_answer(predicted)
    if ref == pred:
        return True
    ref_num, pred_num = as_number(ref), as_number(pred)
    if ref_num is not None and pred_num is not None:
        return ref_num == pred_num
    if ref_num is not None and _not_an_expression(pred):
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
