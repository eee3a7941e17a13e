"""Reward shapings (METHODS.md section 7), by name: the rewards [N, G] the estimators see.

A shaping maps rewards r [N, G] (float64; the binary correctness before the first shaping) and
the response lengths [N, G] to shaped rewards; ``algorithm.reward_shaping`` lists them, applied
in order (``shape_rewards``). Estimators that read ``rewards`` see the result, the others the
binary correctness (rlvr/algorithms/advantages.py ``estimator_rewards``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from rlvr.algorithms.registry import Registry, check_number, register

REWARD_SHAPINGS = Registry("reward shaping")


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

    with L = ``max_new_tokens`` and C = ``buffer`` (0: no shaping, all zeros).
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


def _check_overlong(params: Mapping[str, Any]) -> None:
    check_number(params, "overlong_fraction", low=0)
    if not params["overlong_fraction"] < 1:
        raise ValueError(f"overlong_fraction must be in [0, 1), got "
                         f"{params['overlong_fraction']!r}")


@register(REWARD_SHAPINGS, "overlong", {"overlong_fraction": 0.2}, _check_overlong)
def overlong(rewards: Tensor, lengths: Tensor, max_new_tokens: int, overlong_fraction: float
             ) -> Tensor:
    """DAPO's overlong reward shaping (Yu et al. 2025, arXiv 2503.14476): r + the soft overlong
    penalty (``overlong_penalty``) with a cache of round(fraction L) tokens, L =
    ``max_new_tokens``; [N, G] float64. DAPO: 4096 of 20480 tokens, fraction 0.2."""
    buffer = overlong_buffer(max_new_tokens, overlong_fraction)
    return rewards + overlong_penalty(lengths, max_new_tokens, buffer)


@register(REWARD_SHAPINGS, "signed")
def signed(rewards: Tensor, lengths: Tensor, max_new_tokens: int) -> Tensor:
    """DAPO's rule-based reward (Yu et al. 2025, arXiv 2503.14476, section 2.4): +1 for a
    correct answer, -1 otherwise, i.e. 2 r - 1 of the binary correctness [N, G] (float64).
    Listed before ``overlong`` (the ``dapo`` preset, as the paper and verl do), the overlong
    penalty weighs against a correct/wrong gap of 2, not 1. Apply it first: it reads 0/1."""
    return 2.0 * rewards - 1.0


def shape_rewards(names: Sequence[str], correct: Tensor, lengths: Tensor, max_new_tokens: int,
                  params: Mapping[str, Any]) -> Tensor:
    """The rewards [N, G] after the shapings ``names`` in order, from the binary ``correct``
    [N, G] and the response ``lengths`` [N, G], in ``correct``'s dtype; ``correct`` itself when
    no shaping is configured. ``params``: the flat algorithm parameters (each takes its own)."""
    if not names:
        return correct
    rewards = correct.to(torch.float64)
    for name in names:
        own = REWARD_SHAPINGS.resolve(name, REWARD_SHAPINGS.own(name, params))
        rewards = REWARD_SHAPINGS.lookup(name).fn(rewards, lengths, max_new_tokens, **own)
    return rewards.to(correct.dtype)
