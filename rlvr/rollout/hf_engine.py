"""transformers ``generate`` rollout engine: samples from the learner's own policy module.

It holds a reference to the policy module, so every generation sees the weights of the last
optimiser step; ``sync_weights`` only adopts the module it is given (a new run's policy). It
computes in ``model.dtype`` like the learner (autocast over float32 master weights).
Sampler log-probs are the log-softmax of ``generate``'s processed scores (temperature and top-p
applied), the distribution the token was drawn from.
"""

from __future__ import annotations

import torch
from torch import nn

from rlvr.learner.batching import collate
from rlvr.learner.forward import response_logprobs
from rlvr.learner.policy import compute_precision
from rlvr.rollout.base import Rollouts, SamplingSpec


class HFEngine:
    """Rollouts from ``policy.generate`` in batches of at most ``max_batch_rows`` rows."""

    def __init__(self, policy: nn.Module, tokenizer, eos_token_ids: list[int],
                 max_batch_rows: int = 256, dtype: str = "float32") -> None:
        self.policy = policy
        self.dtype = dtype
        self.tokenizer = tokenizer
        self.eos_token_ids = eos_token_ids
        self.pad_id = tokenizer.pad_token_id
        self.max_batch_rows = max_batch_rows

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> Rollouts:
        rows = [p for p in prompts for _ in range(sampling.n)]
        rollouts = Rollouts([], [], [], [])
        was_training = self.policy.training
        self.policy.eval()
        device = next(self.policy.parameters()).device
        with torch.random.fork_rng(devices=[]), compute_precision(device, self.dtype):
            torch.manual_seed(sampling.seed)
            for start in range(0, len(rows), self.max_batch_rows):
                self._generate_rows(rows[start: start + self.max_batch_rows], sampling, rollouts)
        self.policy.train(was_training)
        return rollouts

    @torch.no_grad()
    def _generate_rows(self, rows: list[list[int]], sampling: SamplingSpec,
                       rollouts: Rollouts) -> None:
        width = max(len(r) for r in rows)
        device = next(self.policy.parameters()).device
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros_like(input_ids)
        for i, r in enumerate(rows):
            input_ids[i, width - len(r):] = torch.tensor(r)
            attention[i, width - len(r):] = 1
        greedy = sampling.temperature == 0
        sample_args = {"do_sample": False} if greedy else {
            "do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": 0,
        }
        out = self.policy.generate(
            input_ids=input_ids.to(device), attention_mask=attention.to(device),
            max_new_tokens=sampling.max_new_tokens, eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_id, output_scores=True, return_dict_in_generate=True,
            **sample_args,
        )
        tokens = out.sequences[:, width:]
        logprobs = torch.stack(
            [torch.log_softmax(s.float(), -1) for s in out.scores], dim=1
        ).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        eos = torch.tensor(self.eos_token_ids, device=tokens.device)
        for i in range(len(rows)):
            ids = tokens[i].tolist()
            hits = torch.isin(tokens[i], eos).nonzero()
            length = int(hits[0]) + 1 if len(hits) else len(ids)
            rollouts.response_ids.append(ids[:length])
            rollouts.logprobs.append(logprobs[i, :length].tolist())
            rollouts.truncated.append(not len(hits))
            rollouts.texts.append(self.tokenizer.decode(ids[:length], skip_special_tokens=True))

    def score(self, sequences: list[list[int]], prompt_lengths: list[int]) -> list[list[float]]:
        prompts = [s[:n] for s, n in zip(sequences, prompt_lengths, strict=True)]
        responses = [s[n:] for s, n in zip(sequences, prompt_lengths, strict=True)]
        device = next(self.policy.parameters()).device
        batch = collate(prompts, responses, self.pad_id, device)
        with torch.no_grad(), compute_precision(device, self.dtype):
            logp, _ = response_logprobs(self.policy, batch)
        return [logp[i, : len(r)].tolist() for i, r in enumerate(responses)]

    def sync_weights(self, policy: nn.Module) -> None:
        self.policy = policy

    def sleep(self) -> None:
        """Nothing to release: the engine is the policy."""

    def wake_up(self) -> None:
        """Nothing to re-acquire: the engine is the policy."""
