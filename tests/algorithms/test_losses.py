"""The clipped loss and the one aggregation function on hand-computed examples."""

import math

import pytest
import torch

from rlvr.algorithms.losses import (
    AGGREGATIONS,
    LossNormalizer,
    aggregate,
    kl_k3,
)
from tests.algorithms.loss_inputs import policy_loss_of

VALUES = torch.tensor([[1.0, 2.0, 3.0, 99.0], [4.0, 5.0, 99.0, 99.0]])
MASK = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])


@pytest.mark.parametrize("mode,expected", [
    ("token_mean", (1 + 2 + 3 + 4 + 5) / 5),
    ("seq_mean_token_mean", ((1 + 2 + 3) / 3 + (4 + 5) / 2) / 2),
    ("seq_mean_token_sum_norm", (1 + 2 + 3 + 4 + 5) / (2 * 8)),
])
def test_aggregation_modes_by_hand(mode, expected):
    norm = LossNormalizer.for_batch(MASK, max_new_tokens=8)
    assert norm == LossNormalizer(num_tokens=5.0, num_seqs=2, max_new_tokens=8)
    assert aggregate(VALUES, MASK, mode, norm).item() == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("mode,expected", [
    ("token_mean", (4 + 5) / 5),  # the whole mini-batch has 5 tokens
    ("seq_mean_token_mean", ((4 + 5) / 2) / 2),
    ("seq_mean_token_sum_norm", (4 + 5) / (2 * 8)),
])
def test_a_micro_batch_uses_the_mini_batch_normaliser(mode, expected):
    norm = LossNormalizer.for_batch(MASK, max_new_tokens=8)
    assert aggregate(VALUES[1:], MASK[1:], mode, norm).item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_micro_batches_sum_to_the_mini_batch_aggregate(mode):
    g = torch.Generator().manual_seed(0)
    values = torch.randn(5, 6, generator=g, dtype=torch.float64)
    mask = (torch.rand(5, 6, generator=g) > 0.3).double()
    mask[:, 0] = 1
    norm = LossNormalizer.for_batch(mask, max_new_tokens=6)
    whole = aggregate(values, mask, mode, norm)
    parts = sum(aggregate(values[rows], mask[rows], mode, norm)
                for rows in ([0, 1], [2], [3, 4]))
    torch.testing.assert_close(parts, whole, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_policy_loss_and_gradient_accumulate_over_micro_batches(mode):
    """Backward on two micro-batch losses (global normaliser) = backward on the whole batch."""
    g = torch.Generator().manual_seed(1)
    b, t = 6, 5
    logp0 = -torch.rand(b, t, generator=g, dtype=torch.float64)
    old = logp0 + 0.3 * torch.randn(b, t, generator=g, dtype=torch.float64)
    ref = logp0 + 0.2 * torch.randn(b, t, generator=g, dtype=torch.float64)
    entropy0 = torch.rand(b, t, generator=g, dtype=torch.float64)
    adv = torch.randn(b, generator=g, dtype=torch.float64)
    mask = (torch.rand(b, t, generator=g) > 0.3).double()
    mask[:, 0] = 1
    weights = torch.rand(b, t, generator=g, dtype=torch.float64)
    norm = LossNormalizer.for_batch(mask, max_new_tokens=t)

    def run(rows):
        logp = logp0[rows].clone().requires_grad_()
        entropy = entropy0[rows].clone().requires_grad_()
        out = policy_loss_of(logp, old[rows], adv[rows], mask[rows], weights[rows],
                                  norm=norm, eps_low=0.2, eps_high=0.28, dual_clip=3.0, agg=mode,
                                  ent_coef=0.01, entropy=entropy, kl_coef=0.1, ref_logp=ref[rows])
        out.loss.backward()
        return out.loss.detach(), logp.grad, entropy.grad

    whole_loss, whole_grad, whole_ent_grad = run(list(range(b)))
    first, second = run([0, 1, 2]), run([3, 4, 5])
    torch.testing.assert_close(first[0] + second[0], whole_loss, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(torch.cat([first[1], second[1]]), whole_grad, rtol=1e-12,
                               atol=1e-12)
    torch.testing.assert_close(torch.cat([first[2], second[2]]), whole_ent_grad, rtol=1e-12,
                               atol=1e-12)


def test_unknown_aggregation_is_rejected():
    with pytest.raises(ValueError, match=r"unknown loss aggregation 'sum'; known: \['token_mean'"):
        aggregate(VALUES, MASK, "sum", LossNormalizer.for_batch(MASK, 4))


def test_normaliser_rejects_impossible_counts():
    with pytest.raises(ValueError, match="num_seqs must be >= 1, got 0"):
        LossNormalizer(num_tokens=3.0, num_seqs=0, max_new_tokens=4)
    with pytest.raises(ValueError, match="max_new_tokens must be >= 1, got 0"):
        LossNormalizer(num_tokens=3.0, num_seqs=1, max_new_tokens=0)


def _loss(logp, old, adv, **kw):
    mask = kw.pop("mask", torch.ones_like(logp))
    args = {"eps_low": 0.2, "eps_high": 0.2, "dual_clip": None, "agg": "token_mean"} | kw
    return policy_loss_of(logp, old, adv, mask, torch.ones_like(logp),
                               norm=LossNormalizer.for_batch(mask, logp.shape[1]), **args)


def test_clipped_surrogate_and_clip_fractions_by_hand():
    ratios = torch.tensor([[1.5, 0.9, 0.7], [0.5, 1.1, 1.4]], dtype=torch.float64)
    logp = ratios.log()
    adv = torch.tensor([2.0, -1.0], dtype=torch.float64)
    out = _loss(logp, torch.zeros_like(logp), adv)
    # row 0 (A = 2):  min(1.5*2, 1.2*2) = 2.4, min(0.9*2, 0.9*2) = 1.8, min(0.7*2, 0.8*2) = 1.4
    # row 1 (A = -1): min(-0.5, -0.8) = -0.8, min(-1.1, -1.1) = -1.1, min(-1.4, -1.2) = -1.4
    expected = -(2.4 + 1.8 + 1.4 - 0.8 - 1.1 - 1.4) / 6
    assert out.loss.item() == pytest.approx(expected, rel=1e-12)
    # clipped: (A > 0, ratio 1.5 > 1.2) high; (A < 0, ratio 0.5 < 0.8) low. Ratio 0.7 with A > 0
    # and 1.4 with A < 0 are outside the band but not clipped (the min takes the unclipped side).
    assert out.stats["clip_frac_high"].item() == pytest.approx(1 / 6)
    assert out.stats["clip_frac_low"].item() == pytest.approx(1 / 6)
    assert out.stats["pg_loss"].item() == pytest.approx(expected, rel=1e-12)
    assert out.stats["dual_clip_frac"].item() == 0.0


def test_clip_fractions_ignore_padding():
    ratios = torch.tensor([[1.5, 1.5]], dtype=torch.float64)
    out = _loss(ratios.log(), torch.zeros(1, 2, dtype=torch.float64),
                torch.tensor([1.0], dtype=torch.float64), mask=torch.tensor([[1.0, 0.0]],
                                                                            dtype=torch.float64))
    assert out.stats["clip_frac_high"].item() == 1.0
    assert out.loss.item() == pytest.approx(-1.2)


def test_clip_higher_widens_the_upper_bound_only():
    logp = torch.tensor([[math.log(1.25), math.log(0.7)]], dtype=torch.float64)
    out = _loss(logp, torch.zeros_like(logp), torch.tensor([1.0], dtype=torch.float64),
                eps_high=0.28)
    # 1.25 < 1.28: unclipped; 0.7 with A > 0: min(0.7, 0.8) = 0.7
    assert out.loss.item() == pytest.approx(-(1.25 + 0.7) / 2, rel=1e-12)
    assert out.stats["clip_frac_high"].item() == 0.0


def test_dual_clip_caps_the_loss_of_negative_advantages():
    logp = torch.tensor([[math.log(5.0), math.log(2.0), math.log(0.5)],
                         [math.log(5.0), math.log(2.0), math.log(0.5)]], dtype=torch.float64)
    adv = torch.tensor([-2.0, 1.0], dtype=torch.float64)
    plain = _loss(logp, torch.zeros_like(logp), adv)
    dual = _loss(logp, torch.zeros_like(logp), adv, dual_clip=3.0)
    # A = -2: l = -min(r A, clip(r) A) = 10, 4, 1.6 (0.5 clipped to 0.8); dual caps 10 at 3*2 = 6
    # A = +1: l = -min(r, clip(r)) = -1.2, -1.2, -0.5; dual clip does not apply
    assert plain.loss.item() == pytest.approx((10 + 4 + 1.6 - 1.2 - 1.2 - 0.5) / 6, rel=1e-12)
    assert dual.loss.item() == pytest.approx((6 + 4 + 1.6 - 1.2 - 1.2 - 0.5) / 6, rel=1e-12)
    assert dual.stats["dual_clip_frac"].item() == pytest.approx(1 / 6)


def test_dual_clipped_tokens_have_zero_gradient():
    logp = torch.tensor([[math.log(5.0), math.log(2.0)]], dtype=torch.float64,
                        requires_grad=True)
    out = _loss(logp, torch.zeros(1, 2, dtype=torch.float64),
                torch.tensor([-1.0], dtype=torch.float64), dual_clip=3.0)
    out.loss.backward()
    # d/dlogp of ratio * |A| / 2 at ratio 2 is 2 * 1 / 2 = 1; the capped token gets 0
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, 1.0]], dtype=torch.float64))


def test_log_ratio_is_clamped():
    logp = torch.tensor([[50.0]], dtype=torch.float64)
    out = _loss(logp, torch.zeros_like(logp), torch.tensor([-1.0], dtype=torch.float64),
                log_ratio_clamp=20.0)
    assert out.loss.item() == pytest.approx(math.exp(20.0), rel=1e-12)
    assert out.stats["approx_kl_old"].item() == pytest.approx(math.exp(20.0) - 21.0, rel=1e-12)


def test_token_weights_and_is_weights_scale_each_token():
    logp = torch.zeros(1, 2)
    mask = torch.ones(1, 2)
    out = policy_loss_of(logp, logp, torch.tensor([1.0]), mask, torch.tensor([[0.5, 1.0]]),
                              norm=LossNormalizer.for_batch(mask, 2), eps_low=0.2, eps_high=0.2,
                              dual_clip=None, agg="token_mean",
                              is_weights=torch.tensor([[1.0, 0.25]]))
    assert out.loss.item() == pytest.approx(-(0.5 * 1.0 + 1.0 * 0.25) / 2)


def test_k3_by_hand_and_unbiased_for_kl():
    logp, ref = torch.tensor([-1.0, -2.0, -0.5]), torch.tensor([-1.5, -2.0, 0.0])
    # d = ref - logp = -0.5, 0, 0.5
    expected = [math.exp(-0.5) + 0.5 - 1, 0.0, math.exp(0.5) - 0.5 - 1]
    assert kl_k3(logp, ref).tolist() == pytest.approx(expected, rel=1e-6)
    assert kl_k3(logp, ref)[1].item() == 0.0
    # E_{y ~ pi}[k3(y)] = KL(pi || ref) for two categorical distributions
    pi = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    ref_p = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    kl = sum(a * math.log(a / b) for a, b in zip(pi.tolist(), ref_p.tolist(), strict=True))
    assert float((pi * kl_k3(pi.log(), ref_p.log())).sum()) == pytest.approx(kl, rel=1e-12)


def test_approx_kl_old_is_k3_between_old_and_current():
    logp = torch.tensor([[-1.0, -2.0]], dtype=torch.float64)
    old = torch.tensor([[-1.2, -1.9]], dtype=torch.float64)
    out = _loss(logp, old, torch.tensor([0.5], dtype=torch.float64))
    d = [0.2, -0.1]  # logp - old
    assert out.stats["approx_kl_old"].item() == pytest.approx(
        sum(math.exp(x) - x - 1 for x in d) / 2, rel=1e-12)


def test_entropy_bonus_and_kl_penalty_enter_the_loss():
    logp = torch.tensor([[-1.0, -1.0]], dtype=torch.float64)
    entropy = torch.tensor([[2.0, 4.0]], dtype=torch.float64)
    ref = torch.tensor([[-1.5, -1.0]], dtype=torch.float64)
    adv = torch.tensor([0.5], dtype=torch.float64)
    both = _loss(logp, logp, adv, ent_coef=0.1, entropy=entropy, kl_coef=0.5, ref_logp=ref)
    # on-policy ratio 1: pg = -0.5; entropy token mean 3; k3 = (e^-0.5 + 0.5 - 1, 0)
    k3 = math.exp(-0.5) + 0.5 - 1
    assert both.loss.item() == pytest.approx(-0.5 - 0.1 * 3.0 + 0.5 * k3 / 2, rel=1e-12)
    assert both.stats["entropy"].item() == pytest.approx(3.0)
    assert both.stats["kl_ref"].item() == pytest.approx(k3 / 2, rel=1e-12)
    assert all(not v.requires_grad for v in both.stats.values())


def test_coefficients_without_their_tensors_are_rejected():
    logp = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=r"ent_coef=0\.001 needs the per-token entropy"):
        _loss(logp, logp, torch.tensor([1.0]), ent_coef=1e-3)
    with pytest.raises(ValueError, match=r"kl_coef=0\.1 needs reference log-probs"):
        _loss(logp, logp, torch.tensor([1.0]), kl_coef=0.1)


@pytest.mark.parametrize("kw,message", [
    ({"eps_low": 1.0}, r"eps_low must be in \[0, 1\), got 1.0"),
    ({"eps_high": -0.1}, "eps_high must be >= 0, got -0.1"),
    ({"dual_clip": 1.0}, "dual_clip must be > 1, got 1.0"),
    ({"agg": "sum"}, "unknown loss aggregation 'sum'"),
])
def test_invalid_loss_arguments_name_the_problem(kw, message):
    logp = torch.zeros(1, 2)
    with pytest.raises(ValueError, match=message):
        _loss(logp, logp, torch.tensor([1.0]), **kw)
