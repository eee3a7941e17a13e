"""Per-token loss weights w_{i,t} (METHODS.md section 2), by name; always detached.

A weight multiplies the per-token policy loss; the loss normaliser is unchanged (choice). Weights
compose by product (``compute_combined_token_weights``), so e.g. AsymGRPO advantages with SA-AH
weights is one config. Shapes: advantages [B] (one per rollout) or [B, T] (per token), entropy
and mask [B, T] with mask 1.0 on response tokens; weights [B, T] float32, 1.0 on padding.

Positive-Advantage Reweighting's lambda follows a ``Schedule`` kept apart from the weight:
``initial_lambda`` / ``current_lambda`` / ``next_lambda`` are pure functions of a small state
that the trainer saves in checkpoints (``Schedule`` in rlvr/algorithms/registry.py,
``ScheduleSet`` in rlvr/algorithms/parts.py); the trainer passes the
current lambda to the weight as ``lambda_value``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from rlvr.algorithms.registry import (
    Registry,
    Schedule,
    ScheduleState,
    check_choice,
    check_number,
    register,
)

TOKEN_WEIGHTS = Registry("token weight")
NORMALIZATIONS = ("log_vocab", "none")
SCHEDULES = ("constant", "stage", "linear", "entropy_guided")


def compute_token_weights(name: str, advantages: Tensor, entropy: Tensor, mask: Tensor,
                          vocab_size: int, **params: Any) -> Tensor:
    """Weights [B, T] (float32, no grad) of the token weight ``name``; 1.0 where mask is 0.

    advantages [B] (per rollout) or [B, T] (per token), entropy [B, T] (per-token policy
    entropy, nats), mask [B, T].

    Raises:
        ValueError: unknown ``name`` (listing the known ones), a parameter the weight does not
            take or an invalid value (naming it), or mismatched shapes.
    """
    resolved = TOKEN_WEIGHTS.resolve(name, params)
    if entropy.shape != mask.shape or advantages.shape not in (mask.shape[:1], mask.shape):
        raise ValueError(f"expected advantages [B] or [B, T] and entropy, mask [B, T]; got "
                         f"{tuple(advantages.shape)}, {tuple(entropy.shape)}, "
                         f"{tuple(mask.shape)}")
    with torch.no_grad():
        w = TOKEN_WEIGHTS.lookup(name).fn(advantages.detach(), entropy.detach(), mask,
                                          vocab_size, **resolved)
        return torch.where(mask > 0, w.float(), torch.ones_like(w, dtype=torch.float32))


def compute_combined_token_weights(names: list[str], advantages: Tensor, entropy: Tensor,
                                   mask: Tensor, vocab_size: int, params: Mapping[str, Any]
                                   ) -> Tensor:
    """prod_k w_k [B, T] over the token weights ``names`` (all ones for an empty list).

    Each weight receives only the entries of ``params`` it declares (``TOKEN_WEIGHTS[n].params``),
    so one flat parameter dict serves a composition such as ``["sa_ah", "pos_reweight"]``.
    """
    w = torch.ones(mask.shape, dtype=torch.float32, device=mask.device)
    for name in names:
        own = TOKEN_WEIGHTS.own(name, params)
        w = w * compute_token_weights(name, advantages, entropy, mask, vocab_size, **own)
    return w


def validate_weight_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise ValueError if ``name`` is unknown or ``params`` are not valid for it."""
    TOKEN_WEIGHTS.resolve(name, params)


def _per_token(advantages: Tensor) -> Tensor:
    """Advantages broadcastable over tokens: [B] -> [B, 1]; [B, T] as they are."""
    return advantages if advantages.dim() == 2 else advantages.unsqueeze(-1)


def horizon_discount(entropy: Tensor, mask: Tensor, vocab_size: int, alpha: float,
                     normalize: str) -> Tensor:
    """The entropy-adaptive horizon discount of SA-AH-GRPO (arXiv 2606.05434), [B, T]:

        w_t = exp(-alpha * sum_{k < t, m_k = 1} Htilde_k),
        Htilde = H / log|V| (normalize = "log_vocab", a choice) or H (normalize = "none").

    The prefix sum is exclusive and runs over response tokens only, so the first response token
    has weight 1 and padding (whatever its entropy) adds nothing.
    """
    if normalize == "log_vocab" and vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2 to normalise by log|V|, got {vocab_size}")
    scale = 1.0 / math.log(vocab_size) if normalize == "log_vocab" else 1.0
    h = torch.where(mask > 0, entropy.float() * scale, torch.zeros(mask.shape, device=mask.device))
    inclusive = torch.cumsum(h, dim=-1)
    exclusive = torch.cat([torch.zeros_like(inclusive[..., :1]), inclusive[..., :-1]], dim=-1)
    return torch.exp(-alpha * exclusive)


def _check_horizon(params: Mapping[str, Any]) -> None:
    check_number(params, "alpha", low=0)
    check_choice(params, "normalize", NORMALIZATIONS)


_HORIZON_DEFAULTS = {"alpha": 0.5, "normalize": "log_vocab"}


@register(TOKEN_WEIGHTS, "ah", _HORIZON_DEFAULTS, _check_horizon)
def ah(advantages: Tensor, entropy: Tensor, mask: Tensor, vocab_size: int, alpha: float,
       normalize: str) -> Tensor:
    """AH-GRPO (the SA-AH-GRPO paper's ablation, arXiv 2606.05434): ``horizon_discount`` on
    every rollout, w_t = exp(-alpha * sum_{k<t} Htilde_k), [B, T]; alpha = 0 is GRPO."""
    return horizon_discount(entropy, mask, vocab_size, alpha, normalize)


@register(TOKEN_WEIGHTS, "sa_ah", _HORIZON_DEFAULTS, _check_horizon)
def sa_ah(advantages: Tensor, entropy: Tensor, mask: Tensor, vocab_size: int, alpha: float,
          normalize: str) -> Tensor:
    """SA-AH-GRPO (arXiv 2606.05434): the horizon discount only on rollouts with A_i < 0,

        w_{i,t} = exp(-alpha * sum_{k<t} Htilde_{i,k}) if A_i < 0, else exactly 1,

    [B, T], so rollouts with A_i >= 0 get exactly the GRPO gradient.
    """
    w = horizon_discount(entropy, mask, vocab_size, alpha, normalize)
    return torch.where(_per_token(advantages) < 0, w, torch.ones_like(w))


def _check_pos_reweight(params: Mapping[str, Any]) -> None:
    check_choice(params, "schedule", SCHEDULES)
    check_number(params, "lambda_value", low=0, high=1)
    check_number(params, "lambda_init", low=0, high=1)
    check_number(params, "lambda_step", low=0)
    check_number(params, "entropy_threshold", low=0)


_POS_REWEIGHT_DEFAULTS = {"schedule": "constant", "lambda_value": 1.0, "entropy_threshold": 0.2,
                          "lambda_step": 0.05, "lambda_init": 0.0}


def initial_lambda(params: Mapping[str, Any]) -> ScheduleState:
    """The state before step 0: lambda_0 = ``lambda_init`` (the paper's 0)."""
    return {"lambda_value": float(params["lambda_init"])}


def current_lambda(state: ScheduleState, params: Mapping[str, Any], progress: float
                   ) -> dict[str, float]:
    """lambda for this step, progress = step / (total_steps - 1) in [0, 1] (arXiv 2511.05993):

    - constant: ``lambda_value``;
    - stage: 0 for progress < 0.5, then linear 0 -> 1 over the second half: max(0, 2 progress - 1);
    - linear: progress (the paper's epoch-wise (e-1)/(E-1));
    - entropy_guided: the state's lambda_k (``next_lambda``).
    """
    check_number({"progress": progress}, "progress", low=0, high=1)
    schedule = params["schedule"]
    if schedule == "constant":
        value = float(params["lambda_value"])
    elif schedule == "stage":
        value = max(0.0, 2.0 * progress - 1.0)
    elif schedule == "linear":
        value = float(progress)
    else:
        value = state["lambda_value"]
    return {"lambda_value": value}


def next_lambda(state: ScheduleState, params: Mapping[str, Any], step_entropy: float
                ) -> ScheduleState:
    """The entropy-guided update (arXiv 2511.05993), H_k the step's token-mean entropy:

        lambda_{k+1} = clip(lambda_k - Delta, 0, 1) if H_k < delta else clip(lambda_k + Delta, 0, 1)

    with delta = ``entropy_threshold`` and Delta = ``lambda_step``; other schedules keep the state.
    """
    if params["schedule"] != "entropy_guided":
        return state
    check_number({"step_entropy": step_entropy}, "step_entropy")
    step = params["lambda_step"]
    delta = -step if step_entropy < params["entropy_threshold"] else step
    return {"lambda_value": min(1.0, max(0.0, state["lambda_value"] + delta))}


LAMBDA_SCHEDULE = Schedule(initial_lambda, current_lambda, next_lambda,
                           {"lambda_value": "weights/lambda"})


@register(TOKEN_WEIGHTS, "pos_reweight", _POS_REWEIGHT_DEFAULTS, _check_pos_reweight,
          schedule=LAMBDA_SCHEDULE)
def pos_reweight(advantages: Tensor, entropy: Tensor, mask: Tensor, vocab_size: int,
                 lambda_value: float, **schedule_params: Any) -> Tensor:
    """Positive-Advantage Reweighting (arXiv 2511.05993), [B, T]:

        w_{i,t} = lambda if A_i > 0, else 1.

    ``lambda_value`` is the current lambda (``current_lambda``, the part's ``Schedule``);
    ``schedule_params`` (schedule, entropy_threshold, lambda_step, lambda_init) drive the
    schedule, not the weight.
    """
    positive = (_per_token(advantages) > 0).expand(mask.shape)
    return torch.where(positive, torch.full(mask.shape, lambda_value, device=mask.device),
                       torch.ones(mask.shape, device=mask.device))
