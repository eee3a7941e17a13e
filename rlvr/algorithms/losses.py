"""The clipped policy loss and its one aggregation function (METHODS.md section 3).

Shapes: per-token tensors are [B, T] over the B rollouts of a micro-batch, ``mask`` is 1.0 on
response tokens and 0.0 on padding (padding values must be finite: they are multiplied by 0);
advantages are [B] per rollout or [B, T] per token (``StepBatch.token_advantages``).
``LossNormalizer`` holds the counts of the whole mini-batch, so the losses of its micro-batches
sum to the mini-batch loss (gradient accumulation with global normalisation: backward on each
micro-batch loss, one optimiser step per mini-batch).

``POLICY_LOSSES`` names the per-token surrogate (METHODS.md sections 3 and 7): ``ppo_clip``
(default), ``gspo`` (sequence-level ratio), ``clip_cov`` and ``kl_cov`` (covariance-selected
tokens). A surrogate is ``fn(batch, logp, params) -> (per-token loss [B, T], stats)``: ``batch``
the micro-batch's ``StepBatch`` (old log-probs, advantages, mask, selected tokens), ``logp`` the
current log-probs with gradient, ``params`` its resolved parameters plus the clip settings
(eps_low, eps_high, log_ratio_clamp); ``stats`` holds at least the ratio [B, T]. The covariance
losses read ``selected`` and declare their token selector, run over the WHOLE mini-batch
(``select_tokens``, once per mini-batch before its micro-batches), never per micro-batch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rlvr.algorithms.registry import Registry, check_number, register
from rlvr.batch import StepBatch
from rlvr.config import LossConfig

AGGREGATIONS = ("token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm")
POLICY_LOSSES = Registry("policy loss")
SurrogateOutput = tuple[Tensor, dict[str, Tensor]]


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
    """Cov_{i,t} = (logp_{i,t} - mean logp) (A_{i,t} - mean A) per response token, [B, T] (0 on
    padding); both means over all response tokens of the given rows (Cui et al. 2025, arXiv
    2505.22617, eq. for the centred cross term); ``advantages`` [B] per rollout, [B, 1] or
    [B, T]. Pass a whole mini-batch, not a micro-batch."""
    on = mask > 0
    per_token = advantages if advantages.dim() == 2 else advantages.unsqueeze(-1)
    adv = per_token.to(logp.dtype).expand_as(logp)
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


def _advantages(batch: StepBatch, logp: Tensor) -> Tensor:
    """The batch's advantages, detached, in ``logp``'s dtype, broadcastable to [B, T]."""
    return batch.token_advantages().detach().to(logp.dtype)


@register(POLICY_LOSSES, "ppo_clip")
def ppo_clip(batch: StepBatch, logp: Tensor, params: Mapping[str, Any]) -> SurrogateOutput:
    """PPO-clip (Schulman et al. 2017): ratio = exp(clamp(logp - old_logp)),
    l = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A). Returns (l, {ratio}), [B, T]."""
    clamp = params["log_ratio_clamp"]
    ratio = torch.exp((logp - batch.old_logprobs.detach()).clamp(-clamp, clamp))
    return clipped_surrogate(ratio, _advantages(batch, logp), params["eps_low"],
                             params["eps_high"]), {"ratio": ratio}


@register(POLICY_LOSSES, "gspo")
def gspo(batch: StepBatch, logp: Tensor, params: Mapping[str, Any]) -> SurrogateOutput:
    """GSPO (Zheng et al. 2025, arXiv 2507.18071), sequence-level ratio:

        s_i = exp((1/|y_i|) sum_t m_{i,t} (logp - logp_old)),
        l_i = -min(s_i A_i, clip(s_i, 1 - eps_low, 1 + eps_high) A_i).

    Written per token as s_{i,t} = sg(s_i) * pi_t / sg(pi_t) (the paper's GSPO-token with equal
    token advantages): its value is s_i on every token of row i and its gradient is grad s_i /
    |y_i| per token, so with ``seq_mean_token_mean`` aggregation the loss is (1/N) sum_i l_i with
    GSPO's gradient, and token weights still multiply per token. The paper's clip range is tiny
    (3e-4 / 4e-4, the ``gspo`` preset). Returns (l, {ratio: s}), [B, T]."""
    mask, clamp = batch.response_mask, params["log_ratio_clamp"]
    log_ratio = (logp - batch.old_logprobs.detach()) * mask
    seq = (log_ratio.sum(-1) / mask.sum(-1).clamp_min(1)).clamp(-clamp, clamp)
    ratio = torch.exp(seq.detach().unsqueeze(-1) + logp - logp.detach())
    return clipped_surrogate(ratio, _advantages(batch, logp), params["eps_low"],
                             params["eps_high"]), {"ratio": ratio}


def ppo_clipped(batch: StepBatch, logp: Tensor, params: Mapping[str, Any]) -> Tensor:
    """[B, T] bool: the tokens whose PPO-clip term is the clipped one, -clip(ratio) A >
    -ratio A (their gradient is already cut), ratio = exp(logp - old_logp) against the batch's
    ``old_logprobs`` (none: on-policy, ratio 1, nothing clipped)."""
    if batch.old_logprobs is None:
        return torch.zeros(logp.shape, dtype=torch.bool, device=logp.device)
    clamp = params["log_ratio_clamp"]
    ratio = torch.exp((logp - batch.old_logprobs).clamp(-clamp, clamp))
    adv = batch.token_advantages().to(logp.dtype)
    clipped_ratio = ratio.clamp(1 - params["eps_low"], 1 + params["eps_high"])
    return -clipped_ratio * adv > -ratio * adv


def select_clip_cov(batch: StepBatch, logp: Tensor, generator: torch.Generator,
                    params: Mapping[str, Any]) -> Tensor:
    """Clip-Cov's tokens [B, T] bool: uniformly at random (``generator``), min(n, #candidates)
    of the candidates cov_low <= Cov <= cov_high that PPO did not clip already (``ppo_clipped``;
    as the paper's code and verl do, which matters off-policy), n = max(1, floor(cov_fraction *
    #tokens))."""
    mask = batch.response_mask
    logp = logp.detach()
    cov = token_covariance(logp, batch.token_advantages().detach(), mask)
    selected = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    candidates = ((mask > 0) & (cov >= params["cov_low"]) & (cov <= params["cov_high"])
                  & ~ppo_clipped(batch, logp, params)).view(-1).nonzero().squeeze(-1)
    order = torch.randperm(len(candidates), generator=generator).to(candidates.device)
    selected.view(-1)[candidates[order[:_count(params["cov_fraction"], mask)]]] = True
    return selected


def select_kl_cov(batch: StepBatch, logp: Tensor, generator: torch.Generator,
                  params: Mapping[str, Any]) -> Tensor:
    """KL-Cov's tokens [B, T] bool: the n of largest Cov, n = max(1, floor(cov_fraction *
    #tokens)) (``generator`` unused: the choice is deterministic)."""
    mask = batch.response_mask
    cov = token_covariance(logp.detach(), batch.token_advantages().detach(), mask)
    selected = torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    scores = torch.where(mask > 0, cov, torch.full_like(cov, -torch.inf)).view(-1)
    n = min(_count(params["cov_fraction"], mask), int(mask.sum()))
    selected.view(-1)[torch.topk(scores, n, largest=True).indices] = True
    return selected


@register(POLICY_LOSSES, "clip_cov", {"cov_fraction": 2e-4, "cov_low": 1.0, "cov_high": 5.0},
          _check_clip_cov, reads=("selected",), select=select_clip_cov)
def clip_cov(batch: StepBatch, logp: Tensor, params: Mapping[str, Any]) -> SurrogateOutput:
    """Clip-Cov (Cui et al. 2025, arXiv 2505.22617): PPO-clip, but the tokens ``selected`` by
    ``select_clip_cov`` (a random fraction r of all tokens among those with
    omega_low <= Cov <= omega_high that PPO did not clip) have their policy-gradient term
    detached (value kept, no gradient). Paper: r = 2e-4, omega in [1, 5]. Returns
    (l, {ratio}), [B, T]."""
    per_token, stats = ppo_clip(batch, logp, params)
    return torch.where(batch.selected, per_token.detach(), per_token), stats


@register(POLICY_LOSSES, "kl_cov", {"cov_fraction": 2e-3, "kl_cov_coef": 1.0}, _check_kl_cov,
          reads=("selected",), select=select_kl_cov)
def kl_cov(batch: StepBatch, logp: Tensor, params: Mapping[str, Any]) -> SurrogateOutput:
    """KL-Cov (Cui et al. 2025, arXiv 2505.22617), no ratio clipping:

        l = -ratio A + kl_cov_coef |logp - logp_old|   on the top fraction k of tokens by Cov
        l = -ratio A                                     elsewhere

    (``selected``, from ``select_kl_cov``). Paper: k = 2e-3, kl_cov_coef = 1. Returns
    (l, {ratio}), [B, T]."""
    clamp = params["log_ratio_clamp"]
    log_ratio = (logp - batch.old_logprobs.detach()).clamp(-clamp, clamp)
    ratio = torch.exp(log_ratio)
    penalty = params["kl_cov_coef"] * log_ratio.abs()
    return (-ratio * _advantages(batch, logp)
            + torch.where(batch.selected, penalty, torch.zeros_like(penalty))), {"ratio": ratio}


def select_tokens(name: str, batch: StepBatch, logp: Tensor, generator: torch.Generator,
                  params: Mapping[str, Any], settings: LossConfig) -> Tensor:
    """The tokens [B, T] (bool) the policy loss ``name`` treats specially, chosen by its declared
    selector over the WHOLE mini-batch ``batch`` (advantages, mask, old log-probs when
    off-policy) from the current ``logp`` [B, T] (detached here); all False for a loss without a
    selector or a batch without tokens. ``params``: the flat algorithm parameters (the loss
    takes its own); ``settings``: the clip range (``algorithm.loss``)."""
    spec = POLICY_LOSSES.lookup(name)
    mask = batch.response_mask
    if spec.select is None or float(mask.sum()) == 0:
        return torch.zeros(mask.shape, dtype=torch.bool, device=mask.device)
    own = POLICY_LOSSES.resolve(name, POLICY_LOSSES.own(name, params))
    return spec.select(batch, logp, generator, {
        **own, "eps_low": settings.eps_low, "eps_high": settings.eps_high,
        "log_ratio_clamp": settings.log_ratio_clamp})


@dataclass
class PolicyLossOutput:
    """``loss``: the scalar to backpropagate; ``stats``: detached 0-d tensors, each a TOKEN MEAN
    over this micro-batch's response tokens (combine micro-batches weighting by mask.sum())."""

    loss: Tensor
    stats: dict[str, Tensor]


def compute_policy_loss(batch: StepBatch, logp: Tensor, entropy: Tensor | None, *,
                        policy_loss: str, settings: LossConfig, params: Mapping[str, Any],
                        norm: LossNormalizer) -> PolicyLossOutput:
    """Policy loss with token weights (METHODS.md section 3; PPO, Schulman et al. 2017):

        l_t   = POLICY_LOSSES[policy_loss](batch, logp, params), for ``ppo_clip`` (default):
        ratio = exp(clamp(logp - old_logp, -log_ratio_clamp, log_ratio_clamp))
        l_t   = -min(ratio A, clip(ratio, 1 - eps_low, 1 + eps_high) A)
        dual clip (Ye et al. 2020), A < 0 only:  l_t = min(l_t, -dual_clip A) = min(l_t, c |A|)
        l_t   = w_t * is_t * l_t
        loss  = agg(l) - ent_coef agg(H) + kl_coef agg(k3(logp, ref_logp))

    Dual clip: with A < 0 the clipped loss is ratio |A| for ratio > 1 + eps_high and grows without
    bound; dual clip caps it at c |A| (zero gradient) once ratio > c, c > 1. In the objective's
    sign convention this is max(min(ratio A, clip(ratio) A), c A). For A >= 0 it does nothing.

    Args:
        batch: the micro-batch: ``old_logprobs`` [B, T] (the policy that produced the
            advantages' data; no grad is taken), ``advantages`` [B] or [B, T], ``response_mask``
            [B, T], ``token_weights`` [B, T] (None: all 1), ``is_weights`` [B, T] (truncated
            importance weights pi_old / pi_sampler; None: none), ``ref_logprobs`` [B, T] (needed
            if kl_coef != 0; the k3 log-ratio is clamped like the policy ratio), ``selected``
            [B, T] bool (this micro-batch's rows of ``select_tokens``; covariance losses).
        logp: [B, T] log-probs of the sampled tokens under the current policy (with grad).
        entropy: [B, T] per-token entropy (with grad for the bonus); needed if ent_coef != 0.
        policy_loss, params: the ``POLICY_LOSSES`` entry and the flat algorithm parameters.
        settings: clip range, dual clip, aggregation and coefficients (``algorithm.loss``).
        norm: counts of the whole mini-batch (``LossNormalizer``).

    Returns:
        ``PolicyLossOutput``; ``stats`` are token means over this micro-batch: pg_loss (the
        weighted l_t), clip_frac_low (A < 0 and ratio < 1 - eps_low), clip_frac_high (A > 0 and
        ratio > 1 + eps_high), dual_clip_frac, approx_kl_old (k3 between old and current),
        ratio_mean, and cov_selected_frac / entropy / kl_ref when those tensors are given.

    Raises:
        ValueError: unknown ``agg``, out-of-range clip parameters, mismatched shapes, or a
            non-zero coefficient without its tensor.
    """
    mask, old_logp = batch.response_mask, batch.old_logprobs
    eps_low, eps_high, dual_clip = settings.eps_low, settings.eps_high, settings.dual_clip
    clamp, agg = settings.log_ratio_clamp, settings.agg
    if agg not in AGGREGATIONS:
        raise ValueError(f"unknown loss aggregation {agg!r}; known: {list(AGGREGATIONS)}")
    _check_loss_args(batch, logp, settings)
    if settings.ent_coef != 0 and entropy is None:
        raise ValueError(f"ent_coef={settings.ent_coef!r} needs the per-token entropy, got "
                         f"entropy=None")
    if settings.kl_coef != 0 and batch.ref_logprobs is None:
        raise ValueError(f"kl_coef={settings.kl_coef!r} needs reference log-probs, got "
                         f"ref_logprobs=None")

    resolved = {**POLICY_LOSSES.resolve(policy_loss, POLICY_LOSSES.own(policy_loss, params)),
                "eps_low": eps_low, "eps_high": eps_high, "log_ratio_clamp": clamp}
    counted_selection = batch.selected is not None  # a loss that reads ``selected``
    if not counted_selection:
        batch = dataclasses.replace(batch, selected=torch.zeros(mask.shape, dtype=torch.bool,
                                                                device=mask.device))
    adv = _advantages(batch, logp)
    per_token, surrogate_stats = POLICY_LOSSES.lookup(policy_loss).fn(batch, logp, resolved)
    ratio = surrogate_stats["ratio"]
    dual_active = torch.zeros_like(per_token, dtype=torch.bool)
    if dual_clip is not None:
        cap = (-dual_clip * adv).expand_as(per_token)
        dual_active = (adv < 0) & (per_token > cap)
        per_token = torch.where(dual_active, cap, per_token)
    if batch.token_weights is not None:
        per_token = per_token * batch.token_weights.detach()
    if batch.is_weights is not None:
        per_token = per_token * batch.is_weights.detach()
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
            "approx_kl_old": token_mean(kl_k3(old_logp, logp, log_ratio_clamp=clamp)),
            "ratio_mean": token_mean(ratio),
        }
        if counted_selection:
            stats["cov_selected_frac"] = token_mean(batch.selected.to(mask.dtype))
        if entropy is not None:
            stats["entropy"] = token_mean(entropy)
    if settings.ent_coef != 0 and entropy is not None:
        loss = loss - settings.ent_coef * aggregate(entropy, mask, agg, norm)
    if batch.ref_logprobs is not None:
        kl = kl_k3(logp, batch.ref_logprobs.detach(), log_ratio_clamp=clamp)
        if settings.kl_coef != 0:
            loss = loss + settings.kl_coef * aggregate(kl, mask, agg, norm)
        stats["kl_ref"] = token_mean(kl.detach())
    return PolicyLossOutput(loss=loss, stats=stats)


def _check_loss_args(batch: StepBatch, logp: Tensor, settings: LossConfig) -> None:
    tensors = {"logp": logp, "old_logprobs": batch.old_logprobs, "mask": batch.response_mask}
    if batch.token_weights is not None:
        tensors["token_weights"] = batch.token_weights
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    adv = tuple(batch.advantages.shape)
    if len(set(shapes.values())) != 1 or adv not in (tuple(logp.shape[:1]), tuple(logp.shape)):
        raise ValueError(f"expected logp, old_logprobs, mask, token_weights [B, T] and "
                         f"advantages [B] or [B, T]; got {shapes}, advantages {adv}")
    if not 0 <= settings.eps_low < 1:
        raise ValueError(f"eps_low must be in [0, 1), got {settings.eps_low!r}")
    if settings.eps_high < 0:
        raise ValueError(f"eps_high must be >= 0, got {settings.eps_high!r}")
    if settings.dual_clip is not None and settings.dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1, got {settings.dual_clip!r}")
    if settings.log_ratio_clamp <= 0:
        raise ValueError(f"log_ratio_clamp must be > 0, got {settings.log_ratio_clamp!r}")
