"""Telling prose from mathematics in an answer: which letters are words and which are math.

A *prose word* is a run of letters, not part of a LaTeX command (``\\frac``) and not nested
inside braces (``\\begin{pmatrix}``, ``\\operatorname{lcm}``), that is either three or more
letters long and no function name written in plain text (``sqrt``, ``log``), or a two-letter
English function word or unit ("is", "of", "km"). Other two-letter runs (``ab``, ``xy``) are read as
products of variables.
"""

from __future__ import annotations

import re

MATH_NAMES = frozenset({  # written without a backslash in plain-text math: "sqrt(2)", "log 8"
    "sqrt", "pi", "sin", "cos", "tan", "cot", "sec", "csc", "arcsin", "arccos", "arctan", "log",
    "ln", "exp", "gcd", "lcm", "min", "max", "mod"})
SHORT_WORDS = frozenset({  # two-letter English function words and unit abbreviations
    "is", "of", "or", "in", "at", "to", "by", "an", "on", "so", "as", "be", "if", "it", "we",
    "he", "do", "no", "up", "am", "my", "us", "me", "km", "cm", "mm", "kg", "mg", "ml", "ft",
    "mi", "lb", "oz", "hr"})
_LETTERS = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}(?![A-Za-z])")
_ARTICLE = re.compile(r"(?<!\S)(?:a|A|I)(?=\s|[.,;:!?]|$)")  # "$18 a day", "I think"


def _brace_depths(text: str) -> list[int]:
    """Brace depth at each character of ``text`` (unbalanced closing braces count as 0)."""
    depths, depth = [], 0
    for char in text:
        if char == "}":
            depth = max(0, depth - 1)
        depths.append(depth)
        if char == "{":
            depth += 1
    return depths


def prose_spans(text: str, in_a_sentence: bool = False) -> list[tuple[int, int]]:
    """(start, end) of every prose word of ``text`` at brace depth 0, in order; in a sentence
    (text already known to be prose) also the words "a" and "I" standing alone."""
    depths = _brace_depths(text)
    spans = [] if not in_a_sentence else [
        m.span() for m in _ARTICLE.finditer(text) if depths[m.start()] == 0]
    for match in _LETTERS.finditer(text):
        word = match.group().lower()
        if depths[match.start()] > 0 or word in MATH_NAMES:
            continue
        if len(word) >= 3 or word in SHORT_WORDS:
            spans.append(match.span())
    return sorted(spans)


def is_prose(text: str) -> bool:
    """True when ``text`` holds a prose word or a character that is no printable ASCII:
    then it is not (only) a mathematical expression."""
    return not (text.isascii() and text.isprintable()) or bool(prose_spans(text))
