"""A 2-process FSDP2 step (gloo) equals the 1-process step: same loss and updated weights."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("fsdp_step.py")
REPO = Path(__file__).resolve().parents[2]


def _run(command: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode:
        raise AssertionError(f"{command} failed:\n{result.stderr[-4000:]}")


def _single_and_fsdp(tmp_path, *args):
    _run([sys.executable, str(WORKER), str(tmp_path / "single.pt"), *args])
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
          "--standalone", str(WORKER), str(tmp_path / "fsdp.pt"), *args])
    return torch.load(tmp_path / "single.pt"), torch.load(tmp_path / "fsdp.pt")


def test_two_process_fsdp_step_matches_one_process(tmp_path):
    single, fsdp = _single_and_fsdp(tmp_path)
    assert abs(single["pg_loss"] - fsdp["pg_loss"]) < 1e-5
    assert abs(single["grad_norm"] - fsdp["grad_norm"]) < 1e-5
    assert single["weights"].keys() == fsdp["weights"].keys()
    for name, value in single["weights"].items():
        torch.testing.assert_close(fsdp["weights"][name], value, atol=1e-5, rtol=0,
                                   msg=f"updated weight {name} differs")


def test_uneven_mini_batches_two_ranks_differ_from_one_process_by_summation_order_only(
        tmp_path):
    """8 mini-batches of one row (a rank holds none of half of them, runs placeholder passes):
    in float64 one process and 2 ranks agree to 1e-12 relative (measured ~1e-16: the order of
    the gradient sums is all that differs; a wrong reduction would differ at the size of a
    gradient, whatever the precision), while in float32 the same step differs by about its
    unit roundoff (measured 1.1e-7 relative on the gradient norm, 2^-24 = 6e-8), the 2^29
    ratio of the two unit roundoffs."""
    single, fsdp = _single_and_fsdp(tmp_path, "float64", "8")
    assert single["weights"]["lm_head.weight"].dtype == torch.float64
    assert abs(single["grad_norm"] - fsdp["grad_norm"]) <= 1e-12 * single["grad_norm"]
    assert abs(single["pg_loss"] - fsdp["pg_loss"]) <= 1e-12 * max(1.0, abs(single["pg_loss"]))
    for name, value in single["weights"].items():
        torch.testing.assert_close(fsdp["weights"][name], value, atol=1e-12, rtol=0,
                                   msg=f"updated weight {name} differs in float64")


def test_fsdp_reductions_on_two_processes(tmp_path):
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
          "--standalone", str(WORKER.with_name("reductions_worker.py")), str(tmp_path / "out.pt")])
    out = torch.load(tmp_path / "out.pt")
    # rank 0: 1 row [1, 1] (padded to width 3); rank 1: 2 rows [2, 2, 2]
    assert torch.equal(out["gathered"], torch.tensor([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0],
                                                      [2.0, 2.0, 2.0]]))
    assert out["gathered_bool"].tolist() == [True, False, False]
    assert out["token_mean"] == (1 * 2 + 2 * 6) / 8
    assert (out["sum"], out["max"]) == (3.0, 2.0)
    assert out["from_rank0"] == {"rank": 0, "history": [(0, 0.5)]}


def test_fsdp_mixed_precision_keeps_float32_masters_and_matches_autocast(tmp_path):
    """bfloat16 compute through FSDP2's MixedPrecisionPolicy (float32 gradient reduction) and
    through autocast in one process: float32 updated weights, the same loss to bfloat16
    precision, and the same update (AdamW's first step moves each weight by about lr = 1e-3,
    in the direction of its gradient)."""
    single, fsdp = _single_and_fsdp(tmp_path, "bfloat16")
    assert abs(single["pg_loss"] - fsdp["pg_loss"]) < 1e-2
    assert abs(single["grad_norm"] - fsdp["grad_norm"]) < 2e-2 * single["grad_norm"]
    agree = total = 0
    for name, value in single["weights"].items():
        assert fsdp["weights"][name].dtype == torch.float32, name
        close = (fsdp["weights"][name] - value).abs() < 1e-4
        agree, total = agree + int(close.sum()), total + close.numel()
    assert agree / total > 0.95


@pytest.mark.parametrize("policy_loss", ["clip_cov", "kl_cov"])
def test_two_ranks_select_the_tokens_one_process_selects_cov_selection(tmp_path, policy_loss):
    """[cov_selection] Clip-Cov and KL-Cov over 2 epochs of 2 mini-batches, off-policy: the
    covariance, the count and the random choice are the whole mini-batch's over both ranks (a
    generator per step, epoch and mini-batch), so the 2-rank update selects what one process
    selects: the same selected fraction and the same updated weights."""
    single, fsdp = _single_and_fsdp(tmp_path, "float32", "2", policy_loss)
    assert single["selected"] > 0
    # float32 token-weighted means summed in another order; one token more or less is 1/72
    assert abs(single["selected"] - fsdp["selected"]) < 1e-7
    assert abs(single["pg_loss"] - fsdp["pg_loss"]) < 1e-5
    for name, value in single["weights"].items():
        torch.testing.assert_close(fsdp["weights"][name], value, atol=1e-5, rtol=0,
                                   msg=f"updated weight {name} differs")
