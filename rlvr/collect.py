"""One step's training data: generate -> reward -> (filter, refill) -> advantages.

``RolloutCollector.collect`` samples G rollouts for each of the step's prompts, verifies them
(binary correctness), adds DAPO's overlong shaping when configured (the shaped reward), and with
``rollout.filter_groups`` drops the groups whose correctness is all 0 or all 1, drawing more
prompts in further rounds until ``prompts_per_step`` groups are kept or
``rollout.max_filter_rounds`` rounds ran (then the step trains on what was kept, possibly
nothing). Advantages are computed on the kept groups: estimators that accept shaped rewards see
them, the others the correctness (rlvr/algorithms/advantages.py ``estimator_rewards``).

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
from dataclasses import dataclass, field
from typing import Any

import torch

from rlvr.algorithms.advantages import ADVANTAGE_ESTIMATORS, compute_advantages, estimator_rewards
from rlvr.algorithms.dapo import informative_groups, overlong_buffer, overlong_penalty
from rlvr.config import RunConfig
from rlvr.data.problem import Problem
from rlvr.data.prompts import PromptStream
from rlvr.learner import distributed
from rlvr.rewards import score_batch
from rlvr.rollout.base import RolloutEngine, Rollouts, SamplingSpec
from rlvr.seeding import stream_seed

Timer = Callable[[str], AbstractContextManager[Any]]


@dataclass
class StepBatch:
    """The kept groups of one step, N groups of G rollouts, in group order.

    Attributes:
        prompt_index: dataset index of each group's prompt [N].
        rollouts: their N x G rollouts.
        answers: the reference answer of each rollout [N G].
        correct: [N, G] binary correctness.
        rewards: [N, G] shaped rewards (= correct without shaping).
        advantages: [N, G].
        metrics: the filter's counts (empty without filtering).
    """

    prompt_index: list[int]
    rollouts: Rollouts
    answers: list[str]
    correct: torch.Tensor
    rewards: torch.Tensor
    advantages: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def num_groups(self) -> int:
        return len(self.prompt_index)


def _concat(parts: list[Rollouts]) -> Rollouts:
    """One ``Rollouts`` of ``parts`` in order."""
    return Rollouts([r for p in parts for r in p.response_ids],
                    [r for p in parts for r in p.logprobs],
                    [t for p in parts for t in p.texts],
                    [t for p in parts for t in p.truncated])


class RolloutCollector:
    """Draws, samples, verifies and filters each step's groups (module docstring)."""

    def __init__(self, run: RunConfig, engine: RolloutEngine, prompts: list[list[int]],
                 problems: list[Problem], stream: PromptStream) -> None:
        self.run, self.engine, self.prompts, self.problems = run, engine, prompts, problems
        self.stream = stream
        self.rank, self.world = distributed.rank(), distributed.world_size()
        self.rounds = run.rollout.max_filter_rounds if run.rollout.filter_groups else 1
        self.buffer = overlong_buffer(run.rollout.max_new_tokens, run.algorithm.overlong_fraction)

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

    def _score(self, index: list[int], rollouts: Rollouts) -> tuple[list[str], torch.Tensor,
                                                                      torch.Tensor]:
        n = self.run.rollout.n
        answers = [self.problems[i].answer for i in index for _ in range(n)]
        correct = torch.tensor(score_batch(rollouts.texts, answers)).view(-1, n)
        lengths = torch.tensor([len(r) for r in rollouts.response_ids])
        shaping = overlong_penalty(lengths, self.run.rollout.max_new_tokens, self.buffer)
        rewards = correct if self.buffer == 0 else \
            (correct.to(torch.float64) + shaping.view(-1, n)).to(correct.dtype)
        return answers, correct, rewards

    def collect(self, step: int, params: dict[str, Any], timer: Timer) -> StepBatch:
        """Step ``step``'s kept groups with their advantages under the flat algorithm
        ``params`` (this step's scheduled values included)."""
        n, filtering = self.run.rollout.n, self.run.rollout.filter_groups
        target = len(range(self.rank, self.run.prompts_per_step, self.world))
        index: list[int] = []
        parts: list[Rollouts] = []
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
                round_answers, round_correct, round_rewards = self._score(drawn, rollouts)
            keep = informative_groups(round_correct) if filtering else \
                torch.ones(len(drawn), dtype=torch.bool)
            for g in keep.nonzero().flatten().tolist()[:max(0, target - len(index))]:
                index.append(drawn[g])
                parts.append(Rollouts(*(x[g * n:(g + 1) * n] for x in (
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
        return StepBatch(index, _concat(parts), answers, correct_t, rewards_t, advantages,
                         metrics)
