"""Prompts as token ids, tokenised once per run, and the resumable order they are drawn in."""

from __future__ import annotations

import torch

from rlvr.data.problem import Problem
from rlvr.data.templates import render_prompt
from rlvr.seeding import stream_seed


def encode_prompts(problems: list[Problem], tokenizer, family: str) -> list[list[int]]:
    """Token ids of every problem's prompt in the model family's template (no extra BOS)."""
    texts = [render_prompt(p.problem, family, tokenizer) for p in problems]
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


class PromptStream:
    """An endless sequence of problem indices: epoch e is a permutation seeded by (seed, e).

    Its whole state is ``position`` (indices drawn so far), so a resumed run continues with
    exactly the prompts an uninterrupted run would have drawn.
    """

    def __init__(self, size: int, seed: int, position: int = 0) -> None:
        if size < 1:
            raise ValueError("the training set is empty")
        self.size, self.seed, self.position = size, seed, position
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def _order_of(self, epoch: int) -> torch.Tensor:
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
            self._epoch, self._order = epoch, torch.randperm(self.size, generator=generator)
        return self._order

    def take(self, count: int) -> list[int]:
        out = []
        for _ in range(count):
            epoch, offset = divmod(self.position, self.size)
            out.append(int(self._order_of(epoch)[offset]))
            self.position += 1
        return out
