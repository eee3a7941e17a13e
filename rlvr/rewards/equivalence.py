"""Is a predicted final answer equivalent to the reference? Fast path first, then math-verify.

Safety: model text is never evaluated as Python. math-verify's default extraction also parses
plain expressions with sympy's ``parse_expr``, which calls ``eval``; here only its LaTeX
extraction is used (an ANTLR grammar, ``latex2sympy2_extended``), with both sides wrapped in
``$...$``. Inputs that could make sympy run away (very long, deeply nested, exponent towers,
huge integers, factorials) are refused before parsing; everything else is bounded in time by
the worker pool (rlvr/rewards/pool.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rlvr.rewards.closed_form import clearly_different, constant_value
from rlvr.rewards.normalize import as_number, strip_formatting, without_thousands
from rlvr.rewards.prose import is_prose
from rlvr.rewards.structured import (
    BASE_NUMERAL,
    COMPLEX,
    collection,
    complex_value,
    lists_items,
    numeral_value,
    top_level_items,
)

MAX_SYMBOLIC_CHARS = 400
NUMERIC_CLOSE = 1e-5  # relative gap under which unequal numbers go to math-verify
# twice the deepest gold answer of the seven benchmarks (parse time grows ~1.5x per level)
MAX_NESTING = 8
MAX_DIGITS = 40
_EXPONENT_TOWER = re.compile(r"\^\s*\{[^{}]*\^|\^\s*\(?[^{}\s]*\^")
_LONG_NUMBER = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")
MAX_EXPONENT_DIGITS = 4
_BIG_EXPONENT = re.compile(rf"\^\s*\{{?\s*[-+]?\d{{{MAX_EXPONENT_DIGITS + 1},}}")

_COMMAND = re.compile(r"\\[A-Za-z]+")
_FREE_LETTER = re.compile(r"(?<![A-Za-z])[A-DF-HJ-Za-df-hj-z](?![A-Za-z])")  # not e, not i
_CHOICE = re.compile(r"\(?([A-E])\)?")
_PLAIN_WORDS = re.compile(r"[A-Za-z' ]*[A-Za-z]{3,}[A-Za-z' ]*")  # "ab" may be a product
_TUPLE_BRACKETS = frozenset({"()", "[]", "(]", "[)"})
_STATES_A_VALUE = re.compile(r"(?<![<>!\\])=|\\approx(?![A-Za-z])")  # x = 7, x \approx 7
_RELATION = re.compile(r"(?<![<>!\\])=|\\in(?![A-Za-z])")  # x = 7, x \in [1, 2]


def _never_a_scalar(answer: str) -> bool:
    """Answers that never equal a single number or constant: a free variable (a single letter
    outside LaTeX commands, other than the constants e and i) with no ``=`` (``x=7`` is read
    by its right-hand side); two or more different comma-separated items (a tuple, set,
    interval or list of roots; thousands commas are gone after normalisation); a matrix."""
    free_variable = "=" not in answer and _FREE_LETTER.search(_COMMAND.sub(" ", answer))
    listed = len(set(answer.strip("()[]{}\\").split(","))) > 1
    return bool(free_variable) or listed or "\\begin{" in answer


def _same_text(ref: str, pred: str) -> bool | None:
    """The same normalised text is equal; an empty answer equals nothing."""
    if ref == pred:
        return True
    return False if not pred else None


def _text_answer(ref: str, pred: str) -> bool | None:
    """Answers that are text, not math: a multiple-choice letter (``(C)``) equals the same
    letter with or without parentheses; a word answer (``east``, ``Evelyn``: letters only, a
    word of three or more, prose by rlvr/rewards/prose.py) equals the same words in any case."""
    choice = _CHOICE.fullmatch(ref)
    if choice:
        written = _CHOICE.fullmatch(pred)
        return written is not None and written.group(1) == choice.group(1)
    if _PLAIN_WORDS.fullmatch(ref) and is_prose(ref):
        return " ".join(ref.lower().split()) == " ".join(pred.lower().split())
    return None


def _exact_numbers(ref: str, pred: str) -> bool | None:
    """Two numbers (integers, decimals, scientific notation, simple fractions) are compared
    exactly; numbers within ``NUMERIC_CLOSE`` of each other are left to math-verify's rounding
    ("0.333333" for "\\frac13")."""
    ref_num, pred_num = as_number(ref), as_number(pred)
    if ref_num is None or pred_num is None:
        return None
    if ref_num == pred_num:
        return True
    return None if abs(ref_num - pred_num) <= NUMERIC_CLOSE * max(1, abs(ref_num)) else False


def _base_numerals(ref: str, pred: str) -> bool | None:
    """Numerals with a base subscript (``52_8``, ``A5_{11}``) are different from a numeral or
    integer of another value (``A5_{12}`` is 125, ``A5_{11}`` 115, ``52_8`` is not 72); two in
    the same base are equal when their values are; equal values in different bases are left
    to math-verify."""
    if BASE_NUMERAL.fullmatch(ref) is None and BASE_NUMERAL.fullmatch(pred) is None:
        return None
    ref_value, pred_value = numeral_value(ref), numeral_value(pred)
    if ref_value is None or pred_value is None:
        return None
    if ref_value[0] != pred_value[0]:
        return False
    return True if ref_value[1] == pred_value[1] else None


def _exact_complex(ref: str, pred: str) -> bool | None:
    """Complex numbers with exact parts (``6-5i``) are compared exactly, with each other and
    with real numbers."""
    if COMPLEX.fullmatch(ref) is None and COMPLEX.fullmatch(pred) is None:
        return None
    ref_value, pred_value = complex_value(ref), complex_value(pred)
    if ref_value is None or pred_value is None:
        return None
    return ref_value == pred_value


def _item_verdict(ref: str, pred: str) -> bool | None:
    for rule in (_same_text, _exact_numbers, _base_numerals, _far_apart_constants):
        verdict = rule(ref, pred)
        if verdict is not None:
            return verdict
    return None


def _collections(ref: str, pred: str) -> bool | None:
    """Tuples, intervals and matrices with the same brackets and size are compared item by item
    (equal if every item is, different if one is); tuples and intervals with the same brackets
    but not as many items are different (``[1100]`` is not ``[1,100]``); sets and unbracketed
    lists of exact numbers are different when their sets of values are. Anything else:
    math-verify."""
    ref_items, pred_items = collection(ref), collection(pred)
    if ref_items is None or pred_items is None or ref_items[0] != pred_items[0]:
        return None
    if ref_items[0] in ("", "{}"):
        ref_values = [as_number(item) for item in ref_items[1]]
        pred_values = [as_number(item) for item in pred_items[1]]
        if None in ref_values or None in pred_values:
            return None
        return None if set(ref_values) == set(pred_values) else False
    if len(ref_items[1]) != len(pred_items[1]):
        return False if ref_items[0] in _TUPLE_BRACKETS else None
    verdicts = [_item_verdict(r, p) for r, p in zip(ref_items[1], pred_items[1], strict=True)]
    if False in verdicts:
        return False
    return True if all(verdicts) else None


def _same_left_side(ref: str, pred: str) -> bool | None:
    """Two relations (``=``, ``\\in``) with the same left side and the same relation are
    compared by their right sides: ``y=2x+3`` and ``y=3x+3`` differ, ``x=5`` and ``x=5.0`` do
    not."""
    ref_parts, pred_parts = _RELATION.split(ref), _RELATION.split(pred)
    if len(ref_parts) != 2 or len(pred_parts) != 2 or ref_parts[0] != pred_parts[0]:
        return None  # one relation on each side: the right sides hold none, no recursion
    if _RELATION.search(ref)[0] != _RELATION.search(pred)[0]:
        return None
    return _decide(ref_parts[1], pred_parts[1])


def _word_for_a_number(ref: str, pred: str) -> bool | None:
    """Prose never equals a number."""
    return False if as_number(ref) is not None and is_prose(pred) else None


def _scalar_against_collection(ref: str, pred: str) -> bool | None:
    """A number or constant never equals a free variable, a tuple, a list or a matrix."""
    ref_scalar = as_number(ref) is not None or constant_value(ref) is not None
    pred_scalar = as_number(pred) is not None or constant_value(pred) is not None
    if (ref_scalar and _never_a_scalar(pred)) or (pred_scalar and _never_a_scalar(ref)):
        return False
    return None


def _far_apart_constants(ref: str, pred: str) -> bool | None:
    """Closed-form values (constants, or expressions at a fixed point) far apart are different
    (closed_form.py)."""
    return False if clearly_different(ref, pred) else None


_RULES: tuple[Callable[[str, str], bool | None], ...] = (
    _same_text, _text_answer, _exact_numbers, _base_numerals, _exact_complex, _same_left_side,
    _collections, _word_for_a_number, _scalar_against_collection, _far_apart_constants)


def _decide(ref: str, pred: str) -> bool | None:
    """The verdict of the first rule that settles the normalised pair, else None."""
    for rule in _RULES:
        verdict = rule(ref, pred)
        if verdict is not None:
            return verdict
    return None


def _stated_values(ref: str, pred: str) -> str:
    """What a predicted equation states (for a reference that is none): its last side; for a
    list of equations (``a = 3, b = 4``) the list of their last sides, in parentheses when the
    reference is a tuple in parentheses (``(3, 4)``)."""
    items = top_level_items(pred)
    if len(items) == 1 or not all(_STATES_A_VALUE.search(item) for item in items):
        return _STATES_A_VALUE.split(pred)[-1].strip()
    values = ", ".join(_STATES_A_VALUE.split(item)[-1].strip() for item in items)
    tuple_reference = collection(ref)
    return f"({values})" if tuple_reference and tuple_reference[0] == "()" else values


def compared_forms(reference: str, predicted: str) -> tuple[str, str]:
    """The normalised (reference, predicted) that are compared. A predicted equation, chain
    ``a = b = c`` or approximation ``x \\approx 11`` against a reference that is none is read by
    its last side: ``x = 7`` and ``9 \\cdot 2 = 18`` state 7 and 18; a list of equations by the
    list of their last sides (``_stated_values``). Inequalities (``<=``, ``\\le``) are not
    equations. Both sides decide together what a comma between digit groups is: a thousands
    separator where the answer is one number (``1,100`` is 1100), unless the other side is a
    list, whose items it then separates (``2,100`` against ``2, 100``)."""
    ref, pred = strip_formatting(reference), strip_formatting(predicted)
    if _STATES_A_VALUE.search(ref) is None:
        pred = _stated_values(ref, pred)
    ref_listed, pred_listed = lists_items(ref), lists_items(pred)
    ref = ref if pred_listed else without_thousands(ref)
    pred = pred if ref_listed else without_thousands(pred)
    return ref.replace(" ", ""), pred.replace(" ", "")


def fast_equivalent(reference: str, predicted: str) -> bool | None:
    """Decide in process by the first of these rules that settles the pair, in order: same
    text; text answers (choice letters, words); exact numbers; base numerals; exact complex
    numbers; relations with the same left side by their right sides; tuples, intervals, sets
    and lists item by item; a word for a number; a scalar against a free variable, tuple, list
    or matrix; far-apart closed-form values. None when none settles it (then math-verify
    decides)."""
    return _decide(*compared_forms(reference, predicted))


def _nesting_depth(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "{([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "})]":
            depth -= 1
    return deepest


def too_risky(answer: str) -> bool:
    """Inputs refused before sympy sees them: they cannot be typical answers and could run
    away (exponent towers or exponents of five digits or more, deep nesting, long numbers,
    factorials)."""
    return (len(answer) > MAX_SYMBOLIC_CHARS or _nesting_depth(answer) > MAX_NESTING
            or _EXPONENT_TOWER.search(answer) is not None
            or _BIG_EXPONENT.search(answer) is not None
            or _LONG_NUMBER.search(answer) is not None or "!" in answer)


def symbolic_equivalent(reference: str, predicted: str) -> bool:
    """math-verify, gold first, LaTeX extraction only; False on any parse failure.

    Unbounded in time by itself (math-verify's own signal-based timeouts are off: they cost
    ~15 ms per check and fail outside a main thread): run it in a disposable worker process
    whose parent enforces the bound (rlvr/rewards/pool.py).
    """
    if too_risky(predicted) or too_risky(reference):
        return False
    from math_verify import LatexExtractionConfig, parse, verify

    latex_only = [LatexExtractionConfig()]
    try:
        gold = parse(f"${reference}$", extraction_config=latex_only, parsing_timeout=None)
        pred = parse(f"${predicted}$", extraction_config=latex_only, parsing_timeout=None)
        return bool(gold) and bool(pred) and bool(verify(gold, pred, timeout_seconds=None))
    except Exception:  # math-verify raises many types on malformed LaTeX: not equivalent
        return False
