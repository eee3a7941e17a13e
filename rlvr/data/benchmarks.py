"""Registry of math benchmarks: where each lives (hub and local layout) and how it normalises.

Every benchmark loads either from the Hugging Face Hub (``datasets.load_dataset``) or from a local
directory of jsonl files laid out as ``<dir>/<benchmark>/<split>.jsonl`` (the layout of the
project's shared data), and is normalised to ``Problem(id, problem, answer, source)`` with the
row's other fields kept in ``source``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlvr.data.problem import Problem

Row = dict[str, Any]


class BenchmarkError(ValueError):
    """A benchmark cannot be loaded as configured; the message says why and what to do."""


class RowError(ValueError):
    """A row lacks what its benchmark needs; ``load_benchmark`` adds the file and line."""


def _value(row: Row, name: str) -> Any:
    """``row[name]``, which must be present and not null."""
    if name not in row:
        raise RowError(f"missing field {name!r} (fields: {sorted(row)})")
    if row[name] is None:
        raise RowError(f"field {name!r} is null")
    return row[name]


def _gsm8k_answer(row: Row) -> str:
    """The text after the last ``####`` of GSM8K's worked solution, thousands commas removed.
    A solution without ``####`` has no final answer: it is an error, not the whole solution."""
    solution = str(_value(row, "answer"))
    if "####" not in solution:
        raise RowError("GSM8K field 'answer' has no '####' before its final answer")
    return solution.split("####")[-1].strip().replace(",", "")


def _number_answer(row: Row) -> str:
    """AMC23 stores answers as floats (27.0): write integral values as integers."""
    value = _value(row, "answer")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _olympiad_answer(row: Row) -> str:
    """OlympiadBench: ``final_answer`` is a list of one string, usually wrapped in ``$``."""
    answer = _value(row, "final_answer")
    return str(answer[0] if isinstance(answer, list) else answer).strip().strip("$").strip()


def _field(name: str) -> Callable[[Row], str]:
    return lambda row: str(_value(row, name)).strip()


@dataclass(frozen=True)
class BenchmarkSpec:
    """Where a benchmark lives and how to read a row.

    ``hub`` maps a split to ``(dataset id, config or None, hub split)``; local files are
    ``<dir>/<local_name>/<split>.jsonl``. ``question`` and ``answer`` read a row; ``id`` names the
    row's id field (None: the row's index); ``counts`` documents the expected rows per split.
    """

    hub: dict[str, tuple[str, str | None, str]]
    question: Callable[[Row], str]
    answer: Callable[[Row], str]
    local_name: str
    id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    drop_empty_answers: bool = False


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "gsm8k": BenchmarkSpec(
        hub={"train": ("openai/gsm8k", "main", "train"), "test": ("openai/gsm8k", "main", "test")},
        question=_field("question"), answer=_gsm8k_answer, local_name="gsm8k",
        counts={"train": 7473, "test": 1319}),
    "math": BenchmarkSpec(
        hub={"train": ("EleutherAI/hendrycks_math", None, "train"),
             "test": ("EleutherAI/hendrycks_math", None, "test")},
        question=_field("problem"), answer=_field("answer"), local_name="math", id="unique_id",
        counts={"train": 7498, "test": 5000}, drop_empty_answers=True),
    "math500": BenchmarkSpec(
        hub={"test": ("HuggingFaceH4/MATH-500", None, "test")},
        question=_field("problem"), answer=_field("answer"), local_name="math500",
        id="unique_id", counts={"test": 500}),
    "aime24": BenchmarkSpec(
        hub={"test": ("math-ai/aime24", None, "test")},
        question=_field("problem"), answer=_field("answer"), local_name="aime24", id="id",
        counts={"test": 30}),
    "aime25": BenchmarkSpec(
        hub={"test": ("math-ai/aime25", None, "test")},
        question=_field("problem"), answer=_field("answer"), local_name="aime25", id="id",
        counts={"test": 30}),
    "amc23": BenchmarkSpec(
        hub={"test": ("math-ai/amc23", None, "test")},
        question=_field("problem"), answer=_number_answer, local_name="amc23", id="id",
        counts={"test": 40}),
    "olympiadbench": BenchmarkSpec(
        hub={"test": ("Hothan/OlympiadBench", "OE_TO_maths_en_COMP", "train")},
        question=_field("question"), answer=_olympiad_answer, local_name="olympiadbench",
        id="id", counts={"test": 675}),
}


def available_benchmarks() -> list[str]:
    return sorted(BENCHMARKS)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


def read_jsonl(path: Path) -> list[tuple[str, Row]]:
    """The rows of a jsonl file, each with its location ``<file>:<line>``; a UTF-8 byte-order
    mark is accepted, blank lines are skipped.

    Raises:
        BenchmarkError: bytes that are not UTF-8 (naming the byte offset and line), a line that
            is not JSON or not a JSON object (naming the file and line).
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BenchmarkError(f"{path}:{line}: not UTF-8 (byte offset {err.start}: "
                             f"{err.reason}); re-encode the file as UTF-8") from None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise BenchmarkError(f"{where}: not valid JSON ({err.msg} at column {err.colno})"
                                 ) from None
        if not isinstance(row, dict):
            raise BenchmarkError(f"{where}: a row must be a JSON object, got "
                                 f"{type(row).__name__}")
        rows.append((where, row))
    return rows


def _read_rows(name: str, spec: BenchmarkSpec, split: str, data_dir: str | None
               ) -> list[tuple[str, Row]]:
    """The rows of ``name``'s ``split``, each with where it came from (file:line, or the hub
    dataset and row index)."""
    if split not in spec.hub:
        raise BenchmarkError(f"benchmark {name!r} has no split {split!r}; "
                             f"splits: {sorted(spec.hub)}")
    if data_dir is not None:
        path = Path(data_dir).expanduser() / spec.local_name / f"{split}.jsonl"
        if not path.exists():
            raise BenchmarkError(f"benchmark {name!r}: no file {path} (expected "
                                 f"<dir>/{spec.local_name}/{split}.jsonl)")
        return read_jsonl(path)
    if _offline():
        raise BenchmarkError(
            f"benchmark {name!r} would load from the Hugging Face Hub, which is offline "
            f"(HF_DATASETS_OFFLINE / HF_HUB_OFFLINE). Point at local jsonl files instead: "
            f"data.dir=/path/to/data (training) or eval.dir=/path/to/data (evaluation), "
            f"with <dir>/{spec.local_name}/{split}.jsonl")
    from datasets import load_dataset

    dataset_id, config, hub_split = spec.hub[split]
    return [(f"{dataset_id} {hub_split} row {i}", dict(row))
            for i, row in enumerate(load_dataset(dataset_id, config, split=hub_split))]


def load_benchmark(name: str, split: str, data_dir: str | None = None,
                   limit: int | None = None) -> list[Problem]:
    """Problems of a registered benchmark, from ``data_dir`` if given, else from the hub.

    Raises:
        BenchmarkError: unknown benchmark or split, missing local file, hub offline without
            ``data_dir``, a row that is malformed or lacks a field (naming its file and line),
            or rows with empty answers (naming how many).
    """
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {available_benchmarks()}")
    spec = BENCHMARKS[name]
    rows = _read_rows(name, spec, split, data_dir)
    problems, empty = [], 0
    for index, (where, row) in enumerate(rows):
        try:
            answer = re.sub(r"\s+", " ", spec.answer(row))
            question = spec.question(row)
        except RowError as err:
            raise BenchmarkError(f"{where}: benchmark {name!r}: {err}") from None
        if not answer:
            empty += 1
            continue
        row_id = str(row[spec.id]) if spec.id and spec.id in row else f"{name}-{split}-{index}"
        problems.append(Problem(id=row_id, problem=question, answer=answer, source=row))
    if empty and not spec.drop_empty_answers:
        raise BenchmarkError(f"benchmark {name!r} split {split!r}: {empty} of {len(rows)} rows "
                             f"have no answer")
    if not problems:
        raise BenchmarkError(f"benchmark {name!r} split {split!r} has no problems with answers")
    return problems[:limit] if limit else problems
