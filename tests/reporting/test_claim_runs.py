"""Which runs the claims train and read: groups of one configuration, and their overrides."""

import dataclasses
import json
from pathlib import Path

import pytest

from rlvr.reporting.claim_runs import (
    MERGED_LORA,
    NO_EVALUATION,
    claim_runs,
    claimed_rows,
    group_of,
    run_dir,
    run_groups,
    table_row,
)
from rlvr.reporting.claims import CLAIMS
from rlvr.reporting.claims_report import claims_table
from rlvr.reporting.planning import compose_run, row_overrides
from rlvr.reporting.tables import TABLES
from rlvr.tracking import flatten

# Keys that name where a run is filed, not what it is.
FILING = ("experiment_name", "output_dir")


def _settings(key, profile="tiny_lownoise") -> dict:
    table = TABLES[key[0]]
    run, _ = compose_run(row_overrides(table.profile(profile).overrides, table_row(key), 0,
                                       Path("/scratch") / key[0]))
    return {k: v for k, v in flatten(dataclasses.asdict(run)).items() if k not in FILING}


def test_rows_of_one_configuration_share_runs_and_rows_of_another_do_not():
    groups = run_groups("tiny_lownoise")
    shared = [g.members for g in groups if len(g.members) > 1]
    assert shared == [(("flip_test", "grpo"), ("pos_reweight", "grpo"))]
    # independently of the identity: every setting but the filing ones is equal
    assert _settings(("flip_test", "grpo")) == _settings(("pos_reweight", "grpo"))
    # table2's GRPO is not theirs: the paper's 128 prompts in two mini-batches
    differing = {k for k, v in _settings(("table2", "grpo")).items()
                 if _settings(("flip_test", "grpo"))[k] != v}
    assert differing == {"learner.mini_batches"}
    assert sum(len(g.members) for g in groups) == len(claimed_rows()) == 12


def test_only_rows_no_claim_evaluates_skip_evaluation_and_lora_rows_sync_merged():
    groups = run_groups("tiny_lownoise")
    silent = {g.trained for g in groups if set(NO_EVALUATION) <= set(g.overrides)}
    # the entropy claims' rows (Pos-Only, Neg-Only vs REINFORCE; reweighting vs GRPO), less
    # the GRPO that the flip test's accuracy claims read
    assert silent == {("table2", "pos_only"), ("table2", "reinforce"), ("table2", "neg_only"),
                      ("pos_reweight", "pos_reweight")}
    merged = {g.trained for g in groups if set(MERGED_LORA) <= set(g.overrides)}
    assert merged == {("sa_ah_1.5b", "sa_ah_grpo"), ("sa_ah_1.5b", "grpo")}
    assert group_of(groups, ("pos_reweight", "grpo")).overrides == ()


def _finished(root: Path, key, seed: int, entropy: float, profile: str = "tiny_lownoise") -> None:
    path = run_dir(root, profile, key, seed)
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(
        {"step": s, "adv/reward_mean": 0.5, "train/entropy": entropy + 0.01 * s}) + "\n"
        for s in range(1, 5)))
    (path / "summary.json").write_text("{}")


def test_a_group_reads_each_seed_from_the_first_member_that_finished_it(tmp_path):
    groups = run_groups("tiny_lownoise")
    flip, reweight = ("flip_test", "grpo"), ("pos_reweight", "grpo")
    _finished(tmp_path, flip, 0, 0.3)
    _finished(tmp_path, reweight, 0, 0.9)  # both finished seed 0: flip_test's comes first
    _finished(tmp_path, reweight, 1, 0.2)
    run_dir(tmp_path, "tiny_lownoise", flip, 2).mkdir(parents=True)  # not finished
    runs = claim_runs(groups, "tiny_lownoise", tmp_path, [0, 1, 2])
    for key in (flip, reweight):
        assert [r.curve("train/entropy")[1][0] for r in runs[key]] == pytest.approx([0.31, 0.21])
    assert runs[("table2", "grpo")] == []


def test_the_reweighting_claim_compares_with_the_flip_tests_grpo_seed_by_seed(tmp_path):
    """pos_reweight's runs against flip_test's GRPO (pos_reweight's own GRPO never trained):
    paired late-window entropy d = +0.1 on each of 3 seeds."""
    for seed in range(3):
        _finished(tmp_path, ("flip_test", "grpo"), seed, 0.2 + 0.05 * seed)
        _finished(tmp_path, ("pos_reweight", "pos_reweight"), seed, 0.3 + 0.05 * seed)
    _, results = claims_table("tiny_lownoise", tmp_path, [0, 1, 2])
    claim = next(c for c in CLAIMS if c.table == "pos_reweight")
    result = results[claim]
    assert sorted(result.baseline["late"]) == [0, 1, 2]
    assert result.differences["late"].estimate == pytest.approx(0.1)
    assert result.differences["late"].paired
