"""Readers of structured answers: numerals in a base, complex numbers, and collections (tuples,
intervals, sets, lists, matrices). They read text into exact values or items; the decisions
built on them are rules of rlvr/rewards/equivalence.py."""

from __future__ import annotations

import re
from fractions import Fraction

from rlvr.rewards.normalize import GROUPED_NUMBER, as_number

BASE_NUMERAL = re.compile(r"([0-9A-Z]+)_\{?(\d+)\}?")  # 52_8, 4210_{5}, A5_{11}
_INTEGER = re.compile(r"\d{1,40}")
_DECIMAL = r"\d+(?:\.\d+)?"
COMPLEX = re.compile(rf"(?:([-+]?{_DECIMAL})(?=[-+]))?([-+]?)({_DECIMAL})?i")  # 6-5i, -i, 2i
_OPENERS, _CLOSERS = "([{", ")]}"
_MATRIX = re.compile(r"\\begin\{([pbv]?matrix)\}(.*)\\end\{\1\}", re.DOTALL)
_MATRIX_SEPARATOR = re.compile(r"\\\\|&")


def numeral_value(answer: str) -> tuple[int, int] | None:
    """(value, base) of a numeral with a base subscript (``52_8`` -> (42, 8)) or of a decimal
    integer (base 10), else None."""
    numeral = BASE_NUMERAL.fullmatch(answer)
    if numeral is None:
        return (int(answer), 10) if _INTEGER.fullmatch(answer) else None
    try:
        return int(numeral[1], int(numeral[2])), int(numeral[2])
    except ValueError:  # a digit too large for its base, or a base outside 2..36
        return None


def complex_value(answer: str) -> tuple[Fraction, Fraction] | None:
    """(real, imaginary) part of ``a+bi``, ``bi`` or a real number, exactly; else None."""
    complex_number = COMPLEX.fullmatch(answer)
    if complex_number is None:
        real = as_number(answer)
        return None if real is None else (real, Fraction(0))
    real_part, sign, magnitude = complex_number.groups()
    imaginary = Fraction(magnitude or 1) * (-1 if sign == "-" else 1)
    return Fraction(real_part or 0), imaginary


def top_level_items(text: str) -> list[str]:
    """``text`` split at the commas outside any bracket or brace."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in _OPENERS) - (char in _CLOSERS)
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return [*items, text[start:]]


def _enclosed(text: str) -> bool:
    """True when the bracket opening ``text`` closes at its last character."""
    depth = 0
    for i, char in enumerate(text):
        depth += (char in _OPENERS) - (char in _CLOSERS)
        if depth == 0:
            return i == len(text) - 1
    return False


def lists_items(answer: str) -> bool:
    """True when ``answer`` is an unbracketed list (``3, 5, 7``): commas outside any bracket,
    other than those of one number in digit groups (``1,000``)."""
    return GROUPED_NUMBER.fullmatch(answer) is None and len(top_level_items(answer)) > 1


def collection(answer: str) -> tuple[str, list[str]] | None:
    """(delimiters, items) of a tuple or interval (``(1,2]`` -> ``("(]", ["1", "2"])``), a
    matrix (its environment, entries row by row), a set (delimiters ``"{}"``) or an unbracketed
    list (``""``); None for an unbracketed answer with one item (a bracketed one, ``(1100)``,
    is a collection of one item)."""
    matrix = _MATRIX.fullmatch(answer)
    if matrix:
        return matrix[1], _MATRIX_SEPARATOR.split(matrix[2])
    if answer.startswith("\\{") and answer.endswith("\\}"):
        kind, body = "{}", answer[2:-2]
    elif answer[:1] in "([" and answer[-1:] in ")]" and _enclosed(answer):
        kind, body = answer[0] + answer[-1], answer[1:-1]
    else:
        kind, body = "", answer
    items = top_level_items(body)
    return (kind, items) if kind or len(items) > 1 else None
