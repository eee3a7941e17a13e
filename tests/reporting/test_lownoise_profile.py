"""The tiny_lownoise profile: every held-out problem, the number averaged over a window."""

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from rlvr.checks import register_schema, validate
from rlvr.reporting.collect import RunRecords
from rlvr.reporting.tables import TABLES

REPO = Path(__file__).resolve().parents[2]


def test_window_selection_averages_the_last_evaluations(tmp_path):
    evals = [{"step": s, "eval/average": a, "eval/arith_l1/avg@4": b}
             for s, a, b in ((30, 0.1, 0.2), (40, 0.3, 0.5), (45, 0.4, 0.6), (50, 0.8, 0.7))]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in evals))
    chosen = RunRecords.load(tmp_path).selected_eval("window:3")
    assert chosen["step"] == 50
    assert chosen["eval/average"] == pytest.approx(0.5)  # (0.3 + 0.4 + 0.8) / 3
    assert chosen["eval/arith_l1/avg@4"] == pytest.approx(0.6)
    assert RunRecords.load(tmp_path).selected_eval("window:1")["eval/average"] == 0.8


def test_the_profile_evaluates_every_problem_every_five_steps(tmp_path):
    table = TABLES["table2"]
    profile = table.profile("tiny_lownoise")
    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[*profile.overrides, "algorithm=grpo",
                                              f"output_dir={tmp_path}"])
    run = validate(cfg)
    assert run.eval.every_n_steps == 5 and run.total_steps == 50
    assert [b.limit for b in run.eval.benchmarks] == [None, None, None]
    assert [b.k for b in run.eval.benchmarks] == [4, 4, 4]
    assert table.selection("tiny_lownoise") == "window:3"
    assert table.experiment_name("tiny_lownoise") == "table2_tiny_lownoise"
