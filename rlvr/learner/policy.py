"""Loading the policy (full fine-tune or LoRA), its merged weights, and its reference policy.

Mixed precision, as production trainers do it: the weights the optimiser updates are float32
(master weights; AdamW keeps two float32 moments each), and forward and backward compute in
``model.dtype`` under ``compute_precision`` (``torch.autocast``). A bfloat16 weight updated in
place loses every step below half its last place (2^-9 to 2^-8 of the weight): at learning
rates of 1e-6 most of them (docs/PRECISION.md). With LoRA the frozen base stays in
``model.dtype`` and only the adapter is float32. In float32 nothing is cast and no autocast
region is entered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from rlvr.config import LoraConfig
from rlvr.learner import distributed

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def compute_precision(device: torch.device, dtype: str) -> AbstractContextManager:
    """The region in which the policy computes in ``dtype``: autocast, or nothing for float32."""
    if DTYPES[dtype] == torch.float32:
        return nullcontext()
    return torch.autocast(device.type, dtype=DTYPES[dtype])


def load_policy(path: str, dtype: str, lora: LoraConfig, device: torch.device,
                gradient_checkpointing: bool = False, revision: str | None = None,
                trust_remote_code: bool = False) -> nn.Module:
    """A causal LM in train mode; wrapped in a PEFT LoRA adapter when ``lora.enabled``.

    Full fine-tune: float32 master weights whatever ``dtype`` is (compute in ``dtype`` happens
    under ``compute_precision``). LoRA: the frozen base in ``dtype``, the adapter float32
    (PEFT's ``autocast_adapter_dtype``).
    """
    weights_dtype = DTYPES[dtype] if lora.enabled else torch.float32
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=weights_dtype, revision=revision, trust_remote_code=trust_remote_code,
    ).to(device)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if lora.enabled:
        from peft import LoraConfig as PeftLoraConfig
        from peft import get_peft_model

        model = get_peft_model(model, PeftLoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules), task_type="CAUSAL_LM",
        ), autocast_adapter_dtype=True)
    model.train()
    return model


def is_lora(policy: nn.Module) -> bool:
    return hasattr(policy, "peft_config")


@dataclass(frozen=True)
class EngineTensor:
    """One tensor an inference engine loads: its checkpoint name, its size in the engine's
    dtype, and ``fetch``, which builds it whole (gathering FSDP shards: a collective, so every
    rank fetches the same tensors in the same order)."""

    name: str
    nbytes: int
    fetch: Callable[[], torch.Tensor]


def _cast(value: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``value`` in ``dtype`` on its own device (an FSDP shard is cast before it is gathered,
    so the gather moves engine-dtype bytes); integer tensors and ``dtype=None`` unchanged."""
    return value if dtype is None or not value.is_floating_point() else value.to(dtype)


def _unique_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """``module``'s state dict without the aliases of a tied weight: a tied lm_head is the
    input embedding's tensor, listed once under the embedding's name."""
    kept = {name for name, _ in module.named_parameters()} | \
        {name for name, _ in module.named_buffers()}
    return {name: value for name, value in module.state_dict().items() if name in kept}


@torch.no_grad()
def _merged_fetch(module: nn.Module, base_weight: torch.Tensor, dtype: torch.dtype | None
                  ) -> torch.Tensor:
    """W + scale * B A of one LoRA layer, gathered whole, then cast to ``dtype``."""
    tensor = distributed.full_tensor(base_weight)
    for adapter in module.active_adapters:
        delta = distributed.full_tensor(module.lora_B[adapter].weight) \
            @ distributed.full_tensor(module.lora_A[adapter].weight)
        tensor = tensor + (delta * module.scaling[adapter]).to(tensor.dtype)
    return _cast(tensor, dtype)


def _gathered(value: torch.Tensor, dtype: torch.dtype | None) -> Callable[[], torch.Tensor]:
    return lambda: distributed.full_tensor(_cast(value.detach(), dtype))


def engine_tensors(policy: nn.Module, dtype: torch.dtype | None = None) -> list[EngineTensor]:
    """The whole weights an inference engine needs, in checkpoint order and under checkpoint
    names (``model.layers.0.self_attn.q_proj.weight``), each fetched on demand: LoRA folded in
    (W + scale * B A, no ``lora_`` tensors), a tied lm_head once (under the embedding's name),
    floating-point tensors cast to ``dtype`` (the engine's; None keeps them)."""
    if not is_lora(policy):
        return [EngineTensor(name, _engine_bytes(value, dtype), _gathered(value, dtype))
                for name, value in _unique_state(policy).items()]
    base = policy.get_base_model()
    merged_modules = {f"{name}.base_layer.": (name, module)
                      for name, module in base.named_modules()
                      if hasattr(module, "base_layer") and hasattr(module, "lora_A")}
    plan = []
    for key, value in _unique_state(base).items():
        if ".lora_" in key:
            continue
        prefix = key[: key.rfind(".") + 1]
        nbytes = _engine_bytes(value, dtype)
        if prefix not in merged_modules:
            plan.append(EngineTensor(key, nbytes, _gathered(value, dtype)))
            continue
        name, module = merged_modules[prefix]
        fetch = partial(_merged_fetch, module, value, dtype) if key.endswith(".weight") \
            else _gathered(value, dtype)
        plan.append(EngineTensor(f"{name}.{key[len(prefix):]}", nbytes, fetch))
    return plan


def _engine_bytes(value: torch.Tensor, dtype: torch.dtype | None) -> int:
    """Bytes of the whole tensor (an FSDP DTensor's global shape) in the engine's dtype."""
    size = dtype.itemsize if dtype is not None and value.is_floating_point() \
        else value.element_size()
    return value.numel() * size


def adapter_tensors(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The LoRA adapter's tensors (``lora_A`` / ``lora_B`` weights) under the policy's
    parameter names, gathered whole (a collective under FSDP); the frozen base is not
    gathered. ``save_pretrained(path, state_dict=...)`` writes exactly these."""
    return {name: distributed.full_tensor(value.detach())
            for name, value in policy.named_parameters() if ".lora_" in name}


class ReferencePolicy:
    """The frozen policy the k3 KL penalty compares to (METHODS.md section 3).

    For LoRA it is the same model with the adapter disabled (no second copy); for a full
    fine-tune it is a frozen copy taken at construction (before the policy is sharded; the
    learner then shards the copy too).
    """

    def __init__(self, policy: nn.Module) -> None:
        self._policy = policy
        self._copy = None if is_lora(policy) else \
            copy.deepcopy(policy).eval().requires_grad_(False)

    @property
    def is_copy(self) -> bool:
        return self._copy is not None

    def model(self) -> nn.Module:
        return self._policy if self._copy is None else self._copy

    def context(self) -> AbstractContextManager:
        return self._policy.disable_adapter() if self._copy is None else nullcontext()
