"""Data parallelism: FSDP2 sharding across ``torchrun`` processes, and the one place where
values are reduced across ranks.

Each rank holds a shard of every parameter (``fully_shard`` per decoder layer, then the root) and
the rollouts of its share of the prompts. The loss normaliser counts the tokens and sequences of
the whole mini-batch across ranks; FSDP averages gradients over ranks, so each rank's loss is
scaled by the world size to make the reduced gradient the gradient of the global loss. NCCL on
GPUs, gloo on CPU (where the equivalence with a single process is tested).

Rank-aware reductions (every helper is a collective: all ranks call it, in the same order):

- ``all_reduce``: a sum or max of one number;
- ``token_mean``: sum(values * mask) / sum(mask) over every rank's tokens;
- ``gather_rows``: every rank's rows of a tensor, concatenated, so a statistic computed on the
  result is the statistic of the global batch (rows ordered by rank, then local order);
- ``from_rank0``: rank 0's copy of a picklable object (state only rank 0 computes, such as the
  evaluation history).

With one process each is the identity, so logged metrics and run state computed through them are
the same whatever the world size.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import Tensor, nn

T = TypeVar("T")

# rlvr.config.DistributedConfig.timeout_s's default; the timeout of the group this process joined
DEFAULT_TIMEOUT_S = 3600.0
_timeout_s = DEFAULT_TIMEOUT_S


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def launched_as_rank0() -> bool:
    """Whether this process is rank 0 of its launch (``RANK`` from torchrun; a single process
    is rank 0), known before the process group is joined."""
    return int(os.environ.get("RANK", "0")) == 0


def init_from_env(device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> bool:
    """Join the process group that ``torchrun`` describes (no-op for a single process, or when
    the group is joined already); a collective that waits longer than ``timeout_s`` fails
    (``distributed.timeout_s``). Returns whether this call joined it (so the caller leaves it:
    ``shutdown``)."""
    global _timeout_s
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        _timeout_s = timeout_s
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(seconds=timeout_s))
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        return True
    return False


class CollectiveTimeout(RuntimeError):
    """A collective waited longer than the process group's timeout; the message names
    ``distributed.timeout_s``."""


def _is_timeout(err: BaseException) -> bool:
    """Whether a collective's error is its timeout (gloo: "Timed out waiting ...", NCCL's
    watchdog: "... timeout ...")."""
    text = str(err).lower()
    return "timed out" in text or "timeout" in text


@contextmanager
def named_timeout(what: str) -> Iterator[None]:
    """Re-raise a collective's timeout as ``CollectiveTimeout`` naming the key that sets it."""
    try:
        yield
    except RuntimeError as err:
        if not _is_timeout(err):
            raise
        raise CollectiveTimeout(
            f"{what} on rank {rank()} waited longer than distributed.timeout_s={_timeout_s:g} s "
            f"for another rank; raise distributed.timeout_s if a rank legitimately works that "
            f"long (evaluation, checkpointing) while the others wait") from err


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


def shutdown(wait_for_others: bool = True) -> None:
    """Leave the process group, after a barrier, so that no rank exits while another still
    talks to it: gloo aborts a process that exits with the group open ("terminate called
    without an active exception"). ``wait_for_others=False`` (a rank that failed: the others
    may never reach the barrier) leaves at once. No-op for a single process."""
    if dist.is_available() and dist.is_initialized():
        if wait_for_others:
            with named_timeout("the barrier before leaving the process group"):
                dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        with named_timeout("a barrier"):
            dist.barrier()


def _comm_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


def all_reduce(value: float, op: str = "sum") -> float:
    """Sum (or max) of a number over ranks; the number itself for a single process."""
    if world_size() == 1:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=_comm_device())
    with named_timeout("an all-reduce"):
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return float(tensor.item())


def token_mean(values: Tensor, mask: Tensor) -> float:
    """sum(values * mask) / sum(mask) over the tokens of every rank (values, mask [B, T]);
    a single process keeps the tensors' own dtype for the sums."""
    if world_size() == 1:
        return float((values * mask).sum() / mask.sum())
    total = all_reduce(float((values.double() * mask.double()).sum()))
    return total / all_reduce(float(mask.double().sum()))


def gather_rows(tensor: Tensor) -> Tensor:
    """Concatenate every rank's ``tensor`` [b_r, ...] along dim 0 (rank order).

    Trailing dimensions may differ between ranks (e.g. the longest response T): each rank's
    tensor is zero-padded to the largest, which masked statistics ignore. Returns a CPU tensor.
    """
    if world_size() == 1:
        return tensor.cpu()
    device = _comm_device()
    shape = torch.tensor(tensor.shape, dtype=torch.long, device=device)
    shapes = [torch.empty_like(shape) for _ in range(world_size())]
    with named_timeout("an all-gather"):
        dist.all_gather(shapes, shape)
        sizes = torch.stack(shapes).cpu()
    widest = sizes.max(0).values.tolist()
    padded = torch.zeros(widest, dtype=tensor.dtype, device=device)
    padded[tuple(slice(0, n) for n in tensor.shape)] = tensor.to(device)
    parts = [torch.empty_like(padded) for _ in range(world_size())]
    with named_timeout("an all-gather"):
        dist.all_gather(parts, padded)
    return torch.cat([part[: int(n[0])] for part, n in zip(parts, sizes, strict=True)]).cpu()


def all_gather_objects(value: T) -> list[T]:
    """Every rank's picklable ``value``, in rank order (``[value]`` for a single process)."""
    if world_size() == 1:
        return [value]
    gathered: list[Any] = [None] * world_size()
    dist.all_gather_object(gathered, value)
    return gathered


def from_rank0(value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if world_size() == 1:
        return value
    holder: list[Any] = [value]
    with named_timeout("a broadcast from rank 0"):
        dist.broadcast_object_list(holder, src=0, device=_comm_device())
    return holder[0]


def full_tensor(value: Tensor) -> Tensor:
    """The whole tensor behind a (possibly FSDP-sharded) parameter or buffer; a collective for a
    sharded one."""
    from torch.distributed.tensor import DTensor

    return value.full_tensor() if isinstance(value, DTensor) else value


def is_sharded(module: nn.Module) -> bool:
    """Whether FSDP has sharded any of ``module``'s parameters (they are DTensors)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in module.parameters())


def full_state_items(module: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """Every parameter and buffer, gathered whole one at a time, so a consumer that streams them
    (vLLM's weight reload) never holds a second full copy. A collective: all ranks must consume
    the whole iterator."""
    for name, value in module.state_dict().items():
        yield name, full_tensor(value)


def load_full_state(module: nn.Module, state: dict[str, Tensor]) -> None:
    """Load whole (unsharded) weights into a possibly FSDP-sharded module; every key of
    ``state`` must name one of its parameters or buffers."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    result = set_model_state_dict(module, state, options=StateDictOptions(full_state_dict=True,
                                                                         strict=False))
    if result.unexpected_keys:
        raise RuntimeError(f"weights that the model does not have: {result.unexpected_keys}")


def all_finite(tensors: Iterable[Tensor]) -> bool:
    """Whether every element of ``tensors`` (parameters, possibly FSDP-sharded) is finite on
    every rank: the max-abs of a tensor is NaN or inf exactly when it holds one; one device
    sync for all of them."""
    local = [t.to_local() if hasattr(t, "to_local") else t for t in tensors]
    local = [t.detach() for t in local if t.numel()]
    if not local:
        return True
    norms = torch._foreach_norm(local, float("inf"))
    finite = bool(torch.stack([n.float() for n in norms]).isfinite().all())
    return all_reduce(float(not finite), op="max") == 0
