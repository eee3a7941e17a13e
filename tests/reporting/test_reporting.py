"""Tables and heatmaps from synthetic run directories, checked against hand-computed values."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlvr.checks import register_schema, validate
from rlvr.reporting.claims import CLAIMS, check, verdict
from rlvr.reporting.collect import RunRecords, finished_runs, is_finished, mean_std
from rlvr.reporting.render import (
    load_reference,
    plot_curves,
    read_seed_lines,
    render_table,
    seed_band,
)
from rlvr.reporting.setting import describe_setting
from rlvr.reporting.stats import paired_interval, seeds_needed, t_quantile, welch_difference
from rlvr.reporting.tables import TABLES

REPO = Path(__file__).resolve().parents[2]


def _write_run(path: Path, evals: list[tuple[int, float, float]], entropy: list[float],
               config: dict | None = None, finished: bool = True) -> Path:
    """evals: (step, math500, aime24); eval/average is their mean."""
    path.mkdir(parents=True)
    lines = []
    for step, m, a in evals:
        lines.append({"step": step, "eval/math500/avg@5": m, "eval/aime24/avg@10": a,
                      "eval/average": (m + a) / 2})
        if step < len(entropy):
            lines.append({"step": step + 1, "adv/reward_mean": 0.5, "train/entropy":
                          entropy[step], "adv/none_solved": 0.1, "adv/all_solved": 0.2})
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    if finished:
        (path / "summary.json").write_text("{}")
    if config is not None:
        (path / "config.yaml").write_text(json.dumps(config))
    return path


def test_checkpoint_selection_final_and_best(tmp_path):
    run = RunRecords.load(_write_run(tmp_path / "r", [(0, 0.2, 0.1), (10, 0.6, 0.0),
                                                      (20, 0.4, 0.4)], [0.5]))
    assert run.selected_eval("final")["step"] == 20
    assert run.selected_eval("best:eval/math500/avg@5")["step"] == 10
    variance, std = run.eval_spread()
    values = [0.15, 0.3, 0.4]
    mean = sum(values) / 3
    assert variance == pytest.approx(sum((v - mean) ** 2 for v in values) / 3)
    assert std == pytest.approx(variance ** 0.5)
    with pytest.raises(ValueError, match="unknown checkpoint selection"):
        run.selected_eval("median")


def test_unfinished_runs_are_not_reported(tmp_path):
    assert not is_finished(_write_run(tmp_path / "r", [(0, 0.1, 0.1)], [], finished=False))


def test_table_reports_seed_mean_and_std_next_to_the_paper(tmp_path):
    table = TABLES["table2"]
    runs = {
        "grpo": [RunRecords.load(_write_run(tmp_path / "g0", [(0, 0.5, 0.1), (10, 0.7, 0.3)],
                                            [0.4])),
                 RunRecords.load(_write_run(tmp_path / "g1", [(0, 0.5, 0.1), (10, 0.9, 0.1)],
                                            [0.2]))],
    }
    reference = load_reference(REPO / table.reference)
    markdown = render_table(table, "tiny", runs, reference, tmp_path / "out", "cmd",
                            "tiny Qwen2 (embedded); train arith (train)")
    assert markdown.startswith("# AsymGRPO Table 2, profile `tiny`\n")
    assert "Setting: tiny Qwen2 (embedded); train arith (train)." in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| GRPO |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # final checkpoints: math500 0.7 and 0.9 -> 80.0 ± 14.1; average 0.5 and 0.5 -> 50.0 ± 0.0
    assert cells[1] == "80.0 ± 14.1"
    assert cells[3] == "50.0 ± 0.0"
    assert cells[-1] == "56.50", "the paper's GRPO average"
    lines = read_seed_lines(tmp_path / "out" / "table.csv")
    assert [(x["row"], x["seed"]) for x in lines] == [("grpo", "0"), ("grpo", "1"),
                                                       ("grpo", "mean"), ("grpo", "std")]
    assert [float(x["math500"]) for x in lines] == [0.7, 0.9, 0.8, pytest.approx(0.1414213562)]
    assert float(lines[1]["average"]) == 0.5 and float(lines[1]["entropy"]) == 0.2
    assert (tmp_path / "out" / "table.csv").read_text().startswith("# Commit: `")
    assert "Commit: `" in markdown.splitlines()[-1]
    assert {p.name for p in plot_curves(table, "tiny", runs, tmp_path / "out", "setting",
                                        "cmd")} == {
        "eval_average.png", "train_entropy.png", "adv_none_solved.png", "adv_all_solved.png"}


def test_seed_band_is_mean_min_max_over_the_common_prefix():
    mean, low, high = seed_band([[0.1, 0.5, 0.9], [0.3, 0.1]])
    assert mean == pytest.approx([0.2, 0.3])
    assert (low, high) == ([0.1, 0.1], [0.3, 0.5])


def test_setting_names_profile_model_task_and_evaluation():
    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        tiny = [validate(compose("config", overrides=["output_dir=/tmp/x", *o])) for o in (
            ["total_steps=0"], ["total_steps=12", "eval.benchmarks.0.limit=50"])]
        paper = validate(compose("config", overrides=["output_dir=/tmp/x",
                                                       "experiment=table2_qwen3_4b"]))
    assert describe_setting(tiny) == (
        "tiny Qwen2 (embedded); train arith (train); eval avg@4 on arith_l1, arith_l2, "
        "arith_l3 / avg@4 on arith_l1 (first 50 problems) + avg@4 on arith_l2, arith_l3; "
        "12 steps x 16 prompts x 8 rollouts")
    assert describe_setting([paper]).startswith(
        "Qwen3-4B; train math (train); eval avg@5 on math500, olympiadbench + avg@10 on aime24, "
        "aime25, amc23;")


def test_mean_std_ignores_nan():
    assert mean_std([1.0, float("nan"), 3.0]) == (2.0, pytest.approx(2 ** 0.5))


def test_beta_heatmap_averages_seeds_per_cell(tmp_path):
    for i, (bp, bn, value) in enumerate([(0.9, 0.4, 0.6), (0.9, 0.4, 0.4), (0.5, 0.5, 0.3)]):
        _write_run(tmp_path / "sweep" / f"run{i}", [(0, value, value)], [],
                   config={"algorithm": {"beta_pos": bp, "beta_neg": bn}})
    subprocess.run([sys.executable, str(REPO / "scripts" / "beta_heatmap.py"),
                    str(tmp_path / "sweep")], check=True, capture_output=True)
    rows = (tmp_path / "sweep" / "beta_heatmap.csv").read_text().splitlines()
    assert rows[1:] == ["0.5,0.5,1,0.3", "0.9,0.4,2,0.5"]


@pytest.mark.parametrize("p,df,expected", [
    (0.975, 2, 4.302653), (0.975, 4, 2.776445), (0.975, 10, 2.228139), (0.8, 4, 0.940965),
    (0.8, 8, 0.888889), (0.025, 4, -2.776445), (0.975, 1, 12.706205),
])
def test_t_quantiles_match_the_printed_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=2e-6)


def test_welch_interval_and_mde_against_the_hand_computed_values():
    # equal n and variances: se = sqrt(1/3 + 1/3), df = 4 (Welch-Satterthwaite)
    diff = welch_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], +1)
    se = math.sqrt(2 / 3)
    assert diff.estimate == pytest.approx(1.0)
    assert (diff.low, diff.high) == pytest.approx((1 - 2.776445 * se, 1 + 2.776445 * se),
                                                  abs=1e-5)
    assert diff.mde == pytest.approx((2.776445 + 0.940965) * se, abs=1e-5)
    assert welch_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0], -1).estimate == -1.0
    assert welch_difference([0.9], [0.5, 0.5]) is None
    assert welch_difference([0.9, math.nan], [0.5, 0.6]) is None


def test_welch_interval_with_unequal_sizes_and_variances():
    # df = 2.78975 (Welch-Satterthwaite, not n_r + n_b - 2 = 6); reference quantiles from the
    # Student t CDF as a regularised incomplete beta function (mpmath, 30 digits):
    # t_0.975 = 3.322531, t_0.8 = 0.990235 at that df
    diff = welch_difference([0.5, 0.61, 0.55], [0.4, 0.41, 0.42, 0.47, 0.39])
    assert diff.estimate == pytest.approx(0.135333, abs=1e-6)
    assert (diff.low, diff.high) == pytest.approx((0.0199926, 0.2506740), abs=1e-6)
    assert diff.mde == pytest.approx(0.1497164, abs=1e-6)
    assert (diff.n_row, diff.n_baseline) == (3, 5)


def test_seeds_needed_for_a_two_point_difference():
    # std 1 point, effect 2 points: n = 5 gives (2.306 + 0.889) sqrt(2/5) = 2.02 > 2,
    # n = 6 gives (2.228 + 0.879) sqrt(2/6) = 1.79 <= 2
    assert seeds_needed(0.01, 0.02) == 6
    assert seeds_needed(10.0, 0.02, limit=50) is None


@pytest.mark.parametrize("row,baseline,direction,expected", [
    ([0.50, 0.52, 0.51], [0.40, 0.41, 0.42], +1, "shown"),
    ([0.50, 0.60], [0.48, 0.50], +1, "unresolved"),  # d = 0.06, interval includes 0
    ([0.40, 0.41, 0.42], [0.50, 0.52, 0.51], +1, "contradicted"),
    ([0.40, 0.41, 0.42], [0.50, 0.52, 0.51], -1, "shown"),
    ([0.500, 0.501, 0.502], [0.5005, 0.5015, 0.5015], +1, "equivalent"),
])
def test_claim_verdicts(row, baseline, direction, expected):
    # paired over seeds 0, 1, 2 (the last case: D = -0.0005, -0.0005, +0.0005, whose 90 %
    # interval -0.000167 -+ 2.919986 x 0.000333 lies inside +-0.01)
    diff = paired_interval(dict(enumerate(row)), dict(enumerate(baseline)), direction)
    assert verdict(diff, 0.01).label == expected
    assert verdict(None, 0.01).label == "one seed"


@pytest.mark.parametrize("first_reinforce,expected,steps", [(0.9, "unresolved", 3),
                                                            (0.85, "shown", 4)])
def test_every_step_claim_needs_every_step_in_order(tmp_path, first_reinforce, expected, steps):
    table = TABLES["table2"]
    rows = {row.id: row for row in table.rows}
    curves = {"pos_only": [[0.9, 0.8, 0.7, 0.6], [0.9, 0.81, 0.72, 0.62],
                           [0.91, 0.8, 0.71, 0.61]],
              "reinforce": [[first_reinforce, 0.5, 0.4, 0.3], [first_reinforce, 0.52, 0.41, 0.3],
                            [first_reinforce + 0.01, 0.5, 0.41, 0.31]]}
    for row, entropies in curves.items():
        for seed, entropy in enumerate(entropies):
            _write_run(table.run_dir(tmp_path, "tiny", rows[row], seed),
                       [(i, 0.2, 0.2) for i in range(4)], entropy)
    runs = finished_runs(table, "tiny", tmp_path, seeds=[0, 1, 2])
    claim = next(c for c in CLAIMS if c.row == "pos_only")
    result = check(claim, runs)
    assert result.row["late"] == {0: 0.6, 1: 0.62, 2: 0.61}  # last quarter of 4 steps
    assert result.row["whole"][1] == pytest.approx(0.7625)
    assert sum(result.steps.claimed) == steps  # step 1 ties (D = 0) when reinforce starts at 0.9
    assert result.differences["whole"].bounds(0.95)[0] > 0
    assert result.verdict.label == expected


def test_seed_study_pools_the_std_over_the_study_seeds(tmp_path):
    accuracies = {"grpo": [0.40, 0.44, 0.42, 0.46, 0.38], "asym_grpo": [0.50, 0.47, 0.53]}
    untrained = {"base": [0.2, 0.3, 0.25]}  # not a training row: left out of the pooled std
    for row, values in {**accuracies, **untrained}.items():
        for seed, value in enumerate(values):
            _write_run(tmp_path / "runs" / "table2_tiny" / row / f"seed{seed}",
                       [(0, 0.2, 0.2), (50, value, value)], [0.5])
    out = tmp_path / "claims.md"
    subprocess.run([sys.executable, str(REPO / "scripts" / "claims.py"), "--runs",
                    str(tmp_path / "runs"), "--out", str(out), "--study-seeds", "0", "1", "2",
                    "3", "4"], check=True, capture_output=True, cwd=REPO)
    study = next(line for line in out.read_text().splitlines() if line.startswith("| table2 |"))
    # pooled variance: sum of squared deviations over (4 + 2) degrees of freedom
    ss = sum(sum((v - sum(vs) / len(vs)) ** 2 for v in vs) for vs in accuracies.values())
    assert study.split(" | ")[1] == "grpo 5, asym_grpo 3"
    assert float(study.split(" | ")[2]) == pytest.approx(100 * math.sqrt(ss / 6), abs=0.005)
    claim = next(line for line in out.read_text().splitlines()
                 if line.startswith("| AsymGRPO beats GRPO | asym_grpo"))
    # paired over the seeds both rows ran (0, 1, 2): D = 0.10, 0.03, 0.11
    d = 100 * sum(a - g for a, g in zip(accuracies["asym_grpo"], accuracies["grpo"][:3],
                                        strict=False)) / 3
    assert "(n=3)" in claim and "(n=5)" in claim and f"| {d:+.2f} [" in claim


def test_a_run_trained_without_evaluation_shows_its_entropy_and_no_accuracy(tmp_path):
    """The claims' entropy-only rows train without evaluation (rlvr/reporting/claim_runs.py):
    their table line has '-' for every accuracy and their last entropy, next to a row that was
    evaluated; table.csv keeps NaN, which --check compares as equal."""
    table = TABLES["table2"]
    evaluated = _write_run(tmp_path / "g0", [(0, 0.5, 0.1), (10, 0.7, 0.3)], [0.4])
    silent = tmp_path / "p0"
    silent.mkdir()
    (silent / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": s, "adv/reward_mean": 0.5, "train/entropy": e}) + "\n"
        for s, e in ((1, 0.6), (2, 0.35))))
    (silent / "summary.json").write_text("{}")
    runs = {"grpo": [RunRecords.load(evaluated)], "pos_only": [RunRecords.load(silent)]}
    markdown = render_table(table, "tiny", runs, {}, tmp_path / "out", "cmd", "setting")
    row = next(line for line in markdown.splitlines() if line.startswith("| Pos-Only |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:5] == ["-"] * 4, "math500, aime24, average, best avg: not evaluated"
    assert cells[5:7] == ["0.350", "-"], "its last entropy; no spread of evaluations"
    line = next(x for x in read_seed_lines(tmp_path / "out" / "table.csv")
                if x["row"] == "pos_only" and x["seed"] == "0")
    assert math.isnan(float(line["average"])) and float(line["entropy"]) == 0.35
    grpo = next(line for line in markdown.splitlines() if line.startswith("| GRPO |"))
    assert grpo.split("|")[1:3] == [" GRPO ", " 70.0 "]


def test_a_row_mixing_evaluated_and_unevaluated_runs_is_refused(tmp_path):
    """Its accuracy mean would be over fewer seeds than the row shows."""
    evaluated = _write_run(tmp_path / "g0", [(0, 0.5, 0.1), (10, 0.7, 0.3)], [0.4])
    silent = tmp_path / "g1"
    silent.mkdir()
    (silent / "metrics.jsonl").write_text(json.dumps(
        {"step": 1, "adv/reward_mean": 0.5, "train/entropy": 0.3}) + "\n")
    (silent / "summary.json").write_text("{}")
    runs = {"grpo": [RunRecords.load(evaluated), RunRecords.load(silent)]}
    with pytest.raises(ValueError, match="g1 has no evaluation records, unlike the row's other"):
        render_table(TABLES["table2"], "tiny", runs, {}, tmp_path / "out", "cmd", "setting")
