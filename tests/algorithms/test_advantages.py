"""Advantage estimators against closed forms written out here (METHODS.md section 1)."""

import itertools
import math

import pytest
import torch

from rlvr.algorithms.advantages import (
    ADVANTAGE_ESTIMATORS,
    compute_advantages,
    estimator_rewards,
    validate_advantage_params,
)
from rlvr.algorithms.parts import ScheduleSet

G = 8
ALL_PATTERNS = torch.tensor(list(itertools.product([0.0, 1.0], repeat=G)))  # [256, 8]
COUNTS = ALL_PATTERNS.sum(1)
MIXED = ALL_PATTERNS[(COUNTS > 0) & (COUNTS < G)]


def _sorted_groups(group_size: int = G) -> torch.Tensor:
    """Row k has k correct rollouts first, k = 0..G: every group accuracy k/G once."""
    return torch.tensor([[1.0] * k + [0.0] * (group_size - k) for k in range(group_size + 1)])


def test_asym_without_parameters_is_grpo_without_eps_by_hand():
    """The defaults a call without parameters takes: asym's (0.5, 0.5) is GRPO with population
    std and eps = 0 (AsymGRPO v1), A+ = sqrt((1-p)/p), A- = -sqrt(p/(1-p)), p = k/G."""
    r = MIXED.to(torch.float64)
    p = r.mean(dim=-1, keepdim=True)
    expected = torch.where(r == 1, ((1 - p) / p).sqrt(), -(p / (1 - p)).sqrt())
    torch.testing.assert_close(compute_advantages("asym", r), expected, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"takes parameters \['beta_pos', 'beta_neg'\]"):
        compute_advantages("asym", r, beta=0.5)
    with pytest.raises(ValueError, match=r"unknown: \['beta_pos'\]"):
        compute_advantages("reinforce", r, beta_pos=0.5)


def test_asym_zero_zero_is_reinforce():
    expected = torch.where(ALL_PATTERNS == 1, 1.0, -1.0)
    assert torch.equal(compute_advantages("asym", ALL_PATTERNS, beta_pos=0.0, beta_neg=0.0),
                       expected)
    assert torch.equal(compute_advantages("reinforce", ALL_PATTERNS), expected)


def test_asym_half_half_is_grpo_population_std_without_eps_on_every_mixed_group():
    asym = compute_advantages("asym", MIXED.double(), beta_pos=0.5, beta_neg=0.5)
    grpo = compute_advantages("grpo", MIXED.double(), std_ddof=0, eps=0.0)
    torch.testing.assert_close(asym, grpo, rtol=1e-12, atol=1e-12)
    # and both against (r - p) / sqrt(p (1 - p)), the population std of a 0/1 group, per group
    for row, a in zip(MIXED.tolist(), asym.tolist(), strict=True):
        p = sum(row) / G
        expected = [(x - p) / math.sqrt(p * (1 - p)) for x in row]
        assert a == pytest.approx(expected, rel=1e-12)
    assert len(MIXED) == 2**G - 2


def test_grpo_sample_std_against_float64_hand_computation():
    rows = [[1.0, 0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0]]
    got = compute_advantages("grpo", torch.tensor(rows, dtype=torch.float64), std_ddof=1)
    for row, a in zip(rows, got.tolist(), strict=True):
        mean = sum(row) / len(row)
        std = math.sqrt(sum((x - mean) ** 2 for x in row) / (len(row) - 1))
        expected = [0.0] * len(row) if std == 0 else [(x - mean) / (std + 1e-6) for x in row]
        assert a == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # cross-check against torch's unbiased std on random groups, in float64
    r = (torch.rand(50, G, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    std = torch.std(r, dim=1, unbiased=True, keepdim=True)
    ref = torch.where(std > 0, (r - r.mean(1, keepdim=True)) / (std + 1e-6), 0.0)
    torch.testing.assert_close(compute_advantages("grpo", r, std_ddof=1), ref, rtol=1e-12,
                               atol=1e-12)


def test_grpo_default_eps_and_uniform_groups():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0] * 4, [0.0] * 4], dtype=torch.float64)
    a = compute_advantages("grpo", r)
    std = math.sqrt(0.25 * 0.75)
    assert a[0].tolist() == pytest.approx([0.75 / (std + 1e-6)] + [-0.25 / (std + 1e-6)] * 3)
    assert torch.equal(a[1:], torch.zeros(2, 4, dtype=torch.float64))
    assert torch.equal(compute_advantages("grpo", r[1:], eps=0.0), torch.zeros(2, 4,
                                                                             dtype=torch.float64))


def test_dr_grpo_is_centred_reward():
    r = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert torch.equal(compute_advantages("dr_grpo", r),
                       torch.tensor([[0.75, -0.25, -0.25, -0.25], [0.0, 0.0, 0.0, 0.0]]))


@pytest.mark.parametrize("beta_pos,beta_neg", [(0.0, 0.0), (0.9, 0.4), (0.5, 0.0), (0.0, 0.5),
                                               (2.0, 3.0)])
def test_asym_endpoints_follow_zero_power_zero_is_one(beta_pos, beta_neg):
    r = torch.tensor([[1.0] * G, [0.0] * G])
    a = compute_advantages("asym", r, beta_pos=beta_pos, beta_neg=beta_neg)
    assert torch.all(a[0] == (1.0 if beta_pos == 0 else 0.0)), "p = 1: +1 iff beta_pos = 0"
    assert torch.all(a[1] == (-1.0 if beta_neg == 0 else 0.0)), "p = 0: -1 iff beta_neg = 0"


@pytest.mark.parametrize("beta_pos,beta_neg", [(0.0, 0.0), (0.5, 0.5), (0.9, 0.4), (5.0, 5.0)])
def test_asym_is_finite_on_every_pattern(beta_pos, beta_neg):
    for dtype in (torch.float32, torch.float64):
        a = compute_advantages("asym", ALL_PATTERNS.to(dtype), beta_pos=beta_pos,
                               beta_neg=beta_neg)
        assert a.dtype == dtype
        assert torch.isfinite(a).all()


def test_asym_tuned_pair_on_a_hand_example():
    r = torch.tensor([[1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)  # p = 1/4
    a = compute_advantages("asym", r, beta_pos=0.9, beta_neg=0.4)
    assert a[0, 0].item() == pytest.approx(3.0**0.9, rel=1e-12)  # ((3/4)/(1/4))^0.9
    assert a[0, 2].item() == pytest.approx(-((1 / 3) ** 0.4), rel=1e-12)  # -((1/4)/(3/4))^0.4


@pytest.mark.parametrize("beta_pos,beta_neg", [(0.1, 0.9), (0.3, 0.4), (0.5, 0.5), (0.9, 0.2)])
def test_proposition_2_pressure_peaks(beta_pos, beta_neg):
    """M+(p) = p A+(p) peaks at p = 1 - beta_pos; M-(p) = (1-p)|A-(p)| peaks at p = beta_neg.

    Groups of n = 1000 rollouts with k = 1..999 correct put p on a 0.001 grid; the advantages
    come from the estimator, the argmax from the grid.
    """
    n = 1000
    k = torch.arange(1, n)
    r = (torch.arange(n)[None, :] < k[:, None]).double()
    a = compute_advantages("asym", r, beta_pos=beta_pos, beta_neg=beta_neg)
    p = k.double() / n
    m_pos = p * a[:, 0]  # column 0 is correct in every row
    m_neg = (1 - p) * a[:, -1].abs()  # the last column is wrong in every row
    assert p[m_pos.argmax()].item() == pytest.approx(1 - beta_pos, abs=1.01e-3)
    assert p[m_neg.argmax()].item() == pytest.approx(beta_neg, abs=1.01e-3)


def test_ent_decrease_at_g8_with_extrapolated_endpoint():
    a = compute_advantages("ent_decrease", _sorted_groups().double())
    for k in range(1, G):
        p = k / G
        assert a[k, 0].item() == pytest.approx(math.sqrt(p / (1 - p)), rel=1e-12)
        assert a[k, -1].item() == pytest.approx(-math.sqrt(p / (1 - p)), rel=1e-12)
    # f(1) = 2 f(7/8) - f(6/8) = 2 sqrt(7) - sqrt(3)
    assert torch.all(a[G] == a[G, 0])
    assert a[G, 0].item() == pytest.approx(2 * math.sqrt(7) - math.sqrt(3), rel=1e-12)
    assert torch.all(a[0] == 0), "all-wrong groups: unchanged GRPO negative channel, 0"


def test_ent_increase_at_g8_with_extrapolated_endpoint():
    a = compute_advantages("ent_increase", _sorted_groups().double())
    for k in range(1, G):
        p = k / G
        assert a[k, 0].item() == pytest.approx(math.sqrt((1 - p) / p), rel=1e-12)
        assert a[k, -1].item() == pytest.approx(-math.sqrt((1 - p) / p), rel=1e-12)
    # f(0) = 2 f(1/8) - f(2/8) = -2 sqrt(7) + sqrt(3)
    assert torch.all(a[0] == a[0, 0])
    assert a[0, 0].item() == pytest.approx(-2 * math.sqrt(7) + math.sqrt(3), rel=1e-12)
    assert torch.all(a[G] == 0), "all-correct groups: unchanged GRPO positive channel, 0"


def test_ent_decrease_endpoint_at_g3():
    a = compute_advantages("ent_decrease", torch.ones(1, 3, dtype=torch.float64))
    # f(2/3) = sqrt(2), f(1/3) = sqrt(1/2): 2 sqrt(2) - sqrt(1/2)
    assert a[0, 0].item() == pytest.approx(2 * math.sqrt(2) - math.sqrt(0.5), rel=1e-12)


@pytest.mark.parametrize("name", ["ent_decrease", "ent_increase"])
def test_flips_need_three_rollouts(name):
    with pytest.raises(ValueError, match="G >= 3, got G = 2"):
        compute_advantages(name, torch.tensor([[1.0, 0.0]]))


def test_output_dtype_follows_rewards():
    assert compute_advantages("grpo", torch.tensor([[1.0, 0.0]])).dtype == torch.float32
    assert compute_advantages("grpo", torch.tensor([[1.0, 0.0]], dtype=torch.float64)).dtype \
        == torch.float64
    ints = compute_advantages("reinforce", torch.tensor([[1, 0]]))
    assert ints.dtype == torch.get_default_dtype() and ints.tolist() == [[1.0, -1.0]]


@pytest.mark.parametrize("name,params,message", [
    ("asym", {"beta_pos": -0.1}, r"beta_pos must be >= 0, got -0\.1"),
    ("asym", {"beta_neg": -1.0}, r"beta_neg must be >= 0, got -1\.0"),
    ("asym", {"beta_pos": float("nan")}, "beta_pos must be a finite number, got nan"),
    ("asym", {"beta_neg": "0.5"}, "beta_neg must be a finite number, got '0.5'"),
    ("grpo", {"eps": -1.0}, r"eps must be >= 0, got -1\.0"),
    ("grpo", {"std_ddof": 2}, r"std_ddof must be one of \[0, 1\], got 2"),
    ("grpo", {"beta_pos": 0.5}, r"unknown: \['beta_pos'\]"),
    ("nope", {}, r"unknown advantage estimator 'nope'; known: \['asym', 'asym_adaptive'"),
])
def test_invalid_parameters_name_the_problem(name, params, message):
    with pytest.raises(ValueError, match=message):
        validate_advantage_params(name, params)
    with pytest.raises(ValueError, match=message):
        compute_advantages(name, torch.tensor([[1.0, 0.0, 1.0]]), **params)


def test_rewards_must_be_a_binary_matrix():
    for name in ("asym", "reinforce", "ent_decrease", "asym_adaptive"):
        with pytest.raises(ValueError, match="0 or 1"):
            compute_advantages(name, torch.tensor([[0.5, 1.0, 0.0]]))
    with pytest.raises(ValueError, match="finite"):
        compute_advantages("grpo", torch.tensor([[math.inf, 1.0]]))
    with pytest.raises(ValueError, match=r"\[N, G\]"):
        compute_advantages("grpo", torch.tensor([1.0, 0.0]))


def test_rloo_is_the_leave_one_out_baseline_on_every_pattern():
    got = compute_advantages("rloo", ALL_PATTERNS.double())
    for row, adv in zip(ALL_PATTERNS.tolist(), got.tolist(), strict=True):
        for i, r_i in enumerate(row):
            others = [r for j, r in enumerate(row) if j != i]
            assert adv[i] == pytest.approx(r_i - sum(others) / (G - 1), abs=1e-12)


def test_shaped_estimators_take_continuous_rewards_and_binary_ones_the_correctness():
    shaped = torch.tensor([[1.0, 0.75, -0.5, 0.0]], dtype=torch.float64)
    correct = torch.tensor([[1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)
    # rloo on (1, 0.75, -0.5, 0): mean 0.3125, A = 4/3 (r - mean)
    expected = torch.tensor([[0.9166666666666666, 0.5833333333333334, -1.0833333333333333,
                              -0.4166666666666667]], dtype=torch.float64)
    torch.testing.assert_close(
        compute_advantages("rloo", estimator_rewards("rloo", correct, shaped)), expected)
    assert estimator_rewards("asym", correct, shaped) is correct
    assert estimator_rewards("grpo", correct, shaped) is shaped


def test_asym_adaptive_betas_follow_the_entropy_rule_and_clip():
    schedules = ScheduleSet([(ADVANTAGE_ESTIMATORS, "asym_adaptive", {"beta_step": 0.05})])
    seen = []
    for entropy in [0.1, 0.1, 0.3, 0.2, 0.05, 0.05, 0.05]:
        seen.append((schedules.now(0.0)["beta_pos"], schedules.now(0.0)["beta_neg"]))
        schedules.advance(entropy)
    seen.append((schedules.now(0.0)["beta_pos"], schedules.now(0.0)["beta_neg"]))
    # H < 0.2: pos +0.05, neg -0.05 (clipped to [0, 1]); H >= 0.2: the reverse
    expected = [(0.9, 0.4), (0.95, 0.35), (1.0, 0.3), (0.95, 0.35), (0.9, 0.4), (0.95, 0.35),
                (1.0, 0.3), (1.0, 0.25)]
    assert seen == [pytest.approx(e) for e in expected]
    assert schedules.metrics(schedules.now(0.0)) == pytest.approx(
        {"algorithm/beta_pos": 1.0, "algorithm/beta_neg": 0.25})


def test_asym_adaptive_advantages_are_asym_at_the_current_betas():
    got = compute_advantages("asym_adaptive", MIXED.double(), beta_pos=0.7, beta_neg=0.2)
    p = MIXED.double().mean(1, keepdim=True)
    expected = torch.where(MIXED == 1, ((1 - p) / p) ** 0.7, -(p / (1 - p)) ** 0.2)
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match=r"beta_pos must be in \[0, 0\.5\]"):
        validate_advantage_params("asym_adaptive", {"beta_max": 0.5})


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "rloo"])
def test_a_group_of_equal_float_rewards_gets_exactly_zero_advantages(name):
    """Equal shaped rewards: the float mean of three 0.1 is 0.10000000000000002, so a float std
    test would see a rounding residue (and eps = 0 would turn it into +-1)."""
    r = torch.tensor([[0.1, 0.1, 0.1], [-0.3, -0.3, -0.3], [1.0, 0.0, 0.5]], dtype=torch.float64)
    assert float(r[0].mean()) != 0.1
    got = compute_advantages(name, r, **({"eps": 0.0} if name == "grpo" else {}))
    assert torch.equal(got[:2], torch.zeros(2, 3, dtype=torch.float64))
    mixed = {"grpo": [0.5 * math.sqrt(6), -0.5 * math.sqrt(6), 0.0],
             "dr_grpo": [0.5, -0.5, 0.0], "rloo": [0.75, -0.75, 0.0]}[name]
    torch.testing.assert_close(got[2], torch.tensor(mixed, dtype=torch.float64), rtol=1e-12,
                               atol=1e-12)
