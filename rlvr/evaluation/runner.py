"""Evaluating a policy on benchmarks through a rollout engine: avg@k, pass@k, per-problem files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rlvr.config import BenchmarkEvalConfig
from rlvr.data.problem import Problem
from rlvr.evaluation.metrics import summarize_benchmark
from rlvr.rewards import score_batch
from rlvr.rollout.base import RolloutEngine, SamplingSpec


@dataclass
class EvalBenchmark:
    """A benchmark ready to run: its problems, their tokenised prompts, and how to sample."""

    spec: BenchmarkEvalConfig
    problems: list[Problem]
    prompt_ids: list[list[int]]

    @property
    def name(self) -> str:
        return self.spec.name


def evaluate(engine: RolloutEngine, benchmarks: list[EvalBenchmark], *, step: int, out_dir: Path,
             default_max_new_tokens: int, pass_ks: list[int], seed: int) -> dict[str, float]:
    """Sample ``k`` completions per problem for every benchmark and score them.

    Writes ``<out_dir>/step_<step>/<benchmark>.jsonl`` (one record per problem: id, answer,
    completions, scores) so results can be re-scored later, and returns
    ``eval/<benchmark>/avg@k``, ``eval/<benchmark>/pass@j`` for j in ``pass_ks``, and
    ``eval/average`` (the mean avg@k over benchmarks, the AsymGRPO table's last column).
    """
    metrics: dict[str, float] = {}
    step_dir = out_dir / f"step_{step:06d}"
    step_dir.mkdir(parents=True, exist_ok=True)
    averages = []
    for bench in benchmarks:
        k = bench.spec.k
        sampling = SamplingSpec(n=k, temperature=bench.spec.temperature, top_p=bench.spec.top_p,
                                max_new_tokens=bench.spec.max_new_tokens or default_max_new_tokens,
                                seed=seed)
        rollouts = engine.generate(bench.prompt_ids, sampling)
        answers = [p.answer for p in bench.problems for _ in range(k)]
        scores = score_batch(rollouts.texts, answers)
        correct = [[s == 1.0 for s in scores[i * k:(i + 1) * k]]
                   for i in range(len(bench.problems))]
        summary = summarize_benchmark(correct, [j for j in pass_ks if j <= k])
        for key, value in summary.items():
            metrics[f"eval/{bench.name}/{key}"] = value
        averages.append(summary[f"avg@{k}"])
        with (step_dir / f"{bench.name}.jsonl").open("w") as f:
            for i, problem in enumerate(bench.problems):
                f.write(json.dumps({
                    "id": problem.id, "answer": problem.answer,
                    "completions": rollouts.texts[i * k:(i + 1) * k],
                    "scores": scores[i * k:(i + 1) * k],
                    "truncated": rollouts.truncated[i * k:(i + 1) * k],
                }) + "\n")
    if averages:
        metrics["eval/average"] = sum(averages) / len(averages)
    return metrics
