"""The checks of a run's configuration that reach beyond the schema's own value ranges.

rlvr/config.py checks each value against its range; the checks here need the registries, the data,
the file system or the launch: part names and their parameters, the model family, the loss
aggregation, the task's levels, ``resume``, data dirs, group sizes, the device, and (at start-up)
data parallelism. Every failure is a ``ConfigError`` naming the key, raised before any model loads.

The entry points call ``register_schema`` (the schema with every registered part's parameters)
and ``validate`` (composed config -> checked ``RunConfig``).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from rlvr import config
from rlvr.algorithms.advantages import ADVANTAGE_ESTIMATORS
from rlvr.algorithms.losses import AGGREGATIONS
from rlvr.algorithms.parts import PART_REGISTRIES, algorithm_parts, declared_parameters
from rlvr.checkpoint import is_checkpoint
from rlvr.config import ConfigError, RunConfig
from rlvr.data.arith import LEVELS
from rlvr.data.datasets import reads_data_dir
from rlvr.data.templates import FAMILIES


def register_schema() -> type[RunConfig]:
    """Register the run schema with one ``algorithm.<name>`` field per parameter that any part
    registered so far declares (rlvr/algorithms/parts.py ``declared_parameters``)."""
    return config.register_schema(declared_parameters())


def validate(cfg: DictConfig) -> RunConfig:
    """A composed config as a ``RunConfig``, its value ranges and every check here passed.

    Raises:
        ConfigError: naming the key.
    """
    run = config.to_run_config(cfg)
    check_run(run)
    return run


def check_run(run: RunConfig) -> None:
    """Every check of this module that needs no launched process group."""
    _one_of(run.model.family, FAMILIES, "model.family")
    _one_of(run.algorithm.loss.agg, AGGREGATIONS, "algorithm.loss.agg")
    levels = run.data.arith.levels
    if not set(levels) <= set(LEVELS):
        raise ConfigError(f"data.arith.levels must be a non-empty list of levels in "
                          f"{list(LEVELS)}, got {levels!r}")
    check_algorithm(run)
    check_data_parallel(run, int(os.environ.get("WORLD_SIZE", "1")))
    check_resume(run.resume)
    check_group_size(run)
    check_data_dirs(run)
    if run.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device needs a CUDA device and torch sees none (use device=auto "
                              "or device=cpu), got 'cuda'")


def _one_of(value: str, allowed: tuple[str, ...], key: str) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {list(allowed)}, got {value!r}")


def check_algorithm(run: RunConfig) -> None:
    """Every part named exists; every parameter set is used by some part in use and valid."""
    algorithm = run.algorithm
    for kind, name in algorithm.part_names():
        _one_of(name, tuple(PART_REGISTRIES[kind]), f"algorithm.{kind}")
    set_params = algorithm.parameters()
    used = {p for registry, name in algorithm_parts(algorithm)
            for p in registry.lookup(name).params}
    for key in sorted(set(set_params) - used):
        parts = ", ".join(f"{kind} '{name}'" for kind, name in algorithm.part_names())
        raise ConfigError(f"algorithm.{key}={set_params[key]!r} is not used by {parts}; remove "
                          f"it or choose an algorithm that uses it")
    try:
        for registry, name in algorithm_parts(algorithm):
            registry.resolve(name, registry.own(name, set_params))
    except ValueError as err:
        raise ConfigError(f"algorithm: {err}") from err


def check_resume(resume: str) -> None:
    """``resume`` is ``auto``, ``never`` or an existing checkpoint directory."""
    if resume in ("auto", "never"):
        return
    path = Path(resume).expanduser()
    if not path.exists():
        raise ConfigError(f"resume={resume}: no such directory; pass a checkpoint directory "
                          f"(<run>/checkpoints/step_NNNNNN), resume=auto or resume=never")
    if not is_checkpoint(path):
        raise ConfigError(f"resume must be a checkpoint directory (<run>/checkpoints/step_NNNNNN, "
                          f"with state.json and digests.json), 'auto' or 'never', got {resume!r}")


def check_group_size(run: RunConfig) -> None:
    """Group-relative estimators need several rollouts per prompt: with one, every advantage is
    0 and nothing is learned."""
    advantage = run.algorithm.advantage
    needed = ADVANTAGE_ESTIMATORS[advantage].min_group_size
    if run.rollout.n < needed:
        raise ConfigError(f"rollout.n={run.rollout.n}: algorithm.advantage={advantage} compares "
                          f"the rollouts of a prompt with each other and needs rollout.n >= "
                          f"{needed}; raise rollout.n or use algorithm=reinforce")


def check_data_dirs(run: RunConfig) -> None:
    """A data directory that no configured dataset reads is an error, not a silent no-op."""
    if run.data.dir is not None and not reads_data_dir(run.data.name):
        raise ConfigError(f"data.dir={run.data.dir} is not read by data={run.data.name} (its "
                          f"problems are generated); remove data.dir or choose data=math / "
                          f"data=gsm8k")
    eval_names = [b.name for b in run.eval.benchmarks]
    if run.eval.dir not in (None, run.data.dir) \
            and not any(reads_data_dir(name) for name in eval_names):
        raise ConfigError(f"eval.dir={run.eval.dir} is not read by the eval benchmarks "
                          f"{eval_names} (their problems are generated); remove eval.dir or "
                          f"choose eval=math5 / eval=gsm8k")


def check_data_parallel(run: RunConfig, world: int) -> None:
    """Under torchrun (``world`` > 1 processes; ``check_run`` reads ``WORLD_SIZE``, so this
    fails before any model loads): FSDP learner, one vLLM engine per rank without tensor
    parallelism, prompts split evenly. A single process with ``learner.strategy=fsdp`` is only
    warned about (by the caller)."""
    if world == 1:
        return
    tp = run.rollout.tensor_parallel_size
    if tp > 1:
        raise ConfigError(f"rollout.tensor_parallel_size={tp} cannot run under torchrun ({world} "
                          f"processes): each rank's colocated vLLM engine samples its own "
                          f"prompts, and vLLM's tensor parallelism needs the same prompts on "
                          f"every rank of its group; use rollout.tensor_parallel_size=1 (one "
                          f"engine per GPU), or tensor parallelism in a single process")
    if run.learner.strategy != "fsdp":
        raise ConfigError(f"{world} processes need learner.strategy=fsdp, got "
                          f"{run.learner.strategy!r}")
    if run.rollout.engine != "vllm":
        raise ConfigError("learner.strategy=fsdp needs rollout=vllm: the hf engine would run the "
                          "sharded policy's forward passes out of step across ranks")
    if run.prompts_per_step % world:
        raise ConfigError(f"prompts_per_step={run.prompts_per_step} must be divisible by the "
                          f"{world} processes")
