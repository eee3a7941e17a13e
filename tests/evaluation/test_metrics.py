"""avg@k and unbiased pass@k against closed forms (METHODS.md section 5)."""

from math import comb

import pytest

from rlvr.evaluation.metrics import avg_at_k, pass_at_k, summarize_benchmark


@pytest.mark.parametrize(("n", "c", "k"), [(10, 0, 1), (10, 3, 1), (10, 3, 5), (16, 15, 8),
                                           (5, 5, 5), (64, 7, 32)])
def test_pass_at_k_matches_binomial_closed_form(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k), abs=1e-12)


def test_pass_at_1_is_the_fraction_correct():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)


def test_avg_and_summary_on_hand_example():
    correct = [[True, False, False, False], [True, True, True, True], [False] * 4]
    assert avg_at_k(correct) == pytest.approx(5 / 12)
    summary = summarize_benchmark(correct, ks=[1, 2])
    assert summary["avg@4"] == pytest.approx(5 / 12)
    assert summary["pass@2"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)


def test_invalid_inputs_are_rejected():
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError, match="same number of samples"):
        summarize_benchmark([[True], [True, False]], ks=[1])
