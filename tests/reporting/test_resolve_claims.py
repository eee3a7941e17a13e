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


def _queues(evaluated: int, silent: int) -> list[list]:
    jobs = [resolve.Job("table2", ("grpo",), tuple(range(evaluated))),
            resolve.Job("table2", ("pos_only",), tuple(range(silent)), resolve.NO_EVALUATION)]
    return resolve.split([j for j in jobs if j.seeds], 2)


def test_a_round_is_timed_by_its_busiest_core_at_the_minutes_per_unit_of_work_so_far():
    """24 units of work took 60 wall minutes on 2 cores: 5 core-minutes each. 6 more evaluated
    runs (3 per core) take 15 minutes, 5 (3 on one core) 15 as well, 2 evaluated and 2 silent
    ones (1.5 units per core) 7.5; before any run, the default minutes per unit."""
    assert resolve.round_minutes(_queues(6, 0), 2, 60.0, 24.0, 3.1) == 15.0
    assert resolve.round_minutes(_queues(5, 0), 2, 60.0, 24.0, 3.1) == 15.0
    assert resolve.round_minutes(_queues(2, 2), 2, 60.0, 24.0, 3.1) == 7.5
    assert resolve.round_minutes(_queues(4, 0), 2, 0.0, 0.0, 3.0) == 6.0


def test_the_report_names_each_group_and_a_check_command_pinned_as_the_runs(tmp_path):
    groups = resolve.run_groups("tiny")
    line = resolve.trained_as(groups, "tiny", REPO / "runs" / "claims")
    assert "flip_test/grpo (also pos_reweight/grpo): as the table" in line
    assert ("table2/pos_only: eval.at_start=false eval.every_n_steps=0 eval.at_end=false"
            in line)
    assert "sa_ah_1.5b/sa_ah_grpo: rollout.lora_sync=merged" in line
    # the first group trained as its table states: flip_test's EntDecrease
    command = line.split("Re-derive one: `")[1].rstrip("`.")
    assert command.endswith("python scripts/reproduce.py flip_test --profile tiny --runs "
                            "runs/claims --out runs/claims/_tables/flip_test --check "
                            "ent_decrease 0")
    for pin in ("OMP_NUM_THREADS=1", "VLLM_CPU_OMP_THREADS_BIND=0", "ATEN_CPU_CAPABILITY=avx2",
                "MKL_CBWR=AVX2", "RLVR_VLLM_CPU_ISA=avx2"):
        assert pin in command.split(" python ")[0]
    seeds = {("flip_test", "grpo"): 3, ("pos_reweight", "grpo"): 6, ("table2", "pos_only"): 3}
    counted = resolve.seeds_per_group(groups, seeds)
    assert "flip_test/grpo (also pos_reweight/grpo) 6" in counted
    assert "table2/pos_only 3" in counted and "table2/asym_grpo 0" in counted
    launched = []
    resolve.report_tables(groups, "tiny", tmp_path, 3,
                          lambda command, env: launched.append(command) or Finished())
    by_table = {c[2]: c for c in launched}
    assert sorted(by_table) == ["flip_test", "pos_reweight", "sa_ah_1.5b", "table2"]
    table2 = " ".join(by_table["table2"])
    assert "--rows pos_only reinforce neg_only asym_grpo grpo --seeds 0 1 2" in table2
    assert table2.endswith("--report-only"), "table2's groups share no override"
    assert by_table["sa_ah_1.5b"][-1] == "rollout.lora_sync=merged"
    assert "--rows pos_reweight " in " ".join(by_table["pos_reweight"])
