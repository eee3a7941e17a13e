"""Seconds per GRPO step, split by stage, against the floor measured in the same process.

Default step shape: the tiny model, 16 prompts x 8 rollouts, 64 new tokens, GRPO, on-policy.
For each engine the loop's ``Trainer.step`` runs ``--steps`` times after ``--warmup`` steps; the
floor is one bare ``engine.generate`` of the same batch plus one bare learner pass (forward
through the same fused log-prob op, backward of a plain policy-gradient loss, AdamW step),
right after each loop step on the same prompts, seeds and rollouts, so both see the same machine
load. The loop has no hidden overhead when the median of the per-step ratios step / floor is
<= 1.05.

    python benchmarks/step_time.py [--engines vllm hf] [--steps 10] [--warmup 3]

Prints a table and writes it to results/step_time.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from rlvr.checks import register_schema, validate
from rlvr.learner.batching import collate
from rlvr.learner.forward import response_logprobs
from rlvr.reporting.provenance import footer, publish
from rlvr.train import Trainer

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "reward", "update", "sync")


def bare_learner_pass(trainer: Trainer, prompts: list[list[int]], responses: list[list[int]]
                      ) -> float:
    """Forward + backward + optimiser step over the batch with nothing else: the floor."""
    policy, learner = trainer.policy, trainer.learner
    start = time.perf_counter()
    batch = collate(prompts, responses, trainer.tokenizer.pad_token_id, trainer.device)
    logp, _ = response_logprobs(policy, batch, trainer.run.rollout.temperature,
                                trainer.run.learner.logprob_chunk)
    (-(logp * batch.response_mask).sum() / batch.response_mask.sum()).backward()
    learner.optimizer.step()
    learner.optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def measure(engine: str, steps: int, warmup: int, out_dir: str) -> dict[str, float]:
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"rollout={engine}", "logger=disabled", "eval.benchmarks=[]", "checkpoint_every=0",
            f"output_dir={out_dir}/{engine}", "resume=never", f"total_steps={steps + warmup}",
        ])
    run = validate(cfg)
    trainer = Trainer(run, {})
    stage_times: dict[str, list[float]] = {s: [] for s in (*STAGES, "step")}
    floors, gens, learns, ratios = [], [], [], []
    try:
        for step in range(steps + warmup):
            outcome = trainer.run_step(step)
            metrics = outcome.metrics
            # the floor: the same prompts, seeds and rollouts as the loop's step, bare
            prompts = [trainer.prompts[i] for i in trainer.collector.draw(step, 0)]
            start = time.perf_counter()
            trainer.engine.generate(prompts, trainer.collector.sampling(step, 0))
            gen = time.perf_counter() - start
            learn = bare_learner_pass(
                trainer, [p for p in prompts for _ in range(run.rollout.n)],
                outcome.batch.response_ids)
            if step < warmup:
                continue
            for stage in STAGES:
                stage_times[stage].append(metrics.get(f"time/{stage}", 0.0))
            stage_times["step"].append(metrics["time/step"])
            gens.append(gen)
            learns.append(learn)
            floors.append(gen + learn)
            ratios.append(metrics["time/step"] / (gen + learn))
    finally:
        trainer.close()
    row = {k: statistics.median(v) for k, v in stage_times.items()}
    row.update(floor_generate=statistics.median(gens), floor_learner=statistics.median(learns),
               floor=statistics.median(floors))
    row["ratio"] = statistics.median(ratios)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["vllm", "hf"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", default=str(REPO / "results" / "step_time.md"))
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "disabled")
    register_schema()
    torch.set_num_threads(os.cpu_count() or 1)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines:
            rows[engine] = measure(engine, args.steps, args.warmup, tmp)
    header = ("| engine | generate | reward | update | sync | **step** | floor: generate | "
              "floor: learner | **floor** | median step / floor |")
    lines = [
        f"Median seconds per step over {args.steps} steps ({args.warmup} warm-up), tiny model, "
        f"16 prompts x 8 rollouts, 64 new tokens, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}.", "", header, "|" + "---|" * 10,
    ]
    for engine, r in rows.items():
        lines.append(
            f"| {engine} | {r['generate']:.3f} | {r['reward']:.3f} | {r['update']:.3f} | "
            f"{r['sync']:.3f} | **{r['step']:.3f}** | {r['floor_generate']:.3f} | "
            f"{r['floor_learner']:.3f} | **{r['floor']:.3f}** | {r['ratio']:.3f} |")
    lines += ["", footer("python benchmarks/step_time.py "
                     f"--engines {' '.join(args.engines)} --steps {args.steps} "
                     f"--warmup {args.warmup}")]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
