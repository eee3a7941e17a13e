"""``make claims``: which rows get more seeds, and how runs are dealt to the cores."""

import importlib.util
import sys
from pathlib import Path

from rlvr.reporting.tables import TABLES

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("resolve_claims",
                                              REPO / "scripts" / "resolve_claims.py")
resolve = sys.modules["resolve_claims"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(resolve)
CLAIMS = resolve.CLAIMS


class Finished:
    """A launched queue that ended well."""

    def __init__(self):
        self.args = ["bash", "-c", "x"]

    def wait(self):
        return 0


def test_only_the_rows_of_unresolved_claims_get_more_seeds():
    first = resolve.wanted_seeds({}, {i: "not run" for i in range(len(CLAIMS))}, 3, 30)
    assert first[("table2", "pos_only")] == 3 and first[("table2", "reinforce")] == 3
    assert first[("pos_reweight", "grpo")] == 3
    labels = {i: "shown" for i in range(len(CLAIMS))}
    asym = next(i for i, c in enumerate(CLAIMS) if c.row == "asym_grpo")
    labels[asym] = "unresolved (~12 seeds per row needed)"
    second = resolve.wanted_seeds(first, labels, 3, 30)
    changed = {key for key in second if second[key] != first[key]}
    assert changed == {("table2", "asym_grpo"), ("table2", "grpo")}
    assert second[("table2", "grpo")] == 6
    assert resolve.wanted_seeds(second, labels, 3, 7)[("table2", "grpo")] == 7
    labels[asym] = "equivalent within ±0.01"
    assert resolve.wanted_seeds(second, labels, 3, 30) == second


def test_runs_not_finished_are_grouped_and_dealt_to_the_cores(tmp_path):
    groups = resolve.run_groups("tiny")
    table = TABLES["flip_test"]
    done = table.run_dir(tmp_path, "tiny", table.rows[0], 0)
    done.mkdir(parents=True)
    (done / "summary.json").write_text("{}")
    # pos_reweight's GRPO is flip_test's: its seed 0 is done, seeds 1-2 train as flip_test's
    jobs = resolve.jobs_for("tiny", tmp_path, {("flip_test", "grpo"): 2,
                                               ("pos_reweight", "grpo"): 3,
                                               ("flip_test", "ent_increase"): 2}, groups)
    assert sorted((j.table, j.rows, j.seeds, j.overrides) for j in jobs) == [
        ("flip_test", ("ent_increase",), (0, 1), ()), ("flip_test", ("grpo",), (1, 2), ())]
    queues = resolve.split(jobs, 2)
    assert [len(q) for q in queues] == [2, 2]
    launched = []
    resolve.run_queues(queues, "tiny", tmp_path,
                       lambda command, env: launched.append((command, env)) or Finished())
    assert [env["VLLM_CPU_OMP_THREADS_BIND"] for _, env in launched] == ["0", "1"]
    assert all(env["OMP_NUM_THREADS"] == "1" and env["ATEN_CPU_CAPABILITY"] == "avx2"
               and env["RLVR_VLLM_CPU_ISA"] == "avx2" for _, env in launched)
    assert launched[0][0][2].count("reproduce.py") == 2  # core 0 runs its two runs in turn


def test_entropy_rows_train_without_evaluation_and_count_half_a_run(tmp_path):
    groups = resolve.run_groups("tiny")
    jobs = resolve.jobs_for("tiny", tmp_path, {("table2", "pos_only"): 2,
                                               ("table2", "asym_grpo"): 2}, groups)
    silent = next(j for j in jobs if j.rows == ("pos_only",))
    assert set(resolve.NO_EVALUATION) <= set(silent.overrides)
    # 2 runs of weight 1 and 2 of weight 1/2: each core gets one of each
    queues = resolve.split(jobs, 2)
    assert sorted([j.rows for j in q] for q in queues) == [[("asym_grpo",), ("pos_only",)]] * 2
    launched = []
    resolve.run_queues(queues, "tiny", tmp_path,
                       lambda command, env: launched.append(command) or Finished())
    script = launched[0][2]
    assert "--rows pos_only --seeds" in script
    assert script.split("--rows pos_only")[1].split("&&")[0].rstrip().endswith(
        " ".join(resolve.NO_EVALUATION))


def test_a_round_is_timed_by_the_core_minutes_of_the_runs_so_far():
    """24 runs took 60 wall minutes on 2 cores: 5 core-minutes each, so 6 more runs on 2 cores
    take 15 minutes and 5 runs (3 on one core) take 15 as well; before any run, the default."""
    assert resolve.round_minutes(6, 2, 60.0, 24, 3.1) == 15.0
    assert resolve.round_minutes(5, 2, 60.0, 24, 3.1) == 15.0
    assert resolve.round_minutes(4, 2, 0.0, 0, 3.0) == 6.0
