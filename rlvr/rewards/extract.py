"""Final-answer extraction from a model completion by fixed rules: where it ends, then two steps.

0. **Where the completion ends.** A chat-template token (``<|im_end|>``, ``<|endoftext|>``,
   ``</s>``, ...) after the first character ends it: what follows is another turn. Degenerate
   text after the last box (at least ``DEGENERATE_MIN_CHARS`` that repeat themselves, the loop
   of a model that did not stop) states nothing: the completion is read up to that box.
1. **The answer span: the last stated answer decides.** Answer statements are a
   ``\\boxed{...}``/``\\fbox{...}``, a GSM8K ``#### ...`` line, and an answer sentence ("the
   answer is ...", "final answer: ...", "Answer: ..."; its span runs to the end of that
   sentence). Boxes with only separators between them (``\\boxed{3}, \\boxed{5}``, "and",
   "or", ``x =``) are one statement, the list of their arguments. Of all statements, the one
   that starts last decides, so "the answer is 3 ... no, the answer is 5" answers 5; but a
   statement whose answer is mathematics outranks one that is only words ("the answer is
   correct"). A ``####`` line that starts with a word is a Markdown heading, not a statement;
   an answer sentence holding a box leaves the statement to the box. A completion with no
   statement is read from its last line that holds mathematics, unless it stops mid-sentence
   (truncated: no answer); a completion ended by a chat-template token, or one short line, or
   one line of mathematics (``0.5``: a bare answer) is finished unless it stops inside an
   expression.
2. **The answer in the span**, the first that applies:
   a. the span itself, when after normalisation it has no prose word (rlvr/rewards/prose.py):
      ``\\frac{1}{2}``, ``x = 60``, ``\\(x = 60\\) meters`` (trailing units go);
   b. else the last *math run* of the span that holds a digit or a LaTeX command and does not
      start with ``^`` or ``_`` (the power of a unit: "cm^2"), a math run being the text
      between two prose words: "3 bolts" -> ``3``, "x equals 2" -> ``2``,
      "Melanie started with 18 vacuum cleaners" -> ``18``; runs before it joined to it only by
      "and"/"or" are part of the answer: "$3$ and $5$" -> ``3, 5``;
   c. else the last word written in math mode: "the function is $odd$" -> ``odd``;
   d. else the span as written (word answers: "east", "(C)").

A span written exactly as the reference (after normalisation) is correct whatever these rules
read from it (rlvr/rewards/__init__.py): gold answers with prose ("f(x)=ax+b, where b is an
integer") score 1.0 against themselves. Markdown emphasis (``**``) is removed first. Nothing
here evaluates text; the chosen answer goes to rlvr/rewards/equivalence.py, where
math-verify's LaTeX extraction reads what the in-process rules cannot decide.
"""

from __future__ import annotations

import re
import zlib

from rlvr.rewards.normalize import strip_formatting, unwrap_text
from rlvr.rewards.prose import is_prose, prose_spans

_BOX_COMMAND = re.compile(r"\\(?:boxed|fbox)\s*")
# what may stand between the boxes of one answer: "\\boxed{3}, \\boxed{5} and \\boxed{7}",
# "$x = \\boxed{-2}$ or $x = \\boxed{4}$"
_BOX_JOINER = re.compile(r"(?:\s|\$|,|;|\\[(),;:]|\\q?quad|\\text\{\s*(?:and|or|,)?\s*\}"
                         r"|\band\b|\bor\b|(?<![A-Za-z\\])[A-Za-z]\s*=)*")
# chat-template tokens: "<|im_start|>", "<|endoftext|>", "</s>", "<｜end▁of▁sentence｜>"
_SPECIAL_TOKEN = re.compile(
    r"<\|[^|<>\s]{1,40}\|>|</s>|<\uff5c[^\uff5c<>\s]{1,40}\uff5c>|<(?:end|start)_of_turn>|<eos>")
_MATH_MODE = re.compile(r"\$([^$]{1,200})\$|\\\((.{1,200}?)\\\)")
_OPEN_END = re.compile(r"[-=+*/^(\[{,\\]$")  # "9 * 2 =": cut off inside an expression
_GSM8K = re.compile(r"####[ \t]*([^\n]*)")
_HEADING = re.compile(r"[A-Za-z]{2}")  # "#### Step 2": Markdown, not a GSM8K answer
_STATEMENT = re.compile(
    r"\banswer(?:\s+to\s+(?:this|the)\s+(?:question|problem))?\s*(?:\bis\b|:|=)[ \t]*:?[ \t]*\n?",
    re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<!\.)[.!?](?!\.)(?=\s|$)|\n")
_FINISHED = re.compile(r"(?:[.!]|\$|\\\]|\\\)|\})\s*$")
_MATH_RUN = re.compile(r"\d|\\[A-Za-z]")
_BRACE = re.compile(r"[{}]")
_TOKEN = re.compile(r"([^\s$]+)")
_LEADING_PUNCTUATION = " \t,;:"  # not ".": ".5" is a number
_TRAILING_PUNCTUATION = " \t,;:.!?"
_JOINING_WORDS = frozenset({"and", "or"})
MAX_ANSWER_CHARS = 1000
MAX_STATEMENTS = 32
BARE_MAX_CHARS = 40  # about 10 tokens
DEGENERATE_MIN_CHARS = 1000
DEGENERATE_SAMPLE_CHARS = 8000
# zlib shrinks the text of a model caught in a loop to ~2 % of its size, a long worked solution
# of the MATH training split to 16 % at least
DEGENERATE_RATIO = 0.1


def _matching_braces(text: str) -> dict[int, int]:
    """Position of the ``}`` that closes each balanced ``{`` of ``text``, in one pass."""
    closing, open_at = {}, []
    for brace in _BRACE.finditer(text):
        if brace.group() == "{":
            open_at.append(brace.start())
        elif open_at:
            closing[open_at.pop()] = brace.start()
    return closing


def _boxed_at(text: str, end_of_command: int, closing: dict[int, int]) -> tuple[str, int] | None:
    """(argument, end) of a box command ending at ``end_of_command``: a brace group (nested
    braces kept) or one brace-less token (``\\boxed 5``); None when unbalanced or absent."""
    if end_of_command < len(text) and text[end_of_command] == "{":
        end = closing.get(end_of_command)
        return None if end is None else (text[end_of_command + 1: end], end + 1)
    match = _TOKEN.match(text, end_of_command)
    return (match.group(1), match.end()) if match else None


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """(start, end, argument) of the last ``MAX_STATEMENTS`` boxes of ``text``, in order."""
    matches = list(_BOX_COMMAND.finditer(text))[-MAX_STATEMENTS:]
    closing = _matching_braces(text) if matches else {}
    boxes = []
    for match in matches:
        boxed = _boxed_at(text, match.end(), closing)
        if boxed is not None:
            boxes.append((match.start(), boxed[1], boxed[0]))
    return boxes


def _box_statements(text: str, boxes: list[tuple[int, int, str]]) -> list[tuple[int, str]]:
    """(start, span) of the answers the boxes state: boxes with only separators between them
    (commas, "and", "or", spaces, ``$``, a variable and ``=``) state one answer, the list of
    their distinct arguments (``\\boxed{3}, \\boxed{5}`` states ``3, 5``)."""
    groups: list[tuple[int, list[str]]] = []
    previous_end = None
    for start, end, argument in boxes:
        if (previous_end is not None and start >= previous_end
                and _BOX_JOINER.fullmatch(text, previous_end, start)):
            groups[-1][1].append(argument)
        else:
            groups.append((start, [argument]))
        previous_end = end
    return [(start, ", ".join(dict.fromkeys(arguments))) for start, arguments in groups]


def _degenerate(tail: str) -> bool:
    """True when ``tail`` is at least ``DEGENERATE_MIN_CHARS`` long and repeats itself: its
    first ``DEGENERATE_SAMPLE_CHARS`` compress to under ``DEGENERATE_RATIO`` of their size."""
    if len(tail) < DEGENERATE_MIN_CHARS:
        return False
    sample = tail[:DEGENERATE_SAMPLE_CHARS].encode()
    return len(zlib.compress(sample)) < DEGENERATE_RATIO * len(sample)


def until_end_of_turn(text: str) -> tuple[str, bool]:
    """(the completion up to its first chat-template token, whether such a token ended it); a
    token opening the completion (``<|im_start|>assistant``) does not end it."""
    first_character = len(text) - len(text.lstrip())
    token = _SPECIAL_TOKEN.search(text, first_character + 1)
    return (text, False) if token is None else (text[:token.start()], True)


def _sentence_after(text: str, start: int) -> str:
    """The text from ``start`` to the end of its sentence (a ``.``/``!``/``?`` before a space,
    not in an ellipsis or a decimal, or a line break), at most ``MAX_ANSWER_CHARS``."""
    stop = min(len(text), start + MAX_ANSWER_CHARS)
    end = _SENTENCE_END.search(text, start, stop)
    return text[start: end.start() if end else stop]


def answer_statements(text: str) -> list[tuple[int, str]]:
    """(start, span) of the answer statements in ``text`` (the last ``MAX_STATEMENTS`` of each
    kind, which bounds the time on any input), in order of start. Degenerate text after the
    last box (``_degenerate``: a model looping until the token limit) states nothing."""
    boxes = _boxes(text)
    if boxes and _degenerate(text[boxes[-1][1]:]):
        text = text[:boxes[-1][1]]
    statements = _box_statements(text, boxes)
    statements += [(m.start(), m.group(1)) for m in list(_GSM8K.finditer(text))[-MAX_STATEMENTS:]
                   if not _HEADING.match(m.group(1))]
    for match in list(_STATEMENT.finditer(text))[-MAX_STATEMENTS:]:
        sentence = _sentence_after(text, match.end())
        if not _BOX_COMMAND.search(sentence):  # "the answer is \\boxed{5}": the box states it
            statements.append((match.start(), sentence))
    return sorted(statements, key=lambda statement: statement[0])


def _bare_answer(text: str) -> bool:
    """True when the whole completion is one line of mathematics (``0.5``, ``x = 5``), or one
    line shorter than ``BARE_MAX_CHARS`` (``Total: 24 km``: no token limit cuts that short), that
    does not stop inside an expression (after an operator, or with a brace left open)."""
    return ("\n" not in text and not _OPEN_END.search(text)
            and text.count("{") == text.count("}")
            and (len(text) < BARE_MAX_CHARS or not is_prose(unwrap_text(text))))


def _unstated_lines(text: str, ended: bool) -> list[str]:
    """The lines of a completion that states no answer, last first; none when it stops
    mid-sentence (cut off by the token limit), unless a chat-template token ended it
    (``ended``) or it is a bare answer."""
    text = text.rstrip()
    finished = ended or _FINISHED.search(text) or _bare_answer(text)
    return text.splitlines()[::-1] if finished else []


def _math_runs(span: str) -> list[tuple[str, str]]:
    """(run, the prose words before it) of each text between the prose words of ``span`` (edge
    punctuation trimmed), in order; the words are those since the previous run, lower case."""
    runs, start, words = [], 0, []
    for word_start, word_end in [*prose_spans(span, in_a_sentence=True), (len(span), len(span))]:
        run = span[start:word_start].lstrip(_LEADING_PUNCTUATION).rstrip(_TRAILING_PUNCTUATION)
        if run:
            runs.append((run, " ".join(words)))
            words = []
        words.append(span[word_start:word_end].lower())
        start = word_end
    return runs


def _last_answer_runs(runs: list[tuple[str, str]]) -> str | None:
    """The last math run holding a digit or a LaTeX command (not a unit power ``^2``), with
    the runs before it joined to it only by "and"/"or" ("$3$ and $5$" states ``3, 5``)."""
    answer = [bool(_MATH_RUN.search(run)) and not run.startswith(("^", "_")) for run, _ in runs]
    if True not in answer:
        return None
    last = len(answer) - 1 - answer[::-1].index(True)
    first = last
    while first > 0 and answer[first - 1] and runs[first][1] in _JOINING_WORDS:
        first -= 1
    return ", ".join(dict.fromkeys(run for run, _ in runs[first:last + 1]))


def read_span(span: str) -> tuple[str, bool] | None:
    """(answer, whether it is mathematics) that a span states, by rules 2a-2d of the module
    docstring (``\\text{}`` unwrapped first, so that its words are prose); None for an empty
    span."""
    span = unwrap_text(span).lstrip(_LEADING_PUNCTUATION).rstrip(_TRAILING_PUNCTUATION)
    formatted = strip_formatting(span)  # spaces kept: "$\\pi$ in total" is prose
    if not formatted:
        return None
    if not is_prose(formatted):
        return span, True
    answer = _last_answer_runs(_math_runs(span))
    if answer is not None:
        return answer, True
    words_in_math = [word for match in _MATH_MODE.finditer(span)
                     if is_prose(word := unwrap_text(match[1] or match[2]).strip())]
    return (words_in_math[-1], True) if words_in_math else (span, False)


def final_statement(text: str) -> tuple[str, str] | None:
    """(span, answer) of the statement that decides (module docstring), the span cut to
    ``MAX_ANSWER_CHARS`` characters; None when the completion states no answer. A statement
    whose answer is mathematics outranks one whose answer is only words ("the answer is
    correct"), so words decide only when no statement holds mathematics. Only the last
    ``MAX_STATEMENTS`` statements (or lines) are read, which bounds the time on any input."""
    text, ended = until_end_of_turn(text.replace("**", ""))
    statements = [span for _, span in answer_statements(text)][-MAX_STATEMENTS:]
    word_answer = None
    for span in reversed(statements):
        stated = read_span(span[:MAX_ANSWER_CHARS])
        if stated is not None and stated[1]:
            return span[:MAX_ANSWER_CHARS], stated[0]
        if stated is not None and word_answer is None:
            word_answer = span[:MAX_ANSWER_CHARS], stated[0]
    if statements:
        return word_answer
    for line in _unstated_lines(text, ended)[:MAX_STATEMENTS]:
        stated = read_span(line[:MAX_ANSWER_CHARS])
        if stated is not None and stated[1]:
            return line[:MAX_ANSWER_CHARS], stated[0]
    return None


def extract_answer(text: str) -> str | None:
    """The final answer of a completion (module docstring); None when it states none."""
    statement = final_statement(text)
    return None if statement is None else statement[1]
