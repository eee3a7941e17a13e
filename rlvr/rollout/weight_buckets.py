"""The learner's weights cut into buckets for the inference engine's loader.

A bucket is a run of consecutive tensors (checkpoint order) whose sizes in the engine's dtype
sum to at most ``bucket_bytes``; a tensor larger than that is a bucket of its own. Tensors are
fetched (FSDP shards cast, then gathered; a plain tensor cast on its device) one bucket at a
time, when the loader reaches that bucket, and every reference is dropped as the tensor is
handed over, so what the learner side holds beyond its own weights is at most one bucket.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch import Tensor

from rlvr.learner.policy import EngineTensor


def plan_buckets(tensors: list[EngineTensor], bucket_bytes: int) -> list[list[EngineTensor]]:
    """Consecutive groups of ``tensors`` of at most ``bucket_bytes`` each (a larger tensor
    alone), in order."""
    buckets: list[list[EngineTensor]] = []
    size = bucket_bytes + 1
    for tensor in tensors:
        if size + tensor.nbytes > bucket_bytes:
            buckets.append([])
            size = 0
        buckets[-1].append(tensor)
        size += tensor.nbytes
    return buckets


def fetch_buckets(tensors: list[EngineTensor], bucket_bytes: int
                  ) -> Iterator[list[tuple[str, Tensor]]]:
    """The buckets of ``plan_buckets`` as ``(name, tensor)`` lists, each fetched when the
    consumer reaches it (a collective under FSDP: every rank consumes the whole iterator)."""
    for bucket in plan_buckets(tensors, bucket_bytes):
        yield [(item.name, item.fetch()) for item in bucket]


def stream_buckets(tensors: list[EngineTensor], bucket_bytes: int
                   ) -> Iterator[tuple[str, Tensor]]:
    """``fetch_buckets`` one ``(name, tensor)`` at a time; the consumer holds the only
    reference to a tensor once it is handed over."""
    for bucket in fetch_buckets(tensors, bucket_bytes):
        bucket.reverse()
        while bucket:
            yield bucket.pop()
