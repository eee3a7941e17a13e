"""GRPO training: ``python -m rlvr.train [group=option ...] [key=value ...]``.

One step (DESIGN.md): ``collect`` (sample G rollouts for each of N prompts -> verify -> filter
and refill -> advantages; rlvr/collect.py) -> policy update (token weights, policy loss) ->
weights into the rollout engine -> metrics -> advance the parameter schedules.
Evaluation at the start, every ``eval.every_n_steps`` and at the end; a checkpoint every
``checkpoint_every`` steps, from which ``resume=auto`` continues a run in the same directory.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rlvr import cli, console
from rlvr.algorithms import diagnostics
from rlvr.algorithms.parts import ScheduleSet
from rlvr.checkpoint import (
    CheckpointError,
    checkpoint_step,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    select_checkpoint,
    supersede_after,
    verify_checkpoint,
)
from rlvr.collect import RolloutCollector, StepBatch
from rlvr.config import ConfigError, RunConfig, register_schema, validate
from rlvr.data.datasets import load_problems
from rlvr.data.problem import Problem
from rlvr.data.prompts import PromptStream, encode_prompts
from rlvr.evaluation.runner import EvalBenchmark, evaluate
from rlvr.learner import distributed
from rlvr.learner.learner import Learner, TrainBatch, UpdateResult
from rlvr.learner.policy import is_lora, load_policy
from rlvr.models import resolve_model_path
from rlvr.plan import check_fits_before_loading
from rlvr.rollout.base import RolloutEngine, Rollouts
from rlvr.rollout.limits import (
    check_prompt_lengths,
    drop_long_prompts,
    max_model_len,
    model_context,
    stop_token_ids,
)
from rlvr.run_dir import RunDirectory, check_identity, fingerprint, identity
from rlvr.seeding import eval_seed
from rlvr.tracking import MetricsSink

log = logging.getLogger(__name__)
register_schema()


class StageTimer:
    """Wall seconds per named stage of a step."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        yield
        self.seconds[stage] += time.perf_counter() - start


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device=cuda: torch sees no CUDA device; use device=auto or device=cpu")
    return torch.device(device)


def build_engine(run: RunConfig, model_path: str, policy: torch.nn.Module | None, tokenizer,
                 prompt_lengths: list[int], device: torch.device) -> RolloutEngine:
    """The configured rollout engine, holding the policy's current weights (``policy`` may be
    None for vLLM, which loads ``model_path`` itself). It stops on ``stop_token_ids`` and its
    context fits the longest of ``prompt_lengths`` plus the most new tokens configured."""
    stop_ids = stop_token_ids(model_path, tokenizer, revision=run.model.revision,
                              trust_remote_code=run.model.trust_remote_code)
    if run.rollout.engine == "hf":
        from rlvr.rollout.hf_engine import HFEngine

        return HFEngine(policy, tokenizer, stop_ids, dtype=run.model.dtype)
    from rlvr.rollout.vllm_engine import VLLMEngine

    return VLLMEngine(model_path, run.rollout, dtype=run.model.dtype,
                      max_model_len=max_model_len(run.rollout, run.eval.benchmarks,
                                                  prompt_lengths),
                      seed=run.seed, stop_token_ids=stop_ids,
                      lora_rank=run.learner.lora.r if policy is not None and is_lora(policy)
                      else None, on_cpu=device.type == "cpu", revision=run.model.revision,
                      trust_remote_code=run.model.trust_remote_code)


def to_train_batch(prompts: list[list[int]], step_batch: StepBatch) -> TrainBatch:
    """The learner's view of this rank's kept groups: response-aligned [B, T] tensors,
    zero-padded, each row with its index in the step's batch over all ranks
    (``data_parallel_rows``); ``prompts`` are the token ids of all prompts."""
    rollouts, n = step_batch.rollouts, step_batch.correct.shape[-1]
    lengths = [len(r) for r in rollouts.response_ids]
    width = max(lengths)
    return TrainBatch(
        prompt_ids=[prompts[i] for i in step_batch.prompt_index for _ in range(n)],
        response_ids=rollouts.response_ids,
        sampler_logprobs=torch.tensor([row + [0.0] * (width - len(row))
                                       for row in rollouts.logprobs]),
        response_mask=(torch.arange(width) < torch.tensor(lengths)[:, None]).float(),
        advantages=step_batch.advantages.flatten(),
        global_rows=data_parallel_rows(step_batch.num_groups, n),
    )


def data_parallel_rows(num_groups: int, n: int) -> list[int] | None:
    """Global row ids of this rank's ``num_groups`` groups of ``n`` rollouts in the step's batch
    over all ranks (None for a single process).

    The ranks' groups are interleaved as a single process drawing the same prompts would hold
    them: group k of rank r is global group sum_s min(c_s, k) + #{s < r : c_s > k}, c_s the
    group count of rank s; with equal counts that is k * world + r."""
    if distributed.world_size() == 1:
        return None
    counts = distributed.gather_rows(torch.tensor([num_groups])).tolist()
    rank = distributed.rank()
    rows = []
    for k in range(num_groups):
        group = sum(min(c, k) for c in counts) + sum(c > k for c in counts[:rank])
        rows += range(group * n, group * n + n)
    return rows


def load_eval_benchmarks(run: RunConfig, tokenizer) -> list[EvalBenchmark]:
    """``run.eval``'s benchmarks with their prompts in the model family's template."""
    benches = []
    for spec in run.eval.benchmarks:
        problems = load_problems(spec.name, spec.split, run.eval.dir, spec.limit, run.data.arith)
        benches.append(EvalBenchmark(spec, problems,
                                     encode_prompts(problems, tokenizer, run.model.family)))
    return benches


class Trainer:
    """One run: opens its run directory (rlvr/run_dir.py), picks the checkpoint to resume, builds
    model, data, learner and engine, then ``fit`` loops over ``step``, evaluating and
    checkpointing on schedule."""

    def __init__(self, run: RunConfig, resolved_config: dict[str, Any],
                 engine: RolloutEngine | None = None,
                 run_dir: RunDirectory | None = None) -> None:
        """``engine``: an existing rollout engine of the same model to reuse (its weights are
        replaced by this run's policy); None builds one. ``run_dir``: the run directory already
        opened for this run (``RunDirectory.open``); None opens it here."""
        self.run = run
        self.started = time.perf_counter()
        self.device = resolve_device(run.device)
        self.owns_run_dir = run_dir is None
        self.directory = run_dir or RunDirectory.open(
            run, resolved_config or None, writer=distributed.launched_as_rank0())
        self.owns_engine = engine is None
        self.engine = engine
        self.sink: MetricsSink | None = None
        try:
            self._build(run, resolved_config, engine)
        except BaseException:
            if self.owns_run_dir:  # a failed start-up leaves the directory unlocked
                self.directory.close()
            raise

    def _build(self, run: RunConfig, resolved_config: dict[str, Any],
               engine: RolloutEngine | None) -> None:
        """Model, data, learner, engine, restored checkpoint and metrics sink of ``run``."""
        from transformers import AutoTokenizer

        distributed.init_from_env(self.device, run.distributed.timeout_s)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        _check_data_parallel(run, self.world)
        self.run_dir = self.directory.path
        algo = run.algorithm
        random.seed(run.seed)
        torch.manual_seed(run.seed)
        checkpoint = self._checkpoint_to_resume()

        self.model_path = resolve_model_path(run.model, run.data.arith)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path,
                                                       revision=run.model.revision)
        self.problems, self.prompts = self._training_prompts()
        self.eval_benchmarks = load_eval_benchmarks(run, self.tokenizer)
        self._check_prompts_fit()
        check_fits_before_loading(run, self.model_path, self.device,
                                  prompt_tokens=max(len(p) for p in self.prompts))
        self.policy = load_policy(self.model_path, run.model.dtype, run.learner.lora,
                                  self.device, run.learner.gradient_checkpointing,
                                  run.model.revision, run.model.trust_remote_code)
        self.learner = Learner(
            self.policy, run.learner, algo,
            vocab_size=self.policy.get_output_embeddings().weight.shape[0],
            pad_id=self.tokenizer.pad_token_id, temperature=run.rollout.temperature,
            max_new_tokens=run.rollout.max_new_tokens, total_steps=run.total_steps,
            tis_cap=run.rollout.tis_cap, seed=run.seed, dtype=run.model.dtype)
        self.schedules = ScheduleSet([(registry, name, algo.parameters())
                                      for registry, name in algo.parts()])
        self.start_step, state = 0, {}
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, self.policy, self.learner)
            self.start_step = state["step"]
            self.schedules.load_state_dict(state.get("schedules", {}))
            log.info("resuming from %s (step %d)", checkpoint, self.start_step)
        self.eval_history = [tuple(x) for x in state.get("eval_history", [])]
        self.last_eval: dict[str, float] = state.get("last_eval", {})
        if engine is None:
            prompt_lengths = [len(p) for p in self.prompts]
            prompt_lengths += [len(p) for b in self.eval_benchmarks for p in b.prompt_ids]
            with console.native_output_to_run_log():
                engine = build_engine(run, self.model_path, self.policy, self.tokenizer,
                                      prompt_lengths, self.device)
        self.engine = engine
        # step-0 rollouts come from the learner's weights, whatever the engine loaded
        self.engine.sync_weights(self.policy)
        self.collector = RolloutCollector(run, self.engine, self.prompts, self.problems,
                                          PromptStream(len(self.prompts), run.data.shuffle_seed))
        self.identity = identity(run)
        self.sink = MetricsSink(
            self.run_dir, run.logger, {**(resolved_config or {}),
                                       "run": {"fingerprint": fingerprint(self.identity)}},
            name=str(self.run_dir.relative_to(self.run_dir.parent.parent)),
            group=run.experiment_name, tags=[algo.name, Path(run.model.path).name],
            resume_step=self.start_step, wandb_id=state.get("wandb_id"), enabled=self.rank == 0)

    def _checkpoint_to_resume(self) -> Path | None:
        """The verified checkpoint this run continues from (None: from the start), chosen on
        rank 0 before any model loads: ``resume=auto`` the newest that verifies (falling back
        past corrupt ones), a checkpoint path that one, which must verify. Its recorded identity
        must be this run's; the run directory's checkpoints after it are superseded.

        Raises:
            CheckpointError: the named checkpoint fails its digests, or none verifies.
            RunDirError: the checkpoint was made by a run with other settings.
        """
        run = self.run
        if run.resume == "never":
            return None
        chosen: Path | None = None
        failure = None
        if self.rank == 0:
            try:
                if run.resume == "auto":
                    chosen = select_checkpoint(self.run_dir)
                else:
                    chosen = Path(run.resume).expanduser()
                    verify_checkpoint(chosen)
                if chosen is not None:
                    state = json.loads((chosen / "state.json").read_text())
                    check_identity(state.get("identity", {}), run, f"checkpoint {chosen}")
                    supersede_after(self.run_dir, checkpoint_step(chosen))
            except (CheckpointError, ConfigError) as err:
                failure = err
        chosen, failure = distributed.from_rank0((chosen, failure))
        if failure is not None:
            raise failure
        return chosen

    def _training_prompts(self) -> tuple[list[Problem], list[list[int]]]:
        """The training problems and their prompt token ids, without the prompts longer than
        ``data.max_prompt_tokens`` (their number is logged)."""
        run = self.run
        problems = load_problems(run.data.name, run.data.split, run.data.dir, run.data.limit,
                                 run.data.arith)
        prompts = encode_prompts(problems, self.tokenizer, run.model.family)
        kept = drop_long_prompts(prompts, run.data.max_prompt_tokens)
        if len(kept) < len(prompts):
            log.info("data.max_prompt_tokens=%d: dropped %d of %d training prompts",
                     run.data.max_prompt_tokens, len(prompts) - len(kept), len(prompts))
        if not kept:
            raise ConfigError(f"data.max_prompt_tokens={run.data.max_prompt_tokens} drops every "
                              f"training prompt; raise it")
        return [problems[i] for i in kept], [prompts[i] for i in kept]

    def _check_prompts_fit(self) -> None:
        """Every training and evaluation prompt leaves room for its new tokens in the model's
        context (before any weights load; a prompt that does not fit would fail the engine's
        start-up, or allocate for its length)."""
        run = self.run
        context = model_context(self.model_path, run.rollout, revision=run.model.revision,
                                trust_remote_code=run.model.trust_remote_code)
        check_prompt_lengths(f"data={run.data.name}", [len(p) for p in self.prompts],
                             run.rollout.max_new_tokens, context)
        for bench in self.eval_benchmarks:
            check_prompt_lengths(f"eval benchmark {bench.spec.name}",
                                 [len(p) for p in bench.prompt_ids],
                                 bench.spec.max_new_tokens or run.rollout.max_new_tokens, context)

    def step(self, step: int) -> dict[str, float]:
        """One step on the next ``prompts_per_step`` prompts; returns its metrics."""
        run, algo = self.run, self.run.algorithm
        timer = StageTimer()
        step_start = time.perf_counter()
        scheduled = self.schedules.now(step / max(1, run.total_steps - 1))
        params = {**algo.parameters(), **scheduled}
        batch = self.collector.collect(step, params, timer)
        self.last_batch = batch
        metrics = {**batch.metrics, **self.schedules.metrics(scheduled)}
        if distributed.all_reduce(float(batch.num_groups)) == 0:
            log.warning("step %d: no group kept after %d rounds; no update", step,
                        self.collector.rounds)
        else:
            metrics.update(self._update(step, batch, params, timer))
        step_seconds = distributed.all_reduce(time.perf_counter() - step_start, op="max")
        metrics.update({f"time/{k}": distributed.all_reduce(v, op="max")
                        for k, v in timer.seconds.items()})
        metrics["time/step"] = step_seconds
        metrics["time/elapsed"] = time.perf_counter() - self.started
        tokens = distributed.all_reduce(float(sum(map(len, batch.rollouts.response_ids))))
        metrics["throughput/tokens_per_s"] = tokens / step_seconds
        metrics["throughput/gen_tokens_per_s"] = tokens / metrics["time/generate"]
        return metrics

    def _update(self, step: int, step_batch: StepBatch, params: dict[str, Any],
                timer: StageTimer) -> dict[str, float]:
        """Update the policy on the kept groups, sync the engine, advance the schedules;
        returns the update's metrics and the step's diagnostics (global over ranks)."""
        run, algo = self.run, self.run.algorithm
        correct, advantages = step_batch.correct, step_batch.advantages
        batch = to_train_batch(self.prompts, step_batch)
        # wake -> sync -> generate (VLLMEngine's docstring): the engine sleeps while the
        # learner runs and gets the new weights before it generates again
        self.engine.sleep()
        with timer("update"):
            result = self.learner.update(batch, params)
        metrics = dict(result.metrics)
        if run.logprob_gain_every and step % run.logprob_gain_every == 0:
            with timer("logprob_gain"):
                after = self.learner.sequence_logprobs(batch)
            metrics["diag/logprob_gain_correct"] = diagnostics.logprob_gain(*(
                distributed.gather_rows(t) for t in (result.seq_logp, after, correct.flatten())))
        self.engine.wake_up()
        # with every optimiser step skipped as non-finite the weights are as sampled: no sync,
        # unless sleep mode discarded the engine's copy
        if result.applied or run.rollout.sleep_mode:
            with timer("sync"):
                self.engine.sync_weights(self.policy)

        metrics.update(step_diagnostics(batch, correct, advantages, result, step_batch.rollouts,
                                        bool(algo.token_weights)))
        if self.collector.buffer > 0:  # shaping is on (a fraction can round to no buffer)
            metrics["adv/shaped_reward_mean"] = float(
                distributed.gather_rows(step_batch.rewards).mean())
        self.schedules.advance(metrics["train/entropy"])
        return metrics

    def evaluate(self, step: int) -> dict[str, float]:
        """Evaluate on every configured benchmark (rank 0) and log the result at ``step``; every
        rank gets the result, so the run state (eval history) is the same on all ranks."""
        metrics: dict[str, float] = {}
        if self.rank == 0:
            metrics = evaluate(self.engine, self.eval_benchmarks, step=step,
                               out_dir=self.run_dir / "eval",
                               default_max_new_tokens=self.run.rollout.max_new_tokens,
                               pass_ks=self.run.eval.pass_k, seed=eval_seed(self.run.seed, step))
            metrics["time/elapsed"] = time.perf_counter() - self.started
            self.sink.log(step, metrics)
        metrics = distributed.from_rank0(metrics)
        self.last_eval = metrics
        self.eval_history.append((step, metrics["eval/average"]))
        return metrics

    def _log_samples(self, done: int) -> None:
        batch = self.last_batch
        n, count = self.run.rollout.n, min(self.run.logger.samples_count, len(batch.rollouts))
        self.sink.log_samples(done, ["prompt", "completion", "answer", "reward"], (
            [self.problems[batch.prompt_index[i // n]].problem, batch.rollouts.texts[i],
             batch.answers[i], float(batch.rewards.flatten()[i])] for i in range(count)))

    def save(self, done: int) -> None:
        save_checkpoint(self.run_dir, done, self.policy, self.tokenizer, self.learner, {
            "identity": self.identity, "wandb_id": self.sink.wandb_id,
            "schedules": self.schedules.state_dict(),
            "eval_history": self.eval_history, "last_eval": self.last_eval,
        }, keep=self.run.keep_checkpoints)

    def fit(self) -> dict[str, float]:
        """Train from the start (or the restored checkpoint) to ``total_steps``; returns the
        final evaluation metrics."""
        run = self.run
        if self.start_step and self.start_step >= run.total_steps:
            log.info(nothing_to_train(self.run_dir, self.start_step, run.total_steps))
            return self.last_eval
        evaluates = bool(self.eval_benchmarks)
        if self.start_step == 0 and run.eval.at_start and evaluates:
            self.evaluate(0)
        bar = tqdm(range(self.start_step, run.total_steps), initial=self.start_step,
                   total=run.total_steps, desc=f"{run.algorithm.name} seed {run.seed}",
                   dynamic_ncols=True, disable=self.rank != 0 or run.total_steps == 0)
        for step in bar:
            metrics = self.step(step)
            done = step + 1
            self.sink.log(done, metrics)
            if run.logger.samples_every and done % run.logger.samples_every == 0:
                self._log_samples(done)
            at_end = done == run.total_steps
            if evaluates and ((run.eval.every_n_steps
                                          and done % run.eval.every_n_steps == 0)
                                         or (at_end and run.eval.at_end)):
                self.evaluate(done)
            bar.set_postfix({
                "reward": f"{metrics.get('adv/reward_mean', math.nan):.3f}",
                "entropy": f"{metrics.get('train/entropy', math.nan):.3f}",
                "eval": f"{self.eval_history[-1][1]:.3f}" if self.eval_history else "-"})
            if run.checkpoint_every and (done % run.checkpoint_every == 0 or at_end):
                self.save(done)
        self.sink.summary(run_summary(self.eval_history, self.last_eval))
        self.sink.finish()
        return self.last_eval

    def close(self) -> None:
        if self.sink is not None:
            self.sink.finish()
        close = getattr(self.engine, "close", None)
        if self.owns_engine and close is not None:
            close()
        if self.owns_run_dir:
            self.directory.close()


def nothing_to_train(run_dir: Path, step: int, total_steps: int) -> str:
    """The one line of a resume whose checkpoint is already at (or past) ``total_steps``."""
    return (f"nothing to train: {run_dir} is at step {step} and total_steps={total_steps}; its "
            f"results are in that directory (raise total_steps to train on)")


def train(run: RunConfig, resolved_config: dict[str, Any],
          run_dir: RunDirectory | None = None) -> dict[str, float]:
    """Run (or resume) training as configured; returns the final evaluation metrics."""
    trainer = Trainer(run, resolved_config, run_dir=run_dir)
    try:
        return trainer.fit()
    finally:
        trainer.close()


def step_diagnostics(batch: TrainBatch, rewards: torch.Tensor, advantages: torch.Tensor,
                     result: UpdateResult, rollouts: Rollouts, token_weights: bool
                     ) -> dict[str, float]:
    """The per-step diagnostics (METHODS.md section 4) of the global batch: each rank's rows are
    gathered (``distributed.gather_rows``) before the statistics, so every rank, and a single
    process on the same batch, gets the same values.

    rewards, advantages [N, G] of this rank; ``result``: the learner's pre-update statistics.
    """
    gather = distributed.gather_rows
    mask = batch.response_mask
    all_rewards = gather(rewards)
    metrics = {"train/entropy": distributed.token_mean(result.entropy, mask)}
    metrics.update({f"adv/{k}": v for k, v in
                    diagnostics.channel_stats(gather(advantages), all_rewards).items()})
    metrics["diag/kappa"] = diagnostics.kappa(all_rewards,
                                              gather(result.seq_logp.view_as(rewards)))
    if token_weights:
        metrics.update({f"weights/{k}": v for k, v in diagnostics.token_weight_stats(
            gather(result.token_weights), gather(mask), gather(batch.advantages)).items()})
    lengths = torch.tensor([len(r) for r in rollouts.response_ids])
    metrics.update({f"response/{k}": v for k, v in diagnostics.length_stats(
        gather(lengths), gather(torch.tensor(rollouts.truncated))).items()})
    return metrics


def run_summary(eval_history: list[tuple[int, float]], last_eval: dict[str, float]
                ) -> dict[str, float]:
    """Best and final eval averages, and the spread of the eval average over checkpoints
    (SA-AH-GRPO's "training variance"; METHODS.md section 5 reports variance and std)."""
    summary = dict(last_eval)
    if eval_history:
        values = torch.tensor([v for _, v in eval_history], dtype=torch.float64)
        best = int(values.argmax())
        summary.update({
            "eval/best_average": float(values[best]), "eval/best_step": eval_history[best][0],
            "eval/final_average": float(values[-1]),
            "eval/average_variance": float(values.var(unbiased=False)),
            "eval/average_std": float(values.std(unbiased=False)),
        })
    return summary


def _check_data_parallel(run: RunConfig, world: int) -> None:
    """Under torchrun: FSDP learner, one vLLM engine per rank, prompts split evenly."""
    if world == 1:
        if run.learner.strategy == "fsdp":
            log.warning("learner.strategy=fsdp in a single process: launch with torchrun "
                        "--nproc_per_node N -m rlvr.train to shard over N processes")
        return
    if run.learner.strategy != "fsdp":
        raise ConfigError(f"{world} processes need learner.strategy=fsdp, got "
                          f"{run.learner.strategy!r}")
    if run.rollout.engine != "vllm":
        raise ConfigError("learner.strategy=fsdp needs rollout=vllm: the hf engine would run "
                          "the sharded policy's forward passes out of step across ranks")
    if run.prompts_per_step % world:
        raise ConfigError(f"prompts_per_step={run.prompts_per_step} must be divisible by the "
                          f"{world} processes")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    """Check everything that can be checked before a model loads (values, the run directory's
    lock and identity, whether anything is left to train), then train."""
    with cli.reporting_errors():
        cli.check_group_choices()
        run = validate(cfg)
        console.setup(verbose=run.logger.verbose)
        resolved = OmegaConf.to_container(cfg, resolve=True)
        directory = RunDirectory.open(run, resolved,
                                      writer=distributed.launched_as_rank0())
        try:
            done = _finished_step(run, directory.path)
            if done is not None:
                log.info(nothing_to_train(directory.path, done, run.total_steps))
                return
            with console.run_log(directory.path / "train.log"):
                log.info("run directory %s (full log: train.log)", directory.path)
                final = train(run, resolved, directory)
                log.info("final evaluation: %s", format_metrics(final))
        finally:
            directory.close()


def _finished_step(run: RunConfig, run_dir: Path) -> int | None:
    """The step of the checkpoint a resume would start from, when it is at or past
    ``total_steps`` (nothing to train); else None."""
    if run.resume == "never":
        return None
    checkpoint = latest_checkpoint(run_dir) if run.resume == "auto" else Path(run.resume)
    if checkpoint is None:
        return None
    step = checkpoint_step(checkpoint)
    if step < run.total_steps:
        return None
    if step > run.total_steps:
        raise ConfigError(f"total_steps={run.total_steps} is below step {step} of the checkpoint "
                          f"{checkpoint}: the run in {run_dir} went further already; pass "
                          f"total_steps={step} or more, or resume=never to start a "
                          f"{run.total_steps}-step run")
    return step


def format_metrics(metrics: dict[str, float]) -> str:
    """``eval/average 0.4125, eval/arith_l1/avg@4 0.5500, ...``: the average first."""
    keys = sorted(metrics, key=lambda k: (k != "eval/average", k))
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k.startswith("eval/"))


def main() -> None:
    """``python -m rlvr.train``: configuration errors are one line and exit status 2."""
    cli.run(_hydra_main)


if __name__ == "__main__":
    main()
