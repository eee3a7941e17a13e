"""The configured rollout engine and the device it runs on, for training and evaluation."""

from __future__ import annotations

import torch

from rlvr.config import ConfigError, RunConfig
from rlvr.learner.policy import is_lora
from rlvr.rollout.base import RolloutEngine
from rlvr.rollout.limits import max_model_len, stop_token_ids


def resolve_device(device: str) -> torch.device:
    """``device=auto`` -> CUDA when torch sees one, else CPU; ``cuda`` must be available."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: torch sees no CUDA device; use device=auto or device=cpu")
    return torch.device(device)


def build_engine(run: RunConfig, model_path: str, policy: torch.nn.Module | None, tokenizer,
                 prompt_lengths: list[int], device: torch.device) -> RolloutEngine:
    """The configured rollout engine, holding the policy's current weights (``policy`` may be
    None for vLLM, which loads ``model_path`` itself). It stops on ``stop_token_ids`` and its
    context fits the longest of ``prompt_lengths`` plus the most new tokens configured."""
    stop_ids = stop_token_ids(model_path, tokenizer, revision=run.model.revision,
                              trust_remote_code=run.model.trust_remote_code)
    if run.rollout.engine == "hf":
        from rlvr.rollout.hf_engine import HFEngine

        return HFEngine(policy, tokenizer, stop_ids, dtype=run.model.dtype)
    from rlvr.rollout.vllm_engine import VLLMEngine

    return VLLMEngine(model_path, run.rollout, dtype=run.model.dtype,
                      max_model_len=max_model_len(run.rollout, run.eval.benchmarks,
                                                  prompt_lengths),
                      seed=run.seed, stop_token_ids=stop_ids,
                      lora_rank=run.learner.lora.r if policy is not None and is_lora(policy)
                      else None, on_cpu=device.type == "cpu", revision=run.model.revision,
                      trust_remote_code=run.model.trust_remote_code)
