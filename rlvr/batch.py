"""The step batch: one step's rollouts as named tensors that every stage reads and extends.

Shapes: N groups of G rollouts of one prompt each, B = N G rows in group order (rows
``i G .. i G + G - 1`` answer prompt ``i``), T the longest response. Response-aligned tensors
start at the first response token and are zero on padding, so a micro-batch is a row subset and
a column prefix of them (``StepBatch.rows``).

Who fills what (DESIGN.md's loop):

- collect (rlvr/collect.py): the prompts and responses, ``correct`` and ``rewards`` [N, G] (the
  reward shapings applied), ``advantages`` [B] or [B, T], ``response_mask`` and
  ``sampler_logprobs`` [B, T], and, under data parallelism, ``global_rows``;
- the learner (rlvr/learner/learner.py): what the configured parts read
  (rlvr/algorithms/parts.py ``step_inputs``): ``ref_logprobs``, ``selected`` per mini-batch;
  after the update, the pre-update ``old_logprobs``, ``entropy`` and the ``token_weights``
  applied in the first epoch, which the step's diagnostics read.

This module is plain data: no I/O, no model, nothing distributed, so ``rlvr/algorithms/`` reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
from torch import Tensor

ROW_TENSORS = ("advantages", "response_mask", "sampler_logprobs", "old_logprobs",
               "ref_logprobs", "entropy", "token_weights", "selected", "is_weights")


@dataclass
class StepBatch:
    """One step's kept groups (module docstring for the shapes and who fills what).

    Attributes:
        prompt_index: [N] dataset index of each group's prompt.
        prompt_ids, response_ids: [B] token ids per row.
        texts, answers: [B] decoded completion and reference answer per row.
        truncated: [B] whether the completion stopped at the token budget.
        correct: [N, G] binary correctness.
        rewards: [N, G] rewards after the configured shapings (= ``correct`` without them).
        advantages: [B] per rollout, or [B, T] per token.
        response_mask: [B, T] 1.0 on response tokens.
        sampler_logprobs: [B, T] the rollout engine's log-probs of the sampled tokens.
        global_rows: [B] each row's index in the step's batch over all ranks; None: this
            process holds the whole batch, in order.
        shaped: some reward shaping is configured (``rewards`` may differ from ``correct``).
        metrics: what collecting measured (the group filter's counts).
        old_logprobs, entropy: [B, T] under the policy that sampled (pre-update).
        ref_logprobs: [B, T] under the reference policy.
        token_weights: [B, T] the weights that multiplied the loss.
        selected: [B, T] bool, tokens a policy loss treats specially (Clip-Cov, KL-Cov).
        is_weights: [B, T] truncated importance weights sampler -> learner.
    """

    prompt_index: list[int]
    prompt_ids: list[list[int]]
    response_ids: list[list[int]]
    texts: list[str]
    answers: list[str]
    truncated: list[bool]
    correct: Tensor | None
    rewards: Tensor | None
    advantages: Tensor
    response_mask: Tensor
    sampler_logprobs: Tensor
    global_rows: list[int] | None = None
    shaped: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    old_logprobs: Tensor | None = None
    ref_logprobs: Tensor | None = None
    entropy: Tensor | None = None
    token_weights: Tensor | None = None
    selected: Tensor | None = None
    is_weights: Tensor | None = None

    @classmethod
    def of_rows(cls, prompt_ids: list[list[int]], response_ids: list[list[int]],
                sampler_logprobs: Tensor, response_mask: Tensor, advantages: Tensor,
                global_rows: list[int] | None = None) -> StepBatch:
        """A batch of rows only, for the learner alone (tests, benchmarks): no groups, texts or
        answers, every completion counted as not truncated."""
        rows = len(response_ids)
        return cls(prompt_index=[], prompt_ids=prompt_ids, response_ids=response_ids,
                   texts=[""] * rows, answers=[""] * rows, truncated=[False] * rows,
                   correct=None, rewards=None, advantages=advantages,
                   response_mask=response_mask, sampler_logprobs=sampler_logprobs,
                   global_rows=global_rows)

    @property
    def num_groups(self) -> int:
        return len(self.prompt_index)

    @property
    def num_rows(self) -> int:
        return len(self.response_ids)

    def token_advantages(self) -> Tensor:
        """The advantages broadcastable over tokens: [B, 1] per rollout, [B, T] per token."""
        return self.advantages if self.advantages.dim() == 2 else self.advantages.unsqueeze(-1)

    def rollout_advantages(self) -> Tensor:
        """[B] one advantage per rollout: as they are, or the token mean over the response of
        token-level ones."""
        if self.advantages.dim() == 1:
            return self.advantages
        mask = self.response_mask
        return (self.advantages * mask).sum(-1) / mask.sum(-1).clamp_min(1)

    def rows(self, index: list[int], width: int | None = None,
             device: torch.device | None = None) -> StepBatch:
        """The rows ``index`` as a batch of their own (a micro-batch view): row fields indexed,
        response tensors cut to ``width`` columns and moved to ``device``; the group fields
        (``prompt_index``, ``correct``, ``rewards``) are left out (empty / None)."""
        def cut(tensor: Tensor | None) -> Tensor | None:
            if tensor is None:
                return None
            part = tensor[index] if tensor.dim() == 1 else tensor[index, :width]
            return part if device is None else part.to(device)

        return dataclasses.replace(
            self, prompt_index=[], correct=None, rewards=None,
            prompt_ids=[self.prompt_ids[i] for i in index],
            response_ids=[self.response_ids[i] for i in index],
            texts=[self.texts[i] for i in index], answers=[self.answers[i] for i in index],
            truncated=[self.truncated[i] for i in index],
            global_rows=None if self.global_rows is None else [self.global_rows[i] for i in index],
            **{name: cut(getattr(self, name)) for name in ROW_TENSORS})


def response_tensors(response_ids: list[list[int]], logprobs: list[list[float]]
                     ) -> tuple[Tensor, Tensor]:
    """(response_mask, sampler_logprobs) [B, T] of ragged rows, zero-padded to the longest."""
    lengths = [len(r) for r in response_ids]
    width = max(lengths, default=0)
    sampler = torch.tensor([row + [0.0] * (width - len(row)) for row in logprobs]
                           ).reshape(len(logprobs), width)
    mask = (torch.arange(width) < torch.tensor(lengths)[:, None]).float()
    return mask, sampler
