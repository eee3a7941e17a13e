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


def _gsm8k_answer(row: Row) -> str:
    """The text after the last ``####`` of GSM8K's worked solution, thousands commas removed."""
    return row["answer"].split("####")[-1].strip().replace(",", "")


def _number_answer(row: Row) -> str:
    """AMC23 stores answers as floats (27.0): write integral values as integers."""
    value = row["answer"]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _olympiad_answer(row: Row) -> str:
    """OlympiadBench: ``final_answer`` is a list of one string, usually wrapped in ``$``."""
    answer = row["final_answer"]
    return (answer[0] if isinstance(answer, list) else answer).strip().strip("$").strip()


def _field(name: str) -> Callable[[Row], str]:
    return lambda row: str(row[name]).strip()


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


def _read_rows(name: str, spec: BenchmarkSpec, split: str, data_dir: str | None) -> list[Row]:
    if split not in spec.hub:
        raise BenchmarkError(f"benchmark {name!r} has no split {split!r}; "
                             f"splits: {sorted(spec.hub)}")
    if data_dir is not None:
        path = Path(data_dir).expanduser() / spec.local_name / f"{split}.jsonl"
        if not path.exists():
            raise BenchmarkError(f"benchmark {name!r}: no file {path} (expected "
                                 f"<dir>/{spec.local_name}/{split}.jsonl)")
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if _offline():
        raise BenchmarkError(
            f"benchmark {name!r} would load from the Hugging Face Hub, which is offline "
            f"(HF_DATASETS_OFFLINE / HF_HUB_OFFLINE). Point at local jsonl files instead: "
            f"data.dir=/path/to/data (training) or eval.dir=/path/to/data (evaluation), "
            f"with <dir>/{spec.local_name}/{split}.jsonl")
    from datasets import load_dataset

    dataset_id, config, hub_split = spec.hub[split]
    return [dict(row) for row in load_dataset(dataset_id, config, split=hub_split)]


def load_benchmark(name: str, split: str, data_dir: str | None = None,
                   limit: int | None = None) -> list[Problem]:
    """Problems of a registered benchmark, from ``data_dir`` if given, else from the hub.

    Raises:
        BenchmarkError: unknown benchmark or split, missing local file, hub offline without
            ``data_dir``, or rows without answers (naming how many).
    """
    if name not in BENCHMARKS:
        raise BenchmarkError(f"unknown benchmark {name!r}; known: {available_benchmarks()}")
    spec = BENCHMARKS[name]
    rows = _read_rows(name, spec, split, data_dir)
    problems, empty = [], 0
    for index, row in enumerate(rows):
        answer = re.sub(r"\s+", " ", spec.answer(row)) if row else ""
        if not answer:
            empty += 1
            continue
        row_id = str(row[spec.id]) if spec.id and spec.id in row else f"{name}-{split}-{index}"
        problems.append(Problem(id=row_id, problem=spec.question(row), answer=answer,
                                source=row))
    if empty and not spec.drop_empty_answers:
        raise BenchmarkError(f"benchmark {name!r} split {split!r}: {empty} of {len(rows)} rows "
                             f"have no answer")
    if not problems:
        raise BenchmarkError(f"benchmark {name!r} split {split!r} has no problems with answers")
    return problems[:limit] if limit else problems
