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
        """How (step, round) samples on this rank; prompt k of the round (over all ranks) gets
        the seed s(draw P) + k, a function of the run seed, step, round and k only: this rank,
        holding prompts rank, rank + world, ..., samples them with the seeds one process does."""
        rollout, draw = self.run.rollout, step * self.rounds + round_
        base = stream_seed(self.run.seed, draw * self.run.prompts_per_step)
        return SamplingSpec(n=rollout.n, temperature=rollout.temperature, top_p=rollout.top_p,
                            max_new_tokens=rollout.max_new_tokens, seed=base + self.rank,
                            seed_stride=self.world)

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

    def _informative_positions(self, keep: torch.Tensor) -> list[int]:
        """The positions in the round's draw (over all ranks, ascending) of the groups the
        filter keeps; this rank's group j sits at position rank + j * world."""
        if self.world == 1:
            return keep.nonzero().flatten().tolist()
        flags = distributed.gather_rows(keep.to(torch.long)).tolist()
        per_rank = len(flags) // self.world
        return sorted(r + j * self.world for r in range(self.world) for j in range(per_rank)
                      if flags[r * per_rank + j])

    def collect(self, step: int, params: dict[str, Any], timer: Timer) -> StepBatch:
        """Step ``step``'s kept groups with their advantages under the flat algorithm
        ``params`` (this step's scheduled values included).

        The groups kept are decided over all ranks, as one process decides them: the first
        ``prompts_per_step`` the filter passes in (round, position) order. So a rank may keep
        fewer groups than another, or none; ``global_rows`` places each rank's rows where one
        process holds them."""
        size, n, filtering = self.run.prompts_per_step, self.run.rollout.n, self.filter is not None
        kept_positions: list[tuple[int, int]] = []
        mine: list[tuple[int, int]] = []
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
            for position in self._informative_positions(keep)[:size - len(kept_positions)]:
                kept_positions.append((round_, position))
                if position % self.world != self.rank:
                    continue
                g = position // self.world
                mine.append((round_, position))
                index.append(drawn[g])
                kept.append(Rollouts(*(x[g * n:(g + 1) * n] for x in (
                    rollouts.response_ids, rollouts.logprobs, rollouts.texts,
                    rollouts.truncated))))
                answers += round_answers[g * n:(g + 1) * n]
                correct.append(round_correct[g])
                rewards.append(round_rewards[g])
            dropped += int((~keep).sum())
            if len(kept_positions) == size:
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
            global_rows=None if self.world == 1 else [
                kept_positions.index(group) * n + j for group in mine for j in range(n)],
            shaped=bool(self.run.algorithm.reward_shaping), metrics=metrics)
