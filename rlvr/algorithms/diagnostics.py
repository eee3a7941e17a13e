"""Per-step diagnostics (METHODS.md section 4): pure functions of tensors to Python floats.

Keys are short snake_case names; the trainer adds a prefix (``adv/``, ``weights/``, ...).
Computed in float64. A statistic over an empty set (no correct rollout, no mixed group, no
response token) is NaN, so a missing value is visible in the logs rather than a fake 0.
"""

from __future__ import annotations

import torch
from torch import Tensor

NAN = float("nan")


def _summary(values: Tensor, prefix: str) -> dict[str, float]:
    """mean / std (population) / min / max of a 1-d tensor, keyed ``{prefix}_{stat}``."""
    if values.numel() == 0:
        return {f"{prefix}_{k}": NAN for k in ("mean", "std", "min", "max")}
    v = values.double()
    return {f"{prefix}_mean": float(v.mean()), f"{prefix}_std": float(v.std(correction=0)),
            f"{prefix}_min": float(v.min()), f"{prefix}_max": float(v.max())}


def channel_stats(advantages: Tensor, rewards: Tensor) -> dict[str, float]:
    """Group outcomes and advantages per outcome channel; advantages and rewards [N, G].

    Keys: ``reward_mean``; ``none_solved`` / ``all_solved`` / ``mixed``, the fractions of groups
    with p = 0, p = 1 and 0 < p < 1; ``adv_{mean,std,min,max}`` over all rollouts,
    ``pos_*`` over rollouts with r = 1 and ``neg_*`` over r = 0 (std: population std).
    """
    if advantages.shape != rewards.shape or rewards.dim() != 2:
        raise ValueError(f"advantages and rewards must both be [N, G], got "
                         f"{tuple(advantages.shape)} and {tuple(rewards.shape)}")
    r = rewards.double()
    p = r.mean(-1)
    stats = {
        "reward_mean": float(r.mean()),
        "none_solved": float((p == 0).double().mean()),
        "all_solved": float((p == 1).double().mean()),
        "mixed": float(((p > 0) & (p < 1)).double().mean()),
    }
    stats.update(_summary(advantages.flatten(), "adv"))
    stats.update(_summary(advantages[rewards == 1], "pos"))
    stats.update(_summary(advantages[rewards == 0], "neg"))
    return stats


def kappa(rewards: Tensor, seq_logp: Tensor) -> float:
    """The AsymGRPO kappa estimator (METHODS.md section 4); rewards and seq_logp [N, G].

    Over the mixed groups g (0 < p_g < 1), with s_i the length-normalised old log-prob:

        Delta_g = mean(s | r = 1) - mean(s | r = 0),  l_g = log(p / (1-p)),  v_g = p (1-p),
        kappa   = mean_g v_g * Delta_g * l_g.

    First-order entropy change: raising beta_pos from 0 moves entropy by +eta*beta*kappa, raising
    beta_neg by -eta*beta*kappa. NaN when no group is mixed.
    """
    if rewards.shape != seq_logp.shape or rewards.dim() != 2:
        raise ValueError(f"rewards and seq_logp must both be [N, G], got "
                         f"{tuple(rewards.shape)} and {tuple(seq_logp.shape)}")
    r, s = rewards.double(), seq_logp.double()
    p = r.mean(-1)
    mixed = (p > 0) & (p < 1)
    if not bool(mixed.any()):
        return NAN
    r, s, p = r[mixed], s[mixed], p[mixed]
    delta = (s * r).sum(-1) / r.sum(-1) - (s * (1 - r)).sum(-1) / (1 - r).sum(-1)
    return float((p * (1 - p) * delta * torch.log(p / (1 - p))).mean())


def token_weight_stats(weights: Tensor, mask: Tensor, advantages: Tensor) -> dict[str, float]:
    """Token weights [B, T] over response tokens (mask [B, T]), by the sign of A [B].

    Keys: ``mean`` (token mean over all rows), ``pos_mean`` (rows with A > 0), ``neg_mean``
    (rows with A < 0), ``min`` (over all response tokens).
    """
    w, m = weights.double(), mask.double()

    def token_mean(rows: Tensor) -> float:
        count = m[rows].sum()
        return float((w[rows] * m[rows]).sum() / count) if float(count) > 0 else NAN

    on = mask > 0
    return {
        "mean": token_mean(torch.ones_like(advantages, dtype=torch.bool)),
        "pos_mean": token_mean(advantages > 0),
        "neg_mean": token_mean(advantages < 0),
        "min": float(w[on].min()) if bool(on.any()) else NAN,
    }


def logprob_gain(seq_logp_before: Tensor, seq_logp_after: Tensor, rewards: Tensor) -> float:
    """mean_{i: r_i = 1} (s_i^after - s_i^before): the change of the length-normalised log-prob
    of correct rollouts across one update (tensors of one shape, [B] or [N, G]); NaN if no
    rollout is correct."""
    correct = rewards.flatten() == 1
    if not bool(correct.any()):
        return NAN
    gain = seq_logp_after.double().flatten() - seq_logp_before.double().flatten()
    return float(gain[correct].mean())


def length_stats(lengths: Tensor, truncated: Tensor) -> dict[str, float]:
    """Response lengths [B] (tokens) and truncation flags [B] (bool: hit the token budget).

    Keys: ``length_mean``, ``length_max``, ``length_min``, ``truncated_frac``.
    """
    if lengths.numel() == 0:
        return {"length_mean": NAN, "length_max": NAN, "length_min": NAN, "truncated_frac": NAN}
    n = lengths.double()
    return {"length_mean": float(n.mean()), "length_max": float(n.max()),
            "length_min": float(n.min()), "truncated_frac": float(truncated.double().mean())}
