"""The evaluation benchmarks of a run, loaded and encoded in the model family's template."""

from __future__ import annotations

from rlvr.config import RunConfig
from rlvr.data.datasets import load_problems
from rlvr.data.prompts import encode_prompts
from rlvr.evaluation.runner import EvalBenchmark


def load_eval_benchmarks(run: RunConfig, tokenizer) -> list[EvalBenchmark]:
    """``run.eval``'s benchmarks with their prompts in the model family's template."""
    benches = []
    for spec in run.eval.benchmarks:
        problems = load_problems(spec.name, spec.split, run.eval.dir, spec.limit, run.data.arith)
        benches.append(EvalBenchmark(spec, problems,
                                     encode_prompts(problems, tokenizer, run.model.family)))
    return benches
