"""Two gloo ranks collect what one process collects: the same prompts with the same seeds."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("collect_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _collect(out: Path, algorithm: str, ranks: int) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
        "--standalone"]
    result = subprocess.run([*launch, str(WORKER), str(out), algorithm], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads(out.with_name(f"{out.name}.rank{r}.json").read_text())
            for r in range(ranks)]


@pytest.mark.parametrize("algorithm", ["grpo", "dapo"])
def test_two_ranks_sample_each_global_prompt_with_its_one_process_seed_global_prompt(
        tmp_path, algorithm):
    """[global_prompt] Every (prompt, seed) request of the two ranks together is one of the
    single process's, and no other; so are the groups kept (the filter decides on the same
    rollouts). Before, each rank numbered the seeds of its own prompts from 0."""
    (single,) = _collect(tmp_path / "single", algorithm, 1)
    ranks = _collect(tmp_path / "ranks", algorithm, 2)
    assert sorted(map(tuple, single["requests"])) == \
        sorted(tuple(r) for rank in ranks for r in rank["requests"])
    kept = sorted((s, i, tuple(c)) for rank in ranks for s, i, c in rank["kept"])
    assert kept == sorted((s, i, tuple(c)) for s, i, c in single["kept"])
    assert len(single["kept"]) > 0
