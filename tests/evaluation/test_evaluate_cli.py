"""``python -m rlvr.evaluate`` on the tiny model: metrics per benchmark and per-problem records
that re-score to the same numbers."""

import json
import subprocess
import sys
from pathlib import Path

from rlvr.rewards import math_reward

REPO = Path(__file__).resolve().parents[2]


def test_evaluate_cli_writes_rescorable_per_problem_results(tmp_path, tiny_model_dir):
    benchmarks = "[{name:arith_l1,k:3,temperature:1.0,limit:10},{name:arith_l2,k:1,limit:10}]"
    subprocess.run(
        [sys.executable, "-m", "rlvr.evaluate", "rollout=hf", "logger=disabled",
         f"output_dir={tmp_path}", f"hydra.run.dir={tmp_path}/hydra",
         f"eval.benchmarks={benchmarks}", "eval.pass_k=[1,3]"],
        cwd=REPO, check=True, timeout=600)
    metrics = json.loads((tmp_path / "eval.json").read_text())
    for name, k in (("arith_l1", 3), ("arith_l2", 1)):
        records = [json.loads(line) for line in
                   (tmp_path / "eval" / "step_000000" / f"{name}.jsonl").read_text().splitlines()]
        assert len(records) == 10 and all(len(r["completions"]) == k for r in records)
        rescored = [math_reward(c, r["answer"]) for r in records for c in r["completions"]]
        assert metrics[f"eval/{name}/avg@{k}"] == sum(rescored) / len(rescored)
