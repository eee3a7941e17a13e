"""The memory plan of every preset in conf/experiment/ on 1 and 8 GPUs of 80 GiB.

``python scripts/plan_presets.py [--gpu-memory-gib 80] [--out results/memory_plan_presets.md]``.
One GPU runs ``learner.strategy=single``, eight run ``learner.strategy=fsdp`` (torchrun, one vLLM
engine per rank). Prints the table and writes it with its commit and command.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlvr.plan.__main__ import plan_from_overrides
from rlvr.plan.memory import GIB
from rlvr.reporting.provenance import footer

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu-memory-gib", type=float, default=80.0)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "memory_plan_presets.md")
    args = parser.parse_args()
    lines = [f"# Memory plan of every preset on 1 and 8 x {args.gpu_memory_gib:g} GiB", "",
             "`python -m rlvr.plan experiment=<preset> plan.gpus=N` (8 GPUs: "
             "`learner.strategy=fsdp`); prompts of up to 256 tokens (`plan.prompt_tokens`); "
             "the largest phase names where the peak is. No GPU has run these presets: the plan "
             "is checked on CPU by `benchmarks/memory_plan.py` (`results/memory_plan.md`).", "",
             "| preset | model | learner | tokens per micro-batch | GPUs | peak GiB per GPU | "
             "largest phase | verdict |", "|---|---|---|---|---|---|---|---|"]
    for preset in sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")):
        for gpus in (1, 8):
            fsdp = ["learner.strategy=fsdp"] if gpus > 1 else []
            plan = plan_from_overrides([f"experiment={preset}", f"plan.gpus={gpus}",
                                        f"plan.gpu_memory_gib={args.gpu_memory_gib}", *fsdp])
            s = plan.setting
            learner = f"{'LoRA' if s.lora else 'full'}, {s.dtype}, checkpointing " \
                      f"{'on' if s.gradient_checkpointing else 'off'}"
            phase = max(plan.phases, key=plan.phases.__getitem__)
            lines.append(f"| {preset} | {plan.shape.num_parameters() / 1e9:.2f} B | {learner} | "
                         f"{s.tokens} | {gpus} | {plan.peak / GIB:.1f} | {phase} | "
                         f"{'fits' if plan.fits else 'does not fit'} |")
            print(lines[-1], flush=True)
    lines += ["", footer(" ".join(["python scripts/plan_presets.py", *sys.argv[1:]]))]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
