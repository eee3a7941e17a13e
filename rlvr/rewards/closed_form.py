"""Approximate value of a closed-form constant or expression written in LaTeX, for rejecting
answers fast.

Most wrong answers on MATH-style benchmarks are a different constant (``\\sqrt{51}`` for ``90``,
``70\\sqrt{2}`` for ``203``). math-verify needs ~25 ms to say so; this hand-written
recursive-descent reader of the constant subset of LaTeX needs microseconds. It only ever
*rejects* (values far apart); close values still go to math-verify. It reads text, it never
evaluates it as Python. Expressions in variables (``8n^2+4n+1``) are read at one fixed point:
two expressions whose values there are far apart are different functions (variables are
case-folded, as math-verify folds them, so ``N`` and ``n`` never count as different).

Grammar (on a normalised answer, spaces removed)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "\\cdot" | "\\times" | "/" | "\\div") unary | <implicit> root)*
    root   := unary starting with "\\pi", "\\sqrt" or a variable (other implicit products,
              and any after a division, read differently in latex2sympy: refused)
    unary  := ("-" | "+") unary | power
    power  := atom ("^" arg)?
    atom   := number | "\\pi" | "\\frac" arg arg | "\\sqrt" ("[" expr "]")? arg
              | "(" expr ")" | "{" expr "}" | variable
    variable := one letter other than e and i, not followed by a letter or "(" (a function)
    arg    := "{" expr "}" | one digit (not followed by a digit, but in "\\frac12")
"""

from __future__ import annotations

import math
import re

_DIGITS = "0123456789"  # not str.isdigit: it accepts "²", which float() refuses
_NUMBER = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_MAX_EXPONENT = 64.0
_MAX_MAGNITUDE = 2.0 ** 53  # beyond it float sums cancel ("10^{20}+1-10^{20}" would be 0)
_MAX_DEPTH = 16  # brackets; the deepest gold answer of the benchmarks nests 4
_VARIABLES = "abcdfghjklmnopqrstuvwxyz"  # e and i are constants
_VARIABLE = re.compile(r"(?<![\\A-Za-z])[A-DF-HJ-Za-df-hj-z]")
# the point where expressions in variables are read: distinct, irrational-looking, near 1
_POINT = {v: 1.0 + (k + 1) * 0.0731 for k, v in enumerate(_VARIABLES)}


class _NotAConstant(Exception):
    """The text is outside the grammar, or its value is not a finite real number."""


def _bounded(value: float) -> float:
    """``value``, or refuse when it is too large for float arithmetic to stay exact enough."""
    if not abs(value) <= _MAX_MAGNITUDE:  # also catches NaN
        raise _NotAConstant
    return value


class _Reader:
    def __init__(self, text: str, point: dict[str, float] | None = None) -> None:
        self.text = text
        self.at = 0
        self.point = point  # None: a constant, no variable allowed
        self.depth = 0

    def peek(self, token: str) -> bool:
        return self.text.startswith(token, self.at)

    def take(self, token: str) -> bool:
        if self.peek(token):
            self.at += len(token)
            return True
        return False

    def expect(self, token: str) -> None:
        if not self.take(token):
            raise _NotAConstant

    def expr(self) -> float:
        value = self.term()
        while True:
            if self.take("+"):
                value += self.term()
            elif self.take("-"):
                value -= self.term()
            else:
                return value

    def term(self) -> float:
        value = self.unary()
        while True:
            if self.take("*") or self.take("\\cdot") or self.take("\\times"):
                value = _bounded(value * self.unary())
            elif self.take("/") or self.take("\\div"):
                divisor = self.unary()
                if divisor == 0 or self.starts_atom():  # "1/2\\pi": 1/(2 pi) to latex2sympy
                    raise _NotAConstant
                value = _bounded(value / divisor)
            elif self.peek("\\pi") or self.peek("\\sqrt") or self.peek_variable():
                value = _bounded(value * self.unary())
            elif self.starts_atom():  # "2(3)", "2\\frac12": latex2sympy may read a mixed number
                raise _NotAConstant
            else:
                return value

    def unary(self) -> float:
        if self.take("-"):
            return -self.unary()
        if self.take("+"):
            return self.unary()
        return self.power()

    def power(self) -> float:
        base = self.atom()
        if not self.take("^"):
            return base
        exponent = self.arg()
        if abs(exponent) > _MAX_EXPONENT or (base < 0 and not exponent.is_integer()):
            raise _NotAConstant
        if base == 0 and exponent < 0:
            raise _NotAConstant
        return _bounded(base ** exponent)

    def peek_variable(self) -> bool:
        return self.at < len(self.text) and self.text[self.at].isascii() and (
            self.text[self.at].isalpha() and self.text[self.at - 1: self.at] != "\\")

    def starts_atom(self) -> bool:
        return self.at < len(self.text) and (
            self.text[self.at] in _DIGITS or self.text[self.at] in "({."
            or any(self.peek(c) for c in ("\\pi", "\\frac", "\\sqrt")) or self.peek_variable())

    def atom(self) -> float:
        number = _NUMBER.match(self.text, self.at)
        if number:
            self.at = number.end()
            if self.peek(".") or self.peek("\\frac"):
                raise _NotAConstant  # "2\\frac{1}{2}": 2.5 as a mixed number, 1 as a product
            return _bounded(float(number.group()))
        if self.take("\\pi"):
            return math.pi
        if self.take("\\frac"):
            numerator, denominator = self.arg(ends_run=False), self.arg()
            if denominator == 0:
                raise _NotAConstant
            return numerator / denominator
        if self.take("\\sqrt"):
            degree = 2.0
            if self.take("["):
                degree = self.expr()
                self.expect("]")
            radicand = self.arg()
            if radicand < 0 or degree <= 0:
                raise _NotAConstant
            return radicand ** (1.0 / degree)
        if self.peek_variable():
            return self.variable()
        for opening, closing in (("(", ")"), ("{", "}")):
            if self.take(opening):
                self.depth += 1
                if self.depth > _MAX_DEPTH:  # no answer nests this deep: refuse, fast
                    raise _NotAConstant
                value = self.expr()
                self.expect(closing)
                self.depth -= 1
                return value
        raise _NotAConstant

    def variable(self) -> float:
        """A one-letter variable's value at the point; refused for constants, for e and i, and
        for a letter followed by a letter or "(" (a word, or a function like f(x))."""
        letter = self.text[self.at].lower()
        after = self.text[self.at + 1: self.at + 2]
        if self.point is None or letter not in self.point or after.isalpha() or after == "(":
            raise _NotAConstant
        self.at += 1
        return self.point[letter]

    def arg(self, ends_run: bool = True) -> float:
        """A braced group or one digit; a digit that ends a run (not ``\\frac``'s numerator)
        must not be followed by another digit."""
        if self.take("{"):
            value = self.expr()
            self.expect("}")
            return value
        if self.at < len(self.text) and self.text[self.at] in _DIGITS:
            self.at += 1
            if ends_run and self.at < len(self.text) and self.text[self.at] in f"{_DIGITS}.":
                raise _NotAConstant  # "2^10" is 2^1 * 0 in LaTeX but 1024 to its writer
            return float(self.text[self.at - 1])
        raise _NotAConstant


def _value(answer: str, point: dict[str, float] | None) -> float | None:
    reader = _Reader(answer, point)
    try:
        value = reader.expr()
    except (_NotAConstant, ArithmeticError, ValueError, RecursionError):
        return None
    if reader.at != len(answer) or not math.isfinite(value):
        return None
    return value


def constant_value(answer: str) -> float | None:
    """Value of a normalised answer that is a real closed-form constant, else None.

    >>> round(constant_value("\\\\frac{3\\\\sqrt{3}}{4}"), 6)
    1.299038
    """
    return _value(answer, None)


def clearly_different(reference: str, predicted: str, relative: float = 1e-2) -> bool:
    """True when both answers are real constants, or both real expressions in variables read
    at the same point, whose values differ by more than ``relative`` x max(1, |reference|): then
    no grader tolerance could call them equal."""
    ref, pred = constant_value(reference), constant_value(predicted)
    if ref is None and pred is None and _VARIABLE.search(reference) and _VARIABLE.search(
            predicted):  # a constant against an expression: other rules decide
        ref, pred = _value(reference, _POINT), _value(predicted, _POINT)
    if ref is None or pred is None:
        return False
    return abs(ref - pred) > relative * max(1.0, abs(ref))
