"""One process (or one torchrun rank) evaluating two benchmarks with the recording engine:
writes the metrics, which (problem, seed) this rank sampled, and the files rank 0 wrote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from rlvr.config import BenchmarkEvalConfig
from rlvr.data import arith
from rlvr.evaluation.runner import EvalBenchmark, evaluate
from rlvr.learner import distributed
from tests.parallel.collect_worker import RecordingEngine


def main(out: Path) -> None:
    distributed.init_from_env(torch.device("cpu"))
    benchmarks, answers = [], {}
    for level, size in ((1, 9), (3, 6)):
        problems = arith.eval_set(level, size, 11)
        prompts = [[300 + 10 * level + i, 7] for i in range(size)]
        answers.update({tuple(p): q.answer for p, q in zip(prompts, problems, strict=True)})
        benchmarks.append(EvalBenchmark(BenchmarkEvalConfig(name=f"arith_l{level}", k=4,
                                                            temperature=1.0),
                                        problems, prompts))
    engine = RecordingEngine(answers)
    metrics = evaluate(engine, benchmarks, step=3, out_dir=out / "eval",
                       default_max_new_tokens=8, pass_ks=[1, 2], seed=1234)
    rank = distributed.rank()
    (out / f"rank{rank}.json").write_text(json.dumps(
        {"metrics": metrics, "requests": [[list(p), s] for p, s in engine.requests]}))
    distributed.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
