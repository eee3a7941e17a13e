"""The one small interface every rollout engine implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import nn


@dataclass(frozen=True)
class SamplingSpec:
    """How to sample: ``n`` completions per prompt; ``temperature == 0`` means greedy.

    ``seed`` makes a call reproducible: prompt i of the call samples with seed
    ``seed + i * seed_stride``, so a resumed run draws the same rollouts as an uninterrupted one,
    and a data-parallel rank holding every ``world``-th prompt of a step (stride ``world``,
    ``seed`` offset by its rank) samples each prompt with the seed a single process gives it.
    The ``hf`` engine seeds a whole call with ``seed`` (its batched sampling has one stream).
    """

    n: int
    temperature: float
    top_p: float
    max_new_tokens: int
    seed: int
    seed_stride: int = 1


@dataclass
class Rollouts:
    """``len(prompts) x n`` completions, grouped: rows ``i*n .. i*n+n-1`` answer prompt ``i``.

    Attributes:
        response_ids: generated token ids per row (ending with EOS unless truncated).
        logprobs: the sampler's log-prob of each generated token under the distribution it
            sampled from (temperature applied), aligned with ``response_ids``.
        texts: decoded completions without special tokens.
        truncated: True where generation stopped at ``max_new_tokens``.
    """

    response_ids: list[list[int]]
    logprobs: list[list[float]]
    texts: list[str]
    truncated: list[bool]

    def __len__(self) -> int:
        return len(self.response_ids)


class RolloutEngine(Protocol):
    """Generates rollouts and receives the policy's weights after every optimiser step."""

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> Rollouts:
        """Sample ``sampling.n`` completions for each tokenised prompt."""
        ...

    def score(self, sequences: list[list[int]], prompt_lengths: list[int]) -> list[list[float]]:
        """Log-prob (temperature 1) of every token after the prompt, given its prefix."""
        ...

    def sync_weights(self, policy: nn.Module) -> None:
        """Make the engine sample from ``policy``'s current weights."""
        ...

    def sleep(self) -> None:
        """Release accelerator memory while the learner runs (no-op where not supported)."""
        ...

    def wake_up(self) -> None:
        """Re-acquire what ``sleep`` released, before the next generation."""
        ...
