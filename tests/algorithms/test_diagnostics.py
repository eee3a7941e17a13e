"""Diagnostics on hand examples (METHODS.md section 4)."""

import math

import pytest
import torch

from rlvr.algorithms.diagnostics import (
    channel_stats,
    kappa,
    length_stats,
    logprob_gain,
    token_weight_stats,
)


def test_kappa_on_a_hand_example():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0],
                            [0.0, 1.0, 0.0, 1.0]])
    s = torch.tensor([[-0.2, -0.6, -0.8, -1.0], [-0.1, -0.3, -0.5, -1.3], [0.0, 0.0, 0.0, 0.0],
                      [-0.4, -0.4, -0.4, -0.4]], dtype=torch.float64)
    # group 1: p = 1/4, Delta = -0.2 - mean(-0.6, -0.8, -1.0) = 0.6
    g1 = 0.25 * 0.75 * 0.6 * math.log(0.25 / 0.75)
    # group 2: p = 3/4, Delta = mean(-0.1, -0.3, -0.5) - (-1.3) = 1.0
    g2 = 0.75 * 0.25 * 1.0 * math.log(0.75 / 0.25)
    # group 3 is all-correct (excluded); group 4: p = 1/2, l = log 1 = 0
    assert kappa(rewards, s) == pytest.approx((g1 + g2 + 0.0) / 3, rel=1e-12)


def test_kappa_sign_follows_which_outcome_is_more_likely():
    """Correct rollouts more likely than wrong ones at p > 1/2 give kappa > 0."""
    rewards = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    assert kappa(rewards, torch.tensor([[-0.1, -0.1, -0.1, -0.9]])) > 0
    assert kappa(rewards, torch.tensor([[-0.9, -0.9, -0.9, -0.1]])) < 0


def test_kappa_without_mixed_groups_is_nan():
    assert math.isnan(kappa(torch.ones(2, 4), torch.zeros(2, 4)))
    assert math.isnan(kappa(torch.zeros(2, 4), torch.zeros(2, 4)))


def test_channel_stats_fractions_and_channels():
    rewards = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([[1.0, -1.0], [0.0, 0.0], [0.0, 0.0], [2.0, -3.0]])
    s = channel_stats(adv, rewards)
    assert (s["none_solved"], s["all_solved"], s["mixed"]) == (0.25, 0.25, 0.5)
    assert s["reward_mean"] == 0.5
    assert (s["adv_mean"], s["adv_min"], s["adv_max"]) == (pytest.approx(-1 / 8), -3.0, 2.0)
    # positive channel: 1, 0, 0, 2; negative channel: -1, 0, 0, -3
    assert s["pos_mean"] == pytest.approx(0.75)
    assert s["pos_std"] == pytest.approx(math.sqrt((0.25**2 + 0.75**2 * 2 + 1.25**2) / 4))
    assert (s["pos_min"], s["pos_max"], s["neg_min"], s["neg_max"]) == (0.0, 2.0, -3.0, 0.0)
    assert s["neg_mean"] == pytest.approx(-1.0)
    values = [1, -1, 0, 0, 0, 0, 2, -3]
    mean = sum(values) / 8
    assert s["adv_std"] == pytest.approx(math.sqrt(sum((v - mean) ** 2 for v in values) / 8))
    assert all(k.replace("_", "").isalnum() and k.islower() for k in s)


def test_channel_stats_without_a_channel_is_nan():
    s = channel_stats(torch.zeros(1, 3), torch.zeros(1, 3))
    assert math.isnan(s["pos_mean"]) and s["neg_mean"] == 0.0 and s["none_solved"] == 1.0


def test_token_weight_stats_by_sign_of_advantage():
    w = torch.tensor([[1.0, 0.5], [0.2, 0.4], [0.7, 0.1]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    s = token_weight_stats(w, mask, torch.tensor([1.0, -1.0, 0.0]))
    assert s["mean"] == pytest.approx((1.0 + 0.5 + 0.2 + 0.7 + 0.1) / 5)
    assert s["pos_mean"] == pytest.approx(0.75)
    assert s["neg_mean"] == pytest.approx(0.2)  # the padded 0.4 is not counted
    assert s["min"] == pytest.approx(0.1)


def test_token_weight_stats_without_negative_rows_is_nan():
    s = token_weight_stats(torch.ones(1, 2), torch.ones(1, 2), torch.tensor([1.0]))
    assert math.isnan(s["neg_mean"]) and s["pos_mean"] == 1.0


def test_logprob_gain_on_correct_rollouts():
    gain = logprob_gain(torch.tensor([-1.0, -2.0, -3.0]), torch.tensor([-0.5, -2.5, -2.0]),
                        torch.tensor([1.0, 0.0, 1.0]))
    assert gain == pytest.approx((0.5 + 1.0) / 2)
    grid = logprob_gain(torch.zeros(2, 2), torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
                        torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
    assert grid == pytest.approx((2.0 + 3.0) / 2)
    assert math.isnan(logprob_gain(torch.zeros(2), torch.ones(2), torch.zeros(2)))


def test_length_stats():
    s = length_stats(torch.tensor([3, 5, 10]), torch.tensor([False, False, True]))
    assert s == {"length_mean": 6.0, "length_max": 10.0, "length_min": 3.0,
                 "truncated_frac": pytest.approx(1 / 3)}
