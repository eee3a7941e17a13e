"""Evaluating a policy on benchmarks through a rollout engine: avg@k, pass@k, per-problem files.

Under data parallelism every rank evaluates its share of each benchmark, problems rank, rank +
world, ...; problem i samples with seed ``seed + i`` whatever the world size, and the results
are gathered in problem order, so every rank gets the metrics one process computes, and the
evaluation takes about 1/world of one process's time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rlvr.config import BenchmarkEvalConfig
from rlvr.data.problem import Problem
from rlvr.evaluation.metrics import summarize_benchmark
from rlvr.learner import distributed
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

    Writes ``<out_dir>/step_<step>/<benchmark>.jsonl`` (rank 0; one record per problem: id,
    answer, completions, scores) so results can be re-scored later, and returns, on every rank,
    ``eval/<benchmark>/avg@k``, ``eval/<benchmark>/pass@j`` for j in ``pass_ks``, and
    ``eval/average`` (the mean avg@k over benchmarks, the AsymGRPO table's last column).
    """
    metrics: dict[str, float] = {}
    step_dir = out_dir / f"step_{step:06d}"
    writes = distributed.rank() == 0
    if writes:
        step_dir.mkdir(parents=True, exist_ok=True)
    averages = []
    for bench in benchmarks:
        k = bench.spec.k
        records = _sample_and_score(engine, bench, seed, bench.spec.max_new_tokens
                                    or default_max_new_tokens)
        correct = [[s == 1.0 for s in record["scores"]] for record in records]
        summary = summarize_benchmark(correct, [j for j in pass_ks if j <= k])
        for key, value in summary.items():
            metrics[f"eval/{bench.name}/{key}"] = value
        averages.append(summary[f"avg@{k}"])
        if writes:
            with (step_dir / f"{bench.name}.jsonl").open("w") as f:
                for record in records:
                    f.write(json.dumps(record) + "\n")
    if averages:
        metrics["eval/average"] = sum(averages) / len(averages)
    return metrics


def _sample_and_score(engine: RolloutEngine, bench: EvalBenchmark, seed: int,
                      max_new_tokens: int) -> list[dict]:
    """Every problem's record (id, answer, completions, scores, truncated), in problem order:
    this rank samples and scores its share (problems rank, rank + world, ...; problem i with
    seed ``seed + i``), and the shares of all ranks are gathered."""
    rank, world, k = distributed.rank(), distributed.world_size(), bench.spec.k
    mine = list(range(rank, len(bench.problems), world))
    sampling = SamplingSpec(n=k, temperature=bench.spec.temperature, top_p=bench.spec.top_p,
                            max_new_tokens=max_new_tokens, seed=seed + rank, seed_stride=world)
    rollouts = engine.generate([bench.prompt_ids[i] for i in mine], sampling)
    answers = [bench.problems[i].answer for i in mine for _ in range(k)]
    scores = score_batch(rollouts.texts, answers)
    share = [(i, {"id": bench.problems[i].id, "answer": bench.problems[i].answer,
                  "completions": rollouts.texts[j * k:(j + 1) * k],
                  "scores": scores[j * k:(j + 1) * k],
                  "truncated": rollouts.truncated[j * k:(j + 1) * k]})
             for j, i in enumerate(mine)]
    gathered = sorted((item for part in distributed.all_gather_objects(share) for item in part),
                      key=lambda item: item[0])
    return [record for _, record in gathered]
