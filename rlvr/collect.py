"""One step's training data: generate -> reward -> (group filter, refill) -> advantages.

``RolloutCollector.collect`` samples G rollouts for each of the step's prompts, verifies them
(binary correctness), applies the configured reward shapings (``algorithm.reward_shaping``,
rlvr/algorithms/reward_shapings.py) and, with a group filter (``algorithm.group_filter``,
rlvr/algorithms/group_filters.py), keeps only the groups it passes, drawing more prompts in
further rounds until ``prompts_per_step`` groups are kept or the filter's ``max_filter_rounds``
rounds ran (then the step trains on what was kept, possibly nothing). Advantages are computed on
the kept groups from what the estimator reads: the shaped rewards or the binary correctness
(rlvr/algorithms/advantages.py ``estimator_rewards``). The collector names no algorithm: it runs
the parts the config names.

Determinism: round j of step k draws the stream positions [(k R + j) P, (k R + j + 1) P) and
samples with seed s(k R + j), R = max_filter_rounds when filtering (1 otherwise), P =
prompts_per_step. Both are pure functions of (step, round), so a resumed run and every rank see
the same prompts and seeds whatever earlier steps kept; without filtering they are the positions
and seeds of the plain loop. Each filtering step thus reserves R P prompts of the stream (the
unused rounds' prompts are skipped, every epoch is still one permutation of the data).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch

from rlvr.algorithms.advantages import ADVANTAGE_ESTIMATORS, compute_advantages, estimator_rewards
from rlvr.algorithms.group_filters import GROUP_FILTERS
from rlvr.algorithms.reward_shapings import shape_rewards
from rlvr.batch import StepBatch, response_tensors
from rlvr.config import RunConfig
from rlvr.data.problem import Problem
from rlvr.data.prompts import PromptStream
from rlvr.learner import distributed
from rlvr.rewards import score_batch
from rlvr.rollout.base import RolloutEngine, Rollouts, SamplingSpec
from rlvr.seeding import stream_seed

Timer = Callable[[str], AbstractContextManager[Any]]


def data_parallel_rows(num_groups: int, n: int) -> list[int] | None:
    """Global row ids of this rank's ``num_groups`` groups of ``n`` rollouts in the step's batch
    over all ranks (None for a single process).

    The ranks' groups are interleaved as a single process drawing the same prompts would hold
    them: group k of rank r is global group sum_s min(c_s, k) + #{s < r : c_s > k}, c_s the
    group count of rank s; with equal counts that is k * world + r."""
    if distributed.world_size() == 1:
        return None
    counts = distributed.gather_rows(torch.tensor([num_groups])).tolist()
    rank = distributed.rank()
    rows = []
    for k in range(num_groups):
        group = sum(min(c, k) for c in counts) + sum(c > k for c in counts[:rank])
        rows += range(group * n, group * n + n)
    return rows


class RolloutCollector:
    """Draws, samples, verifies, shapes and filters each step's groups (module docstring)."""

    def __init__(self, run: RunConfig, engine: RolloutEngine, prompts: list[list[int]],
                 problems: list[Problem], stream: PromptStream) -> None:
        self.run, self.engine, self.prompts, self.problems = run, engine, prompts, problems
        self.stream = stream
        self.rank, self.world = distributed.rank(), distributed.world_size()
        algorithm = run.algorithm
        self.filter = algorithm.group_filter
        self.rounds = 1 if self.filter is None else GROUP_FILTERS.resolve(
            self.filter, GROUP_FILTERS.own(self.filter, algorithm.parameters())
        )["max_filter_rounds"]

    def draw(self, step: int, round_: int) -> list[int]:
        """The dataset indices of the ``prompts_per_step`` prompts of (step, round), all ranks."""
        size = self.run.prompts_per_step
        self.stream.position = (step * self.rounds + round_) * size
        return self.stream.take(size)

    def sampling(self, step: int, round_: int) -> SamplingSpec:
        """How (step, round) samples; its seed depends only on the run seed, step and round."""
        rollout, draw = self.run.rollout, step * self.rounds + round_
        return SamplingSpec(n=rollout.n, temperature=rollout.temperature, top_p=rollout.top_p,
                            max_new_tokens=rollout.max_new_tokens,
                            seed=stream_seed(self.run.seed, draw * self.run.prompts_per_step))

    def _score(self, index: list[int], rollouts: Rollouts, params: dict[str, Any]
               ) -> tuple[list[str], torch.Tensor, torch.Tensor]:
        """Reference answers [N G], binary correctness and shaped rewards [N, G]."""
        n = self.run.rollout.n
        answers = [self.problems[i].answer for i in index for _ in range(n)]
        correct = torch.tensor(score_batch(rollouts.texts, answers)).view(-1, n)
        lengths = torch.tensor([len(r) for r in rollouts.response_ids]).view(-1, n)
        rewards = shape_rewards(self.run.algorithm.reward_shaping, correct, lengths,
                                self.run.rollout.max_new_tokens, params)
        return answers, correct, rewards

    def collect(self, step: int, params: dict[str, Any], timer: Timer) -> StepBatch:
        """Step ``step``'s kept groups with their advantages under the flat algorithm
        ``params`` (this step's scheduled values included)."""
        n, filtering = self.run.rollout.n, self.filter is not None
        target = len(range(self.rank, self.run.prompts_per_step, self.world))
        index: list[int] = []
        kept: list[Rollouts] = []
        answers: list[str] = []
        correct, rewards = [], []
        dropped = rounds = 0
        for round_ in range(self.rounds):
            rounds += 1
            drawn = self.draw(step, round_)[self.rank::self.world]
            with timer("generate"):
                rollouts = self.engine.generate([self.prompts[i] for i in drawn],
                                                self.sampling(step, round_))
            with timer("reward"):
                round_answers, round_correct, round_rewards = self._score(drawn, rollouts, params)
            keep = GROUP_FILTERS.lookup(self.filter).fn(round_correct) if filtering else \
                torch.ones(len(drawn), dtype=torch.bool)
            for g in keep.nonzero().flatten().tolist()[:max(0, target - len(index))]:
                index.append(drawn[g])
                kept.append(Rollouts(*(x[g * n:(g + 1) * n] for x in (
                    rollouts.response_ids, rollouts.logprobs, rollouts.texts,
                    rollouts.truncated))))
                answers += round_answers[g * n:(g + 1) * n]
                correct.append(round_correct[g])
                rewards.append(round_rewards[g])
            dropped += int((~keep).sum())
            if distributed.all_reduce(float(len(index) < target), op="max") == 0:
                break
        correct_t = torch.stack(correct) if correct else torch.zeros(0, n)
        rewards_t = torch.stack(rewards) if rewards else torch.zeros(0, n)
        advantages = torch.zeros(0, n)
        if index:
            name = self.run.algorithm.advantage
            advantages = compute_advantages(
                name, estimator_rewards(name, correct_t, rewards_t),
                **ADVANTAGE_ESTIMATORS.own(name, params))
        metrics = {"filter/kept_groups": distributed.all_reduce(float(len(index))),
                   "filter/dropped_groups": distributed.all_reduce(float(dropped)),
                   "filter/rounds": float(rounds)} if filtering else {}
        response_ids = [r for part in kept for r in part.response_ids]
        mask, sampler = response_tensors(response_ids,
                                         [lp for part in kept for lp in part.logprobs])
        return StepBatch(
            prompt_index=index, prompt_ids=[self.prompts[i] for i in index for _ in range(n)],
            response_ids=response_ids, texts=[t for part in kept for t in part.texts],
            answers=answers, truncated=[t for part in kept for t in part.truncated],
            correct=correct_t, rewards=rewards_t, advantages=advantages.flatten(),
            response_mask=mask, sampler_logprobs=sampler,
            global_rows=data_parallel_rows(len(index), n),
            shaped=bool(self.run.algorithm.reward_shaping), metrics=metrics)
