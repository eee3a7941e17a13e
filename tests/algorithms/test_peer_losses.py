"""GSPO, Clip-Cov, KL-Cov and DAPO's pieces against values computed by hand (METHODS.md 7)."""

import math
from pathlib import Path

import pytest
import torch

from rlvr.algorithms.group_filters import informative_groups
from rlvr.algorithms.losses import LossNormalizer, select_tokens, token_covariance
from rlvr.algorithms.reward_shapings import overlong_buffer, overlong_penalty
from rlvr.config import LossConfig
from tests.algorithms.loss_inputs import micro_batch, policy_loss_of

REPO = Path(__file__).resolve().parents[2]
MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
OLD = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -1.2, 0.0]], dtype=torch.float64)


def _loss(logp, adv, policy_loss, agg="token_mean", selected=None, eps=(0.2, 0.2), **params):
    return policy_loss_of(
        logp, OLD, adv, MASK.double(), torch.ones_like(OLD), norm=LossNormalizer.for_batch(MASK, 8),
        eps_low=eps[0], eps_high=eps[1], dual_clip=None, agg=agg, policy_loss=policy_loss,
        selected=selected, loss_params=params)


def test_gspo_loss_and_gradient_are_the_sequence_level_closed_form():
    delta = torch.tensor([[0.3, -0.1, 0.1], [0.02, 0.04, 0.0]], dtype=torch.float64)
    logp = (OLD + delta).requires_grad_()
    adv = torch.tensor([1.5, -0.5], dtype=torch.float64)
    out = _loss(logp, adv, "gspo", agg="seq_mean_token_mean", eps=(0.2, 0.2))
    s = [math.exp(0.3 / 3), math.exp(0.06 / 2)]  # exp(mean log-ratio) per sequence
    expected = (-s[0] * 1.5 + s[1] * 0.5) / 2
    assert float(out.loss.detach()) == pytest.approx(expected, abs=1e-12)
    out.loss.backward()
    # d/dlogp_t of (1/N) l_i = -(A_i s_i / |y_i|) / N on every response token, 0 on padding
    grad = torch.tensor([[-1.5 * s[0] / 3 / 2] * 3, [0.5 * s[1] / 2 / 2] * 2 + [0.0]],
                        dtype=torch.float64)
    torch.testing.assert_close(logp.grad, grad)


def test_gspo_clips_the_sequence_ratio_with_the_papers_tiny_range():
    logp = (OLD + 0.001).requires_grad_()  # s = exp(0.001) > 1 + 4e-4 for both rows
    out = _loss(logp, torch.tensor([1.0, 1.0], dtype=torch.float64), "gspo",
                agg="seq_mean_token_mean", eps=(3e-4, 4e-4))
    assert float(out.loss.detach()) == pytest.approx(-(1 + 4e-4), abs=1e-12)
    out.loss.backward()
    assert torch.count_nonzero(logp.grad) == 0
    assert float(out.stats["clip_frac_high"]) == 1.0


def test_token_covariance_uses_means_over_all_response_tokens():
    logp = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -1.2, 7.0]], dtype=torch.float64)
    adv = torch.tensor([2.0, -1.0], dtype=torch.float64)
    tokens = [(-1.0, 2.0), (-2.0, 2.0), (-0.5, 2.0), (-0.3, -1.0), (-1.2, -1.0)]
    mean_lp = sum(t[0] for t in tokens) / 5
    mean_a = sum(t[1] for t in tokens) / 5
    expected = [[(lp - mean_lp) * (a - mean_a) for lp, a in tokens[:3]],
                [(lp - mean_lp) * (a - mean_a) for lp, a in tokens[3:]] + [0.0]]
    torch.testing.assert_close(token_covariance(logp, adv, MASK.double()),
                               torch.tensor(expected, dtype=torch.float64))


def test_kl_cov_selects_the_global_top_fraction_and_adds_the_abs_kl():
    # 40 rows x 5 tokens = 200 tokens, k = 0.02 -> 4 tokens of largest covariance
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(40, 5, generator=g, dtype=torch.float64) * 3
    adv = torch.randn(40, generator=g, dtype=torch.float64)
    mask = torch.ones(40, 5, dtype=torch.float64)
    cov = token_covariance(logp, adv, mask).flatten()
    selected = select_tokens("kl_cov", micro_batch(None, adv, mask), logp, g,
                             {"cov_fraction": 0.02}, LossConfig())
    assert set(selected.flatten().nonzero().flatten().tolist()) == \
        set(torch.argsort(cov, descending=True)[:4].tolist())
    # per-token value: -ratio A + coef |logp - old| on selected tokens only
    sel = torch.tensor([[True, False, False], [False, True, False]])
    logp2 = OLD + torch.tensor([[0.1, 0.2, 0.0], [0.0, -0.3, 0.0]], dtype=torch.float64)
    adv2 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    out = _loss(logp2, adv2, "kl_cov", selected=sel, kl_cov_coef=1.0, cov_fraction=0.5)
    per_token = [-math.exp(0.1) + 0.1, -math.exp(0.2), -1.0, 2.0, 2 * math.exp(-0.3) + 0.3]
    assert float(out.loss.detach()) == pytest.approx(sum(per_token) / 5, abs=1e-12)


def test_clip_cov_detaches_selected_tokens_within_the_covariance_band():
    g = torch.Generator().manual_seed(1)
    logp = -torch.rand(20, 10, generator=g, dtype=torch.float64) * 4
    adv = torch.randn(20, generator=g, dtype=torch.float64) * 3
    mask = torch.ones(20, 10, dtype=torch.float64)
    cov = token_covariance(logp, adv, mask)
    band = (cov >= 1.0) & (cov <= 5.0)
    selected = select_tokens("clip_cov", micro_batch(None, adv, mask), logp, g,
                             {"cov_fraction": 0.01}, LossConfig())
    assert int(selected.sum()) == min(2, int(band.sum()))  # floor(0.01 * 200) = 2
    assert bool((selected <= band).all())
    sel = torch.tensor([[False, True, False], [True, False, False]])
    logp2 = OLD.clone().requires_grad_()
    adv2 = torch.tensor([1.0, -2.0], dtype=torch.float64)
    out = _loss(logp2, adv2, "clip_cov", selected=sel, cov_fraction=2e-4, cov_low=1.0,
                cov_high=5.0)
    assert float(out.loss.detach()) == pytest.approx((-1 - 1 - 1 + 2 + 2) / 5, abs=1e-12)
    out.loss.backward()
    expected = torch.tensor([[-0.2, 0.0, -0.2], [0.0, 0.4, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(logp2.grad, expected)


def test_informative_groups_are_decided_exactly_on_correctness():
    correct = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0],
                            [1.0, 1.0, 1.0, 0.0]])
    assert informative_groups(correct).tolist() == [False, False, True, True]
    with pytest.raises(ValueError, match="0 or 1"):
        informative_groups(torch.tensor([[1.0, 0.75]]))


def test_overlong_penalty_is_dapos_piecewise_linear_shaping():
    # L = 20, C = round(0.2 * 20) = 4: 0 up to 16, then (16 - |y|) / 4, -1 beyond 20
    assert overlong_buffer(20, 0.2) == 4
    got = overlong_penalty(torch.tensor([3, 16, 17, 18, 20, 21]), 20, 4)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.0, -0.25, -0.5, -1.0, -1.0],
                                                 dtype=torch.float64))
    assert torch.equal(overlong_penalty(torch.tensor([20, 30]), 20, 0),
                       torch.zeros(2, dtype=torch.float64))


def test_the_dapo_preset_shapes_plus_minus_one_scores_as_the_paper():
    """DAPO's reward is +1 / -1 plus the overlong penalty (paper section 2.4 and 3.4): with
    L = 20, C = 4, a correct answer of 18 tokens scores 1 - 0.5, a wrong one -1 - 0.5."""
    import yaml

    from rlvr.algorithms.reward_shapings import shape_rewards

    preset = yaml.safe_load((REPO / "conf" / "algorithm" / "dapo.yaml").read_text())
    correct = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    lengths = torch.tensor([[18, 18, 10, 25]])
    got = shape_rewards(preset["reward_shaping"], correct, lengths, 20,
                        {"overlong_fraction": preset["overlong_fraction"]})
    assert got.dtype == correct.dtype
    torch.testing.assert_close(got, torch.tensor([[0.5, -1.5, 1.0, -2.0]]))


def test_clip_cov_never_selects_a_token_ppo_already_clipped_off_policy():
    """Off-policy (old log-probs from before this epoch), Clip-Cov's candidates are the band's
    tokens whose PPO term is not the clipped one (the paper's code, verl): with r = 1 every
    candidate is selected, so the selection is exactly band & not clipped, computed here by
    hand from ratio = exp(logp - old) and the clip range [0.8, 1.2]."""
    g = torch.Generator().manual_seed(2)
    logp = -torch.rand(16, 6, generator=g, dtype=torch.float64) * 4
    adv = torch.randn(16, generator=g, dtype=torch.float64) * 3
    mask = torch.ones(16, 6, dtype=torch.float64)
    old = logp + 0.4 * torch.randn(16, 6, generator=g, dtype=torch.float64)
    band = (token_covariance(logp, adv, mask) >= -2.0) & (token_covariance(logp, adv, mask) <= 2.0)
    ratio = (logp - old).exp()
    a = adv[:, None].expand_as(ratio)
    clipped = ((a > 0) & (ratio > 1.2)) | ((a < 0) & (ratio < 0.8))
    assert bool((band & clipped).any()) and bool((band & ~clipped).any())
    params = {"cov_fraction": 1.0, "cov_low": -2.0, "cov_high": 2.0}
    selected = select_tokens("clip_cov", micro_batch(old, adv, mask), logp, g, params,
                             LossConfig())
    assert torch.equal(selected, band & ~clipped)
    on_policy = select_tokens("clip_cov", micro_batch(None, adv, mask), logp, g, params,
                              LossConfig())
    assert torch.equal(on_policy, band)  # ratio 1: nothing is clipped
