"""Configurations that several tests train: the tiny model, HF rollouts, nothing logged."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from rlvr.checks import register_schema, validate
from rlvr.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


def tiny_run_config(output_dir: Path, *overrides: str) -> RunConfig:
    """A validated run of 4 prompts a step on the tiny model with ``rollout=hf``, no evaluation,
    no checkpoints and no logger, writing to ``output_dir``; ``overrides`` come last."""
    register_schema()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            "rollout=hf", "logger=disabled", f"output_dir={output_dir}", "resume=never",
            "eval.benchmarks=[]", "checkpoint_every=0", "prompts_per_step=4", *overrides])
    return validate(cfg)
