"""The noise study's summaries and its report, on hand-made evaluations."""

import importlib.util
import json
import math
import statistics
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("noise_study", REPO / "scripts" / "noise_study.py")
noise_study = importlib.util.module_from_spec(spec)
spec.loader.exec_module(noise_study)


def test_level_summary_reads_the_first_problems_and_the_sampled_tokens():
    correct = [[True, False], [True, True], [False, False]]
    logprobs = [[[-0.5], [-1.0, -1.5]], [[-0.1], [-0.2]], [[-2.0], [-3.0]]]
    head = noise_study.level_summary(correct, logprobs, 2)
    assert head == {"avg": 0.75, "nll_sum": pytest.approx(3.3), "tokens": 5}
    full = noise_study.level_summary(correct, logprobs, None)
    assert full["avg"] == pytest.approx(0.5) and full["tokens"] == 7
    levels = {"l1": {"new": full}, "l2": {"new": {"avg": 0.0, "nll_sum": 1.0, "tokens": 3}}}
    assert noise_study.accuracy(levels, "new") == pytest.approx(0.25)
    assert noise_study.entropy(levels, "new") == pytest.approx((8.3 + 1.0) / 10)


def test_replicate_zero_is_the_runs_own_evaluation_seed():
    assert noise_study.replicate_seed(3, 50, 0) == 3 + 7919 * 50
    assert noise_study.replicate_seed(3, 50, 2) - noise_study.replicate_seed(3, 50, 0) == 20014


def _levels(avg: float) -> dict:
    part = {"avg": avg, "nll_sum": 1.0, "tokens": 10}
    return {"arith_l1": {"today": part, "new": part}}


def test_report_splits_training_and_evaluation_variance(tmp_path):
    # two training seeds, two evaluation seeds, window of one checkpoint: groups
    # [0.4, 0.5] and [0.6, 0.7]: MSW = 0.005, MSB = 2 x 0.02 = 0.04, training = 0.0175
    seeds, results = [0, 1], {}
    for seed, values in zip(seeds, ([0.4, 0.5], [0.6, 0.7]), strict=True):
        results[seed, 50] = {"replicates": [_levels(v) for v in values],
                             "greedy": {"arith_l1": {"today": 0.5, "new": 0.5 + 0.1 * seed}}}
        run = tmp_path / "table2_tiny" / "grpo" / f"seed{seed}"
        run.mkdir(parents=True)
        lines = [{"step": 50, "adv/reward_mean": 0.5, "train/entropy": 0.1 + seed},
                 {"step": 50, "eval/average": values[0]}]
        (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    text = noise_study.report(tmp_path, seeds, [50], results, 2, [12.0], "python x.py")
    today = next(line for line in text.splitlines() if line.startswith("| accuracy, today"))
    cells = today.split(" | ")
    assert cells[1] == "2 x 2"
    assert cells[2] == f"{100 * math.sqrt(0.0225):.2f} points"
    assert cells[3] == f"{100 * math.sqrt(0.0175):.2f}"
    assert cells[5] == f"{100 * 0.0175 / 0.0225:.0f} %"
    assert "to 1e-12 for 2 of 2 seeds" in text
    greedy = next(line for line in text.splitlines() if "greedy pass@1, 200" in line)
    assert greedy.endswith(f"| {100 * statistics.stdev([0.5, 0.6]):.2f} |")
    assert "12 s per checkpoint (mean of 1)" in text
