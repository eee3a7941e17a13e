"""Paired intervals, Holm's correction and the verdicts, against hand computations and printed
t tables (no SciPy)."""

import json
import math
from pathlib import Path

import pytest

from rlvr.reporting.claims import CLAIMS, MARGINS, Verdict, check, every_step, verdict
from rlvr.reporting.claims_report import verdict_cell
from rlvr.reporting.collect import RunRecords, finished_runs
from rlvr.reporting.stats import (
    Interval,
    chi2_quantile,
    holm_rejections,
    paired_interval,
    seeds_to_resolve,
    std_interval,
    t_quantile,
    welch_interval,
)
from rlvr.reporting.tables import TABLES


@pytest.mark.parametrize("p,df,expected", [  # Student t tables (e.g. NIST handbook 1.3.6.7.2)
    (0.95, 9, 1.833113), (0.975, 29, 2.045230), (0.95, 4, 2.131847), (0.99, 5, 3.364930),
    (0.995, 3, 5.840909), (0.95, 1, 6.313752), (0.975, 3, 3.182446),
])
def test_t_quantiles_match_the_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-6)


@pytest.mark.parametrize("p,df,expected", [  # chi-square tables (NIST handbook 1.3.6.7.4)
    (0.05, 9, 3.325), (0.95, 9, 16.919), (0.05, 4, 0.711), (0.95, 4, 9.488),
    (0.025, 19, 8.907), (0.975, 19, 32.852), (0.05, 29, 17.708), (0.95, 29, 42.557),
])
def test_chi2_quantiles_match_the_tables(p, df, expected):
    assert chi2_quantile(p, df) == pytest.approx(expected, abs=1.5e-3)


@pytest.mark.parametrize("p", [0.05, 0.5, 0.95])
def test_chi2_quantile_with_two_degrees_of_freedom_is_the_exponential_closed_form(p):
    assert chi2_quantile(p, 2) == pytest.approx(-2 * math.log(1 - p), rel=1e-9)


def test_std_interval_brackets_the_sample_std_by_the_chi2_bounds():
    values = [1.0, 2.0, 4.0, 7.0, 11.0, 16.0, 22.0, 29.0, 37.0, 46.0]  # n = 10, df = 9
    mean = sum(values) / 10
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / 9)
    got, low, high = std_interval(values, level=0.90)
    assert got == pytest.approx(s, rel=1e-12)
    assert low == pytest.approx(s * math.sqrt(9 / 16.919), rel=1e-4)
    assert high == pytest.approx(s * math.sqrt(9 / 3.325), rel=1e-4)
    with pytest.raises(ValueError, match="need >= 2 values"):
        std_interval([1.0])


def test_paired_interval_against_the_hand_computation():
    # D = [0.5, 0.5, 1.0, -0.5]: mean 0.375, sd = sqrt(1.1875 / 3) = 0.629153,
    # se = 0.314576, t_{0.975, 3} = 3.182446 -> half width 1.001120
    row = {0: 1.0, 1: 2.0, 2: 3.0, 3: 4.0, 7: 9.0}  # seed 7 has no baseline: left out
    base = {0: 0.5, 1: 1.5, 2: 2.0, 3: 4.5}
    diff = paired_interval(row, base, +1)
    assert (diff.estimate, diff.df, diff.n_row, diff.paired) == (0.375, 3, 4, True)
    assert diff.se == pytest.approx(0.314576, abs=1e-6)
    assert diff.bounds(0.95) == pytest.approx((0.375 - 1.001120, 0.375 + 1.001120), abs=1e-5)
    # 90 %: t_{0.95, 3} = 2.353363
    assert diff.bounds(0.90) == pytest.approx((0.375 - 0.740303, 0.375 + 0.740303), abs=1e-5)
    assert paired_interval(row, base, -1).estimate == -0.375
    assert paired_interval({0: 1.0}, {0: 0.0}) is None


def test_pairing_removes_what_a_seed_does_to_both_rows():
    # the seed moves both rows by the same amount: Welch sees the spread, the pairs see none
    row = {s: 0.40 + 0.05 * s + 0.01 for s in range(4)}
    base = {s: 0.40 + 0.05 * s for s in range(4)}
    paired = paired_interval(row, base)
    welch = welch_interval(list(row.values()), list(base.values()))
    assert paired.se == pytest.approx(0.0, abs=1e-12) and paired.bounds(0.95)[0] > 0
    assert welch.bounds(0.95)[0] < 0


def test_welch_interval_pools_the_spread():
    # s_r^2 = 1, s_b^2 = 1 (n = 3 each): pooled std 1, se = sqrt(2/3), df = 4
    diff = welch_interval([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert (diff.estimate, diff.spread, diff.paired) == (1.0, 1.0, False)
    assert diff.df == pytest.approx(4.0)
    assert diff.se == pytest.approx(math.sqrt(2 / 3))


def test_one_sided_p_values():
    # d / se = 2.131847 is t_{0.95, 4}: p = 0.05 on the claimed side, 0.95 on the other
    diff = Interval(2.131847, 1.0, 4, 5, 5, True, 1.0)
    assert diff.p_claimed() == pytest.approx(0.05, abs=1e-6)
    assert diff.p_other() == pytest.approx(0.95, abs=1e-6)


def test_holm_steps_down_until_the_first_failure():
    # m = 3, alpha 0.05: 0.01 <= 0.05/3 rejected; 0.03 > 0.05/2 stops: 0.04 not rejected either
    assert holm_rejections([0.01, 0.04, 0.03], 0.05) == [True, False, False]
    assert holm_rejections([0.01, 0.02, 0.04], 0.05) == [True, True, True]
    assert holm_rejections([0.2, 0.01], 0.05) == [False, True]


def _interval(estimate: float, se: float, df: float = 9) -> Interval:
    return Interval(estimate, se, df, int(df) + 1, int(df) + 1, True, se * math.sqrt(df + 1))


@pytest.mark.parametrize("estimate,se,expected", [
    (0.03, 0.01, "shown"),              # 95 %: 0.03 -+ 2.262 x 0.01 > 0
    (-0.03, 0.01, "contradicted"),
    (0.001, 0.003, "equivalent"),      # 90 %: 0.001 -+ 1.833 x 0.003 inside +-0.01
    (0.004, 0.005, "unresolved"),       # 95 % includes 0, 90 % reaches 0.0132 > 0.01
])
def test_verdicts(estimate, se, expected):
    assert verdict(_interval(estimate, se), 0.01).label == expected


@pytest.mark.parametrize("quantity,printed", [
    ("accuracy", "equivalent within ±1 point"),  # MARGINS 0.01 of accuracy, printed in points
    ("std of eval average over checkpoints", "equivalent within ±0.5 points"),  # 0.005
    ("entropy (nats)", "equivalent within ±0.005 nats"),
])
def test_an_equivalence_margin_prints_in_the_units_of_the_tables_values(quantity, printed):
    judged = verdict(_interval(0.0, 0.0001), MARGINS[quantity])
    assert judged.label == "equivalent" and judged.margin == MARGINS[quantity]
    assert verdict_cell(judged, quantity) == printed


def test_a_verdict_prints_the_margin_it_was_judged_with():
    assert verdict_cell(Verdict("equivalent", margin=0.02), "accuracy") == \
        "equivalent within ±2 points"
    with pytest.raises(ValueError, match="'equivalent' verdict only"):
        Verdict("equivalent")
    with pytest.raises(ValueError, match="'equivalent' verdict only"):
        Verdict("shown", margin=0.01)


def test_unresolved_names_the_seeds_that_would_resolve_it():
    # d = 0, per-seed spread 0.01, margin 0.01, paired: n seeds resolve when
    # t_{0.95, n-1} / sqrt(n) < 1: n = 4 gives 2.353 / 2 > 1, n = 5 gives 2.132 / 2.236 < 1
    assert seeds_to_resolve(0.0, 0.01, 0.01, paired=True) == 5
    # d = 0.02, spread 0.02, Welch: shown once t_{0.975, 2n-2} sqrt(2/n) < 1: n = 10 gives
    # 2.101 x 0.447 = 0.940 < 1, n = 9 gives 2.120 x 0.471 = 0.999 < 1, n = 8: 2.145 x 0.5 > 1
    assert seeds_to_resolve(0.02, 0.02, 0.001, paired=False) == 9
    assert seeds_to_resolve(0.0, 1.0, 0.01, paired=True, limit=20) is None
    assert str(verdict(_interval(0.004, 0.005), 0.01)).startswith("unresolved (~")


def _write(path: Path, entropy: list[float]) -> None:
    path.mkdir(parents=True)
    lines = [{"step": 0, "eval/average": 0.3}]
    lines += [{"step": k + 1, "adv/reward_mean": 0.5, "train/entropy": e}
              for k, e in enumerate(entropy)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (path / "summary.json").write_text("{}")


def test_every_step_claim_is_judged_per_step_with_holm(tmp_path):
    table = TABLES["table2"]
    rows = {row.id: row for row in table.rows}
    # seed s shifts both rows by 0.1 s; Pos-Only is above by 0.05 (+-0.001) at steps 1-3,
    # and by only 0.0005 (+-0.001) at step 4: not above at every step
    offsets = [0.001, -0.001, 0.0005, -0.0005]
    for seed, off in enumerate(offsets):
        base = [0.9 - 0.1 * k + 0.1 * seed for k in range(4)]
        _write(table.run_dir(tmp_path, "tiny", rows["reinforce"], seed), base)
        above = [b + 0.05 + off for b in base[:3]] + [base[3] + 0.0005 + off]
        _write(table.run_dir(tmp_path, "tiny", rows["pos_only"], seed), above)
    runs = finished_runs(table, "tiny", tmp_path, seeds=[0, 1, 2, 3])
    claim = next(c for c in CLAIMS if c.row == "pos_only")
    result = check(claim, runs)
    # per step, D_s = 0.05 + off_s: mean 0.05, sd = sqrt((1e-6 + 1e-6 + 0.25e-6 + 0.25e-6) / 3)
    sd = math.sqrt(2.5e-6 / 3)
    assert result.steps.steps == [1, 2, 3, 4]
    assert result.steps.intervals[0].estimate == pytest.approx(0.05)
    assert result.steps.intervals[0].se == pytest.approx(sd / 2)
    # step 4: d = 0.0005, t = 0.0005 / (sd / 2) = 1.095 < t_{0.95, 3}: never rejected
    assert result.steps.claimed == [True, True, True, False]
    assert result.verdict.label == "unresolved"
    shifted = [RunRecords(r.path, r.evals, [dict(s) for s in r.steps]) for r in runs["pos_only"]]
    for run in shifted:
        run.steps[3]["train/entropy"] += 0.05
    result = every_step(shifted, runs["reinforce"], "train/entropy", +1, 0.005)
    assert result.claimed == [True] * 4 and result.verdict.label == "shown"


def test_variance_components_against_the_hand_computation():
    from rlvr.reporting.stats import variance_components

    # 3 training seeds x 2 evaluation seeds: within variances 0.5, 0.5, 2 -> MSW = 1;
    # means 1.5, 4.5, 9 (grand mean 5, deviations -3.5, -0.5, 4): var = 28.5 / 2 = 14.25,
    # MSB = 2 x 14.25 = 28.5, training = (28.5 - 1) / 2 = 13.75
    parts = variance_components([[1.0, 2.0], [4.0, 5.0], [8.0, 10.0]])
    assert parts.evaluation == pytest.approx(1.0)
    assert parts.training == pytest.approx(13.75)
    assert parts.share("evaluation") == pytest.approx(1 / 14.75)
    # evaluation noise only: the between-seed spread is no larger than it, training share 0
    assert variance_components([[0.0, 2.0], [2.0, 0.0]]).training == 0.0
    with pytest.raises(ValueError):
        variance_components([[1.0, 2.0], [3.0]])
