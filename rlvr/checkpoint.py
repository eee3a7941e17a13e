"""Atomic, verified checkpoints: everything a run needs to continue exactly where it stopped.

``<run_dir>/checkpoints/step_000010/`` holds

- ``policy/``: the model (full fine-tune: Hugging Face weights and tokenizer, loadable by
  ``python -m rlvr.evaluate model.path=...``) or the LoRA adapter;
- under FSDP with a full fine-tune, ``model-shards/``: the weights as
  ``torch.distributed.checkpoint`` writes them, each rank its own shard, which a resume on the
  same world size reads back into the shards (``policy/`` is then an export for evaluation:
  streamed by rank 0 one file of at most ``EXPORT_SHARD_BYTES`` at a time, so no rank ever holds
  the whole model; a LoRA checkpoint gathers the adapter's tensors only);
- ``trainer-rank<r>.pt``: optimiser (sharded under FSDP, one file per rank) and scheduler
  states, and the Python and torch RNG states;
- ``state.json``: the step, the run's identity (rlvr/run_dir.py), the parameter schedules' states
  (``schedules``: pos_reweight's lambda, asym_adaptive's betas; rlvr/algorithms/parts.py), the
  evaluation history, the W&B id. The prompts and sampling seeds of a step are functions of the
  step (rlvr/collect.py);
- ``digests.json``, written last: the size and SHA-256 of every other file, computed by reading
  the written files back.

A checkpoint is written into a hidden staging directory and renamed into place once its digests
are written, so a crash while saving leaves the previous checkpoint as the latest complete one.
Weights are checked finite before anything is written. Loading verifies every digest first: a
checkpoint that fails is renamed ``corrupt-step_*`` (kept, never loaded) and the run falls back
to the previous verified one. Rotation keeps the newest ``keep`` complete checkpoints and runs
only after the new one is in place.
"""

from __future__ import annotations

import errno
import json
import logging
import random
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from rlvr.digests import manifest_problem, write_manifest
from rlvr.learner import distributed
from rlvr.learner.learner import Learner
from rlvr.learner.policy import adapter_tensors, engine_tensors, is_lora
from rlvr.rollout.weight_buckets import fetch_buckets, plan_buckets

log = logging.getLogger(__name__)

_PREFIX = "step_"
_STATE = "state.json"
_DIGESTS = "digests.json"
_SHARDS = "model-shards"
EXPORT_SHARD_BYTES = 2 << 30
CORRUPT_PREFIX = "corrupt-"
SUPERSEDED = "superseded"


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or read; the message names it and what to do."""


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a complete checkpoint directory (its ``digests.json`` is written
    last)."""
    return (path / _DIGESTS).is_file() and (path / _STATE).is_file()


def checkpoint_root(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def checkpoint_step(path: Path) -> int:
    """The step of a checkpoint, from its ``state.json``."""
    return int(json.loads((path / _STATE).read_text())["step"])


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """The complete checkpoints of a run directory, oldest first."""
    root = checkpoint_root(run_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.name.startswith(_PREFIX) and is_checkpoint(p))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete (not yet verified) checkpoint of a run directory, or None."""
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


def verify_checkpoint(path: Path) -> None:
    """Check every file of a checkpoint against its ``digests.json``.

    Raises:
        CheckpointError: naming the checkpoint and the first file that is missing, of another
            size, or of another digest (or a checkpoint without digests).
    """
    problem = manifest_problem(path, _DIGESTS)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} fails its check: {problem}")


def select_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint of ``run_dir`` that verifies, or None when there is none at all.
    Each newer one that fails is renamed ``corrupt-step_*`` with a warning.

    Raises:
        CheckpointError: checkpoints exist but none verifies.
    """
    candidates = complete_checkpoints(run_dir)
    for path in reversed(candidates):
        try:
            verify_checkpoint(path)
        except CheckpointError as err:
            corrupt = path.with_name(f"{CORRUPT_PREFIX}{path.name}")
            shutil.rmtree(corrupt, ignore_errors=True)
            path.rename(corrupt)
            log.warning("%s; kept as %s, falling back to the previous checkpoint", err, corrupt)
            continue
        return path
    if candidates:
        raise CheckpointError(f"no checkpoint of {run_dir} verifies (each is kept as "
                              f"{CORRUPT_PREFIX}step_*); pass resume=never to start over")
    return None


def supersede_after(run_dir: Path, step: int) -> None:
    """Move the checkpoints of ``run_dir`` after ``step`` to ``checkpoints/superseded/``: a run
    resumed from an earlier checkpoint continues from there, and the later ones (of the
    abandoned continuation) must neither be resumed nor rotate the new ones away."""
    later = [p for p in complete_checkpoints(run_dir) if checkpoint_step(p) > step]
    if not later:
        return
    target = checkpoint_root(run_dir) / SUPERSEDED
    target.mkdir(exist_ok=True)
    for path in later:
        shutil.rmtree(target / path.name, ignore_errors=True)
        path.rename(target / path.name)
    log.warning("resuming from step %d: moved the later checkpoints %s to %s", step,
                [p.name for p in later], target)


def _is_disk_full(err: BaseException) -> bool:
    """ENOSPC (or a quota) anywhere in ``err``'s chain, or in a message that wraps it (the
    safetensors writer reports "No space left on device (os error 28)")."""
    while err is not None:
        if getattr(err, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(err) or "os error 28" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


@contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Name ENOSPC and the path when a write into ``path`` runs out of disk."""
    try:
        yield
    except Exception as err:
        if _is_disk_full(err):
            raise CheckpointError(f"no space left on device (ENOSPC) while writing {path}; the "
                                  f"earlier checkpoints are intact: free space, then run the "
                                  f"same command to resume") from err
        raise


def save_trainer_state(path: Path, learner: Learner) -> None:
    """Optimiser, scheduler and RNG states to ``path``, written through a Python file object
    so that a failing write raises the OS error (torch's own writer reports "unexpected pos")."""
    with _writing(path), path.open("wb") as f:
        torch.save({
            "optimizer": learner.optimizer.state_dict(),
            "scheduler": learner.scheduler.state_dict(),
            "python_rng": random.getstate(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }, f)


def save_checkpoint(run_dir: Path, step: int, policy: nn.Module, tokenizer, learner: Learner,
                    state: dict[str, Any], keep: int) -> Path:
    """Write the checkpoint of the run after ``step`` completed steps; keep the newest ``keep``.

    Raises:
        CheckpointError: non-finite weights (nothing is written), or the disk is full (the
            staging directory is removed, earlier checkpoints stay).
    """
    if not distributed.all_finite(policy.parameters()):
        raise CheckpointError(f"the weights after step {step} are not finite; the checkpoint is "
                              f"not written and the earlier ones are intact")
    root = checkpoint_root(run_dir)
    final = root / f"{_PREFIX}{step:06d}"
    staging = root / f".staging-{final.name}"
    writer = distributed.rank() == 0
    try:
        _write_staging(staging, step, policy, tokenizer, learner, state, writer)
    except BaseException:
        if writer:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    if writer:
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        for old in complete_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    distributed.barrier()
    return final


def _write_staging(staging: Path, step: int, policy: nn.Module, tokenizer, learner: Learner,
                   state: dict[str, Any], writer: bool) -> None:
    """Every file of the checkpoint into ``staging``; ``digests.json`` last (rank 0)."""
    if writer:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    distributed.barrier()
    with _writing(staging / "policy"):
        _write_policy(staging, policy, tokenizer, writer)
    save_trainer_state(staging / f"trainer-rank{distributed.rank()}.pt", learner)
    distributed.barrier()
    if writer:
        with _writing(staging):
            (staging / _STATE).write_text(json.dumps({"step": step, **state}, indent=2))
            write_manifest(staging, _DIGESTS)


def _write_policy(staging: Path, policy: nn.Module, tokenizer, writer: bool) -> None:
    """``policy/`` (and under FSDP with a full fine-tune ``model-shards/``); every rank calls
    it (the gathers are collectives), ``writer`` writes the files of ``policy/``."""
    sharded = distributed.world_size() > 1
    if is_lora(policy):
        adapter = adapter_tensors(policy) if sharded else None
        if writer:
            policy.save_pretrained(staging / "policy", state_dict=adapter)
        return
    if not sharded:
        policy.save_pretrained(staging / "policy")
    else:
        from torch.distributed import checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        dcp.save({"model": get_model_state_dict(policy)}, checkpoint_id=staging / _SHARDS)
        export_streamed(policy, staging / "policy", writer)
    if writer:
        tokenizer.save_pretrained(staging / "policy")


def export_streamed(policy: nn.Module, directory: Path, writer: bool) -> None:
    """A Hugging Face directory of ``policy``'s whole weights (their own dtype, a tied lm_head
    once), written by ``writer`` one safetensors file of at most ``EXPORT_SHARD_BYTES`` at a
    time (a larger tensor alone), with ``model.safetensors.index.json`` and the config. Under
    FSDP every rank takes part in gathering each file's tensors and holds one file's worth at
    most."""
    from safetensors.torch import save_file

    tensors = engine_tensors(policy)
    count = len(plan_buckets(tensors, EXPORT_SHARD_BYTES))
    weight_map: dict[str, str] = {}
    if writer:
        directory.mkdir(parents=True, exist_ok=True)
        policy.config.save_pretrained(directory)
        if getattr(policy, "generation_config", None) is not None:
            policy.generation_config.save_pretrained(directory)
    for index, bucket in enumerate(fetch_buckets(tensors, EXPORT_SHARD_BYTES), start=1):
        if not writer:
            continue
        name = f"model-{index:05d}-of-{count:05d}.safetensors"
        save_file({key: value.detach().cpu().contiguous() for key, value in bucket},
                  str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys((key for key, _ in bucket), name))
    if writer:
        total = sum(t.nbytes for t in tensors)
        (directory / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))


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


def _load_policy_weights(policy: nn.Module, path: Path) -> None:
    policy_dir = path / "policy"
    if is_lora(policy):
        distributed.load_full_state(policy, _adapter_state(policy, policy_dir))
        return
    if distributed.world_size() > 1:
        _load_shards(policy, path / _SHARDS)
        return
    state: dict[str, torch.Tensor] = {}
    for shard in sorted(policy_dir.glob("*.safetensors")):
        state.update(load_file(shard))
    missing, unexpected = policy.load_state_dict(state, strict=False)
    tied = set(getattr(policy, "_tied_weights_keys", None) or ())
    if unexpected or set(missing) - tied:
        raise RuntimeError(f"checkpoint {policy_dir} does not match the policy: "
                           f"missing {sorted(set(missing) - tied)}, unexpected {unexpected}")


def _load_shards(policy: nn.Module, shards: Path) -> None:
    """Each rank reads its own shard of the weights ``torch.distributed.checkpoint`` wrote (a
    checkpoint of the same world size)."""
    from torch.distributed import checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict

    if not shards.is_dir():
        raise CheckpointError(f"{shards.parent} holds no sharded weights ({_SHARDS}/): it was "
                              f"written by a single process; resume it with one process")
    state = {"model": get_model_state_dict(policy)}
    dcp.load(state, checkpoint_id=shards)
    set_model_state_dict(policy, state["model"])


def load_checkpoint(path: Path, policy: nn.Module, learner: Learner) -> dict[str, Any]:
    """Restore policy, optimiser, scheduler and RNG states of a verified checkpoint
    (``verify_checkpoint``); returns ``state.json``."""
    _load_policy_weights(policy, path)
    trainer = torch.load(path / f"trainer-rank{distributed.rank()}.pt", weights_only=False)
    learner.optimizer.load_state_dict(trainer["optimizer"])
    learner.scheduler.load_state_dict(trainer["scheduler"])
    random.setstate(trainer["python_rng"])
    torch.set_rng_state(trainer["torch_rng"])
    if trainer["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(trainer["cuda_rng"])
    return json.loads((path / _STATE).read_text())
