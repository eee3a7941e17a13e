"""Laying rollouts out as tensors, and splitting them into micro-batches.

A row is ``prompt + response`` right-padded to the micro-batch's longest row, so position ids are
plain ``arange`` and no left padding reaches the model. Response-aligned tensors ([B, T]: sampler
log-probs, masks, token weights) start at the first response token, so a micro-batch is a row
subset and a column prefix of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class SequenceBatch:
    """Model inputs for rows of ``prompt + response`` and where their response tokens sit.

    Attributes:
        input_ids, attention_mask: [b, L] right-padded rows.
        response_mask: [b, T] float, 1.0 on response tokens (T = longest response here).
        hidden_rows, hidden_cols: [n] positions (row, column) of the hidden states that predict
            the n response tokens, in row-major order of ``response_mask``.
        targets: [n] the response token ids.
    """

    input_ids: Tensor
    attention_mask: Tensor
    response_mask: Tensor
    hidden_rows: Tensor
    hidden_cols: Tensor
    targets: Tensor

    @property
    def num_tokens(self) -> int:
        return int(self.targets.numel())


def collate(prompts: list[list[int]], responses: list[list[int]], pad_id: int,
            device: torch.device | str = "cpu") -> SequenceBatch:
    """Right-padded ``prompt + response`` rows; every response must have >= 1 token."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    lengths = [len(p) + len(r) for p, r in zip(prompts, responses, strict=True)]
    width, resp_width = max(lengths), max(len(r) for r in responses)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    response_mask = torch.zeros((len(prompts), resp_width), dtype=torch.float32)
    rows, cols, targets = [], [], []
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        if not r:
            raise ValueError(f"row {i} has an empty response")
        input_ids[i, : len(p) + len(r)] = torch.tensor(p + r, dtype=torch.long)
        attention_mask[i, : len(p) + len(r)] = 1
        response_mask[i, : len(r)] = 1.0
        rows.extend([i] * len(r))
        cols.extend(range(len(p) - 1, len(p) + len(r) - 1))
        targets.extend(r)
    return SequenceBatch(
        input_ids=input_ids.to(device),
        attention_mask=attention_mask.to(device),
        response_mask=response_mask.to(device),
        hidden_rows=torch.tensor(rows, dtype=torch.long, device=device),
        hidden_cols=torch.tensor(cols, dtype=torch.long, device=device),
        targets=torch.tensor(targets, dtype=torch.long, device=device),
    )


def scatter_response(values: Tensor, batch: SequenceBatch) -> Tensor:
    """Place per-token ``values`` [n] back into a zero-padded [b, T] response-aligned tensor."""
    out = torch.zeros(batch.response_mask.shape, dtype=values.dtype, device=values.device)
    return out.masked_scatter(batch.response_mask.bool(), values)


def plan_micro_batches(lengths: list[int], max_rows: int, max_tokens: int | None = None
                       ) -> list[list[int]]:
    """Split row indices into micro-batches of at most ``max_rows`` rows and, if given, at most
    ``max_tokens`` padded tokens (rows x longest row).

    With a token budget the rows are packed longest first, so rows of similar length share a
    micro-batch and little compute goes to padding; without one, rows keep their order.
    A row longer than the budget gets a micro-batch of its own.
    """
    if max_tokens is None:
        idx = list(range(len(lengths)))
        return [idx[i: i + max_rows] for i in range(0, len(idx), max_rows)]
    plan: list[list[int]] = []
    current: list[int] = []
    width = 0
    for i in sorted(range(len(lengths)), key=lambda j: -lengths[j]):
        new_width = max(width, lengths[i])
        if current and (len(current) + 1 > max_rows or (len(current) + 1) * new_width > max_tokens):
            plan.append(current)
            current, new_width = [], lengths[i]
        current.append(i)
        width = new_width
    if current:
        plan.append(current)
    return plan


def split_to_count(plan: list[list[int]], count: int) -> list[list[int]]:
    """Split the largest micro-batches until there are ``count`` (ranks of a data-parallel
    learner must run the same number of forward passes). Needs ``count`` <= the rows in plan."""
    plan = [list(mb) for mb in plan]
    while len(plan) < count:
        largest = max(range(len(plan)), key=lambda i: len(plan[i]))
        if len(plan[largest]) < 2:
            raise ValueError(f"cannot split {sum(map(len, plan))} rows into {count} micro-batches")
        mb = plan.pop(largest)
        plan[largest:largest] = [mb[: len(mb) // 2], mb[len(mb) // 2:]]
    return plan
