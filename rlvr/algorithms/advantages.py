"""Rollout-level advantage estimators (METHODS.md section 1), by name.

Every estimator maps the binary rewards r [N, G] of N groups of G rollouts of one prompt each to
advantages A [N, G]; p = (1/G) sum_i r_i is a group's accuracy. ``compute_advantages`` is the one
entry point; ``ADVANTAGE_ESTIMATORS`` holds each estimator's parameter names and defaults.

Parameterisation of the AsymGRPO family (arXiv 2604.04894; a choice, METHODS.md): exponents as in
AsymGRPO v1,

    A+ = +((1-p)/p)^beta_pos  (r = 1),     A- = -(p/(1-p))^beta_neg  (r = 0),

so that GRPO (population std, eps = 0) is beta_pos = beta_neg = 0.5 and REINFORCE is 0 / 0. The
v2 text writes the same family with exponent b/2 (GRPO is b = 1): a v2 value b is
``beta = b / 2`` here, a value beta here is ``b = 2 * beta`` in v2 (v2's (1.8, 0.8) is v1's tuned
pair (0.9, 0.4)). Endpoints follow 0^0 = 1: an all-wrong group (p = 0) gets A- = -1 if
beta_neg = 0 else 0, an all-correct group (p = 1) gets A+ = +1 if beta_pos = 0 else 0.
"""

from __future__ import annotations

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

ADVANTAGE_ESTIMATORS = Registry("advantage estimator")


def compute_advantages(name: str, rewards: Tensor, **params: Any) -> Tensor:
    """Advantages A [N, G] of the ``rewards`` [N, G] under the estimator ``name``.

    Rewards are 0/1 unless the estimator reads shaped rewards (``reads=("rewards",)``: grpo,
    dr_grpo, rloo), which take any finite values (``estimator_rewards`` picks the right ones).
    Computed in float64 and returned in the dtype of ``rewards`` (the default float dtype when
    ``rewards`` is bool or integer). Missing parameters take the registry defaults.

    Raises:
        ValueError: unknown ``name`` (listing the known ones), a parameter the estimator does not
            take or an invalid value (naming it), rewards not [N, G], not all 0 or 1 for a
            binary estimator, or not finite.
    """
    resolved = ADVANTAGE_ESTIMATORS.resolve(name, params)
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [N, G], got shape {tuple(rewards.shape)}")
    r = rewards.to(torch.float64)
    if not bool(torch.isfinite(r).all()):
        raise ValueError("rewards must be finite")
    binary = bool(((r == 0) | (r == 1)).all())
    if not binary and "rewards" not in ADVANTAGE_ESTIMATORS.lookup(name).reads:
        raise ValueError(f"rewards must be 0 or 1 for the advantage estimator {name!r}")
    out_dtype = rewards.dtype if rewards.is_floating_point() else torch.get_default_dtype()
    return ADVANTAGE_ESTIMATORS.lookup(name).fn(r, **resolved).to(out_dtype)


def estimator_rewards(name: str, correct: Tensor, shaped: Tensor) -> Tensor:
    """The rewards [N, G] the estimator ``name`` sees: the ``shaped`` rewards (correctness plus
    shaping, e.g. DAPO's overlong penalty) if it accepts them, else the binary ``correct``
    (METHODS.md section 7: asym and the flips need binary correctness): what it ``reads``."""
    return shaped if "rewards" in ADVANTAGE_ESTIMATORS.lookup(name).reads else correct


def validate_advantage_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise ValueError if ``name`` is unknown or ``params`` are not valid for it."""
    ADVANTAGE_ESTIMATORS.resolve(name, params)


def group_accuracy(r: Tensor) -> Tensor:
    """p [N, 1] = (1/G) sum_i r_i, the fraction of correct rollouts of each group in r [N, G]."""
    return r.mean(dim=-1, keepdim=True)


def asym_positive(p: Tensor, beta: float) -> Tensor:
    """AsymGRPO positive channel A+(p) = ((1-p)/p)^beta, any shape, with 0^0 = 1 at p = 1.

    Finite everywhere: at p = 0 (where no rollout is positive) it returns 1 instead of inf.
    """
    safe_p = torch.where(p > 0, p, torch.ones_like(p))
    return torch.pow((1 - p) / safe_p, beta)


def asym_negative(p: Tensor, beta: float) -> Tensor:
    """AsymGRPO negative channel A-(p) = -(p/(1-p))^beta, any shape, with 0^0 = 1 at p = 0.

    Finite everywhere: at p = 1 (where no rollout is negative) it returns -1 instead of -inf.
    """
    safe_q = torch.where(p < 1, 1 - p, torch.ones_like(p))
    return -torch.pow(p / safe_q, beta)


def constant_groups(r: Tensor) -> Tensor:
    """bool [N, 1]: the groups of r [N, G] whose rewards are all exactly equal."""
    return (r == r[..., :1]).all(dim=-1, keepdim=True)


def _centred(r: Tensor) -> Tensor:
    """r - mean(r) per group, [N, G], exactly 0 in a group of equal rewards (the float mean of
    equal values need not equal them: 3 x 0.1 / 3 = 0.10000000000000002)."""
    centred = r - r.mean(dim=-1, keepdim=True)
    return torch.where(constant_groups(r), torch.zeros_like(centred), centred)


def _check_grpo(params: Mapping[str, Any]) -> None:
    check_choice(params, "std_ddof", (0, 1))
    check_number(params, "eps", low=0)


@register(ADVANTAGE_ESTIMATORS, "grpo", {"std_ddof": 0, "eps": 1e-6}, _check_grpo,
          reads=("rewards",), min_group_size=2)
def grpo(r: Tensor, std_ddof: int, eps: float) -> Tensor:
    """GRPO (Shao et al. 2024, DeepSeekMath): A_i = (r_i - mean(r)) / (std(r) + eps), r [N, G].

    ``std_ddof`` 0 is the population std (METHODS.md default), 1 the sample std (verl). A group
    whose rewards are all equal (decided exactly, ``constant_groups``: a float std of equal
    shaped rewards can be a rounding residue, which eps = 0 would blow up to +-1), or G = 1 with
    ddof 1, gets A = 0.
    """
    centred = _centred(r)
    if r.shape[-1] <= std_ddof:
        return torch.zeros_like(centred)
    std = r.std(dim=-1, correction=std_ddof, keepdim=True)
    constant = constant_groups(r)
    safe_std = torch.where(constant, torch.ones_like(std), std)
    return torch.where(constant, torch.zeros_like(centred), centred / (safe_std + eps))


@register(ADVANTAGE_ESTIMATORS, "reinforce", reads=("correct",))
def reinforce(r: Tensor) -> Tensor:
    """REINFORCE with binary rewards (AsymGRPO's baseline): A = +1 if r = 1, -1 if r = 0.
    r [N, G]; the same as ``asym`` with beta_pos = beta_neg = 0."""
    return 2.0 * r - 1.0


@register(ADVANTAGE_ESTIMATORS, "dr_grpo", reads=("rewards",), min_group_size=2)
def dr_grpo(r: Tensor) -> Tensor:
    """Dr.GRPO (Liu et al. 2025, "Understanding R1-Zero-Like Training"): A_i = r_i - mean(r),
    no std normalisation; r [N, G] (exactly 0 in a group of equal rewards). Pair it with the
    ``seq_mean_token_sum_norm`` loss."""
    return _centred(r)


@register(ADVANTAGE_ESTIMATORS, "rloo", reads=("rewards",), min_group_size=2)
def rloo(r: Tensor) -> Tensor:
    """RLOO (Ahmadian et al. 2024, "Back to Basics"), leave-one-out baseline, r [N, G]:

        A_i = r_i - (1/(G-1)) sum_{j != i} r_j = G/(G-1) (r_i - mean(r)).

    Needs G >= 2 (the baseline of a single rollout is undefined).
    """
    group_size = r.shape[-1]
    if group_size < 2:
        raise ValueError(f"rloo needs a group size G >= 2, got G = {group_size}")
    return _centred(r) * group_size / (group_size - 1)


def _check_asym(params: Mapping[str, Any]) -> None:
    check_number(params, "beta_pos", low=0)
    check_number(params, "beta_neg", low=0)


@register(ADVANTAGE_ESTIMATORS, "asym", {"beta_pos": 0.5, "beta_neg": 0.5}, _check_asym,
          reads=("correct",), min_group_size=2)
def asym(r: Tensor, beta_pos: float, beta_neg: float) -> Tensor:
    """AsymGRPO (arXiv 2604.04894, v1 exponents), decoupled outcome channels, r [N, G]:

        A_i = +((1-p)/p)^beta_pos  if r_i = 1,     A_i = -(p/(1-p))^beta_neg  if r_i = 0.

    (0, 0) is REINFORCE, (0.5, 0.5) is GRPO with population std and eps = 0. Endpoints use
    0^0 = 1: all-correct groups get +1 if beta_pos = 0 else 0, all-wrong groups -1 if
    beta_neg = 0 else 0. Proposition 2: the prompt-level pressure M+(p) = p A+(p) peaks at
    p = 1 - beta_pos and M-(p) = (1-p) |A-(p)| at p = beta_neg.
    """
    p = group_accuracy(r)
    return torch.where(r == 1, asym_positive(p, beta_pos), asym_negative(p, beta_neg))


def _require_grid(group_size: int) -> None:
    if group_size < 3:
        raise ValueError(f"advantage flips extrapolate from two grid points k/G and need a "
                         f"group size G >= 3, got G = {group_size}")


@register(ADVANTAGE_ESTIMATORS, "ent_decrease", reads=("correct",), min_group_size=3)
def ent_decrease(r: Tensor) -> Tensor:
    """AsymGRPO section 3.2 advantage flip of the positive channel (beta = 0.5), r [N, G]:

        A+ = A+_GRPO(1 - p) = sqrt(p / (1-p)),    A- = -sqrt(p / (1-p))  (unchanged).

    A+ is undefined at p = 1; there it is extrapolated linearly on the grid {k/G}:
    f(1) = 2 f((G-1)/G) - f((G-2)/G) = 2 sqrt(G-1) - sqrt((G-2)/2) (G = 8: 2 sqrt(7) - sqrt(3)),
    so all-correct groups do get a positive advantage. Needs G >= 3.
    """
    group_size = r.shape[-1]
    _require_grid(group_size)
    p = group_accuracy(r)
    below = torch.tensor([(group_size - 1) / group_size, (group_size - 2) / group_size],
                         dtype=r.dtype, device=r.device)
    f_below = asym_positive(1 - below, 0.5)
    at_one = 2 * f_below[0] - f_below[1]
    positive = torch.where(p < 1, asym_positive(1 - p, 0.5), at_one)
    return torch.where(r == 1, positive, asym_negative(p, 0.5))


@register(ADVANTAGE_ESTIMATORS, "ent_increase", reads=("correct",), min_group_size=3)
def ent_increase(r: Tensor) -> Tensor:
    """AsymGRPO section 3.2 advantage flip of the negative channel (beta = 0.5), r [N, G]:

        A+ = sqrt((1-p) / p)  (unchanged),    A- = A-_GRPO(1 - p) = -sqrt((1-p) / p).

    A- is undefined at p = 0; there it is extrapolated linearly on the grid {k/G}:
    f(0) = 2 f(1/G) - f(2/G) = -2 sqrt(G-1) + sqrt((G-2)/2) (G = 8: -2 sqrt(7) + sqrt(3)),
    so all-wrong groups get a negative advantage. Needs G >= 3.
    """
    group_size = r.shape[-1]
    _require_grid(group_size)
    p = group_accuracy(r)
    above = torch.tensor([1 / group_size, 2 / group_size], dtype=r.dtype, device=r.device)
    f_above = asym_negative(1 - above, 0.5)
    at_zero = 2 * f_above[0] - f_above[1]
    negative = torch.where(p > 0, asym_negative(1 - p, 0.5), at_zero)
    return torch.where(r == 1, asym_positive(p, 0.5), negative)


def _check_asym_adaptive(params: Mapping[str, Any]) -> None:
    for key in ("beta_pos", "beta_neg", "beta_min", "beta_max", "beta_step", "entropy_target"):
        check_number(params, key, low=0)
    low, high = params["beta_min"], params["beta_max"]
    if low > high:
        raise ValueError(f"beta_min must be <= beta_max, got {low!r} > {high!r}")
    for key in ("beta_pos", "beta_neg"):
        check_number(params, key, low=low, high=high)


def initial_betas(params: Mapping[str, Any]) -> ScheduleState:
    """(beta_pos, beta_neg) before step 0: the configured pair (default AsymGRPO's (0.9, 0.4))."""
    return {"beta_pos": float(params["beta_pos"]), "beta_neg": float(params["beta_neg"])}


def current_betas(state: ScheduleState, params: Mapping[str, Any], progress: float
                  ) -> dict[str, float]:
    """The betas of this step: the state's (they change only through ``next_betas``)."""
    return dict(state)


def next_betas(state: ScheduleState, params: Mapping[str, Any], step_entropy: float
               ) -> ScheduleState:
    """Entropy-adaptive AsymGRPO (METHODS.md section 7; AsymGRPO's stated future work), with H_k
    the step's token-mean entropy, delta = ``entropy_target``, Delta = ``beta_step``:

        H_k < delta:  beta_pos += Delta, beta_neg -= Delta   (more entropy-sustaining pressure)
        otherwise:    beta_pos -= Delta, beta_neg += Delta   (more entropy-pruning pressure)

    each clipped to [``beta_min``, ``beta_max``]. Rationale (AsymGRPO Proposition 1): the
    positive channel sustains entropy, the negative prunes it.
    """
    check_number({"step_entropy": step_entropy}, "step_entropy")
    delta = params["beta_step"] if step_entropy < params["entropy_target"] else -params["beta_step"]

    def clip(beta: float) -> float:
        return min(params["beta_max"], max(params["beta_min"], beta))

    return {"beta_pos": clip(state["beta_pos"] + delta),
            "beta_neg": clip(state["beta_neg"] - delta)}


BETA_SCHEDULE = Schedule(initial_betas, current_betas, next_betas,
                         {"beta_pos": "algorithm/beta_pos", "beta_neg": "algorithm/beta_neg"})


@register(ADVANTAGE_ESTIMATORS, "asym_adaptive",
          {"beta_pos": 0.9, "beta_neg": 0.4, "entropy_target": 0.2, "beta_step": 0.02,
           "beta_min": 0.0, "beta_max": 1.0}, _check_asym_adaptive, schedule=BETA_SCHEDULE,
          reads=("correct",), min_group_size=2)
def asym_adaptive(r: Tensor, beta_pos: float, beta_neg: float, **schedule_params: float
                  ) -> Tensor:
    """``asym`` with the step's betas from the entropy-adaptive ``next_betas`` schedule, r [N, G];
    ``beta_pos``/``beta_neg`` are the current values (the configured ones are the start)."""
    return asym(r, beta_pos, beta_neg)
