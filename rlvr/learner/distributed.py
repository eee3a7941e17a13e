"""Data parallelism for the learner: FSDP2 sharding across processes started by ``torchrun``.

Each rank holds a shard of every parameter (``fully_shard`` per decoder layer, then the root) and
the rollouts of its share of the prompts. The loss normaliser counts the tokens and sequences of
the whole mini-batch across ranks; FSDP averages gradients over ranks, so each rank's loss is
scaled by the world size to make the reduced gradient the gradient of the global loss. NCCL on
GPUs, gloo on CPU (where the equivalence with a single process is tested).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def init_from_env(device: torch.device) -> None:
    """Join the process group that ``torchrun`` describes (no-op for a single process)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))


def shard(policy: nn.Module, compute_dtype: torch.dtype = torch.float32) -> nn.Module:
    """FSDP2-shard each decoder layer, then the whole model, across the default group.

    With a ``compute_dtype`` other than float32, FSDP2's mixed precision gathers the float32
    master shards cast to it for forward and backward and reduce-scatters gradients in float32.
    """
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mixed = {} if compute_dtype == torch.float32 else {"mp_policy": MixedPrecisionPolicy(
        param_dtype=compute_dtype, reduce_dtype=torch.float32)}
    for layer in policy.get_decoder().layers:
        fully_shard(layer, **mixed)
    fully_shard(policy, **mixed)
    return policy


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_reduce(value: float, op: str = "sum") -> float:
    """Sum (or max) of a number over ranks; the number itself for a single process."""
    if world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return float(tensor.item())


def full_state_items(policy: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every parameter and buffer, gathered whole one at a time, so a consumer that streams them
    (vLLM's weight reload) never holds a second full copy. A collective: all ranks must consume
    the whole iterator."""
    from torch.distributed.tensor import DTensor

    for name, value in policy.state_dict().items():
        yield name, value.full_tensor() if isinstance(value, DTensor) else value


def load_full_state(policy: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load whole (unsharded) weights into a possibly FSDP-sharded policy."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(policy, state, options=StateDictOptions(full_state_dict=True,
                                                                 strict=False))
