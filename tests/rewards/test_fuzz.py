"""Hostile completions (1,000 in ``make test``, 10,000 in ``make test-all``): no check over the
2 s bound, no escaped exception, no side effect. The same seed draws the same first 1,000."""

import os
import random
import time

import pytest

from rlvr.rewards import math_reward, score_batch

MARKER = "/tmp/rlvr-fuzz-pwned"


def _hostile(rng: random.Random) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        depth = rng.randint(10, 5000)
        return "\\boxed{" + "{" * depth + "1" + "}" * depth + "}"
    if kind == 1:
        tower = "9"
        for _ in range(rng.randint(2, 6)):
            tower = f"{rng.randint(2, 99)}^{{{tower}}}"
        return f"so \\boxed{{{tower}}}"
    if kind == 2:
        return "".join(rng.choice("\\{}^_()[]$0123456789abcxyz+-*/=!") for _ in range(100_000))
    if kind == 3:
        return rng.choice(["\\boxed{\\frac{1}{", "\\boxed{\\sqrt{", "\\boxed{\\left(", "\\boxed{}",
                           "\\boxed{\\begin{pmatrix}1", "$$\\boxed{x=", "\\boxed{\\frac}"])
    if kind == 4:
        return "\\boxed{" + "".join(chr(rng.randint(0, 0x10FFFF) % 0xD7FF or 1)
                                    for _ in range(rng.randint(1, 200))) + "}"
    if kind == 5:
        code = rng.choice([f"__import__('os').system('touch {MARKER}')",
                           f"open('{MARKER}', 'w').write('x')", "exec('import os')",
                           "lambda: __import__('subprocess').run(['true'])",
                           "().__class__.__bases__[0].__subclasses__()"])
        return rng.choice([f"\\boxed{{{code}}}", f"The answer is {code}", f"#### {code}"])
    if kind == 6:
        return f"\\boxed{{{rng.randint(10, 99)}^{{{rng.randint(10**6, 10**9)}}}}}"
    if kind == 7:
        return f"\\boxed{{{'9' * rng.randint(40, 5000)}}}"
    if kind == 8:
        return "\\boxed{" + "+".join(["x"] * rng.randint(100, 3000)) + "}"
    power = rng.randint(2, 9)
    return f"\\boxed{{{rng.randint(1, 5000)}!}} or \\boxed{{\\int_0^\\infty e^{{-x^{power}}}dx}}"


@pytest.mark.parametrize("count", [1_000, pytest.param(10_000, marks=pytest.mark.slow)])
def test_hostile_completions(tmp_path, monkeypatch, count):
    monkeypatch.chdir(tmp_path)
    rng = random.Random(20261122)
    cases = [(_hostile(rng), rng.choice(["1", "\\frac{1}{2}", "x^2+1", "(1,2)", "\\sqrt{2}"]))
             for _ in range(count)]
    completions, references = zip(*cases, strict=True)
    score_batch(["\\boxed{x+1}"], ["1+x"])  # start the worker pool outside the timing
    slowest = 0.0
    for completion, reference in zip(completions, references, strict=True):
        start = time.perf_counter()
        score = math_reward(completion, reference)
        slowest = max(slowest, time.perf_counter() - start)
        assert score in (0.0, 1.0)
    assert slowest < 2.0, f"a check took {slowest:.2f} s"
    assert not os.path.exists(MARKER), "a completion was executed"
    assert list(tmp_path.iterdir()) == [], "checks wrote files"
