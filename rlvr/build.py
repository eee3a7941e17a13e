"""Building a run's parts (DESIGN.md: ``parts = build(run)``) and restoring its state.

``build`` opens nothing and checks nothing itself that the entry point did not already: it joins
the process group, seeds, chooses the checkpoint to resume (rank 0, before any model loads),
loads tokenizer and data, checks that the prompts and the memory plan fit, loads the policy,
builds learner and schedules, restores the checkpoint, builds the rollout engine (or takes the
one given) and gives it the learner's weights, then the collector and the metrics sink. The
order is fixed: the random streams are drawn in it, so a run and its resume agree bit for bit.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rlvr import console
from rlvr.algorithms.parts import ScheduleSet, algorithm_parts
from rlvr.checkpoint import load_checkpoint
from rlvr.checks import check_data_parallel
from rlvr.collect import RolloutCollector
from rlvr.config import ConfigError, RunConfig
from rlvr.data.datasets import load_problems
from rlvr.data.problem import Problem
from rlvr.data.prompts import PromptStream, encode_prompts
from rlvr.evaluation.runner import EvalBenchmark
from rlvr.evaluation.suite import load_eval_benchmarks
from rlvr.learner import distributed
from rlvr.learner.learner import Learner
from rlvr.learner.policy import load_policy
from rlvr.models import resolve_model_path
from rlvr.plan import check_fits_before_loading
from rlvr.resume import checkpoint_to_resume
from rlvr.rollout.base import RolloutEngine
from rlvr.rollout.factory import build_engine, resolve_device
from rlvr.rollout.limits import check_prompt_lengths, drop_long_prompts, model_context
from rlvr.run_dir import RunDirectory, fingerprint, identity
from rlvr.tracking import MetricsSink

log = logging.getLogger(__name__)


@dataclass
class RunState:
    """What a run carries from step to step and across a resume: the next step to train, the
    history of eval averages (step, value) and the last evaluation's metrics."""

    step: int = 0
    eval_history: list[tuple[int, float]] = field(default_factory=list)
    last_eval: dict[str, float] = field(default_factory=dict)


@dataclass
class Parts:
    """The built parts of one run; ``owns_*`` say which ones ``close`` releases."""

    run: RunConfig
    directory: RunDirectory
    device: torch.device
    started: float
    model_path: str
    tokenizer: Any
    problems: list[Problem]
    prompts: list[list[int]]
    eval_benchmarks: list[EvalBenchmark]
    policy: torch.nn.Module
    learner: Learner
    schedules: ScheduleSet
    engine: RolloutEngine
    collector: RolloutCollector
    sink: MetricsSink
    identity: dict[str, Any]
    owns_directory: bool
    owns_engine: bool
    owns_process_group: bool

    @property
    def run_dir(self) -> Path:
        return self.directory.path

    @property
    def rank(self) -> int:
        return distributed.rank()

    def close(self, failed: bool = False) -> None:
        """Finish the metrics sink, close the engine and the run directory this run opened, and
        leave the process group it joined (at once when this rank ``failed``: the others may
        never reach the barrier)."""
        self.sink.finish()
        close = getattr(self.engine, "close", None)
        if self.owns_engine and close is not None:
            close()
        if self.owns_directory:
            self.directory.close()
        if self.owns_process_group:
            distributed.shutdown(wait_for_others=not failed)


def training_prompts(run: RunConfig, tokenizer) -> tuple[list[Problem], list[list[int]]]:
    """The training problems and their prompt token ids, without the prompts longer than
    ``data.max_prompt_tokens`` (their number is logged)."""
    problems = load_problems(run.data.name, run.data.split, run.data.dir, run.data.limit,
                             run.data.arith)
    prompts = encode_prompts(problems, tokenizer, run.model.family)
    kept = drop_long_prompts(prompts, run.data.max_prompt_tokens)
    if len(kept) < len(prompts):
        log.info("data.max_prompt_tokens=%d: dropped %d of %d training prompts",
                 run.data.max_prompt_tokens, len(prompts) - len(kept), len(prompts))
    if not kept:
        raise ConfigError(f"data.max_prompt_tokens={run.data.max_prompt_tokens} drops every "
                          f"training prompt; raise it")
    return [problems[i] for i in kept], [prompts[i] for i in kept]


def check_prompts_fit(run: RunConfig, model_path: str, prompts: list[list[int]],
                      eval_benchmarks: list[EvalBenchmark]) -> None:
    """Every training and evaluation prompt leaves room for its new tokens in the model's
    context (before any weights load; a prompt that does not fit would fail the engine's
    start-up, or allocate for its length)."""
    context = model_context(model_path, run.rollout, revision=run.model.revision,
                            trust_remote_code=run.model.trust_remote_code)
    check_prompt_lengths(f"data={run.data.name}", [len(p) for p in prompts],
                         run.rollout.max_new_tokens, context)
    for bench in eval_benchmarks:
        check_prompt_lengths(f"eval benchmark {bench.spec.name}",
                             [len(p) for p in bench.prompt_ids],
                             bench.spec.max_new_tokens or run.rollout.max_new_tokens, context)


def build_learner(run: RunConfig, policy: torch.nn.Module, tokenizer) -> Learner:
    """The learner of ``policy`` as ``run.learner`` and ``run.algorithm`` configure it."""
    return Learner(
        policy, run.learner, run.algorithm,
        vocab_size=policy.get_output_embeddings().weight.shape[0],
        pad_id=tokenizer.pad_token_id, temperature=run.rollout.temperature,
        max_new_tokens=run.rollout.max_new_tokens, total_steps=run.total_steps,
        tis_cap=run.rollout.tis_cap, seed=run.seed, dtype=run.model.dtype)


def restore(checkpoint: Path | None, policy: torch.nn.Module, learner: Learner,
            schedules: ScheduleSet) -> tuple[RunState, dict[str, Any]]:
    """Load ``checkpoint`` (None: a fresh start) into policy, learner and schedules; returns the
    run state and the checkpoint's recorded state (its W&B id)."""
    if checkpoint is None:
        return RunState(), {}
    saved = load_checkpoint(checkpoint, policy, learner)
    schedules.load_state_dict(saved.get("schedules", {}))
    log.info("resuming from %s (step %d)", checkpoint, saved["step"])
    return RunState(saved["step"], [tuple(x) for x in saved.get("eval_history", [])],
                    saved.get("last_eval", {})), saved


def build(run: RunConfig, resolved_config: dict[str, Any], engine: RolloutEngine | None = None,
          run_dir: RunDirectory | None = None) -> tuple[Parts, RunState]:
    """The parts of ``run`` and its restored state (module docstring for the order).

    ``engine``: an existing rollout engine of the same model to reuse (its weights are replaced
    by this run's policy); None builds one. ``run_dir``: the run directory already opened for
    this run (``RunDirectory.open``); None opens it here (and a failed start-up unlocks it).
    """
    directory = run_dir or RunDirectory.open(run, resolved_config or None,
                                             writer=distributed.launched_as_rank0())
    try:
        return _build(run, resolved_config, engine, directory, owns_directory=run_dir is None)
    except BaseException:
        if run_dir is None:
            directory.close()
        raise


def _build(run: RunConfig, resolved_config: dict[str, Any], engine: RolloutEngine | None,
           directory: RunDirectory, owns_directory: bool) -> tuple[Parts, RunState]:
    from transformers import AutoTokenizer

    started = time.perf_counter()
    device = resolve_device(run.device)
    owns_process_group = distributed.init_from_env(device, run.distributed.timeout_s)
    world = distributed.world_size()
    check_data_parallel(run, world)
    if world == 1 and run.learner.strategy == "fsdp":
        log.warning("learner.strategy=fsdp in a single process: launch with torchrun "
                    "--nproc_per_node N -m rlvr.train to shard over N processes")
    random.seed(run.seed)
    torch.manual_seed(run.seed)
    checkpoint = checkpoint_to_resume(run, directory.path)

    model_path = resolve_model_path(run.model, run.data.arith)
    tokenizer = AutoTokenizer.from_pretrained(model_path, revision=run.model.revision)
    problems, prompts = training_prompts(run, tokenizer)
    eval_benchmarks = load_eval_benchmarks(run, tokenizer)
    check_prompts_fit(run, model_path, prompts, eval_benchmarks)
    check_fits_before_loading(run, model_path, device,
                              prompt_tokens=max(len(p) for p in prompts))
    policy = load_policy(model_path, run.model.dtype, run.learner.lora, device,
                         run.learner.gradient_checkpointing, run.model.revision,
                         run.model.trust_remote_code)
    learner = build_learner(run, policy, tokenizer)
    algorithm = run.algorithm
    schedules = ScheduleSet([(registry, name, algorithm.parameters())
                             for registry, name in algorithm_parts(algorithm)])
    state, saved = restore(checkpoint, policy, learner, schedules)
    owns_engine = engine is None
    if engine is None:
        prompt_lengths = [len(p) for p in prompts]
        prompt_lengths += [len(p) for b in eval_benchmarks for p in b.prompt_ids]
        with console.native_output_to_run_log():
            engine = build_engine(run, model_path, policy, tokenizer, prompt_lengths, device)
    # step-0 rollouts come from the learner's weights, whatever the engine loaded
    engine.sync_weights(policy)
    collector = RolloutCollector(run, engine, prompts, problems,
                                 PromptStream(len(prompts), run.data.shuffle_seed))
    run_identity = identity(run)
    run_dir = directory.path
    sink = MetricsSink(
        run_dir, run.logger, {**(resolved_config or {}),
                              "run": {"fingerprint": fingerprint(run_identity)}},
        name=str(run_dir.relative_to(run_dir.parent.parent)),
        group=run.experiment_name, tags=[algorithm.name, Path(run.model.path).name],
        resume_step=state.step, wandb_id=saved.get("wandb_id"), enabled=distributed.rank() == 0)
    parts = Parts(run, directory, device, started, model_path, tokenizer, problems, prompts,
                  eval_benchmarks, policy, learner, schedules, engine, collector, sink,
                  run_identity, owns_directory, owns_engine, owns_process_group)
    return parts, state
