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
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext

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


@torch.no_grad()
def merged_lora_items(policy: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """The weights of a PEFT LoRA model with W + scale * B A folded in, one tensor at a time,
    under the base model's checkpoint names (``model.layers.0.self_attn.q_proj.weight``, no
    ``lora_`` tensors). FSDP shards are gathered per tensor (a collective: every rank consumes
    the iterator)."""
    base = policy.get_base_model()
    merged_modules = {}
    for name, module in base.named_modules():
        if hasattr(module, "base_layer") and hasattr(module, "lora_A"):
            merged_modules[f"{name}.base_layer."] = (name, module)
    for key, value in base.state_dict().items():
        if ".lora_" in key:
            continue
        prefix = key[: key.rfind(".") + 1]
        if prefix not in merged_modules:
            yield key, distributed.full_tensor(value)
            continue
        name, module = merged_modules[prefix]
        tensor = distributed.full_tensor(value)
        if key.endswith(".weight"):
            for adapter in module.active_adapters:
                delta = distributed.full_tensor(module.lora_B[adapter].weight) \
                    @ distributed.full_tensor(module.lora_A[adapter].weight)
                tensor = tensor + (delta * module.scaling[adapter]).to(tensor.dtype)
        yield f"{name}.{key[len(prefix):]}", tensor


def export_weights(policy: nn.Module, dtype: torch.dtype | None = None
                   ) -> Iterator[tuple[str, torch.Tensor]]:
    """Whole weights under checkpoint names, for an inference engine: LoRA folded in
    (``merged_lora_items``), FSDP shards gathered one tensor at a time (a collective: every
    rank consumes the iterator), floating-point tensors cast to ``dtype`` (the engine's; None
    keeps them as they are)."""
    items = merged_lora_items(policy) if is_lora(policy) else distributed.full_state_items(policy)
    if dtype is None:
        return items
    return ((name, t.to(dtype) if t.is_floating_point() else t) for name, t in items)


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
