"""GRPO training: ``python -m rlvr.train [group=option ...] [key=value ...]``.

One step (DESIGN.md): sample G rollouts for each of N prompts -> verify -> advantages ->
policy update (token weights, clipped loss) -> weights into the rollout engine -> metrics.
Evaluation at the start, every ``eval.every_n_steps`` and at the end; a checkpoint every
``checkpoint_every`` steps, from which ``resume=auto`` continues a run in the same directory.
"""

from __future__ import annotations

import logging
import os
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

from rlvr.algorithms import diagnostics
from rlvr.algorithms.advantages import compute_advantages
from rlvr.algorithms.weights import (
    LambdaScheduleState,
    current_lambda,
    initial_lambda_state,
    next_lambda_state,
)
from rlvr.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from rlvr.config import ConfigError, RunConfig, register_schema, validate
from rlvr.data.datasets import load_problems
from rlvr.data.prompts import PromptStream, encode_prompts
from rlvr.evaluation.runner import EvalBenchmark, evaluate
from rlvr.learner import distributed
from rlvr.learner.learner import Learner, TrainBatch
from rlvr.learner.policy import is_lora, load_policy
from rlvr.models import resolve_model_path
from rlvr.rewards import score_batch
from rlvr.rollout.base import RolloutEngine, Rollouts, SamplingSpec
from rlvr.tracking import MetricsSink

log = logging.getLogger(__name__)
register_schema()

_POS_REWEIGHT = "pos_reweight"


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
        raise RuntimeError("device=cuda but no CUDA device is available; use device=cpu")
    return torch.device(device)


def build_engine(run: RunConfig, model_path: str, policy: torch.nn.Module, tokenizer,
                 eos_ids: list[int], max_model_len: int, device: torch.device) -> RolloutEngine:
    """The configured rollout engine, holding the policy's current weights."""
    if run.rollout.engine == "hf":
        from rlvr.rollout.hf_engine import HFEngine

        return HFEngine(policy, tokenizer, eos_ids, dtype=run.model.dtype)
    from rlvr.rollout.vllm_engine import VLLMEngine

    return VLLMEngine(model_path, run.rollout, dtype=run.model.dtype, max_model_len=max_model_len,
                      seed=run.seed, lora_rank=run.learner.lora.r if is_lora(policy) else None,
                      on_cpu=device.type == "cpu")


def to_train_batch(prompts: list[list[int]], rollouts: Rollouts, advantages: torch.Tensor
                   ) -> TrainBatch:
    """The learner's view of a step: response-aligned [B, T] tensors, zero-padded."""
    lengths = [len(r) for r in rollouts.response_ids]
    width = max(lengths)
    return TrainBatch(
        prompt_ids=prompts,
        response_ids=rollouts.response_ids,
        sampler_logprobs=torch.tensor([row + [0.0] * (width - len(row))
                                       for row in rollouts.logprobs]),
        response_mask=(torch.arange(width) < torch.tensor(lengths)[:, None]).float(),
        advantages=advantages.flatten(),
    )


def _eval_benchmarks(run: RunConfig, tokenizer) -> list[EvalBenchmark]:
    benches = []
    for spec in run.eval.benchmarks:
        problems = load_problems(spec.name, spec.split, run.eval.dir, spec.limit, run.data.arith)
        benches.append(EvalBenchmark(spec, problems,
                                     encode_prompts(problems, tokenizer, run.model.family)))
    return benches


class Trainer:
    """One run: builds model, data, learner and engine (restoring the latest checkpoint), then
    ``fit`` loops over ``step``, evaluating and checkpointing on schedule."""

    def __init__(self, run: RunConfig, resolved_config: dict[str, Any],
                 engine: RolloutEngine | None = None) -> None:
        """``engine``: an existing rollout engine of the same model to reuse (its weights are
        replaced by this run's policy); None builds one."""
        from transformers import AutoTokenizer

        self.run = run
        self.started = time.perf_counter()
        self.device = resolve_device(run.device)
        distributed.init_from_env(self.device)
        self.rank, self.world = distributed.rank(), distributed.world_size()
        _check_data_parallel(run, self.world)
        self.run_dir = Path(run.output_dir)
        algo = run.algorithm
        random.seed(run.seed)
        torch.manual_seed(run.seed)

        self.model_path = resolve_model_path(run.model, run.data.arith)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path,
                                                       revision=run.model.revision)
        self.problems = load_problems(run.data.name, run.data.split, run.data.dir,
                                      run.data.limit, run.data.arith)
        self.prompts = encode_prompts(self.problems, self.tokenizer, run.model.family)
        self.eval_benchmarks = _eval_benchmarks(run, self.tokenizer)
        self.policy = load_policy(self.model_path, run.model.dtype, run.learner.lora,
                                  self.device, run.learner.gradient_checkpointing,
                                  run.model.revision, run.model.trust_remote_code)
        self.learner = Learner(
            self.policy, run.learner, algo,
            vocab_size=self.policy.get_output_embeddings().weight.shape[0],
            pad_id=self.tokenizer.pad_token_id, temperature=run.rollout.temperature,
            max_new_tokens=run.rollout.max_new_tokens, total_steps=run.total_steps,
            tis_cap=run.rollout.tis_cap, seed=run.seed, dtype=run.model.dtype)
        self.stream = PromptStream(len(self.prompts), run.data.shuffle_seed)
        self.uses_lambda = _POS_REWEIGHT in algo.token_weights
        self.lambda_state = initial_lambda_state(algo.weight_params()) \
            if self.uses_lambda else None
        self.start_step, state = 0, {}
        checkpoint = latest_checkpoint(self.run_dir) if run.resume == "auto" else \
            (None if run.resume == "never" else Path(run.resume))
        if checkpoint is not None:
            state = load_checkpoint(checkpoint, self.policy, self.learner)
            self.start_step = state["step"]
            self.stream.position = state["stream_position"]
            if self.uses_lambda:
                self.lambda_state = LambdaScheduleState.from_dict(state["lambda_state"])
            log.info("resuming from %s (step %d)", checkpoint, self.start_step)
        self.eval_history = [tuple(x) for x in state.get("eval_history", [])]
        self.last_eval: dict[str, float] = state.get("last_eval", {})
        eos_ids = sorted({self.tokenizer.eos_token_id, *_generation_eos(self.policy)})
        self.owns_engine = engine is None
        self.engine = engine or build_engine(run, self.model_path, self.policy, self.tokenizer,
                                             eos_ids, self._max_model_len(), self.device)
        if checkpoint is not None or not self.owns_engine:
            self.engine.sync_weights(self.policy)
        self.sink = MetricsSink(
            self.run_dir, run.logger, resolved_config, name=self.run_dir.name,
            group=run.experiment_name, tags=[algo.name, Path(run.model.path).name],
            resume_step=self.start_step, wandb_id=state.get("wandb_id"), enabled=self.rank == 0)

    def _max_model_len(self) -> int:
        run = self.run
        if run.rollout.max_model_len:
            return run.rollout.max_model_len
        prompt_lengths = [len(p) for p in self.prompts]
        prompt_lengths += [len(p) for b in self.eval_benchmarks for p in b.prompt_ids]
        new_tokens = [run.rollout.max_new_tokens]
        new_tokens += [b.max_new_tokens for b in run.eval.benchmarks if b.max_new_tokens]
        return max(prompt_lengths) + max(new_tokens)

    def rollout_sampling(self, step: int) -> SamplingSpec:
        """How step ``step`` samples; its seeds depend only on the run seed and the step."""
        rollout = self.run.rollout
        return SamplingSpec(n=rollout.n, temperature=rollout.temperature, top_p=rollout.top_p,
                            max_new_tokens=rollout.max_new_tokens,
                            seed=self.run.seed * 1_000_003 + step * self.run.prompts_per_step)

    def step(self, step: int) -> dict[str, float]:
        """One GRPO step on the next ``prompts_per_step`` prompts; returns its metrics."""
        run, algo, n = self.run, self.run.algorithm, self.run.rollout.n
        timer = StageTimer()
        step_start = time.perf_counter()
        batch_idx = self.stream.take(run.prompts_per_step)[self.rank::self.world]
        step_prompts = [self.prompts[i] for i in batch_idx]
        with timer("generate"):
            rollouts = self.engine.generate(step_prompts, self.rollout_sampling(step))
        with timer("reward"):
            answers = [self.problems[i].answer for i in batch_idx for _ in range(n)]
            rewards = torch.tensor(score_batch(rollouts.texts, answers)).view(-1, n)
        advantages = compute_advantages(algo.advantage, rewards, **algo.advantage_params())
        batch = to_train_batch([p for p in step_prompts for _ in range(n)], rollouts, advantages)
        weight_params = algo.weight_params()
        if self.uses_lambda:
            progress = step / max(1, run.total_steps - 1)
            weight_params["lambda_value"] = current_lambda(self.lambda_state, weight_params,
                                                           progress)
        self.engine.sleep()
        with timer("update"):
            result = self.learner.update(batch, weight_params)
        metrics = dict(result.metrics)
        if run.logprob_gain_every and step % run.logprob_gain_every == 0:
            with timer("logprob_gain"):
                after = self.learner.sequence_logprobs(batch)
            metrics["diag/logprob_gain_correct"] = diagnostics.logprob_gain(
                result.seq_logp, after, rewards.flatten())
        self.engine.wake_up()
        if result.applied:  # every optimiser step skipped as non-finite: the weights are as sampled
            with timer("sync"):
                self.engine.sync_weights(self.policy)

        mask = batch.response_mask
        entropy_mean = float((result.entropy * mask).sum() / mask.sum())
        metrics["train/entropy"] = entropy_mean
        if self.world > 1:
            metrics["adv/reward_mean_all_ranks"] = distributed.all_reduce(
                float(rewards.sum())) / distributed.all_reduce(rewards.numel())
        metrics.update({f"adv/{k}": v for k, v in
                        diagnostics.channel_stats(advantages, rewards).items()})
        metrics["diag/kappa"] = diagnostics.kappa(rewards, result.seq_logp.view_as(rewards))
        if algo.token_weights:
            metrics.update({f"weights/{k}": v for k, v in diagnostics.token_weight_stats(
                result.token_weights, mask, batch.advantages).items()})
        lengths = torch.tensor([len(r) for r in rollouts.response_ids])
        metrics.update({f"response/{k}": v for k, v in diagnostics.length_stats(
            lengths, torch.tensor(rollouts.truncated)).items()})
        if self.uses_lambda:
            metrics["weights/lambda"] = weight_params["lambda_value"]
            self.lambda_state = next_lambda_state(self.lambda_state, weight_params, entropy_mean)
        step_seconds = time.perf_counter() - step_start
        metrics.update({f"time/{k}": v for k, v in timer.seconds.items()})
        metrics["time/step"] = step_seconds
        metrics["time/elapsed"] = time.perf_counter() - self.started
        metrics["throughput/tokens_per_s"] = float(lengths.sum()) / step_seconds
        metrics["throughput/gen_tokens_per_s"] = float(lengths.sum()) / timer.seconds["generate"]
        self.last_step_samples = (batch_idx, rollouts, answers, rewards)
        return metrics

    def evaluate(self, step: int) -> dict[str, float]:
        """Evaluate on every configured benchmark and log the result at ``step``."""
        metrics = evaluate(self.engine, self.eval_benchmarks, step=step,
                           out_dir=self.run_dir / "eval",
                           default_max_new_tokens=self.run.rollout.max_new_tokens,
                           pass_ks=self.run.eval.pass_k, seed=self.run.seed + 7919 * step)
        metrics["time/elapsed"] = time.perf_counter() - self.started
        self.sink.log(step, metrics)
        self.last_eval = metrics
        self.eval_history.append((step, metrics["eval/average"]))
        return metrics

    def _log_samples(self, done: int) -> None:
        batch_idx, rollouts, answers, rewards = self.last_step_samples
        n, count = self.run.rollout.n, min(self.run.logger.samples_count, len(rollouts))
        self.sink.log_samples(done, ["prompt", "completion", "answer", "reward"], (
            [self.problems[batch_idx[i // n]].problem, rollouts.texts[i], answers[i],
             float(rewards.flatten()[i])] for i in range(count)))

    def save(self, done: int) -> None:
        save_checkpoint(self.run_dir, done, self.policy, self.tokenizer, self.learner, {
            "stream_position": self.stream.position, "wandb_id": self.sink.wandb_id,
            "lambda_state": self.lambda_state.to_dict() if self.uses_lambda else None,
            "eval_history": self.eval_history, "last_eval": self.last_eval,
        }, keep=self.run.keep_checkpoints)

    def fit(self) -> dict[str, float]:
        """Train from the start (or the restored checkpoint) to ``total_steps``; returns the
        final evaluation metrics."""
        run = self.run
        evaluates = self.rank == 0 and bool(self.eval_benchmarks)
        if self.start_step == 0 and run.eval.at_start and evaluates:
            self.evaluate(0)
        bar = tqdm(range(self.start_step, run.total_steps), initial=self.start_step,
                   total=run.total_steps, desc=run.algorithm.name, dynamic_ncols=True)
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
            bar.set_postfix(reward=f"{metrics['adv/reward_mean']:.3f}",
                            H=f"{metrics['train/entropy']:.3f}",
                            eval=f"{self.eval_history[-1][1]:.3f}" if self.eval_history else "-")
            if run.checkpoint_every and (done % run.checkpoint_every == 0 or at_end):
                self.save(done)
        self.sink.summary(run_summary(self.eval_history, self.last_eval))
        self.sink.finish()
        return self.last_eval

    def close(self) -> None:
        self.sink.finish()
        close = getattr(self.engine, "close", None)
        if self.owns_engine and close is not None:
            close()


def train(run: RunConfig, resolved_config: dict[str, Any]) -> dict[str, float]:
    """Run (or resume) training as configured; returns the final evaluation metrics."""
    trainer = Trainer(run, resolved_config)
    try:
        return trainer.fit()
    finally:
        trainer.close()


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


def _generation_eos(policy: torch.nn.Module) -> list[int]:
    eos = getattr(getattr(policy, "generation_config", None), "eos_token_id", None)
    if eos is None:
        return []
    return list(eos) if isinstance(eos, (list, tuple)) else [eos]


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run = validate(cfg)
    logging.getLogger("rlvr").setLevel(logging.INFO)
    os.makedirs(run.output_dir, exist_ok=True)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    log.info("run directory %s", run.output_dir)
    final = train(run, resolved)
    log.info("final evaluation %s", {k: round(v, 4) for k, v in final.items()})


if __name__ == "__main__":
    main()
