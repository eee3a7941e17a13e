"""The policy update of one GRPO step: PPO epochs over mini-batches of micro-batches.

Per step (DESIGN.md): old log-probs (only when the update is off-policy), then for each epoch and
mini-batch, micro-batch forwards through the fused log-prob/entropy op, token weights, the policy
loss with the mini-batch's global normaliser (so the accumulated gradient equals the mini-batch
gradient), one clipped AdamW step per mini-batch. With one epoch and one mini-batch the update is
on-policy and old log-probs are the current ones, detached: no extra forward pass. The other
passes run only for the parts that read them (rlvr/algorithms/parts.py ``step_inputs``): the
reference policy's log-probs for a KL penalty, and, for a loss that reads ``selected`` (Clip-Cov,
KL-Cov), one no-grad pass per mini-batch to select its tokens over the whole mini-batch (the
covariance means and the selected fraction must not depend on micro-batching). The learner reads
and extends the step's ``StepBatch`` (rlvr/batch.py).

With ``learner.strategy=fsdp`` under ``torchrun`` each rank updates on its own rollouts: the
mini-batches are drawn from the global batch (one permutation of the global row ids, the same on
every rank and in a single process), the normaliser counts the whole mini-batch across ranks, the
loss is scaled by the world size (FSDP averages gradients), and every rank runs the same number of
micro-batches. So a sharded update equals the single-process update of the same global batch.

Forward and backward run in ``model.dtype`` (rlvr/learner/policy.py ``compute_precision``) on
float32 master weights. An optimiser step whose loss or gradient norm is not finite (on any rank)
is skipped, gradients dropped; ``learner.max_nonfinite_steps`` skipped steps in a row stop the
run with ``NonFiniteStepError``, and so do weights that are not finite after an applied step.
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rlvr.algorithms.losses import LossNormalizer, compute_policy_loss, select_tokens
from rlvr.algorithms.parts import step_inputs
from rlvr.algorithms.weights import compute_combined_token_weights
from rlvr.batch import StepBatch
from rlvr.config import AlgorithmConfig, LearnerConfig
from rlvr.learner import distributed
from rlvr.learner.batching import collate, plan_micro_batches, split_to_count
from rlvr.learner.forward import response_logprobs
from rlvr.learner.policy import DTYPES, ReferencePolicy, compute_precision
from rlvr.seeding import selection_seed, stream_seed


class NonFiniteStepError(RuntimeError):
    """Too many optimiser steps in a row had a non-finite loss or gradient norm."""


@dataclass
class UpdateResult:
    """What one update measured: its metrics (global over ranks) and the optimiser steps
    ``applied`` (the others were skipped as non-finite). The update also filled the batch's
    pre-update ``old_logprobs``, ``entropy`` and the first epoch's ``token_weights``."""

    metrics: dict[str, float]
    applied: int


def lr_lambda(schedule: str, warmup_steps: int, total_steps: int):
    """Multiplier of the peak learning rate at a training step: linear warm-up, then constant,
    cosine to 0, or linear to 0 over the remaining steps."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        if schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
        return max(0.0, 1.0 - progress)
    return factor


class Learner:
    """Owns the optimiser and scheduler of ``policy`` and applies one update per step."""

    def __init__(self, policy: nn.Module, cfg: LearnerConfig, algorithm: AlgorithmConfig, *,
                 vocab_size: int, pad_id: int, temperature: float, max_new_tokens: int,
                 total_steps: int, tis_cap: float | None, seed: int,
                 dtype: str = "float32") -> None:
        """``dtype``: the compute dtype (``model.dtype``); the trained weights stay as loaded."""
        self.policy = policy
        self.cfg = cfg
        self.algorithm = algorithm
        self.vocab_size = vocab_size
        self.pad_id = pad_id
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.tis_cap = tis_cap
        self.seed = seed
        self.dtype = dtype
        self.device = next(policy.parameters()).device
        self.world = distributed.world_size()
        self.nonfinite_in_a_row = 0
        self.inputs = step_inputs(algorithm)
        # a full fine-tune's reference is a copy taken before sharding, then sharded like the policy
        self.reference = ReferencePolicy(policy) if "ref_logprobs" in self.inputs else None
        if cfg.strategy == "fsdp":
            distributed.shard(policy, DTYPES[dtype])
            if self.reference is not None and self.reference.is_copy:
                distributed.shard(self.reference.model(), DTYPES[dtype])
        self.params = [p for p in policy.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, betas=tuple(cfg.betas),
                                           weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(cfg.lr_schedule, cfg.warmup_steps, total_steps))

    @property
    def on_policy(self) -> bool:
        return self.cfg.ppo_epochs == 1 and self.cfg.mini_batches == 1

    def _micro_batches(self, rows: list[int], batch: StepBatch) -> list[tuple[list[int], bool]]:
        """Micro-batches of the local ``rows`` as (row indices, real).

        Under FSDP every rank runs the same number of forward/backward passes (their collectives
        must pair up): a rank splits its micro-batches up to the largest count over ranks, and a
        rank with fewer rows than that count (possibly none of a mini-batch, or none at all)
        adds placeholder passes (real = False) over the one-token ``_placeholder`` row, whose
        results are discarded and whose loss counts 0.
        """
        lengths = [len(batch.prompt_ids[i]) + len(batch.response_ids[i]) for i in rows]
        plan = plan_micro_batches(lengths, self.cfg.micro_batch_size,
                                  self.cfg.max_tokens_per_micro_batch) if rows else []
        placeholders = 0
        if self.world > 1:
            count = int(distributed.all_reduce(len(plan), op="max"))
            plan = split_to_count(plan, min(count, len(rows)))
            placeholders = count - len(plan)
        return [([rows[j] for j in mb], True) for mb in plan] + [([], False)] * placeholders

    def _mini_batches(self, batch: StepBatch, epoch: int, generator: torch.Generator
                      ) -> list[tuple[list[int], list[int]]]:
        """This epoch's mini-batches as (local row indices, the chunk's global row ids in order):
        a permutation of the global row ids (identity in epoch 0 with one mini-batch) cut into
        ``mini_batches`` chunks, each rank keeping its own rows of every chunk."""
        num_local = batch.num_rows
        global_rows = batch.global_rows if batch.global_rows is not None \
            else list(range(num_local))
        total = int(distributed.all_reduce(num_local))
        order = torch.arange(total) if epoch == 0 and self.cfg.mini_batches == 1 \
            else torch.randperm(total, generator=generator)
        local = {row: i for i, row in enumerate(global_rows)}
        return [([local[row] for row in chunk.tolist() if row in local], chunk.tolist())
                for chunk in order.chunk(self.cfg.mini_batches)]

    def _placeholder(self, like: StepBatch) -> StepBatch:
        """One row of one pad token (prompt and response), for a placeholder pass: the fields a
        loss reads of ``like`` (reference log-probs, selected tokens, token-level advantages)
        are present as zeros, so its statistics have ``like``'s keys."""
        advantages = torch.zeros(1, 1) if like.advantages.dim() == 2 else torch.zeros(1)
        row = StepBatch.of_rows([[self.pad_id]], [[self.pad_id]], torch.zeros(1, 1),
                                torch.ones(1, 1), advantages)
        if like.ref_logprobs is not None:
            row.ref_logprobs = torch.zeros(1, 1)
        if like.selected is not None:
            row.selected = torch.zeros(1, 1, dtype=torch.bool)
        return row

    def _pass_rows(self, batch: StepBatch, mb: list[int], real: bool
                   ) -> tuple[StepBatch, list[int]]:
        """The batch and rows a micro-batch pass runs on: ``mb`` of ``batch``, or the
        placeholder row for a placeholder pass."""
        return (batch, mb) if real else (self._placeholder(batch), [0])

    @torch.no_grad()
    def _score_all(self, batch: StepBatch, model: nn.Module, rows: list[int] | None = None
                   ) -> tuple[Tensor, Tensor]:
        """[B, T] log-probs and entropies under ``model``, no gradient, of the rows ``rows``
        (default: every rollout; other rows stay 0)."""
        logp = torch.zeros_like(batch.response_mask)
        entropy = torch.zeros_like(batch.response_mask)
        rows = list(range(batch.num_rows)) if rows is None else rows
        for mb, real in self._micro_batches(rows, batch):
            source, index = self._pass_rows(batch, mb, real)
            seq = collate([source.prompt_ids[i] for i in index],
                          [source.response_ids[i] for i in index], self.pad_id, self.device)
            with compute_precision(self.device, self.dtype):
                lp, ent = response_logprobs(model, seq, self.temperature, self.cfg.logprob_chunk)
            if not real:
                continue
            width = lp.shape[1]
            logp[mb, :width] = lp.to(logp.device)
            entropy[mb, :width] = ent.to(entropy.device)
        return logp, entropy

    def _select_tokens(self, batch: StepBatch, mini_rows: list[int], chunk: list[int],
                       params: dict[str, Any], generator: torch.Generator) -> Tensor:
        """[B, T] bool: the tokens the policy loss selects in the mini-batch ``mini_rows``,
        from the current policy's log-probs of the WHOLE mini-batch (one no-grad pass), so the
        covariance means and the selected fraction are the mini-batch's, not a micro-batch's.

        Under data parallelism the mini-batch is every rank's rows of the global ``chunk``: each
        rank gathers them all, in the chunk's order (a single process's order), selects over
        them with the same ``generator``, and keeps its own rows, so the ranks together select
        exactly the tokens one process selects."""
        logp, _ = self._score_all(batch, self.policy, mini_rows)
        view = batch.rows(mini_rows)
        tensors = {"logp": logp[mini_rows], "advantages": view.advantages,
                   "response_mask": view.response_mask, "old_logprobs": view.old_logprobs}
        if self.world > 1:
            order = {row: k for k, row in enumerate(chunk)}
            mine = torch.tensor([order[batch.global_rows[i]] for i in mini_rows],
                                dtype=torch.long)
            in_chunk_order = torch.argsort(distributed.gather_rows(mine))
            tensors = {k: None if v is None else distributed.gather_rows(v)[in_chunk_order]
                       for k, v in tensors.items()}
        whole = StepBatch.of_rows([[]] * len(tensors["advantages"]),
                                  [[]] * len(tensors["advantages"]),
                                  torch.zeros_like(tensors["response_mask"]),
                                  tensors["response_mask"], tensors["advantages"])
        whole.old_logprobs = tensors["old_logprobs"]
        chosen = select_tokens(self.algorithm.policy_loss, whole, tensors["logp"], generator,
                               params, self.algorithm.loss)
        if self.world > 1:  # this rank's rows of the chunk, in its own order
            chosen = chosen[mine]
        selected = torch.zeros(batch.response_mask.shape, dtype=torch.bool)
        width = min(chosen.shape[1], selected.shape[1])
        selected[mini_rows, :width] = chosen[:, :width]
        return selected

    def sequence_logprobs(self, batch: StepBatch) -> Tensor:
        """[B] length-normalised log-probs under the current policy (for diagnostics)."""
        logp, _ = self._score_all(batch, self.policy)
        return (logp * batch.response_mask).sum(1) / batch.response_mask.sum(1)

    def _micro_view(self, batch: StepBatch, mb: list[int], width: int, logp: Tensor,
                    entropy: Tensor, params: dict[str, Any]) -> StepBatch:
        """The micro-batch ``mb`` on the device, cut to ``width`` columns, with what its loss
        reads: the old log-probs and entropies (this forward's, detached, when the update is
        on-policy), the token weights and the truncated importance weights."""
        view = batch.rows(mb, width, self.device)
        if view.old_logprobs is None:
            view.old_logprobs = logp.detach()
        if view.entropy is None:
            view.entropy = entropy.detach()
        mask = view.response_mask
        view.token_weights = compute_combined_token_weights(
            self.algorithm.token_weights, view.advantages, view.entropy, mask, self.vocab_size,
            params)
        if self.tis_cap is not None:
            view.is_weights = torch.exp(view.old_logprobs - view.sampler_logprobs).clamp(
                max=self.tis_cap) * mask
        return view

    def update(self, batch: StepBatch, params: dict[str, Any]) -> UpdateResult:
        """One training step's policy update; returns its metrics and fills the batch's
        pre-update ``old_logprobs``, ``entropy`` and first-epoch ``token_weights``.

        ``params``: the algorithm's flat parameters for this step (scheduled values included);
        each token weight and the policy loss take the ones they declare. Passes run only where
        needed: old log-probs when off-policy, the reference when a part reads ``ref_logprobs``,
        a selection pass per mini-batch when the loss reads ``selected``."""
        mask = batch.response_mask
        old_batch = batch
        if not self.on_policy:
            old_logp, old_entropy = self._score_all(batch, self.policy)
            old_batch = dataclasses.replace(batch, old_logprobs=old_logp, entropy=old_entropy)
        if "ref_logprobs" in self.inputs:
            with self.reference.context():
                old_batch.ref_logprobs, _ = self._score_all(batch, self.reference.model())
        first_logp = torch.zeros_like(mask)
        first_entropy = torch.zeros_like(mask)
        first_weights = torch.ones_like(mask)
        sums: dict[str, float] = defaultdict(float)
        grad_norms: list[float] = []
        skipped = 0
        # mini-batch shuffles differ per step and replay identically after a resume
        generator = torch.Generator().manual_seed(stream_seed(self.seed,
                                                              self.scheduler.last_epoch))
        for epoch in range(self.cfg.ppo_epochs):
            for index, (mini_rows, chunk) in enumerate(self._mini_batches(batch, epoch,
                                                                          generator)):
                norm = LossNormalizer(
                    num_tokens=distributed.all_reduce(float(mask[mini_rows].sum())),
                    num_seqs=int(distributed.all_reduce(len(mini_rows))),
                    max_new_tokens=self.max_new_tokens)
                old_batch.selected = self._select_tokens(
                    old_batch, mini_rows, chunk, params, torch.Generator().manual_seed(
                        selection_seed(self.seed, self.scheduler.last_epoch, epoch, index))
                ) if "selected" in self.inputs else None
                loss_finite = True
                for mb, real in self._micro_batches(mini_rows, batch):
                    source, index = self._pass_rows(old_batch, mb, real)
                    seq = collate([source.prompt_ids[i] for i in index],
                                  [source.response_ids[i] for i in index], self.pad_id,
                                  self.device)
                    with compute_precision(self.device, self.dtype):
                        logp, entropy = response_logprobs(self.policy, seq, self.temperature,
                                                          self.cfg.logprob_chunk)
                    width = logp.shape[1]
                    view = self._micro_view(source, index, width, logp, entropy, params)
                    if epoch == 0 and real:
                        first_logp[mb, :width] = view.old_logprobs.cpu()
                        first_entropy[mb, :width] = view.entropy.cpu()
                        first_weights[mb, :width] = view.token_weights.cpu()
                    out = compute_policy_loss(view, logp, entropy,
                                              policy_loss=self.algorithm.policy_loss,
                                              settings=self.algorithm.loss, params=params,
                                              norm=norm)
                    (out.loss * (self.world if real else 0.0)).backward()
                    # a placeholder adds its statistics' keys (every rank reduces the same
                    # keys) with weight 0
                    n_tok = float(seq.response_mask.sum()) if real else 0.0
                    loss_finite = loss_finite and (not real
                                                   or bool(torch.isfinite(out.loss.detach())))
                    for key, value in out.stats.items():
                        sums[key] += float(value) * n_tok if real else 0.0
                    sums["_tokens"] += n_tok
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(self.params,
                                                                       self.cfg.grad_clip)))
                if self._finite_step(loss_finite, grad_norms[-1]):
                    self.optimizer.step()
                    self._check_weights_finite()
                else:
                    skipped += 1
                self.optimizer.zero_grad(set_to_none=True)
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        tokens = distributed.all_reduce(sums.pop("_tokens"))
        metrics = {f"loss/{k}": distributed.all_reduce(v) / tokens for k, v in sums.items()}
        metrics["optim/grad_norm"] = sum(grad_norms) / len(grad_norms)
        metrics["optim/grad_norm_max"] = max(grad_norms)
        metrics["optim/lr"] = lr
        metrics["optim/updates"] = float(len(grad_norms) - skipped)
        metrics["train/nonfinite_skipped"] = float(skipped)
        metrics.update(_mismatch_metrics(*(distributed.gather_rows(t) for t in (
            first_logp, batch.sampler_logprobs, mask))))
        batch.old_logprobs, batch.entropy, batch.token_weights = \
            first_logp, first_entropy, first_weights
        batch.ref_logprobs = old_batch.ref_logprobs
        return UpdateResult(metrics=metrics, applied=len(grad_norms) - skipped)

    def _check_weights_finite(self) -> None:
        """After an applied optimiser step: a finite loss and gradient can still step the
        weights to inf or NaN (an overflowing learning rate); the step cannot be undone without
        a copy of the weights, so the run stops before anything saves them.

        Raises:
            NonFiniteStepError: some parameter is not finite (on any rank).
        """
        if not distributed.all_finite(self.params):
            raise NonFiniteStepError(
                f"the weights are not finite after an optimiser step (learner.lr "
                f"{self.scheduler.get_last_lr()[0]:g}); stopping before they are saved, the "
                f"last checkpoint is intact. Lower learner.lr, or check model.dtype")

    def _finite_step(self, loss_finite: bool, grad_norm: float) -> bool:
        """Whether the optimiser step may go ahead: loss and gradient norm finite on every rank.

        Raises:
            NonFiniteStepError: at the ``learner.max_nonfinite_steps``-th non-finite step in a row.
        """
        bad = not (loss_finite and math.isfinite(grad_norm))
        if distributed.all_reduce(float(bad), op="max") == 0:
            self.nonfinite_in_a_row = 0
            return True
        self.nonfinite_in_a_row += 1
        if self.nonfinite_in_a_row >= self.cfg.max_nonfinite_steps:
            raise NonFiniteStepError(
                f"{self.nonfinite_in_a_row} optimiser steps in a row had a non-finite loss or "
                f"gradient norm (last: loss finite {loss_finite}, grad norm {grad_norm}); "
                f"stopping at learner.max_nonfinite_steps={self.cfg.max_nonfinite_steps}. "
                f"Lower learner.lr, or check model.dtype and the data of the last steps")
        return False


def _mismatch_metrics(learner_logp: Tensor, sampler_logp: Tensor, mask: Tensor
                      ) -> dict[str, float]:
    """How far the sampler's log-probs are from the learner's, and the importance ratio
    pi_learner / pi_sampler, over response tokens (tensors [B, T] of the global batch)."""
    on = mask.bool()
    diff = (learner_logp - sampler_logp)[on]
    ratio = diff.exp()
    return {
        "mismatch/abs_logp_diff_mean": float(diff.abs().mean()),
        "mismatch/abs_logp_diff_max": float(diff.abs().max()),
        "mismatch/is_ratio_mean": float(ratio.mean()),
        "mismatch/is_ratio_max": float(ratio.max()),
        "mismatch/is_ratio_min": float(ratio.min()),
    }
