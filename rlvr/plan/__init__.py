"""The memory plan of a run: the bytes per GPU of every part of the learner and of vLLM, before
any weight is loaded (``python -m rlvr.plan``; the arithmetic is in ``rlvr/plan/memory.py``, the
model shapes in ``rlvr/plan/shapes.py``).

This package's ``__init__`` imports nothing from rlvr, so that ``rlvr.config`` can take
``PlanConfig`` from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from rlvr.config import RunConfig


@dataclass
class PlanConfig:
    """``plan.*``: the machine the plan is made for, and whether training stops on it.

    ``gpus``, ``gpu_memory_gib``: what ``python -m rlvr.plan`` plans for (the trainer uses its
    own world size and the device's memory). ``prompt_tokens``: the longest prompt in tokens
    (the trainer passes the longest encoded prompt). ``enforce``: on CUDA the trainer stops
    before loading weights when the plan does not fit; ``plan.enforce=false`` goes on anyway.
    ``cuda_context_gib``: per process, the CUDA context and kernels (assumed, not measurable on
    a CPU; ``benchmarks/gpu_check.py`` prints planned beside measured).
    """

    gpus: int = 1
    gpu_memory_gib: float = 80.0
    prompt_tokens: int = 256
    enforce: bool = True
    cuda_context_gib: float = 1.0

    def validate(self) -> None:
        from rlvr.config import ConfigError

        if self.gpus < 1:
            raise ConfigError(f"plan.gpus must be >= 1, got {self.gpus}")
        if self.gpu_memory_gib <= 0:
            raise ConfigError(f"plan.gpu_memory_gib must be > 0, got {self.gpu_memory_gib}")
        if self.prompt_tokens < 1:
            raise ConfigError(f"plan.prompt_tokens must be >= 1, got {self.prompt_tokens}")


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
