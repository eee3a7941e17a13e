"""One process (or one torchrun rank) collecting two steps with a recording engine: writes which
prompt each rank sampled with which seed, and the kept groups' correctness, to JSON."""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import torch

from rlvr.collect import RolloutCollector
from rlvr.data import arith
from rlvr.data.prompts import PromptStream
from rlvr.learner import distributed
from rlvr.rollout.base import Rollouts, SamplingSpec
from tests.configs import tiny_run_config


class RecordingEngine:
    """Rollouts that are a function of (prompt, seed) only: completion j of a prompt sampled
    with seed s is correct when (s + j) % 3 == 0. Records (prompt, seed) of every request."""

    def __init__(self, answers: dict[tuple[int, ...], str]) -> None:
        self.answers = answers
        self.requests: list[tuple[tuple[int, ...], int]] = []

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> Rollouts:
        ids, logprobs, texts, truncated = [], [], [], []
        for i, prompt in enumerate(prompts):
            seed = sampling.seed + i * sampling.seed_stride
            self.requests.append((tuple(prompt), seed))
            for j in range(sampling.n):
                correct = (seed + j) % 3 == 0
                ids.append([5, 6, 7][: 1 + (seed + j) % 3])
                logprobs.append([-1.0] * len(ids[-1]))
                texts.append(f"\\boxed{{{self.answers[tuple(prompt)]}}}" if correct else "none")
                truncated.append(False)
        return Rollouts(ids, logprobs, texts, truncated)


def main(out: Path, algorithm: str) -> None:
    distributed.init_from_env(torch.device("cpu"))
    world = distributed.world_size()
    run = tiny_run_config(out.parent, f"algorithm={algorithm}", "prompts_per_step=4",
                          "rollout.n=3", "rollout=vllm",
                          f"learner.strategy={'fsdp' if world > 1 else 'single'}")
    problems = arith.eval_set(2, 40, 7)
    prompts = [[100 + i, 200 + i] for i in range(len(problems))]
    engine = RecordingEngine({tuple(p): q.answer for p, q in zip(prompts, problems, strict=True)})
    collector = RolloutCollector(run, engine, prompts, problems, PromptStream(len(prompts), 0))
    kept = []
    for step in range(3):
        batch = collector.collect(step, run.algorithm.parameters(),
                                  lambda _stage: nullcontext())
        kept += [[step, index, row] for index, row in
                 zip(batch.prompt_index, batch.correct.tolist(), strict=True)]
    index = {tuple(p): i for i, p in enumerate(prompts)}
    record = {"requests": [[index[p], seed] for p, seed in engine.requests], "kept": kept}
    out.with_name(f"{out.name}.rank{distributed.rank()}.json").write_text(json.dumps(record))
    distributed.shutdown()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(Path(sys.argv[1]), sys.argv[2])
