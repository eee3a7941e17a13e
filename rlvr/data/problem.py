"""The one record every dataset in rlvr is normalised to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Problem:
    """A verifiable problem: ``answer`` is the reference final answer (a string, unboxed).

    ``source`` keeps the dataset's own fields (level, subject, solution, ...) for analysis.
    """

    id: str
    problem: str
    answer: str
    source: dict[str, Any] = field(default_factory=dict, compare=False)
