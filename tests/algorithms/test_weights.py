"""Token weights and the lambda schedules against hand-computed values (METHODS.md section 2)."""

import math

import pytest
import torch

from rlvr.algorithms.losses import LossNormalizer
from rlvr.algorithms.parts import ScheduleSet
from rlvr.algorithms.weights import (
    TOKEN_WEIGHTS,
    compute_combined_token_weights,
    compute_token_weights,
    validate_weight_params,
)
from tests.algorithms.loss_inputs import policy_loss_of

V = 16  # vocabulary size: log|V| = log 16


def _example():
    """2 x 4: row 0 all response tokens, row 1 two response tokens then padding (entropy 9)."""
    entropy = torch.tensor([[0.5, 1.0, 2.0, 0.7], [1.5, 0.2, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0]])
    return entropy, mask


def test_ah_without_parameters_is_the_log_vocab_horizon_with_alpha_one_half_by_hand():
    """The defaults a call without parameters takes: w_t = exp(-0.5 sum_{k<t} H_k / log V) on
    response tokens."""
    entropy, mask = _example()
    w = compute_token_weights("ah", torch.tensor([1.0, -1.0]), entropy, mask, V)
    for i in range(2):
        total = 0.0
        for t in range(int(mask[i].sum())):
            assert float(w[i, t]) == pytest.approx(math.exp(-0.5 * total), rel=1e-6)
            total += float(entropy[i, t]) / math.log(V)


def test_ah_with_alpha_zero_is_all_ones():
    entropy, mask = _example()
    w = compute_token_weights("ah", torch.tensor([1.0, -1.0]), entropy, mask, V, alpha=0.0)
    assert torch.equal(w, torch.ones(2, 4))


def test_ah_on_a_hand_computed_example():
    entropy, mask = _example()
    w = compute_token_weights("ah", torch.tensor([1.0, -1.0]), entropy, mask, V, alpha=0.5)
    log_v = math.log(16)
    # exclusive prefix sums of H: row 0: 0, 0.5, 1.5, 3.5; row 1: 0, 1.5 (then padding)
    expected = torch.tensor([
        [1.0, math.exp(-0.5 * 0.5 / log_v), math.exp(-0.5 * 1.5 / log_v),
         math.exp(-0.5 * 3.5 / log_v)],
        [1.0, math.exp(-0.5 * 1.5 / log_v), 1.0, 1.0],
    ])
    torch.testing.assert_close(w, expected, rtol=1e-6, atol=0)
    assert w.dtype == torch.float32


def test_ah_sums_only_over_response_tokens():
    """A prompt position before the response and a NaN entropy on padding change nothing."""
    entropy = torch.tensor([[float("nan"), 1.0, 2.0, float("nan")]])
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    w = compute_token_weights("ah", torch.tensor([1.0]), entropy, mask, V, alpha=1.0,
                              normalize="none")
    torch.testing.assert_close(w, torch.tensor([[1.0, 1.0, math.exp(-1.0), 1.0]]))


def test_ah_without_normalisation_uses_raw_entropy():
    entropy, mask = _example()
    w = compute_token_weights("ah", torch.tensor([1.0, 1.0]), entropy, mask, V, alpha=0.5,
                              normalize="none")
    assert w[0, 3].item() == pytest.approx(math.exp(-0.5 * 3.5), rel=1e-6)


def test_weights_are_detached():
    entropy, mask = _example()
    entropy = entropy.clone().requires_grad_()
    for name in ("ah", "sa_ah", "pos_reweight"):
        w = compute_token_weights(name, torch.tensor([1.0, -1.0]), entropy, mask, V)
        assert not w.requires_grad


def test_sa_ah_discounts_only_negative_rows():
    entropy, mask = _example()
    adv = torch.tensor([0.0, -1.0])
    w = compute_token_weights("sa_ah", adv, entropy, mask, V, alpha=0.5)
    assert torch.equal(w[0], torch.ones(4)), "A >= 0 keeps weight exactly 1"
    expected = torch.tensor([1.0, math.exp(-0.5 * 1.5 / math.log(16)), 1.0, 1.0])
    torch.testing.assert_close(w[1], expected, rtol=1e-6, atol=0)


def _loss_grad(weights, logp0, old, adv, mask):
    logp = logp0.clone().requires_grad_()
    out = policy_loss_of(logp, old, adv, mask, weights, norm=LossNormalizer.for_batch(mask, 4),
                              eps_low=0.2, eps_high=0.2, dual_clip=None, agg="token_mean")
    out.loss.backward()
    return logp.grad


def test_sa_ah_leaves_positive_rows_gradient_bit_identical_to_grpo():
    g = torch.Generator().manual_seed(3)
    logp0 = -torch.rand(4, 4, generator=g)
    old = logp0 + 0.3 * torch.randn(4, 4, generator=g)  # some tokens clipped
    adv = torch.tensor([1.3, -0.7, 0.4, -0.2])
    mask = torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    entropy = torch.rand(4, 4, generator=g) * 3
    grpo = _loss_grad(torch.ones(4, 4), logp0, old, adv, mask)
    sa = _loss_grad(compute_token_weights("sa_ah", adv, entropy, mask, V, alpha=0.5), logp0, old,
                    adv, mask)
    assert torch.equal(sa[0], grpo[0]) and torch.equal(sa[2], grpo[2])
    assert not torch.equal(sa[1], grpo[1]) and not torch.equal(sa[3], grpo[3]), \
        "negative rows are discounted"


def test_pos_reweight_lambda_one_is_grpo_and_zero_silences_positive_tokens():
    g = torch.Generator().manual_seed(4)
    logp0 = -torch.rand(3, 4, generator=g)
    old = logp0 + 0.1 * torch.randn(3, 4, generator=g)
    adv = torch.tensor([1.0, -1.0, 0.5])
    mask = torch.ones(3, 4)
    entropy = torch.rand(3, 4, generator=g)
    grpo = _loss_grad(torch.ones(3, 4), logp0, old, adv, mask)
    w1 = compute_token_weights("pos_reweight", adv, entropy, mask, V, lambda_value=1.0)
    w0 = compute_token_weights("pos_reweight", adv, entropy, mask, V, lambda_value=0.0)
    assert torch.equal(_loss_grad(w1, logp0, old, adv, mask), grpo)
    zero = _loss_grad(w0, logp0, old, adv, mask)
    assert torch.equal(zero[0], torch.zeros(4)) and torch.equal(zero[2], torch.zeros(4))
    assert torch.equal(zero[1], grpo[1])
    assert not torch.equal(grpo[0], torch.zeros(4))


def test_pos_reweight_weights_only_strictly_positive_rows():
    adv = torch.tensor([0.5, 0.0, -0.5])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    w = compute_token_weights("pos_reweight", adv, torch.zeros(3, 2), mask, V, lambda_value=0.3)
    torch.testing.assert_close(w, torch.tensor([[0.3, 0.3], [1.0, 1.0], [1.0, 1.0]]))


def test_weights_compose_by_product_and_get_only_their_own_parameters():
    entropy, mask = _example()
    adv = torch.tensor([1.0, -1.0])
    params = {"alpha": 0.5, "normalize": "none", "lambda_value": 0.3, "schedule": "constant"}
    combined = compute_combined_token_weights(["sa_ah", "pos_reweight"], adv, entropy, mask, V,
                                              params)
    # row 0 (A > 0): lambda on response tokens; row 1 (A < 0): exp(-0.5 * (0, 1.5)), padding 1
    expected = torch.tensor([[0.3, 0.3, 0.3, 0.3], [1.0, math.exp(-0.75), 1.0, 1.0]])
    torch.testing.assert_close(combined, expected)
    assert torch.equal(compute_combined_token_weights([], adv, entropy, mask, V, {}),
                       torch.ones(2, 4))


def _lambda(params) -> ScheduleSet:
    """pos_reweight's schedule alone, composed with SA-AH's alpha (which it must ignore)."""
    return ScheduleSet([(TOKEN_WEIGHTS, "sa_ah", params), (TOKEN_WEIGHTS, "pos_reweight", params)])


@pytest.mark.parametrize("progress,expected", [(0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (0.75, 0.5),
                                               (1.0, 1.0)])
def test_stage_schedule(progress, expected):
    value = _lambda({"schedule": "stage", "alpha": 0.5}).now(progress)["lambda_value"]
    assert value == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("progress", [0.0, 0.3, 0.75, 1.0])
def test_linear_schedule_is_progress(progress):
    assert _lambda({"schedule": "linear"}).now(progress) == {"lambda_value": progress}


def test_constant_schedule_and_progress_range():
    schedules = _lambda({"schedule": "constant", "lambda_value": 0.4})
    assert schedules.now(0.9) == {"lambda_value": 0.4}
    assert schedules.metrics(schedules.now(0.9)) == {"weights/lambda": 0.4}
    with pytest.raises(ValueError, match="progress must be in"):
        schedules.now(1.5)


def test_entropy_guided_schedule_from_an_entropy_series():
    schedules = _lambda({"schedule": "entropy_guided"})  # delta 0.2, Delta 0.05, lambda_0 0
    seen = []
    for entropy in [0.5, 0.3, 0.1, 0.1, 0.1, 0.25, 0.19, 0.2]:
        seen.append(schedules.now(0.0)["lambda_value"])
        schedules.advance(entropy)
    seen.append(schedules.now(0.0)["lambda_value"])
    # +, +, -, -, - (clipped at 0), +, -, + (0.2 is not < 0.2)
    assert seen == pytest.approx([0.0, 0.05, 0.10, 0.05, 0.0, 0.0, 0.05, 0.0, 0.05])


def test_entropy_guided_schedule_clips_at_one_with_custom_parameters():
    schedules = _lambda({"schedule": "entropy_guided", "lambda_init": 0.9, "lambda_step": 0.25,
                         "entropy_threshold": 1.0})
    assert schedules.states == {"pos_reweight": {"lambda_value": 0.9}}
    schedules.advance(2.0)
    assert schedules.states["pos_reweight"]["lambda_value"] == 1.0
    schedules.advance(0.5)
    assert schedules.states["pos_reweight"]["lambda_value"] == 0.75


def test_schedule_state_round_trips_and_other_schedules_keep_it():
    schedules = _lambda({"schedule": "entropy_guided"})
    schedules.advance(1.0)
    restored = _lambda({"schedule": "entropy_guided"})
    restored.load_state_dict(schedules.state_dict())
    assert restored.now(0.0) == {"lambda_value": 0.05}
    stage = _lambda({"schedule": "stage"})
    stage.advance(0.0)
    assert stage.states == {"pos_reweight": {"lambda_value": 0.0}}
    with pytest.raises(ValueError, match="do not match"):
        stage.load_state_dict({"asym_adaptive": {"beta_pos": 0.9}})


@pytest.mark.parametrize("name,params,message", [
    ("ah", {"alpha": -0.1}, r"alpha must be >= 0, got -0\.1"),
    ("sa_ah", {"normalize": "max"}, r"normalize must be one of \['log_vocab', 'none'\], got 'max'"),
    ("pos_reweight", {"lambda_value": 1.5}, r"lambda_value must be in \[0, 1\], got 1\.5"),
    ("pos_reweight", {"lambda_init": -0.5}, r"lambda_init must be in \[0, 1\], got -0\.5"),
    ("pos_reweight", {"lambda_step": -0.05}, r"lambda_step must be >= 0, got -0\.05"),
    ("pos_reweight", {"schedule": "cosine"}, "schedule must be one of .*got 'cosine'"),
    ("ah", {"lambda_value": 0.5}, r"unknown: \['lambda_value'\]"),
    ("nope", {}, r"unknown token weight 'nope'; known: \['ah', 'pos_reweight', 'sa_ah'\]"),
])
def test_invalid_parameters_name_the_problem(name, params, message):
    with pytest.raises(ValueError, match=message):
        validate_weight_params(name, params)
    entropy, mask = _example()
    with pytest.raises(ValueError, match=message):
        compute_token_weights(name, torch.tensor([1.0, -1.0]), entropy, mask, V, **params)
