"""The policy loss of plain tensors: a micro-batch ``StepBatch`` built from them, for the tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from rlvr.algorithms.losses import LossNormalizer, PolicyLossOutput, compute_policy_loss
from rlvr.batch import StepBatch
from rlvr.config import LossConfig


def micro_batch(old_logp: Tensor | None, advantages: Tensor, mask: Tensor,
                token_weights: Tensor | None = None, **fields: Tensor | None) -> StepBatch:
    """A batch of ``mask.shape[0]`` rows with these tensors (no prompts or responses)."""
    rows = mask.shape[0]
    batch = StepBatch.of_rows([[]] * rows, [[]] * rows, torch.zeros_like(mask), mask, advantages)
    batch.old_logprobs, batch.token_weights = old_logp, token_weights
    for name, value in fields.items():
        setattr(batch, name, value)
    return batch


def policy_loss_of(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                   token_weights: Tensor | None, *, norm: LossNormalizer, eps_low: float,
                   eps_high: float, dual_clip: float | None, agg: str, ent_coef: float = 0.0,
                   entropy: Tensor | None = None, kl_coef: float = 0.0,
                   ref_logp: Tensor | None = None, log_ratio_clamp: float = 20.0,
                   is_weights: Tensor | None = None, policy_loss: str = "ppo_clip",
                   selected: Tensor | None = None,
                   loss_params: Mapping[str, Any] | None = None) -> PolicyLossOutput:
    """``compute_policy_loss`` of these tensors and settings."""
    batch = micro_batch(old_logp, advantages, mask, token_weights, ref_logprobs=ref_logp,
                        is_weights=is_weights, selected=selected)
    settings = LossConfig(eps_low=eps_low, eps_high=eps_high, dual_clip=dual_clip, agg=agg,
                          ent_coef=ent_coef, kl_coef=kl_coef, log_ratio_clamp=log_ratio_clamp)
    return compute_policy_loss(batch, logp, entropy, policy_loss=policy_loss, settings=settings,
                               params=dict(loss_params or {}), norm=norm)
