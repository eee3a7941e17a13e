"""Evaluate any checkpoint or hub model: ``python -m rlvr.evaluate model.path=... eval=math5``.

Uses the same config tree as training (model, eval, rollout groups). ``model.path`` may be a hub
id, a local model directory, a full-fine-tune checkpoint's ``policy/`` directory, or a LoRA
checkpoint's ``policy/`` directory (its ``adapter_config.json`` names the base model; the adapter
is merged for evaluation). Results go to ``<output_dir>/eval/step_000000/<benchmark>.jsonl``
(per problem: completions and scores, so they can be re-scored) and ``<output_dir>/eval.json``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from rlvr import cli, console
from rlvr.checks import register_schema, validate
from rlvr.config import RunConfig
from rlvr.evaluation.runner import evaluate
from rlvr.evaluation.suite import load_eval_benchmarks
from rlvr.learner.policy import DTYPES
from rlvr.models import resolve_model_path
from rlvr.rollout.factory import build_engine, resolve_device
from rlvr.seeding import eval_seed

log = logging.getLogger(__name__)
register_schema()


def _merge_adapter(adapter_dir: Path, dtype: str, out_dir: Path) -> str:
    """Fold a PEFT adapter into its base model and save the result where vLLM can load it."""
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(adapter_dir, dtype=DTYPES[dtype])
    model.merge_and_unload().save_pretrained(out_dir)
    base = json.loads((adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    AutoTokenizer.from_pretrained(base).save_pretrained(out_dir)
    return str(out_dir)


def run_evaluation(run: RunConfig) -> dict[str, float]:
    """Evaluate ``run.model`` on ``run.eval``'s benchmarks; returns the metrics."""
    from transformers import AutoTokenizer

    device = resolve_device(run.device)
    with tempfile.TemporaryDirectory(prefix="rlvr-eval-") as tmp:
        local = Path(run.model.path).expanduser()
        model_path = _merge_adapter(local, run.model.dtype, Path(tmp)) \
            if (local / "adapter_config.json").exists() \
            else resolve_model_path(run.model, run.data.arith)
        tokenizer = AutoTokenizer.from_pretrained(model_path)
        benchmarks = load_eval_benchmarks(run, tokenizer)
        policy = None
        if run.rollout.engine == "hf":
            from transformers import AutoModelForCausalLM

            policy = AutoModelForCausalLM.from_pretrained(
                model_path, dtype=DTYPES[run.model.dtype]).to(device).eval()
        with console.native_output_to_run_log():
            engine = build_engine(run, model_path, policy, tokenizer,
                                  [len(p) for b in benchmarks for p in b.prompt_ids], device)
        out_dir = Path(run.output_dir)
        with torch.no_grad():
            metrics = evaluate(engine, benchmarks, step=0, out_dir=out_dir / "eval",
                               default_max_new_tokens=run.rollout.max_new_tokens,
                               pass_ks=run.eval.pass_k, seed=eval_seed(run.seed, 0))
    (out_dir / "eval.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    return metrics


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def _hydra_main(cfg: DictConfig) -> None:
    with cli.reporting_errors():
        cli.check_group_choices()
        run = validate(cfg)
        console.setup(verbose=run.logger.verbose)
        with console.run_log(Path(run.output_dir) / "evaluate.log"):
            log.info("evaluating %s; results in %s (full log: evaluate.log)", run.model.path,
                     run.output_dir)
            metrics = run_evaluation(run)
    width = max(map(len, metrics), default=0)
    for key, value in sorted(metrics.items()):
        print(f"{key:<{width}}  {value:.4f}")


def main() -> None:
    """``python -m rlvr.evaluate``: configuration errors are one line and exit status 2."""
    cli.run(_hydra_main)


if __name__ == "__main__":
    main()
