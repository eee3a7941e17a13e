"""The learner's weights cut into buckets for the inference engine's loader.

A bucket is a run of consecutive tensors (checkpoint order) whose sizes in the engine's dtype
sum to at most ``bucket_bytes``; a tensor larger than that is a bucket of its own. Behind vLLM's
multiprocess executor a bucket is one file (``fetch_buckets``: fetched, FSDP shards cast and
gathered, when the writer reaches it). In process the loader pulls tensors one at a time
(``stream_tensors``): each is fetched when the loader asks for it and handed over with no other
reference kept, so what the learner side holds beyond its own weights is one tensor, within
one bucket; vLLM's loader adds its own per-layer buffers on top (results/weight_sync.md).
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


def stream_tensors(tensors: list[EngineTensor]) -> Iterator[tuple[str, Tensor]]:
    """``(name, tensor)`` pairs, each fetched when the consumer asks for it (a collective under
    FSDP: every rank consumes the whole iterator); the consumer holds the only reference."""
    for item in tensors:
        yield item.name, item.fetch()
