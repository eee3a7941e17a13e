"""The synthetic verifiable task of the embedded default: arithmetic word problems.

Three difficulty levels, each a family of templates whose answer is an integer written in
``\\boxed{}``:

- level 1: addition of two single-digit numbers, as a story or a bare sum,
- level 2: addition or subtraction with a first operand below 20,
- level 3: two operations on single-digit numbers (``Compute 7 + 8 - 6.``).

The numbers are small on purpose: the embedded tiny model (0.4 M parameters, 2 CPU cores) must
learn the format in a short warm start and leave room for RL to improve within minutes.

Everything is a pure function of a seed. The held-out evaluation sets are drawn first from their
own seed; training problems with the same text as an evaluation problem are rejected, so the
evaluation measures generalisation to unseen problems, not recall.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from rlvr.data.problem import Problem

LEVELS = (1, 2, 3)
_NAMES = ("Tom", "Ana", "Li", "Sam", "Mia", "Ben", "Eva", "Raj", "Zoe", "Max", "Ida", "Leo")
_ITEMS = ("apples", "books", "coins", "cards", "pens", "stones", "shells", "cups", "eggs", "keys")
_ADD = (
    "{name} has {a} {item} and gets {b} more. How many {item} does {name} have?",
    "There are {a} {item} in a box and {name} puts in {b} more. How many {item} are in the box?",
    "What is {a} + {b}?",
)
_SUB = (
    "{name} has {a} {item} and gives away {b}. How many {item} are left?",
    "There are {a} {item} in a box and {name} takes out {b}. How many {item} are in the box?",
    "What is {a} - {b}?",
)


def _story(rng: random.Random, a: int, b: int, add: bool) -> str:
    template = rng.choice(_ADD if add else _SUB)
    return template.format(a=a, b=b, name=rng.choice(_NAMES), item=rng.choice(_ITEMS))


def _level1(rng: random.Random) -> tuple[str, str, int]:
    """Addition of two single-digit numbers."""
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    return _story(rng, a, b, add=True), f"{a} + {b} = {a + b}", a + b


def _level2(rng: random.Random) -> tuple[str, str, int]:
    """Addition or subtraction with a first operand below 20 and a single-digit second one."""
    a, b = rng.randint(0, 19), rng.randint(0, 9)
    if rng.random() < 0.5 or a < b:
        return _story(rng, a, b, add=True), f"{a} + {b} = {a + b}", a + b
    return _story(rng, a, b, add=False), f"{a} - {b} = {a - b}", a - b


def _level3(rng: random.Random) -> tuple[str, str, int]:
    """Two operations on single-digit numbers: a + b - c with a non-negative result."""
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    c = rng.randint(0, a + b) % 10
    first = a + b
    worked = f"{a} + {b} = {first}, {first} - {c} = {first - c}"
    return f"Compute {a} + {b} - {c}.", worked, first - c


_GENERATORS: dict[int, Callable[[random.Random], tuple[str, str, int]]] = {
    1: _level1,
    2: _level2,
    3: _level3,
}


def solution_text(worked: str, answer: int) -> str:
    """The reference completion the tiny model is warm-started on: working, then the box."""
    return f"{worked}. The answer is \\boxed{{{answer}}}."


def _draw(rng: random.Random, level: int, index: int, prefix: str) -> tuple[Problem, str]:
    question, worked, answer = _GENERATORS[level](rng)
    problem = Problem(
        id=f"{prefix}-l{level}-{index}",
        problem=question,
        answer=str(answer),
        source={"level": level},
    )
    return problem, solution_text(worked, answer)


def _check_levels(levels: list[int] | tuple[int, ...]) -> None:
    unknown = [lv for lv in levels if lv not in _GENERATORS]
    if unknown or not levels:
        raise ValueError(f"arith levels must be a non-empty subset of {list(LEVELS)}, got {levels}")


def eval_set(level: int, size: int, seed: int) -> list[Problem]:
    """The fixed held-out set of one level: ``size`` distinct problems (ids ``eval-l<level>-i``)."""
    _check_levels([level])
    rng = random.Random(f"arith-eval-{seed}-{level}")
    seen: set[str] = set()
    out: list[Problem] = []
    attempts = 0
    while len(out) < size:
        attempts += 1
        if attempts > 100 * size:
            raise ValueError(f"arith level {level} cannot supply {size} distinct problems")
        problem, _ = _draw(rng, level, len(out), "eval")
        if problem.problem not in seen:
            seen.add(problem.problem)
            out.append(problem)
    return out


def train_set(
    levels: list[int] | tuple[int, ...], size: int, seed: int, eval_size: int
) -> list[tuple[Problem, str]]:
    """``size`` training problems with their reference solutions, levels interleaved evenly.

    Problems whose text occurs in any level's evaluation set (same ``seed`` and ``eval_size``)
    are rejected.
    """
    _check_levels(levels)
    held_out = {p.problem for lv in LEVELS for p in eval_set(lv, eval_size, seed)}
    rng = random.Random(f"arith-train-{seed}")
    out: list[tuple[Problem, str]] = []
    while len(out) < size:
        level = levels[len(out) % len(levels)]
        problem, solution = _draw(rng, level, len(out), "train")
        if problem.problem not in held_out:
            out.append((problem, solution))
    return out
