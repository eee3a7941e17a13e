"""Group filters (METHODS.md section 7), by name: which of a step's groups are trained on.

A filter maps the binary correctness [N, G] of a round of sampled groups to the groups kept [N]
(bool). With a filter configured (``algorithm.group_filter``) the collector samples further
rounds of fresh prompts until ``prompts_per_step`` groups are kept or ``max_filter_rounds`` rounds
ran (rlvr/collect.py); without one every group is kept, in one round.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from rlvr.algorithms.registry import Registry, check_number, register

GROUP_FILTERS = Registry("group filter")


def _check_rounds(params: Mapping[str, Any]) -> None:
    check_number(params, "max_filter_rounds", low=1)
    if not isinstance(params["max_filter_rounds"], int):
        raise ValueError(f"max_filter_rounds must be an integer, got "
                         f"{params['max_filter_rounds']!r}")


@register(GROUP_FILTERS, "informative", {"max_filter_rounds": 3}, _check_rounds,
          reads=("correct",))
def informative_groups(correct: Tensor, **rounds: int) -> Tensor:
    """DAPO's dynamic sampling (Yu et al. 2025, arXiv 2503.14476): bool [N], the groups of
    ``correct`` [N, G] whose rollouts are neither all correct nor all wrong (0 < p < 1), decided
    exactly on the binary correctness (never on a float std, never on a shaped reward). Only
    these carry a gradient under group-normalised advantages. ``max_filter_rounds`` (default 3)
    bounds the sampling rounds of a step.

    Raises:
        ValueError: ``correct`` not [N, G] or not all 0 or 1.
    """
    if correct.dim() != 2:
        raise ValueError(f"correct must be [N, G], got shape {tuple(correct.shape)}")
    solved = correct.to(torch.int64)
    if not bool(((solved == 0) | (solved == 1)).all()) or not bool((solved == correct).all()):
        raise ValueError("correct must be 0 or 1")
    count = solved.sum(dim=-1)
    return (count > 0) & (count < correct.shape[-1])
