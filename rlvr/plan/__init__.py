"""The memory plan of a run: the bytes per GPU of every part of the learner and of vLLM, before
any weight is loaded (``python -m rlvr.plan``; the arithmetic is in ``rlvr/plan/memory.py``, the
model shapes in ``rlvr/plan/shapes.py``).

``plan.*`` is ``rlvr.config.PlanConfig``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from rlvr.config import RunConfig


def check_fits_before_loading(run: RunConfig, model_path: str, device: torch.device, *,
                              prompt_tokens: int | None = None,
                              gpu_memory_bytes: int | None = None,
                              gpus: int | None = None) -> None:
    """On CUDA, stop before any weight is loaded when the run's memory plan does not fit.

    No-op on other devices and with ``plan.enforce=false``. ``gpu_memory_bytes`` defaults to the
    device's total memory, ``gpus`` to the data-parallel world size, ``prompt_tokens`` to
    ``plan.prompt_tokens``.

    Raises:
        rlvr.config.ConfigError: ``does not fit: peak X GiB of M GiB per GPU; <remedies>``.
    """
    from rlvr.plan.memory import enforce_plan

    enforce_plan(run, model_path, device, prompt_tokens=prompt_tokens,
                 gpu_memory_bytes=gpu_memory_bytes, gpus=gpus)
