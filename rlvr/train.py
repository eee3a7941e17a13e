"""GRPO training: ``python -m rlvr.train [group=option ...] [key=value ...]``.

The loop (DESIGN.md), one step at a time: collect (sample G rollouts for each of N prompts ->
verify -> shape -> filter and refill -> advantages; rlvr/collect.py) -> update the policy
(rlvr/learner/learner.py) -> weights into the rollout engine -> log -> evaluate -> checkpoint.
The parts are built in rlvr/build.py, the step's metrics computed in rlvr/step_metrics.py, and
where a resume starts is decided in rlvr/resume.py. Evaluation at the start, every
``eval.every_n_steps`` and at the end; a checkpoint every ``checkpoint_every`` steps, from which
``resume=auto`` continues a run in the same directory.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from rlvr import cli, console
from rlvr.algorithms import diagnostics
from rlvr.batch import StepBatch
from rlvr.build import Parts, RunState, build
from rlvr.checkpoint import save_checkpoint
from rlvr.checks import register_schema, validate
from rlvr.config import RunConfig
from rlvr.evaluation.runner import evaluate
from rlvr.learner import distributed
from rlvr.reporting import machine, provenance
from rlvr.resume import finished_step, nothing_to_train
from rlvr.rollout.base import RolloutEngine
from rlvr.run_dir import RunDirectory
from rlvr.seeding import eval_seed
from rlvr.step_metrics import (
    StageTimer,
    run_summary,
    sequence_logprobs,
    step_metrics,
    timing_metrics,
)

log = logging.getLogger(__name__)
register_schema()


@dataclass
class StepOutcome:
    """One trained step: its batch (with what the learner filled in) and its metrics."""

    batch: StepBatch
    metrics: dict[str, float]


class Trainer:
    """One run: its parts (rlvr/build.py) and its state; ``fit`` is the loop.

    Attributes of the parts and of the state read through (``trainer.policy`` is
    ``trainer.parts.policy``, ``trainer.eval_history`` is ``trainer.state.eval_history``).
    """

    def __init__(self, run: RunConfig, resolved_config: dict[str, Any],
                 engine: RolloutEngine | None = None,
                 run_dir: RunDirectory | None = None) -> None:
        """``engine``: an existing rollout engine of the same model to reuse (its weights are
        replaced by this run's policy); None builds one. ``run_dir``: the run directory already
        opened for this run (``RunDirectory.open``); None opens it here."""
        self.parts, self.state = build(run, resolved_config, engine, run_dir)

    def __getattr__(self, name: str) -> Any:
        parts, state = self.__dict__.get("parts"), self.__dict__.get("state")
        for holder in (parts, state):
            if holder is not None and hasattr(holder, name):
                return getattr(holder, name)
        raise AttributeError(f"Trainer has no attribute {name!r}")

    @property
    def start_step(self) -> int:
        return self.state.step

    def fit(self) -> dict[str, float]:
        """Train from the start (or the restored checkpoint) to ``total_steps``; returns the
        final evaluation metrics."""
        parts, state, run = self.parts, self.state, self.parts.run
        code = provenance.commit()  # before training: a checkout during a long run is not it
        if state.step and state.step >= run.total_steps:
            log.info(nothing_to_train(parts.run_dir, state.step, run.total_steps))
            return state.last_eval
        if state.step == 0 and run.eval.at_start and parts.eval_benchmarks:
            self.evaluate(0)
        bar = tqdm(range(state.step, run.total_steps), initial=state.step,
                   total=run.total_steps, desc=f"{run.algorithm.name} seed {run.seed}",
                   dynamic_ncols=True, disable=parts.rank != 0 or run.total_steps == 0)
        for step in bar:
            outcome = self.run_step(step)
            done = step + 1
            parts.sink.log(done, outcome.metrics)
            if run.logger.samples_every and done % run.logger.samples_every == 0:
                log_samples(parts, outcome.batch, done)
            if evaluates_after(run, done) and parts.eval_benchmarks:
                self.evaluate(done)
            bar.set_postfix(progress_postfix(outcome.metrics, state))
            if run.checkpoint_every and (done % run.checkpoint_every == 0
                                         or done == run.total_steps):
                self.save(done)
        parts.sink.summary({**run_summary(state.eval_history, state.last_eval),
                            "machine": machine.describe(), "commit": code})
        parts.sink.finish()
        return state.last_eval

    def run_step(self, step: int) -> StepOutcome:
        """One step on the next ``prompts_per_step`` prompts: collect, update and sync."""
        parts, run = self.parts, self.parts.run
        timer, started = StageTimer(), time.perf_counter()
        scheduled = parts.schedules.now(step / max(1, run.total_steps - 1))
        params = {**run.algorithm.parameters(), **scheduled}
        batch = parts.collector.collect(step, params, timer)
        metrics = {**batch.metrics, **parts.schedules.metrics(scheduled)}
        if distributed.all_reduce(float(batch.num_groups)) == 0:
            log.warning("step %d: no group kept after %d rounds; no update", step,
                        int(batch.metrics.get("filter/rounds", 1)))
        else:
            metrics.update(update(parts, step, batch, params, timer))
        metrics.update(timing_metrics(timer, time.perf_counter() - started, parts.started,
                                      batch))
        return StepOutcome(batch, metrics)

    def step(self, step: int) -> dict[str, float]:
        """``run_step``'s metrics."""
        return self.run_step(step).metrics

    def evaluate(self, step: int) -> dict[str, float]:
        """Evaluate on every configured benchmark, each rank its share of the problems
        (rlvr/evaluation/runner.py), and log the result at ``step``; the run state (eval
        history) is rank 0's on every rank."""
        parts, state, run = self.parts, self.state, self.parts.run
        metrics = evaluate(parts.engine, parts.eval_benchmarks, step=step,
                           out_dir=parts.run_dir / "eval",
                           default_max_new_tokens=run.rollout.max_new_tokens,
                           pass_ks=run.eval.pass_k, seed=eval_seed(run.seed, step))
        metrics["time/elapsed"] = time.perf_counter() - parts.started
        if parts.rank == 0:
            parts.sink.log(step, metrics)
        metrics = distributed.from_rank0(metrics)
        state.last_eval = metrics
        state.eval_history.append((step, metrics["eval/average"]))
        return metrics

    def save(self, done: int) -> None:
        """A checkpoint after ``done`` steps, with the state a resume needs."""
        parts, state = self.parts, self.state
        save_checkpoint(parts.run_dir, done, parts.policy, parts.tokenizer, parts.learner, {
            "identity": parts.identity, "wandb_id": parts.sink.wandb_id,
            "schedules": parts.schedules.state_dict(),
            "eval_history": state.eval_history, "last_eval": state.last_eval,
        }, keep=parts.run.keep_checkpoints)

    def close(self, failed: bool = False) -> None:
        """Release what the run holds (``Parts.close``)."""
        self.parts.close(failed)


def update(parts: Parts, step: int, batch: StepBatch, params: dict[str, Any],
           timer: StageTimer) -> dict[str, float]:
    """Update the policy on the kept groups, sync the engine, advance the schedules; returns the
    update's metrics and the step's diagnostics (global over ranks).

    The engine sleeps while the learner runs and gets the new weights before it generates again
    (generate -> sleep -> update -> wake_up -> sync; rlvr/rollout/vllm_engine.py). With every
    optimiser step skipped as non-finite the weights are as sampled: no sync, unless sleep mode
    discarded the engine's copy."""
    run, engine = parts.run, parts.engine
    engine.sleep()
    with timer("update"):
        result = parts.learner.update(batch, params)
    metrics = dict(result.metrics)
    if run.logprob_gain_every and step % run.logprob_gain_every == 0:
        with timer("logprob_gain"):
            after = parts.learner.sequence_logprobs(batch)
        metrics["diag/logprob_gain_correct"] = diagnostics.logprob_gain(*(
            distributed.gather_rows(t) for t in (sequence_logprobs(batch), after,
                                                 batch.correct.flatten())))
    engine.wake_up()
    if result.applied or run.rollout.sleep_mode:
        with timer("sync"):
            engine.sync_weights(parts.policy)
    metrics.update(step_metrics(batch, bool(run.algorithm.token_weights)))
    parts.schedules.advance(metrics["train/entropy"])
    return metrics


def evaluates_after(run: RunConfig, done: int) -> bool:
    """Whether the run evaluates after ``done`` steps: every ``eval.every_n_steps`` and, with
    ``eval.at_end``, after the last step."""
    every = run.eval.every_n_steps
    return bool((every and done % every == 0) or (done == run.total_steps and run.eval.at_end))


def log_samples(parts: Parts, batch: StepBatch, done: int) -> None:
    """The first ``logger.samples_count`` rollouts of the step (prompt, completion, answer,
    reward) to the sink's samples table."""
    n, count = parts.run.rollout.n, min(parts.run.logger.samples_count, batch.num_rows)
    rewards = batch.rewards.flatten()
    parts.sink.log_samples(done, ["prompt", "completion", "answer", "reward"], (
        [parts.problems[batch.prompt_index[i // n]].problem, batch.texts[i], batch.answers[i],
         float(rewards[i])] for i in range(count)))


def progress_postfix(metrics: dict[str, float], state: RunState) -> dict[str, str]:
    """The progress bar's reward, entropy and last eval average."""
    return {"reward": f"{metrics.get('adv/reward_mean', math.nan):.3f}",
            "entropy": f"{metrics.get('train/entropy', math.nan):.3f}",
            "eval": f"{state.eval_history[-1][1]:.3f}" if state.eval_history else "-"}


def train(run: RunConfig, resolved_config: dict[str, Any],
          run_dir: RunDirectory | None = None) -> dict[str, float]:
    """Run (or resume) training as configured; returns the final evaluation metrics."""
    trainer = Trainer(run, resolved_config, run_dir=run_dir)
    try:
        with distributed.named_timeout("a collective of the training loop"):
            final = trainer.fit()
    except BaseException:
        trainer.close(failed=True)
        raise
    trainer.close()
    return final


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
            done = finished_step(run, directory.path)
            if done is not None:
                log.info(nothing_to_train(directory.path, done, run.total_steps))
                return
            with console.run_log(directory.path / "train.log"):
                log.info("run directory %s (full log: train.log)", directory.path)
                final = train(run, resolved, directory)
                log.info("final evaluation: %s", format_metrics(final))
        finally:
            directory.close()


def format_metrics(metrics: dict[str, float]) -> str:
    """``eval/average 0.4125, eval/arith_l1/avg@4 0.5500, ...``: the average first."""
    keys = sorted(metrics, key=lambda k: (k != "eval/average", k))
    return ", ".join(f"{k} {metrics[k]:.4f}" for k in keys if k.startswith("eval/"))


def main() -> None:
    """``python -m rlvr.train``: configuration errors are one line and exit status 2."""
    cli.run(_hydra_main)


if __name__ == "__main__":
    main()
