"""What a table's runs were: model, training data, evaluation and budget, in one line."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from rlvr.config import EvalConfig, RunConfig


def _distinct(values: Iterable[str]) -> str:
    """The distinct values in first-seen order, joined by `` / ``."""
    return " / ".join(dict.fromkeys(values))


def model_name(run: RunConfig) -> str:
    """``Qwen3-4B``, ``Qwen2.5-3B-Instruct + LoRA``, ``tiny Qwen2 (embedded)``."""
    name = "tiny Qwen2 (embedded)" if run.model.path == "tiny" else Path(run.model.path).name
    return f"{name} + LoRA" if run.learner.lora.enabled else name


def eval_protocol(cfg: EvalConfig) -> str:
    """``avg@5 on math500, olympiadbench + avg@10 on aime24`` (greedy: ``pass@1 (greedy)``),
    with the problem limit when one is set: ``avg@4 on arith_l1, arith_l2 (first 50 each)``."""
    groups: dict[tuple[str, int | None], list[str]] = {}
    for b in cfg.benchmarks:
        metric = "pass@1 (greedy)" if b.temperature == 0 else f"avg@{b.k}"
        groups.setdefault((metric, b.limit), []).append(b.name)
    parts = []
    for (metric, limit), names in groups.items():
        each = " each" if len(names) > 1 else ""
        parts.append(f"{metric} on {', '.join(names)}"
                     + (f" (first {limit} problems{each})" if limit else ""))
    return " + ".join(parts)


def describe_setting(runs: list[RunConfig]) -> str:
    """One line for the configurations of a table's runs; a part that differs between runs
    lists its values separated by `` / ``. Runs without training steps (the base model row)
    do not count towards the budget."""
    def part(describe: Callable[[RunConfig], str], configs: list[RunConfig]) -> str:
        return _distinct(describe(run) for run in configs)

    parts = [part(model_name, runs),
             "train " + part(lambda r: f"{r.data.name} ({r.data.split})", runs),
             "eval " + part(lambda r: eval_protocol(r.eval), runs)]
    trained = [run for run in runs if run.total_steps > 0]
    if trained:
        parts.append(part(lambda r: f"{r.total_steps} steps x {r.prompts_per_step} prompts x "
                                    f"{r.rollout.n} rollouts", trained))
    return "; ".join(parts)
