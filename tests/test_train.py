"""The training loop end to end on the tiny model: every algorithm, metrics, kill and resume."""

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rlvr.reporting import provenance
from rlvr.reporting.claim_runs import NO_EVALUATION
from rlvr.train import Trainer
from tests.configs import tiny_run_config

REPO = Path(__file__).resolve().parents[1]
ALGORITHMS = sorted(p.stem for p in (REPO / "conf" / "algorithm").glob("*.yaml"))
SMALL_EVAL = ("eval.benchmarks=[{name:arith_l1,k:2,temperature:1.0,limit:12},"
              "{name:arith_l3,k:2,temperature:1.0,limit:12}]")
REQUIRED = [
    "adv/reward_mean", "train/entropy", "adv/none_solved", "adv/all_solved", "adv/adv_mean",
    "adv/pos_mean", "adv/neg_mean", "loss/clip_frac_low", "loss/clip_frac_high",
    "loss/approx_kl_old", "response/length_mean", "response/length_max",
    "response/truncated_frac", "optim/grad_norm", "optim/lr", "time/generate", "time/reward",
    "time/update", "time/sync", "throughput/tokens_per_s", "diag/kappa",
    "mismatch/abs_logp_diff_max",
]
EXTRA = {"ah_grpo": ["weights/mean", "weights/neg_mean"],
         "sa_ah_grpo": ["weights/mean", "weights/pos_mean"],
         "pos_reweight": ["weights/lambda"], "entropy_reg": ["loss/entropy"],
         "asym_adaptive": ["algorithm/beta_pos", "algorithm/beta_neg"],
         "clip_cov": ["loss/cov_selected_frac"], "kl_cov": ["loss/cov_selected_frac"],
         "dapo": ["filter/kept_groups", "filter/dropped_groups", "filter/rounds"]}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_logs_the_statistics_of_its_own_batch(tmp_path, tiny_model_dir,
                                                              algorithm):
    """Two steps of each algorithm: each step's metrics are its batch's statistics, recomputed
    here in float64 from the batch the step trained on (correctness, response lengths and
    truncation, the pre-update entropy, the advantages' sign channels), and finite."""
    run = tiny_run_config(tmp_path, f"algorithm={algorithm}", "total_steps=2")
    trainer = Trainer(run, {})
    try:
        outcomes = [trainer.run_step(step) for step in range(2)]
    finally:
        trainer.close()
    for outcome in outcomes:
        batch, metrics = outcome.batch, outcome.metrics
        if batch.num_groups == 0:
            assert metrics["filter/kept_groups"] == 0  # dynamic sampling kept nothing
            continue
        for key in REQUIRED + EXTRA.get(algorithm, []):
            assert key in metrics, f"{algorithm} did not log {key}"
        lengths = torch.tensor([len(r) for r in batch.response_ids], dtype=torch.float64)
        mask = batch.response_mask.to(torch.float64)
        advantages = batch.advantages.to(torch.float64)
        expected = {
            "adv/reward_mean": float(batch.correct.to(torch.float64).mean()),
            "response/length_mean": float(lengths.mean()),
            "response/length_max": float(lengths.max()),
            "response/truncated_frac": sum(batch.truncated) / batch.num_rows,
            "train/entropy": float((batch.entropy.to(torch.float64) * mask).sum() / mask.sum()),
            "adv/adv_mean": float(advantages.mean()),
        }
        for key, value in expected.items():
            assert metrics[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (algorithm, key)
        assert all(math.isfinite(v) for k, v in metrics.items()
                   if isinstance(v, float)
                   and not k.startswith(("adv/pos", "adv/neg", "diag/kappa")))


def test_composed_token_weights_each_take_their_own_parameters(tmp_path, tiny_model_dir,
                                                               monkeypatch):
    stepped = []  # another commit is checked out once training has begun
    monkeypatch.setattr(provenance, "commit",
                        lambda: "checked-out-later" if stepped else "at-start")
    run_step = Trainer.run_step
    monkeypatch.setattr(Trainer, "run_step",
                        lambda self, step: stepped.append(step) or run_step(self, step))
    run = tiny_run_config(tmp_path, "algorithm=sa_ah_grpo",
                          "algorithm.token_weights=[sa_ah,pos_reweight]",
                          "algorithm.schedule=constant", "algorithm.lambda_value=0.5",
                          "total_steps=1")
    trainer = Trainer(run, {})
    try:
        trainer.fit()
    finally:
        trainer.close()
    record = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    assert record["weights/lambda"] == 0.5
    cpu = next(line.split(":", 1)[1].strip() for line in
               Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["machine"].startswith(cpu), "the run's summary names the machine it ran on"
    assert summary["commit"] == "at-start", "and the commit its training started at"
    assert record["weights/pos_mean"] == pytest.approx(0.5)  # lambda on A > 0, SA-AH leaves them


@pytest.mark.parametrize("algorithm", ["asym_adaptive", "dapo"])
def test_schedules_and_filtering_resume_to_the_uninterrupted_metrics(tmp_path, tiny_model_dir,
                                                                     algorithm):
    """A run resumed from its step-2 checkpoint logs what the uninterrupted run logged: the
    betas come back from the checkpoint, and the filter's prompts and seeds depend on the step
    and round only."""
    overrides = [f"algorithm={algorithm}", "total_steps=3", "checkpoint_every=2", "resume=auto",
                 "prompts_per_step=2", "rollout.n=4", "rollout.max_new_tokens=24",
                 *(["algorithm.beta_step=0.05"] if algorithm == "asym_adaptive"
                   else ["seed=1", "algorithm.max_filter_rounds=2"])]

    def fit(out: Path) -> Trainer:
        trainer = Trainer(tiny_run_config(out, *overrides), {})
        try:
            trainer.fit()
        finally:
            trainer.close()
        return trainer

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(straight)
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step_000003")
    lines = (resumed / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert fit(resumed).start_step == 2
    expected, got = _metrics(straight), _metrics(resumed)
    assert [r["step"] for r in got] == [1, 2, 3]
    assert got == expected
    if algorithm == "asym_adaptive":
        betas = [(r["algorithm/beta_pos"], r["algorithm/beta_neg"]) for r in got]
        assert betas[0] == (0.9, 0.4) and len(set(betas)) == 3


def test_a_run_without_evaluation_trains_as_the_run_evaluated_at_every_step(tmp_path,
                                                                           tiny_model_dir):
    """The claims train their entropy-only rows without evaluation (claim_runs.NO_EVALUATION):
    every step's metrics must equal those of the run that sampled evaluations before the first
    step and after each one (vLLM rollouts and evaluation, temperature 1.0). The second run
    reuses the first's engine, as ``reproduce.py`` trains one seed after another (a second
    in-process engine would lose vLLM's parallel groups when the first is collected)."""
    common = ["rollout=vllm", "total_steps=2", "eval.every_n_steps=1", SMALL_EVAL,
              "prompts_per_step=2", "rollout.n=4", "rollout.max_new_tokens=24"]
    first = Trainer(tiny_run_config(tmp_path / "evaluated", *common), {})
    try:
        first.fit()
        second = Trainer(tiny_run_config(tmp_path / "silent", *common, *NO_EVALUATION), {},
                         engine=first.engine)
        try:
            second.fit()
        finally:
            second.close()
    finally:
        first.close()
    evaluated, silent = _metrics(tmp_path / "evaluated"), _metrics(tmp_path / "silent")
    assert [r["step"] for r in evaluated if "eval/average" in r] == [0, 1, 2]
    assert not any("eval/average" in r for r in silent)
    assert [r for r in evaluated if "eval/average" not in r] == silent
    assert len(silent) == 2


@pytest.mark.parametrize("lora_sync", [pytest.param("adapter", marks=pytest.mark.slow), "merged"])
def test_a_lora_run_samples_from_the_policy_it_trains_under_either_sync(tmp_path, tiny_model_dir,
                                                                        lora_sync):
    """The tiny SA-AH rows train LoRA through vLLM, the claims' with the merged sync
    (claim_runs.MERGED_LORA): after each update the engine must sample from the learner's
    policy, so the sampler's log-probs match the learner's recomputed ones to float32 rounding
    at every step (measured: 8e-6 for both; an engine whose sync was skipped differs by 5.9
    nats at step 2)."""
    trainer = Trainer(tiny_run_config(
        tmp_path, "rollout=vllm", "learner=lora", "learner.lr=2e-3", "total_steps=3",
        "prompts_per_step=2", "rollout.n=4", "rollout.max_new_tokens=24",
        f"rollout.lora_sync={lora_sync}", "algorithm=sa_ah_grpo"), {})
    try:
        trainer.fit()
    finally:
        trainer.close()
    steps = _metrics(tmp_path)
    assert [r["step"] for r in steps] == [1, 2, 3]
    assert all(r["mismatch/abs_logp_diff_max"] < 1e-3 for r in steps)


def _train_command(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "rlvr.train", "logger=disabled", f"hydra.run.dir={run_dir}",
            "total_steps=4", "checkpoint_every=2", "eval.every_n_steps=2", "prompts_per_step=4",
            SMALL_EVAL, *extra]


def _metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl without wall-clock values."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "throughput/"))}
            for r in rows]


def _kill_after_checkpoint(command: list[str], run_dir: Path, step: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    marker = run_dir / "checkpoints" / f"step_{step:06d}" / "state.json"
    deadline = time.time() + 600
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"run ended before its checkpoint: {proc.stderr.read()[-2000:]}")
        assert time.time() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    proc.kill()
    proc.wait()


def _check_resume_matches_uninterrupted(tmp_path, engine: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    subprocess.run(_train_command(straight, f"rollout={engine}"), cwd=REPO, env=env, check=True,
                   capture_output=True)
    _kill_after_checkpoint(_train_command(resumed, f"rollout={engine}"), resumed, step=2)
    subprocess.run(_train_command(resumed, f"rollout={engine}"), cwd=REPO, env=env, check=True,
                   capture_output=True)
    expected, got = _metrics(straight), _metrics(resumed)
    assert [r["step"] for r in got] == [r["step"] for r in expected] == [0, 1, 2, 2, 3, 4, 4]
    assert got == expected


def test_killed_run_resumes_to_the_uninterrupted_metrics_hf(tmp_path, tiny_model_dir):
    _check_resume_matches_uninterrupted(tmp_path, "hf")


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_metrics_vllm(tmp_path, tiny_model_dir):
    _check_resume_matches_uninterrupted(tmp_path, "vllm")


def test_multirun_sweep_gives_each_point_its_own_directory(tmp_path, tiny_model_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "rlvr.train", "-m", "algorithm=asym_grpo",
                    "algorithm.beta_pos=0.3,0.9", "rollout=hf", "total_steps=1",
                    "prompts_per_step=4", "logger=disabled", "checkpoint_every=0",
                    "eval.benchmarks=[{name:arith_l1,k:1,limit:4}]",
                    f"hydra.sweep.dir={tmp_path}"], cwd=REPO, env=env, check=True,
                   capture_output=True)
    summaries = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("summary.json"))
    assert len(summaries) == 2
    assert any("beta_pos=0.3" in s for s in summaries)
    assert any("beta_pos=0.9" in s for s in summaries)


@pytest.mark.slow
def test_two_process_fsdp_run_with_one_vllm_engine_per_rank(tmp_path, tiny_model_dir):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "--standalone", "-m", "rlvr.train", "learner.strategy=fsdp",
               "logger=disabled", f"hydra.run.dir={tmp_path}", "total_steps=2",
               "checkpoint_every=2", "prompts_per_step=4",
               "eval.benchmarks=[{name:arith_l1,k:2,temperature:1.0,limit:8}]"]
    subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "adv/reward_mean" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["mismatch/abs_logp_diff_max"] < 1e-3 for r in steps), "engines follow the learner"
    checkpoint = tmp_path / "checkpoints" / "step_000002"
    assert {p.name for p in checkpoint.glob("trainer-rank*.pt")} == {"trainer-rank0.pt",
                                                                     "trainer-rank1.pt"}
