"""The clipped policy loss and its one aggregation function (METHODS.md section 3).

Shapes: per-token tensors are [B, T] over the B rollouts of a micro-batch, ``mask`` is 1.0 on
response tokens and 0.0 on padding (padding values must be finite: they are multiplied by 0);
``advantages`` is [B]. ``LossNormalizer`` holds the counts of the whole mini-batch, so the losses
of its micro-batches sum to the mini-batch loss (gradient accumulation with global normalisation:
backward on each micro-batch loss, one optimiser step per mini-batch).

``POLICY_LOSSES`` names the per-token surrogate (METHODS.md sections 3 and 7): ``ppo_clip``
(default), ``gspo`` (sequence-level ratio), ``clip_cov`` and ``kl_cov`` (covariance-selected
tokens). The covariance losses select tokens over the WHOLE mini-batch (``select_tokens``, called
once per mini-batch before its micro-batches), never per micro-batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rlvr.algorithms.registry import Registry, check_number, register

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")
POLICY_LOSSES = Registry("policy loss")
COVARIANCE_LOSSES = ("clip_cov", "kl_cov")  # the losses that ``select_tokens`` per mini-batch


@dataclass(frozen=True)
class LossNormalizer:
    """Counts of the whole mini-batch: response tokens sum(m), sequences, the response budget."""

    num_tokens: float
    num_seqs: int
    max_new_tokens: int

    def __post_init__(self) -> None:
        if self.num_tokens < 0:
            raise ValueError(f"num_tokens must be >= 0, got {self.num_tokens!r}")
        if self.num_seqs < 1:
            raise ValueError(f"num_seqs must be >= 1, got {self.num_seqs!r}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens!r}")

    @classmethod
    def for_batch(cls, mask: Tensor, max_new_tokens: int) -> LossNormalizer:
        """The normaliser of a mini-batch that is one micro-batch with response ``mask`` [B, T]."""
        return cls(float(mask.sum()), int(mask.shape[0]), int(max_new_tokens))


def aggregate(values: Tensor, mask: Tensor, mode: str, norm: LossNormalizer) -> Tensor:
    """Reduce per-token ``values`` [B, T] of a micro-batch to a scalar, with m = ``mask``:

    - ``token_mean`` (DAPO, verl): sum_{i,t} m v / N_tokens;
    - ``seq_mean_token_mean`` (original GRPO): sum_i (sum_t m v / sum_t m) / N_seqs;
    - ``seq_mean_token_sum_norm`` (Dr.GRPO): sum_{i,t} m v / (N_seqs * max_new_tokens);

    N_tokens, N_seqs, max_new_tokens are those of the whole mini-batch (``norm``), so the sum of
    ``aggregate`` over a partition of the mini-batch's rows is the mini-batch's value. A row
    without response tokens contributes 0; N_tokens = 0 (nothing to average) gives 0.

    Raises:
        ValueError: unknown ``mode``, listing the known ones.
    """
    if mode not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {mode!r}; known: {list(AGGREGATIONS)}")
    masked = values * mask
    if mode == "token_mean":
        return masked.sum() / max(norm.num_tokens, 1.0)
    if mode == "seq_mean_token_mean":
        return (masked.sum(-1) / mask.sum(-1).clamp_min(1)).sum() / norm.num_seqs
    return masked.sum() / (norm.num_seqs * norm.max_new_tokens)


def kl_k3(logp: Tensor, ref_logp: Tensor, *, log_ratio_clamp: float | None = None) -> Tensor:
    """Schulman's k3 estimator of KL(pi || pi_ref) per token sampled from pi, any shape:

        k3 = exp(d) - d - 1,   d = ref_logp - logp   (optionally clamped to +-log_ratio_clamp).

    Non-negative, 0 where the two agree, unbiased: E_{y ~ pi}[k3] = KL(pi || pi_ref).
    ``kl_k3(old_logp, logp)`` is PPO's approx-KL between the sampling and the current policy.
    """
    d = ref_logp - logp
    if log_ratio_clamp is not None:
        d = d.clamp(-log_ratio_clamp, log_ratio_clamp)
    return torch.exp(d) - d - 1


def clipped_surrogate(ratio: Tensor, adv: Tensor, eps_low: float, eps_high: float) -> Tensor:
    """PPO's per-token loss -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A), [B, T]."""
    return -torch.minimum(ratio * adv, ratio.clamp(1 - eps_low, 1 + eps_high) * adv)


def token_covariance(logp: Tensor, advantages: Tensor, mask: Tensor) -> Tensor:
    """Cov_{i,t} = (logp_{i,t} - mean logp) (A_i - mean A) per response token, [B, T] (0 on
    padding); both means over all response tokens of the given rows (Cui et al. 2025, arXiv
    2505.22617, eq. for the centred cross term). Pass a whole mini-batch, not a micro-batch."""
    on = mask > 0
    adv = advantages.to(logp.dtype).unsqueeze(-1).expand_as(logp)
    n = mask.sum().clamp_min(1)
    mean_logp = (logp * mask).sum() / n
    mean_adv = (adv * mask).sum() / n
    return torch.where(on, (logp - mean_logp) * (adv - mean_adv), torch.zeros_like(logp))


def _count(fraction: float, mask: Tensor) -> int:
    """max(1, floor(fraction * response tokens)): at least one token (as verl does), a choice."""
    return max(1, int(fraction * float(mask.sum())))


def _check_clip_cov(params: Mapping[str, Any]) -> None:
    check_number(params, "cov_fraction", low=0, high=1)
    check_number(params, "cov_low")
    check_number(params, "cov_high")
    if params["cov_low"] > params["cov_high"]:
        raise ValueError(f"cov_low must be <= cov_high, got {params['cov_low']!r} > "
                         f"{params['cov_high']!r}")


def _check_kl_cov(params: Mapping[str, Any]) -> None:
    check_number(params, "cov_fraction", low=0, high=1)
    check_number(params, "kl_cov_coef", low=0)


@register(POLICY_LOSSES, "ppo_clip")
def ppo_clip(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, selected: Tensor, *,
             eps_low: float, eps_high: float, log_ratio_clamp: float) -> tuple[Tensor, Tensor]:
    """PPO-clip (Schulman et al. 2017): ratio = exp(clamp(logp - old_logp)),
    l = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A). Returns (l, ratio), [B, T]."""
    ratio = torch.exp((logp - old_logp).clamp(-log_ratio_clamp, log_ratio_clamp))
    return clipped_surrogate(ratio, adv, eps_low, eps_high), ratio


@register(POLICY_LOSSES, "gspo")
def gspo(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, selected: Tensor, *,
         eps_low: float, eps_high: float, log_ratio_clamp: float) -> tuple[Tensor, Tensor]:
    """GSPO (Zheng et al. 2025, arXiv 2507.18071), sequence-level ratio:

        s_i = exp((1/|y_i|) sum_t m_{i,t} (logp - logp_old)),
        l_i = -min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i).

    Written per token as s_{i,t} = sg(s_i) * pi_t / sg(pi_t) (the paper's GSPO-token with equal
    token advantages): its value is s_i on every token of row i and its gradient is grad s_i /
    |y_i| per token, so with ``seq_mean_token_mean`` aggregation the loss is (1/N) sum_i l_i with
    GSPO's gradient, and token weights still multiply per token. The paper's clip range is tiny
    (3e-4 / 4e-4, the ``gspo`` preset). Returns (l, s), [B, T]."""
    log_ratio = (logp - old_logp) * mask
    seq = (log_ratio.sum(-1) / mask.sum(-1).clamp_min(1)).clamp(-log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(seq.detach().unsqueeze(-1) + logp - logp.detach())
    return clipped_surrogate(ratio, adv, eps_low, eps_high), ratio


@register(POLICY_LOSSES, "clip_cov", {"cov_fraction": 2e-4, "cov_low": 1.0, "cov_high": 5.0},
          _check_clip_cov)
def clip_cov(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, selected: Tensor, *,
             eps_low: float, eps_high: float, log_ratio_clamp: float,
             **selection: float) -> tuple[Tensor, Tensor]:
    """Clip-Cov (Cui et al. 2025, arXiv 2505.22617): PPO-clip, but the tokens ``selected`` by
    ``select_tokens`` (a random fraction r of all tokens among those with
    omega_low <= Cov <= omega_high) have their policy-gradient term detached (value kept, no
    gradient). Paper: r = 2e-4, omega in [1, 5]. Returns (l, ratio), [B, T]."""
    per_token, ratio = ppo_clip(logp, old_logp, adv, mask, selected, eps_low=eps_low,
                                eps_high=eps_high, log_ratio_clamp=log_ratio_clamp)
    return torch.where(selected, per_token.detach(), per_token), ratio


@register(POLICY_LOSSES, "kl_cov", {"cov_fraction": 2e-3, "kl_cov_coef": 1.0}, _check_kl_cov)
def kl_cov(logp: Tensor, old_logp: Tensor, adv: Tensor, mask: Tensor, selected: Tensor, *,
           eps_low: float, eps_high: float, log_ratio_clamp: float, kl_cov_coef: float,
           **selection: float) -> tuple[Tensor, Tensor]:
    """KL-Cov (Cui et al. 2025, arXiv 2505.22617), no ratio clipping:

        l = -ratio A + kl_cov_coef |logp - logp_old|   on the top fraction k of tokens by Cov
        l = -ratio A                                     elsewhere

    (``selected``, from ``select_tokens``). Paper: k = 2e-3, kl_cov_coef = 1. Returns
    (l, ratio), [B, T]."""
    log_ratio = (logp - old_logp).clamp(-log_ratio_clamp, log_ratio_clamp)
    ratio = torch.exp(log_ratio)
    penalty = kl_cov_coef * log_ratio.abs()
    return -ratio * adv + torch.where(selected, penalty, torch.zeros_like(penalty)), ratio


def select_tokens(name: str, logp: Tensor, advantages: Tensor, mask: Tensor,
                  generator: torch.Generator, **params: Any) -> Tensor:
    """The tokens [B, T] (bool) a covariance loss treats specially, chosen over the WHOLE
    mini-batch given (logp detached, advantages [B], mask [B, T]); all False for other losses.

    - clip_cov: uniformly at random (``generator``), min(n, #candidates) of the candidates
      cov_low <= Cov <= cov_high, n = max(1, floor(cov_fraction * #tokens));
    - kl_cov: the n tokens of largest Cov, n = max(1, floor(cov_fraction * #tokens)).
    """
    resolved = POLICY_LOSSES.resolve(name, params)
    selected = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    if name not in COVARIANCE_LOSSES or float(mask.sum()) == 0:
        return selected
    cov = token_covariance(logp.detach(), advantages.detach(), mask)
    n = _count(resolved["cov_fraction"], mask)
    flat = selected.view(-1)
    if name == "clip_cov":
        candidates = ((mask > 0) & (cov >= resolved["cov_low"])
                      & (cov <= resolved["cov_high"])).view(-1).nonzero().squeeze(-1)
        order = torch.randperm(len(candidates), generator=generator).to(candidates.device)
        flat[candidates[order[:n]]] = True
    else:
        scores = torch.where(mask > 0, cov, torch.full_like(cov, -torch.inf)).view(-1)
        flat[torch.topk(scores, min(n, int(mask.sum())), largest=True).indices] = True
    return selected


@dataclass
class PolicyLossOutput:
    """``loss``: the scalar to backpropagate; ``stats``: detached 0-d tensors, each a TOKEN MEAN
    over this micro-batch's response tokens (combine micro-batches weighting by mask.sum())."""

    loss: Tensor
    stats: dict[str, Tensor]


def compute_policy_loss(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor, token_weights: Tensor, *,
    norm: LossNormalizer, eps_low: float, eps_high: float, dual_clip: float | None, agg: str,
    ent_coef: float = 0.0, entropy: Tensor | None = None, kl_coef: float = 0.0,
    ref_logp: Tensor | None = None, log_ratio_clamp: float = 20.0,
    is_weights: Tensor | None = None, policy_loss: str = "ppo_clip",
    selected: Tensor | None = None, loss_params: Mapping[str, Any] | None = None,
) -> PolicyLossOutput:
    """Policy loss with token weights (METHODS.md section 3; PPO, Schulman et al. 2017):

        l_t   = POLICY_LOSSES[policy_loss](...), for ``ppo_clip`` (default):
        ratio = exp(clamp(logp - old_logp, -log_ratio_clamp, log_ratio_clamp))
        l_t   = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A)
        dual clip (Ye et al. 2020), A < 0 only:  l_t = min(l_t, -dual_clip A) = min(l_t, c |A|)
        l_t   = w_t * is_t * l_t
        loss  = agg(l) - ent_coef agg(H) + kl_coef agg(k3(logp, ref_logp))

    Dual clip: with A < 0 the clipped loss is ratio |A| for ratio > 1 + eps_high and grows without
    bound; dual clip caps it at c |A| (zero gradient) once ratio > c, c > 1. In the objective's
    sign convention this is max(min(ratio A, clip(ratio) A), c A). For A >= 0 it does nothing.

    Args:
        logp, old_logp: [B, T] log-probs of the sampled tokens under the current policy (with
            grad) and the policy that produced the advantages' data (no grad is taken).
        advantages: [B] rollout advantages, broadcast over tokens.
        mask: [B, T] 1.0 on response tokens.
        token_weights: [B, T] w_t (``weights.compute_combined_token_weights``), detached here.
        norm: counts of the whole mini-batch (``LossNormalizer``).
        agg: ``aggregate`` mode.
        entropy: [B, T] per-token entropy (with grad for the bonus); needed if ent_coef != 0.
        ref_logp: [B, T] reference-policy log-probs; needed if kl_coef != 0. The k3 log-ratio is
            clamped like the policy ratio.
        is_weights: [B, T] truncated importance weights between sampler and learner
            (pi_old / pi_sampler, capped), detached; they multiply l_t.
        policy_loss, loss_params: the ``POLICY_LOSSES`` entry and its parameters.
        selected: [B, T] bool, this micro-batch's rows of ``select_tokens`` over the mini-batch
            (covariance losses); None selects nothing.

    Returns:
        ``PolicyLossOutput``; ``stats`` are token means over this micro-batch: pg_loss (the
        weighted l_t), clip_frac_low (A < 0 and ratio < 1 - eps_low), clip_frac_high (A > 0 and
        ratio > 1 + eps_high), dual_clip_frac, approx_kl_old (k3 between old and current),
        ratio_mean, and entropy / kl_ref when those tensors are given.

    Raises:
        ValueError: unknown ``agg``, out-of-range clip parameters, mismatched shapes, or a
            non-zero coefficient without its tensor.
    """
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {agg!r}; known: {list(AGGREGATIONS)}")
    _check_loss_args(logp, old_logp, advantages, mask, token_weights, eps_low=eps_low,
                     eps_high=eps_high, dual_clip=dual_clip, log_ratio_clamp=log_ratio_clamp)
    if ent_coef != 0 and entropy is None:
        raise ValueError(f"ent_coef={ent_coef!r} needs the per-token entropy, got entropy=None")
    if kl_coef != 0 and ref_logp is None:
        raise ValueError(f"kl_coef={kl_coef!r} needs reference log-probs, got ref_logp=None")

    resolved = POLICY_LOSSES.resolve(policy_loss, loss_params or {})
    selection = selected if selected is not None else torch.zeros(mask.shape, dtype=torch.bool,
                                                                   device=mask.device)
    adv = advantages.detach().unsqueeze(-1).to(logp.dtype)
    per_token, ratio = POLICY_LOSSES.lookup(policy_loss).fn(
        logp, old_logp.detach(), adv, mask, selection, eps_low=eps_low, eps_high=eps_high,
        log_ratio_clamp=log_ratio_clamp, **resolved)
    dual_active = torch.zeros_like(per_token, dtype=torch.bool)
    if dual_clip is not None:
        cap = (-dual_clip * adv).expand_as(per_token)
        dual_active = (adv < 0) & (per_token > cap)
        per_token = torch.where(dual_active, cap, per_token)
    per_token = per_token * token_weights.detach()
    if is_weights is not None:
        per_token = per_token * is_weights.detach()
    loss = aggregate(per_token, mask, agg, norm)

    with torch.no_grad():
        n = mask.sum().clamp_min(1)

        def token_mean(values: Tensor) -> Tensor:
            return (values * mask).sum() / n

        stats = {
            "pg_loss": token_mean(per_token),
            "clip_frac_low": token_mean(((adv < 0) & (ratio < 1 - eps_low)).to(mask.dtype)),
            "clip_frac_high": token_mean(((adv > 0) & (ratio > 1 + eps_high)).to(mask.dtype)),
            "dual_clip_frac": token_mean(dual_active.to(mask.dtype)),
            "approx_kl_old": token_mean(kl_k3(old_logp, logp, log_ratio_clamp=log_ratio_clamp)),
            "ratio_mean": token_mean(ratio),
        }
        if selected is not None:
            stats["cov_selected_frac"] = token_mean(selected.to(mask.dtype))
        if entropy is not None:
            stats["entropy"] = token_mean(entropy)
    if ent_coef != 0 and entropy is not None:
        loss = loss - ent_coef * aggregate(entropy, mask, agg, norm)
    if ref_logp is not None:
        kl = kl_k3(logp, ref_logp.detach(), log_ratio_clamp=log_ratio_clamp)
        if kl_coef != 0:
            loss = loss + kl_coef * aggregate(kl, mask, agg, norm)
        stats["kl_ref"] = token_mean(kl.detach())
    return PolicyLossOutput(loss=loss, stats=stats)


def _check_loss_args(logp: Tensor, old_logp: Tensor, advantages: Tensor, mask: Tensor,
                     token_weights: Tensor, *, eps_low: float, eps_high: float,
                     dual_clip: float | None, log_ratio_clamp: float) -> None:
    shapes = {t.shape for t in (logp, old_logp, mask, token_weights)}
    if len(shapes) != 1 or advantages.shape != logp.shape[:1]:
        raise ValueError(f"expected logp, old_logp, mask, token_weights [B, T] and advantages "
                         f"[B]; got {tuple(logp.shape)}, {tuple(old_logp.shape)}, "
                         f"{tuple(mask.shape)}, {tuple(token_weights.shape)}, "
                         f"{tuple(advantages.shape)}")
    if not 0 <= eps_low < 1:
        raise ValueError(f"eps_low must be in [0, 1), got {eps_low!r}")
    if eps_high < 0:
        raise ValueError(f"eps_high must be >= 0, got {eps_high!r}")
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1, got {dual_clip!r}")
    if log_ratio_clamp <= 0:
        raise ValueError(f"log_ratio_clamp must be > 0, got {log_ratio_clamp!r}")
