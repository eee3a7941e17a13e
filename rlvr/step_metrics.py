"""A step's metrics over all ranks (METHODS.md section 4), and a run's summary.

Each rank's rows are gathered (``distributed.gather_rows``) before any statistic, so every rank,
and a single process holding the same global batch, logs the same values.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from rlvr.algorithms import diagnostics
from rlvr.batch import StepBatch
from rlvr.learner import distributed


class StageTimer:
    """Wall seconds per named stage of a step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[stage] += time.perf_counter() - start


def sequence_logprobs(batch: StepBatch) -> torch.Tensor:
    """[B] length-normalised pre-update log-probs of the batch's rollouts (``old_logprobs``)."""
    mask = batch.response_mask
    return (batch.old_logprobs * mask).sum(1) / mask.sum(1)


def step_metrics(batch: StepBatch, token_weights: bool) -> dict[str, float]:
    """The per-step diagnostics of the global batch, after the learner filled the batch's
    pre-update ``entropy``, ``old_logprobs`` and ``token_weights``: token-mean entropy, the
    advantage channels, kappa, the token weights (when ``token_weights`` are configured), the
    response lengths and, when shaping is configured, the mean shaped reward."""
    gather = distributed.gather_rows
    mask = batch.response_mask
    correct = gather(batch.correct)
    advantages = batch.rollout_advantages().view_as(batch.correct)
    metrics = {"train/entropy": distributed.token_mean(batch.entropy, mask)}
    metrics.update({f"adv/{k}": v for k, v in
                    diagnostics.channel_stats(gather(advantages), correct).items()})
    metrics["diag/kappa"] = diagnostics.kappa(
        correct, gather(sequence_logprobs(batch).view_as(batch.correct)))
    if token_weights:
        metrics.update({f"weights/{k}": v for k, v in diagnostics.token_weight_stats(
            gather(batch.token_weights), gather(mask),
            gather(batch.rollout_advantages())).items()})
    # explicit dtypes: a rank that kept no group gathers empty tensors of the others' dtype
    lengths = torch.tensor([len(r) for r in batch.response_ids], dtype=torch.long)
    truncated = torch.tensor(batch.truncated, dtype=torch.bool)
    metrics.update({f"response/{k}": v for k, v in diagnostics.length_stats(
        gather(lengths), gather(truncated)).items()})
    if batch.shaped:
        metrics["adv/shaped_reward_mean"] = float(gather(batch.rewards).mean())
    return metrics


def timing_metrics(timer: StageTimer, step_seconds: float, started: float, batch: StepBatch
                   ) -> dict[str, float]:
    """Seconds per stage and per step (the slowest rank's), time since the run started, and
    tokens per second over all ranks."""
    step_seconds = distributed.all_reduce(step_seconds, op="max")
    metrics = {f"time/{k}": distributed.all_reduce(v, op="max")
               for k, v in timer.seconds.items()}
    metrics["time/step"] = step_seconds
    metrics["time/elapsed"] = time.perf_counter() - started
    tokens = distributed.all_reduce(float(sum(map(len, batch.response_ids))))
    metrics["throughput/tokens_per_s"] = tokens / step_seconds
    metrics["throughput/gen_tokens_per_s"] = tokens / metrics["time/generate"]
    return metrics


def run_summary(eval_history: list[tuple[int, float]], last_eval: dict[str, float]
                ) -> dict[str, float]:
    """Best and final eval averages, and the spread of the eval average over checkpoints
    (SA-AH-GRPO's "training variance"; METHODS.md section 5 reports variance and std)."""
    summary = dict(last_eval)
    if eval_history:
        values = torch.tensor([v for _, v in eval_history], dtype=torch.float64)
        best = int(values.argmax())
        summary.update({
            "eval/best_average": float(values[best]), "eval/best_step": eval_history[best][0],
            "eval/final_average": float(values[-1]),
            "eval/average_variance": float(values.var(unbiased=False)),
            "eval/average_std": float(values.std(unbiased=False)),
        })
    return summary
