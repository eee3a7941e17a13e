"""``python -m rlvr.plan`` and the trainer's start-up check."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir

from rlvr.checks import register_schema, validate
from rlvr.config import ConfigError
from rlvr.plan import check_fits_before_loading
from rlvr.plan.__main__ import CONF, main, plan_from_overrides
from rlvr.plan.memory import GIB

QWEN3_4B = 4_022_468_096  # parameters (model card: 4.02 B; ENVIRONMENT.md: 15.0 GiB float32)


def _run(*overrides: str):
    register_schema()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return validate(compose("config", overrides=[*overrides, "output_dir=runs/plan"]))


def test_the_4b_full_fine_tune_does_not_fit_one_80_gib_gpu(capsys):
    # 15 GiB weights + 30 GiB AdamW + 15 GiB accumulated gradients + checkpointed activations
    # and autocast copies of 30,464-token micro-batches
    assert main(["experiment=table2_qwen3_4b"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("does not fit: peak 8")


def test_fits_line_and_exit_status(capsys):
    assert main(["experiment=table2_qwen3_4b", "plan.gpus=8", "learner.strategy=fsdp"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1].startswith("fits: peak ") and out[-1].endswith(" of 80.0 GiB per GPU")


def test_does_not_fit_names_the_remedies(capsys):
    assert main(["experiment=table2_qwen3_4b", "plan.gpu_memory_gib=40"]) == 1
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("does not fit: peak ") and " of 40.0 GiB per GPU; try " in last
    for remedy in ("learner.strategy=fsdp", "learner=lora", "micro_batch_size"):
        assert remedy in last


def test_terms_of_the_4b_full_fine_tune():
    plan = plan_from_overrides(["experiment=table2_qwen3_4b"])
    lp = plan.learner
    assert lp.weights == 4 * QWEN3_4B and lp.gradients == 4 * QWEN3_4B
    assert lp.optimizer == 8 * QWEN3_4B + 4 * (36 * 11 + 2)  # + one step per tensor
    # 32,768-token cap over 256 + 4096-token rows: 7 rows
    assert plan.setting.tokens == 7 * (256 + 4096)
    assert plan.vllm_awake == int(0.4 * 80 * GIB) and plan.sleep_mode


def test_gradients_are_held_across_accumulated_micro_batches():
    # 128 prompts x 8 / 2 mini-batches = 512 rows per optimiser step, 7 per micro-batch
    accumulating = plan_from_overrides(["experiment=table2_qwen3_4b"])
    assert accumulating.learner.accumulated_gradients == 4 * QWEN3_4B
    # 3 prompts x 2 / 2 = 3 rows per step: one micro-batch
    single = plan_from_overrides(["experiment=table2_qwen3_4b", "prompts_per_step=3",
                                  "rollout.n=2", "algorithm=grpo"])
    assert single.learner.accumulated_gradients == 0
    moment = "end of forward"
    assert accumulating.learner.moments[moment] - single.learner.moments[moment] == 4 * QWEN3_4B


def test_sharding_divides_the_resident_bytes():
    one = plan_from_overrides(["experiment=table2_qwen3_4b"])
    eight = plan_from_overrides(["experiment=table2_qwen3_4b", "plan.gpus=8",
                                 "learner.strategy=fsdp"])
    assert eight.learner.resident == pytest.approx(one.learner.resident / 8, rel=1e-3)
    assert eight.peak < one.peak


def test_every_rank_loads_the_whole_model_before_sharding():
    eight = plan_from_overrides(["experiment=table2_qwen3_4b", "plan.gpus=8",
                                 "learner.strategy=fsdp", "algorithm.loss.kl_coef=0.01"])
    loading = eight.phases["loading (whole weights before sharding)"]
    assert loading == 2 * 4 * QWEN3_4B + GIB  # policy + reference copy, float32, + CUDA context


def test_unknown_experiment_is_one_line(capsys):
    with pytest.raises(SystemExit) as err:
        main(["experiment=typo"])
    assert err.value.code == 2
    assert capsys.readouterr().err.startswith("error: experiment=typo: no such option; valid")


def test_bad_plan_value_is_one_line(capsys):
    with pytest.raises(SystemExit) as err:
        main(["plan.gpus=0"])
    assert err.value.code == 2
    assert capsys.readouterr().err.strip() == "error: plan.gpus must be >= 1, got 0"


def test_start_up_check_stops_on_cuda_when_it_does_not_fit():
    run = _run("experiment=table2_qwen3_4b")
    cuda = torch.device("cuda")  # a device descriptor: nothing touches a GPU
    with pytest.raises(ConfigError, match=r"^does not fit: peak [0-9.]+ GiB of 40.0 GiB"):
        check_fits_before_loading(run, "Qwen/Qwen3-4B", cuda, gpu_memory_bytes=40 * GIB,
                                  gpus=1)
    check_fits_before_loading(run, "Qwen/Qwen3-4B", cuda, gpu_memory_bytes=141 * GIB, gpus=1)
    check_fits_before_loading(run, "Qwen/Qwen3-4B", torch.device("cpu"),
                              gpu_memory_bytes=40 * GIB, gpus=1)  # no-op off CUDA
    run.plan.enforce = False
    check_fits_before_loading(run, "Qwen/Qwen3-4B", cuda, gpu_memory_bytes=40 * GIB, gpus=1)
