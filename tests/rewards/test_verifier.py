"""Answer extraction, normalisation and equivalence on hand-written cases."""

import math
import subprocess
import sys
import threading
import time

import pytest

from rlvr.rewards import math_reward, score_batch
from rlvr.rewards.closed_form import clearly_different, constant_value
from rlvr.rewards.equivalence import compared_forms, too_risky
from rlvr.rewards.extract import extract_answer
from rlvr.rewards.normalize import normalize_answer
from rlvr.rewards.pool import SymbolicPool
from rlvr.rewards.prose import prose_spans


@pytest.mark.parametrize("text,expected", [
    ("so \\boxed{42}.", "42"),
    ("first \\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
    ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
    ("\\fbox{7}", "7"),
    ("\\boxed{1} and \\fbox{2}", "1, 2"),  # boxes joined by "and" state one answer
    ("the result is \\boxed 5 units", "5"),
    ("Natalia sold 48 clips.\n#### 72", "72"),
    ("So the final answer is 3/4.", "3/4"),
    ("The answer is: 12", "12"),
    ("no answer here", None),
    ("\\boxed{unbalanced", None),
    ("The answer is 3 bolts.", "3"),  # prose words split math runs: the last run with a digit
    ("The answer is x equals 2.", "2"),
    ("The answer is: after 3 weeks she has saved $45.", "$45"),
    ("The answer is \\(x = 60\\) meters.", "\\(x = 60\\) meters"),  # no prose once units go
    ("**Answer:** $86", "$86"),
    ("#### Step 2: add\n20 + 40 = 60.", "20 + 40 = 60"),  # a heading; read from the last line
    ("She sells 9 eggs for $2 each, so 9 * 2 =", None),  # cut off mid-sentence
    ("Total: 24 km", "24"),  # one short line: a bare answer, no token limit cuts that short
    ("Then we add the 24 km of Monday to the 31 km of Tuesday and the 12 km of the", None),
    ("It makes $18 a day.\n\nI hope this helps!", "$18"),
    ("The answer is east.", "east"),
    ("The answer is 9. Yes, the answer is correct.", "9"),  # words do not override a number
    ("The answer is $\\boxed{5}$ apples.", "5"),  # the box states the answer
])
def test_extraction(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("raw,expected", [
    ("\\text{(B)}", "(B)"),
    ("1,080", "1080"),
    ("(1,2)", "(1,2)"),
    ("30^\\circ", "30"),
    ("30^{\\circ}", "30"),
    ("50\\%", "50"),
    ("\\dfrac{3}{4}", "\\frac{3}{4}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("5 \\text{ cm}", "5"),
    ("18 dollars", "18"),
    ("$7$.", "7"),
    ("\\$18.90", "18.90"),
    ("\\$32,\\!348", "32348"),
    ("-4", "-4"),
    ("\u22125", "-5"),
    ("1e3", "1\\times10^{3}"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("\\(x = 60\\)", "x=60"),
    ("(1,100)", "(1,100)"),  # inside brackets a comma separates items
    ("[1,100]", "[1,100]"),
    ("(2,12) \\cup (12,102)", "(2,12)\\cup(12,102)"),
    ("3, 125", "3,125"),  # a list
    ("-12,345.5", "-12345.5"),  # one number in digit groups
    ("14{,}916", "14916"),
    ("(1{,}000, 2)", "(1000,2)"),  # a LaTeX thousands separator is one wherever it stands
    ("x != 3", "x\\neq3"),
    ("x \\ne 3", "x\\neq3"),
    ("x <= 3", "x\\le3"),
    ("\\sqrt[3]2", "\\sqrt[3]{2}"),
    ("\\sqrt23", "\\sqrt23"),  # \\sqrt{2}3 to LaTeX, \\sqrt{23} to its writer: left alone
])
def test_normalisation(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("reference,predicted,forms", [
    ("1100", "1,100", ("1100", "1100")),
    ("(1,100)", "1,100", ("(1,100)", "1100")),  # one number against a tuple
    ("2, 100", "2,100", ("2,100", "2,100")),  # against a list its commas separate items
    ("2,100", "2, 100", ("2,100", "2,100")),
    ("11", "x \\approx 11", ("11", "11")),
    ("(3,4)", "a = 3, b = 4", ("(3,4)", "(3,4)")),  # a list of equations states its values
    ("3, 4", "a = 3, b = 4", ("3,4", "3,4")),
    ("x=3", "x = 3, y = 4", ("x=3", "x=3,y=4")),  # against an equation: as written
])
def test_both_sides_decide_together(reference, predicted, forms):
    assert compared_forms(reference, predicted) == forms


@pytest.mark.parametrize("completion,reference,score", [
    ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
    ("\\boxed{1/2}", "\\frac12", 1.0),
    ("\\boxed{0.5}", "\\frac{1}{2}", 1.0),
    ("\\boxed{0.333333}", "\\frac13", 1.0),  # math-verify's 6-decimal rounding
    ("\\boxed{0.33}", "\\frac13", 0.0),
    ("\\boxed{m}", "7", 0.0),  # a free variable is no number (and "m" alone is not a unit)
    ("\\boxed{x=7}", "7", 1.0),  # an equation is read by its right-hand side
    ("\\boxed{864}", "-13x+3", 0.0),  # and a number is no expression in a variable
    ("\\boxed{y}", "\\sqrt{8}", 0.0),
    ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", 1.0),
    ("\\boxed{[1, 2)}", "[1,2)", 1.0),
    ("\\boxed{(3,\\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0),
    ("\\boxed{-4}", "-4", 1.0),
    ("#### 1,080", "1080", 1.0),
    ("\\boxed{4}", "-4", 0.0),
    ("\\boxed{(1,2)}", "(2,1)", 0.0),
    ("\\boxed{\\sqrt{3}}", "3", 0.0),
    ("\\boxed{5 apples}", "6", 0.0),
    ("no final answer", "3", 0.0),
    ("\\boxed{C}", "(C)", 1.0),
    ("\\boxed{\\text{(C)}}", "(C)", 1.0),
    ("\\boxed{(D)}", "(C)", 0.0),
    ("\\boxed{22}", "(C)", 0.0),
    ("\\boxed{\\text{East}}", "east", 1.0),
    ("\\boxed{\\text{west}}", "east", 0.0),
    ("\\boxed{\\frac{3}{56}}", "Evelyn", 0.0),
    ("\\boxed{15}", "\\begin{pmatrix}-1\\\\2\\end{pmatrix}", 0.0),
    ("\\boxed{\\begin{pmatrix}3\\\\4\\end{pmatrix}}", "\\frac{16}{27}", 0.0),
    ("\\boxed{2.5 \\times 10^{3}}", "2500", 1.0),
    ("\\boxed{2.5e-3}", "0.0025", 1.0),
    ("\\boxed{9 \\cdot 2 = 18}", "18", 1.0),  # an equation states its last side
    ("\\boxed{x \\ge 3}", "3", 0.0),  # an inequality is no equation
    ("\\boxed{x<=3}", "3", 0.0),
    ("\\boxed{n=2,3,4}", "n=1,2,3", 0.0),  # math-verify's known false positives
    ("So x = \\pm 2021.", "2021", 0.0),
    ("\\boxed{f(x)=ax+b, where $b$ is any integer}", "f(x)=ax+b, where $b$ is any integer", 1.0),
    ("\\boxed{(2,\\infty)}", "(3,\\infty)", 0.0),  # tuples and intervals item by item
    ("\\boxed{(\\frac{1}{2}, 3]}", "(0.5,3]", 1.0),
    ("\\boxed{(\\frac{1}{2}, 3)}", "(0.5,3]", 0.0),
    ("\\boxed{\\begin{pmatrix}-9\\\\16\\end{pmatrix}}", "\\begin{pmatrix}-7\\\\16\\end{pmatrix}",
     0.0),
    ("\\boxed{4,5,7}", "3,5,7", 0.0),  # lists and sets by their values
    ("\\boxed{7,5,3}", "3,5,7", 1.0),
    ("\\boxed{\\{1,2,4\\}}", "\\{1,2,3\\}", 0.0),
    ("\\boxed{y=3x+3}", "y=2x+3", 0.0),  # the same left side: by the right sides
    ("\\boxed{x=5.0}", "x=5", 1.0),
    ("\\boxed{x \\in [1,3]}", "x\\in[1,2]", 0.0),
    ("\\boxed{53_8}", "52_8", 0.0),  # numerals in one base by their digits
    ("\\boxed{52_{8}}", "52_8", 1.0),
    ("\\boxed{\\text{A5}_{12}}", "\\text{A5}_{11}", 0.0),  # different bases: by value
    ("\\boxed{72}", "52_8", 0.0),
    ("\\boxed{3+2i}", "1+2i", 0.0),  # complex numbers with exact parts
    ("\\boxed{1i}", "i", 1.0),
    ("\\boxed{-2i}", "2i", 0.0),
    ("\\boxed{6-5i}", "6-5i", 1.0),
    ("\\boxed{5}", "6-5i", 0.0),
    ("\\boxed{\\frac{271}7}", "\\frac{270}{7}", 0.0),
    ("\\boxed{\\frac{270}7}", "\\frac{270}{7}", 1.0),
])
def test_equivalence(completion, reference, score):
    assert math_reward(completion, reference) == score


def test_scores_are_exactly_zero_or_one_and_batches_keep_order():
    completions = ["\\boxed{3}", "\\boxed{x+1}", "\\boxed{4}", "\\boxed{1+x}"]
    assert score_batch(completions, ["3", "1+x", "3", "x+1"]) == [1.0, 1.0, 0.0, 1.0]


def test_works_from_a_thread():
    out = []
    thread = threading.Thread(target=lambda: out.append(math_reward("\\boxed{x^2}", "x^{2}")))
    thread.start()
    thread.join()
    assert out == [1.0]


@pytest.mark.parametrize("answer", ["9^{9^{9^{9}}}", "{" * 30 + "1" + "}" * 30, "1" * 50,
                                    "1000!", "x" * 500])
def test_runaway_inputs_are_refused_before_parsing(answer):
    assert too_risky(answer)


def test_an_overrunning_check_is_killed_scores_zero_and_the_pool_recovers():
    pool = SymbolicPool(workers=1, timeout_s=1e-6)  # no answer can come back that fast
    try:
        assert pool.check([("2\\sqrt{2}", "\\sqrt{8}")]) == [False]
        overrun = pool._workers[0]
        pool.timeout_s = 60.0
        assert pool.check([("2\\sqrt{2}", "\\sqrt{8}"), ("x", "y")]) == [True, False]
        assert pool._workers[0] is overrun  # the replacement, now warm, is kept
    finally:
        pool.close()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and prctl")
def test_workers_die_with_a_killed_parent():
    parent = subprocess.Popen(
        [sys.executable, "-c", "import time; from rlvr.rewards.pool import SymbolicPool; "
         "p = SymbolicPool(1); p.check([('1', '2')]); "
         "print(p._workers[0].process.pid, flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    worker_pid = int(parent.stdout.readline())
    assert _running(worker_pid)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(worker_pid)


@pytest.mark.parametrize("latex,value", [
    ("90", 90.0), ("-\\frac{\\pi}{6}", -math.pi / 6), ("\\frac{3\\sqrt{3}}{4}", 3 * 3 ** 0.5 / 4),
    ("11\\sqrt2", 11 * 2 ** 0.5), ("\\frac12", 0.5), ("2\\cdot3^2", 18.0),
    ("\\sqrt[3]{27}", 3.0), ("(1+\\sqrt{5})/2", (1 + 5 ** 0.5) / 2), ("2^{-2}", 0.25),
    ("2\\pi\\sqrt{3}", 2 * math.pi * 3 ** 0.5), ("-2^2", -4.0),
])
def test_closed_form_values(latex, value):
    assert constant_value(latex) == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("latex", [
    "2^10", "\\sqrt23", "\\frac123", "1.5.3", "2\\frac{1}{2}",  # ambiguous: for math-verify
    "1/2\\pi", "6\\div2\\sqrt{3}", "2(3)", "(2)\\frac{1}{2}",  # latex2sympy reads these otherwise
    "(1,2)", "6-5i", "x+1", "\\sqrt{-1}", "1/0", "(-8)^{1/3}", "10^{100}", "{" * 3000,
    "(2\\sqrt{3})^²", "\\sqrt[-2]{0}", "10^{20}+1-10^{20}",
])
def test_closed_form_declines_what_it_cannot_read_exactly(latex):
    assert constant_value(latex) is None


def test_only_far_apart_constants_are_rejected_fast():
    assert clearly_different("90", "\\sqrt{51}")
    assert not clearly_different("\\frac{\\sqrt{2}}{2}", "0.7071")  # close: math-verify decides
    assert not clearly_different("3", "x")


def test_expressions_in_variables_are_rejected_fast_only_when_far_apart_at_the_point():
    assert clearly_different("8n^2+4n+1", "10n^2+4n+1")
    assert clearly_different("\\frac{11+9a}{20}", "\\frac{13+9a}{20}")
    assert not clearly_different("(x+1)^2", "x^2+2x+1")  # the same function
    assert not clearly_different("2N+1", "2n+1")  # case-folded, as math-verify folds it
    assert not clearly_different("ab", "2ab")  # "ab" may be a word: not read
    assert not clearly_different("f(x)", "f(y)")  # a function call: not read


def test_a_worker_that_died_while_idle_is_replaced_and_its_pair_retried():
    pool = SymbolicPool(workers=1, timeout_s=60.0)
    try:
        assert pool.check([("2\\sqrt{2}", "\\sqrt{8}")]) == [True]
        pool._workers[0].process.kill()
        pool._workers[0].process.wait()
        assert pool.check([("2\\sqrt{2}", "\\sqrt{8}"), ("x", "y")]) == [True, False]
    finally:
        pool.close()
    with pytest.raises(RuntimeError, match="closed"):
        pool.check([("1", "1")])


def test_threads_sharing_a_pool_get_their_own_verdicts():
    pool = SymbolicPool(workers=2, timeout_s=60.0)
    calls = {"a": [("2\\sqrt{2}", "\\sqrt{8}"), ("x", "y")] * 4,
             "b": [("x", "y"), ("\\frac{1}{\\sqrt{2}}", "\\frac{\\sqrt{2}}{2}")] * 4}
    got = {}
    threads = [threading.Thread(target=lambda k=k: got.__setitem__(k, pool.check(calls[k])))
               for k in calls]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        pool.close()
    assert got == {"a": [True, False] * 4, "b": [False, True] * 4}


@pytest.mark.parametrize("text,words", [
    ("18 vacuum cleaners", ["vacuum", "cleaners"]),
    ("x is 2 km", ["is", "km"]),  # two-letter function words and units
    ("2ab + xy", []),  # other two-letter runs are products
    ("\\begin{pmatrix}1\\end{pmatrix}", []),  # commands and words inside braces are math
    ("sqrt(2) + log 8", []),  # function names written without a backslash
    ("\\text{Evelyn}", []),  # inside braces: unwrap \\text{} first to see its words
])
def test_prose_words(text, words):
    assert [text[a:b] for a, b in prose_spans(text)] == words


def test_articles_are_prose_only_in_a_sentence():
    assert prose_spans("a + 1") == []
    assert prose_spans("$18 a day", in_a_sentence=True) == [(4, 5), (6, 9)]


@pytest.mark.parametrize("text", ["\\boxed{" * 20_000, "the answer is " * 7_000,
                                  "The answer is x. " * 5_000, "word\n" * 20_000 + ".",
                                  "#### 5\n" * 10_000, "\\boxed{1}" * 3_000])
def test_extraction_time_is_bounded_on_repeated_statements(text):
    start = time.perf_counter()
    extract_answer(text)
    assert time.perf_counter() - start < 0.5
