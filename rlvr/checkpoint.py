"""Atomic checkpoints: everything a run needs to continue exactly where it stopped.

``<run_dir>/checkpoints/step_000010/`` holds

- ``policy/``: the model (full fine-tune: ``save_pretrained`` weights and tokenizer, loadable by
  ``python -m rlvr.evaluate model.path=...``) or the LoRA adapter;
- ``trainer-rank<r>.pt``: optimiser (sharded under FSDP, one file per rank) and scheduler
  states, and the Python and torch RNG states;
- ``state.json``: the step, the parameter schedules' states (``schedules``: pos_reweight's
  lambda, asym_adaptive's betas; rlvr/algorithms/parts.py), the evaluation history, the W&B id.
  The prompts and sampling seeds of a step are functions of the step (rlvr/collect.py).

A checkpoint is written into a hidden staging directory and renamed into place, so a crash
while saving leaves the previous checkpoint as the latest complete one.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from rlvr.learner import distributed
from rlvr.learner.learner import Learner
from rlvr.learner.policy import is_lora

_PREFIX = "step_"
_STATE = "state.json"


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a complete checkpoint directory (its ``state.json`` is written last)."""
    return (path / _STATE).is_file()


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run directory, or None."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.name.startswith(_PREFIX) and is_checkpoint(p))
    return done[-1] if done else None


def save_checkpoint(run_dir: Path, step: int, policy: nn.Module, tokenizer, learner: Learner,
                    state: dict[str, Any], keep: int) -> Path:
    """Write the checkpoint of the run after ``step`` completed steps; keep the newest ``keep``."""
    root = checkpoint_root(run_dir)
    final = root / f"{_PREFIX}{step:06d}"
    staging = root / f".staging-{final.name}"
    writer = distributed.rank() == 0
    if writer:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    distributed.barrier()
    if distributed.world_size() > 1:
        weights = dict(distributed.full_state_items(policy))
        if writer:
            policy.save_pretrained(staging / "policy", state_dict=weights)
    elif writer:
        policy.save_pretrained(staging / "policy")
    if writer and not is_lora(policy):
        tokenizer.save_pretrained(staging / "policy")
    torch.save({
        "optimizer": learner.optimizer.state_dict(),
        "scheduler": learner.scheduler.state_dict(),
        "python_rng": random.getstate(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }, staging / f"trainer-rank{distributed.rank()}.pt")
    distributed.barrier()
    if writer:
        (staging / _STATE).write_text(json.dumps({"step": step, **state}, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        finished = sorted(p for p in root.iterdir() if p.name.startswith(_PREFIX))
        for old in finished[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()
    return final


def _adapter_state(policy: nn.Module, policy_dir: Path) -> dict[str, torch.Tensor]:
    """A saved LoRA adapter under the policy's own parameter names: PEFT saves
    ``...q_proj.lora_A.weight`` for the parameter ``...q_proj.lora_A.<adapter>.weight``."""
    saved = load_file(policy_dir / "adapter_model.safetensors")
    state: dict[str, torch.Tensor] = {}
    for name in policy.state_dict():
        for adapter in policy.peft_config:
            key = name.replace(f".{adapter}.", ".")
            if key != name and key in saved:
                state[name] = saved.pop(key)
    if saved:
        raise RuntimeError(f"adapter {policy_dir} does not match the policy: unexpected "
                           f"{sorted(saved)}")
    return state


def _load_policy_weights(policy: nn.Module, policy_dir: Path) -> None:
    if is_lora(policy):
        distributed.load_full_state(policy, _adapter_state(policy, policy_dir))
        return
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(policy_dir.glob("*.safetensors")):
        state.update(load_file(shard))
    if distributed.world_size() > 1:
        distributed.load_full_state(policy, state)
        return
    missing, unexpected = policy.load_state_dict(state, strict=False)
    tied = set(getattr(policy, "_tied_weights_keys", None) or ())
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"checkpoint {policy_dir} does not match the policy: "
                           f"missing {sorted(set(missing) - tied)}, unexpected {unexpected}")


def load_checkpoint(path: Path, policy: nn.Module, learner: Learner) -> dict[str, Any]:
    """Restore policy, optimiser, scheduler and RNG states; returns ``state.json``."""
    _load_policy_weights(policy, path / "policy")
    trainer = torch.load(path / f"trainer-rank{distributed.rank()}.pt", weights_only=False)
    learner.optimizer.load_state_dict(trainer["optimizer"])
    learner.scheduler.load_state_dict(trainer["scheduler"])
    random.setstate(trainer["python_rng"])
    torch.set_rng_state(trainer["torch_rng"])
    if trainer["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(trainer["cuda_rng"])
    return json.loads((path / _STATE).read_text())
