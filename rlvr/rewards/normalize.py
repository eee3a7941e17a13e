"""Canonical text of a final answer, so that equal answers written differently compare equal."""

from __future__ import annotations

import re
from fractions import Fraction
from functools import lru_cache

_TEXT_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mbox|mathbf)\s*\{([^{}]*)\}")
_DROP = ("\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\$", "$", "\\displaystyle",
         "\\(", "\\)", "\\[", "\\]")
_SPACE_COMMAND = re.compile(r"(?<!\\)\\ ")  # "\ ", not the row break "\\\\ " of a matrix
_E_NOTATION = re.compile(r"(?<![\w.])(\d+\.?\d*|\.\d+)[eE]([-+]?\d{1,3})(?![\w.])")
_SCIENTIFIC = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+))\\(?:times|cdot)10\^\{?([-+]?\d{1,3})\}?")
_UNICODE_MATH = {"\u2212": "-", "\u00d7": "\\times ", "\u00f7": "\\div ", "\u00b7": "\\cdot ",
                 "\u03c0": "\\pi ", "\u2264": "\\le ", "\u2265": "\\ge ", "\u2260": "\\neq ",
                 "\u2248": "\\approx "}
_RELATION_SPELLINGS = (  # one spelling per relation: "x != 3" and "x \\ne 3" are "x \\neq 3"
    (re.compile(r"\\neq?(?![A-Za-z])|!="), "\\neq "),
    (re.compile(r"\\leq(?![A-Za-z])|<="), "\\le "),
    (re.compile(r"\\geq(?![A-Za-z])|>="), "\\ge "))
# a separator that LaTeX writes only between digit groups: "14{,}916", "32,\\!349"
_LATEX_THOUSANDS = re.compile(r"(?<=\d)(?:\{,\}|,\\!)\s*(?=\d{3}(?!\d))")
# a one-character argument without braces: "\\sqrt[3]2", "\\sqrt2", "\\frac12" (not "\\sqrt23")
_BARE_ROOT = re.compile(r"\\sqrt\s*(\[[^\[\]]*\])?\s*([0-9A-Za-z])(?![0-9A-Za-z])")
_BARE_FRACTION = re.compile(r"\\frac\s*([0-9])\s*([0-9])(?![0-9])")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°")
GROUPED_NUMBER = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # 1,000 -12,345.5
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)")
_SIMPLE_FRAC = re.compile(  # \frac{1}{2}, \frac12
    r"^(-?)\\frac(?:\{(-?\d+)\}|(\d))(?:\{(-?\d+)\}|(\d))$")
_SLASH_FRAC = re.compile(r"^(-?\d+)/(\d+)$")
_UNITS = re.compile(  # after a number (or a closing brace): "5 cm", "\\frac{1}{2} inch"
    r"(?<=[0-9}])\s*(?:units?|cm|centimeters?|meters?|m|km|inches|inch|feet|foot|ft|miles?|dollars?|cents?|"
    r"degrees?|hours?|minutes?|seconds?|days?|weeks?|years?|pounds?|kg|grams?|g|liters?|mph)\^?\d?$"
)


def unwrap_text(answer: str) -> str:
    """``answer`` with each brace-free ``\\text{...}`` (``\\mathrm``, ``\\mbox``, ...) replaced
    by its content."""
    return _TEXT_WRAPPERS.sub(r"\1", answer)


@lru_cache(maxsize=1 << 14)  # a batch repeats its references and its rollouts' answers
def strip_formatting(answer: str) -> str:
    """Strip formatting that does not change the value: ``\\text{}``, ``\\left``/``\\right``,
    spacing commands, ``$`` and ``\\( \\)``/``\\[ \\]`` delimiters, degrees, a trailing
    period or comma, LaTeX thousands separators (``{,}``, ``,\\!``), trailing unit words,
    ``\\dfrac``/``\\tfrac`` -> ``\\frac``, a percent sign; write Unicode minus, times,
    division, dot, pi, relation and approximation signs as LaTeX, each relation in one spelling
    (``!=`` -> ``\\neq``, ``<=`` -> ``\\le``), a one-character root or fraction argument in
    braces (``\\sqrt[3]2`` -> ``\\sqrt[3]{2}``), and scientific notation ``1e3`` as
    ``1\\times10^{3}``. Plain commas are kept: whether they separate thousands depends on the
    whole answer (``without_thousands``)."""
    s = answer.strip()
    for sign, latex in _UNICODE_MATH.items():
        s = s.replace(sign, latex)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    for spellings, relation in _RELATION_SPELLINGS:  # a function: no template to parse
        s = spellings.sub(lambda _, relation=relation: relation, s)
    s = _LATEX_THOUSANDS.sub("", s)
    s = _BARE_ROOT.sub(lambda m: f"\\sqrt{m[1] or ''}{{{m[2]}}}", s)
    s = _BARE_FRACTION.sub(lambda m: f"\\frac{{{m[1]}}}{{{m[2]}}}", s)
    for token in _DROP:
        s = s.replace(token, "")
    s = _SPACE_COMMAND.sub("", s)
    s = _E_NOTATION.sub(r"\1\\times10^{\2}", s)
    s = unwrap_text(s)
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.strip().rstrip(".,").strip()
    return _UNITS.sub("", s).strip()


def without_thousands(answer: str) -> str:
    """``answer`` without its commas when it is one number written in digit groups
    (``1,000``, ``-12,345.5``), else as it is: in ``(1,100)``, ``[1,100]`` or ``3, 125`` a comma
    separates items."""
    return answer.replace(",", "") if GROUPED_NUMBER.fullmatch(answer) else answer


def normalize_answer(answer: str) -> str:
    """Canonical text of an answer read alone: ``strip_formatting``, thousands commas of one
    number removed (``without_thousands``), then every space removed."""
    return without_thousands(strip_formatting(answer)).replace(" ", "")


def as_number(answer: str) -> Fraction | None:
    """The exact value of a normalised integer, decimal, simple fraction or number in scientific
    notation (``2.5\\times10^{3}``), else None."""
    if _NUMBER.fullmatch(answer):
        return Fraction(answer)
    scientific = _SCIENTIFIC.fullmatch(answer)
    if scientific:
        return Fraction(scientific.group(1)) * Fraction(10) ** int(scientific.group(2))
    frac = _SIMPLE_FRAC.match(answer)
    if frac:
        sign, braced_num, digit_num, braced_den, digit_den = frac.groups()
        num, den = braced_num or digit_num, braced_den or digit_den
        if int(den) == 0:
            return None
        value = Fraction(int(num), int(den))
        return -value if sign else value
    slash = _SLASH_FRAC.match(answer)
    if slash and int(slash.group(2)) != 0:
        return Fraction(int(slash.group(1)), int(slash.group(2)))
    return None
