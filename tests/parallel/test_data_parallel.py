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


def _evaluate(out: Path, ranks: int) -> list[dict]:
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    launch = [sys.executable] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
        "--standalone"]
    result = subprocess.run([*launch, str(WORKER.with_name("eval_worker.py")), str(out)],
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(ranks)]


def test_two_ranks_evaluate_as_one_process_sharded_eval(tmp_path):
    """[sharded_eval] Each rank samples its share of every benchmark (9 and 6 problems over 2
    ranks: 5 + 4 and 3 + 3), each problem with its one-process seed; every rank returns the
    metrics one process computes, and rank 0 writes the same per-problem files."""
    (single,) = _evaluate(tmp_path / "single", 1)
    ranks = _evaluate(tmp_path / "ranks", 2)
    for rank in ranks:
        assert rank["metrics"] == single["metrics"]
    assert sorted(map(str, single["requests"])) == \
        sorted(str(r) for rank in ranks for r in rank["requests"])
    assert [len(rank["requests"]) for rank in ranks] == [5 + 3, 4 + 3]
    for name in ("arith_l1", "arith_l3"):
        path = Path("eval") / "step_000003" / f"{name}.jsonl"
        assert (tmp_path / "ranks" / path).read_text() == (tmp_path / "single" / path).read_text()
    assert 0 < single["metrics"]["eval/average"] < 1
