"""Final-answer extraction from a model completion."""

from __future__ import annotations

import re

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_GSM8K = re.compile(r"####\s*([^\n]+)")
_THE_ANSWER = re.compile(r"(?:final answer|the answer)\s*(?:is|:)\s*:?\s*([^\n]+)", re.IGNORECASE)
MAX_ANSWER_CHARS = 1000


def _braced(text: str, open_at: int) -> str | None:
    """Content of the brace group opening at ``text[open_at] == '{'``, or None if unbalanced."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[open_at + 1: i]
    return None


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces kept), or of a
    brace-less ``\\boxed 5``; None when there is none or it is unbalanced."""
    best = -1
    for command in _BOX_COMMANDS:
        best = max(best, text.rfind(command))
    if best < 0:
        return None
    rest = best + len("\\boxed") if text.startswith("\\boxed", best) else best + len("\\fbox")
    while rest < len(text) and text[rest] == " ":
        rest += 1
    if rest < len(text) and text[rest] == "{":
        return _braced(text, rest)
    match = re.match(r"([^\s$]+)", text[rest:])
    return match.group(1) if match else None


def extract_answer(text: str) -> str | None:
    """The final answer of a completion, by priority: the last ``\\boxed{}``/``\\fbox{}``, a
    GSM8K ``#### answer`` line, then "the answer is ..." / "final answer: ..."."""
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed[:MAX_ANSWER_CHARS]
    hashes = _GSM8K.findall(text)
    if hashes:
        return hashes[-1].strip()[:MAX_ANSWER_CHARS]
    stated = _THE_ANSWER.findall(text)
    if stated:
        return stated[-1].strip().rstrip(".")[:MAX_ANSWER_CHARS]
    return None
