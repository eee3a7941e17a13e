"""``distributed.timeout_s`` reaches the process group: a rank that waits longer in a collective
fails with an error naming the key (2 gloo processes)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlvr.config import ConfigError, DistributedConfig, RunConfig
from rlvr.learner import distributed

WORKER = Path(__file__).with_name("timeout_worker.py")
REPO = Path(__file__).resolve().parents[2]


def test_a_collective_past_the_timeout_names_distributed_timeout_s(tmp_path):
    out = tmp_path / "error.txt"
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--standalone", str(WORKER), "2", str(out)],
                   env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
                   capture_output=True, text=True, timeout=300)
    message = out.read_text()
    assert "distributed.timeout_s=2 s" in message and "an all-reduce on rank 0" in message


def test_timeout_default_is_the_configs_and_covers_an_hour():
    assert RunConfig().distributed.timeout_s == distributed.DEFAULT_TIMEOUT_S >= 3600


def test_timeout_must_be_positive():
    with pytest.raises(ConfigError, match=r"distributed\.timeout_s must be > 0"):
        DistributedConfig(timeout_s=0).validate()


def test_a_timeout_raised_inside_the_loop_names_the_key():
    """A collective's timeout anywhere in the training loop (FSDP's own collectives included)
    is re-raised naming ``distributed.timeout_s``; other errors pass unchanged."""
    loop = distributed.named_timeout("a collective of the training loop")
    with pytest.raises(distributed.CollectiveTimeout, match=r"distributed\.timeout_s="), loop:
        raise RuntimeError("[../gloo/transport/tcp/pair.cc:534] Timed out waiting 1800000ms")
    loop = distributed.named_timeout("a collective of the training loop")
    with pytest.raises(ValueError, match="other"), loop:
        raise ValueError("other")
