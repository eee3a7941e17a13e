"""DAPO's batch-level pieces (Yu et al. 2025, arXiv 2503.14476; METHODS.md section 7): the
dynamic-sampling group filter and overlong reward shaping. Pure functions on tensors."""

from __future__ import annotations

import torch
from torch import Tensor


def informative_groups(correct: Tensor) -> Tensor:
    """bool [N]: the groups of ``correct`` [N, G] whose rollouts are neither all correct nor all
    wrong (0 < p < 1), decided exactly on the binary correctness (never on a float std, never on
    a shaped reward). Only these carry a gradient under group-normalised advantages.

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


def overlong_buffer(max_new_tokens: int, fraction: float) -> int:
    """The soft-penalty cache C = round(fraction * L) tokens (DAPO: L = 20480, C = 4096, i.e.
    fraction 0.2); 0 turns the shaping off."""
    if not 0 <= fraction < 1:
        raise ValueError(f"overlong fraction must be in [0, 1), got {fraction!r}")
    return round(fraction * max_new_tokens)


def overlong_penalty(lengths: Tensor, max_new_tokens: int, buffer: int) -> Tensor:
    """DAPO's soft overlong punishment per response, float64 of the shape of ``lengths``:

        0                         if |y| <= L - C
        ((L - C) - |y|) / C       if L - C < |y| <= L
        -1                        if |y| > L

    with L = ``max_new_tokens`` and C = ``buffer`` (0: no shaping, all zeros). Added to the
    binary correctness to form the shaped reward.
    """
    if not 0 <= buffer <= max_new_tokens:
        raise ValueError(f"buffer must be in [0, max_new_tokens={max_new_tokens}], got {buffer}")
    y = lengths.to(torch.float64)
    if buffer == 0:
        return torch.zeros_like(y)
    start = max_new_tokens - buffer
    soft = (start - y) / buffer
    return torch.where(y <= start, torch.zeros_like(y),
                       torch.where(y <= max_new_tokens, soft, -torch.ones_like(y)))
