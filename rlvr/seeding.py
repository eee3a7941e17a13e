"""How a run's seed becomes the seeds of its random streams: the one place of these formulas.

Every stream that must replay identically after a resume is seeded from the run seed and a
counter that the checkpoint restores (a step, an epoch, a scheduler position):

- ``stream_seed(seed, counter) = seed * 1_000_003 + counter`` for rollout sampling (counter: the
  index of the step's first prompt), the prompt order (counter: the epoch) and the learner's
  mini-batch shuffles (counter: the optimiser step). 1_000_003 is a prime larger than any counter
  of a run, so different run seeds never share a stream.
- ``eval_seed(seed, step) = seed + 7919 * step`` for the evaluation at ``step`` (7919 is the
  1000th prime); ``python -m rlvr.evaluate`` evaluates as step 0, i.e. with the run seed itself.
- ``selection_seed(seed, step, epoch, mini_batch)`` for a policy loss's random token selection
  (Clip-Cov) of one mini-batch: ``stream_seed(seed, 2**20 + 4096 step + 64 epoch + mini_batch)``,
  apart from the shuffles' counters, the same on every rank whatever each rank holds.

Changing either formula changes every committed result.
"""

from __future__ import annotations

_SEED_STRIDE = 1_000_003
_EVAL_STEP_STRIDE = 7919


def stream_seed(seed: int, counter: int) -> int:
    """The seed of a resumable stream: ``seed * 1_000_003 + counter``."""
    return seed * _SEED_STRIDE + counter


def selection_seed(seed: int, step: int, epoch: int, mini_batch: int) -> int:
    """The seed of the token selection of (optimiser step ``step``, ``epoch``, ``mini_batch``)
    (module docstring); epochs < 64 and mini-batches < 64 keep the counters apart."""
    return stream_seed(seed, 2**20 + 4096 * step + 64 * epoch + mini_batch)


def eval_seed(seed: int, step: int) -> int:
    """The sampling seed of the evaluation at ``step``: ``seed + 7919 * step``."""
    return seed + _EVAL_STEP_STRIDE * step
