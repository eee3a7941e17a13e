"""The memory plan (rlvr/plan/memory.py) against the learner's measured peak memory on CPU.

Each case builds a random-weight Qwen2 model of a given shape, runs the trainer's own update
(``rlvr.learner.learner.Learner.update``: fused log-probs, PPO loss, backward, clipped AdamW
step) on one micro-batch of ``rows`` x ``length`` tokens, and records the peak of the bytes
allocated through PyTorch's CPU allocator since the case started (the profiler's memory events,
``profile_memory=True``: weights, gradients, optimiser state, activations and temporaries all
allocated inside the profiled region), in a fresh subprocess per case. A first update on one
short row creates the optimiser state, so the measured update runs in the steady state the plan
describes (the first update's optimiser step is inside the measured peak too). The plan is
``plan_learner(...).update_peak`` with the CPU's per-tensor AdamW (``cuda=False``).

Besides the peak it checks the terms that must be exact: weights, gradients (taken just before
the optimiser step) and optimiser state, against the byte counts of the real tensors.

    python benchmarks/memory_plan.py            # all cases, ~3 min on 2 cores
    python benchmarks/memory_plan.py --case tiny-fp32

Writes results/memory_plan.md; the last line is ``max |planned/measured - 1| over N shapes: E``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rlvr.plan.memory import GIB, LearnerSetting, plan_learner
from rlvr.plan.shapes import ModelShape
from rlvr.reporting.provenance import footer

REPO = Path(__file__).resolve().parents[1]
QWEN_VOCAB = 151_936
TINY = ModelShape("qwen2", 512, 128, 384, 2, 4, 2, 32, False)
Q50M = ModelShape("qwen2", QWEN_VOCAB, 256, 768, 8, 4, 2, 64, True)
Q200M = ModelShape("qwen2", QWEN_VOCAB, 1024, 2816, 4, 8, 2, 128, True)


@dataclass(frozen=True)
class Case:
    shape: ModelShape
    dtype: str
    checkpointing: bool
    rows: int
    length: int
    chunk: int = 1024
    micro_batches: int = 1


CASES = {
    "tiny-fp32": Case(TINY, "float32", False, 32, 128),
    "tiny-bf16-ckpt": Case(TINY, "bfloat16", True, 32, 128),
    "50m-fp32": Case(Q50M, "float32", False, 8, 128),
    "50m-bf16-ckpt": Case(Q50M, "bfloat16", True, 8, 128),
    "50m-fp32-4k": Case(Q50M, "float32", False, 16, 256, chunk=256),
    "50m-bf16-4k": Case(Q50M, "bfloat16", False, 16, 256, chunk=256),
    "50m-bf16-accumulate": Case(Q50M, "bfloat16", False, 8, 256, chunk=256, micro_batches=2),
    "200m-bf16": Case(Q200M, "bfloat16", False, 4, 128),
    "200m-fp32-ckpt": Case(Q200M, "float32", True, 4, 128),
}
PROMPT = 32  # of each row's ``length`` tokens; the rest is the response


def _setting(case: Case) -> LearnerSetting:
    return LearnerSetting(dtype=case.dtype, gradient_checkpointing=case.checkpointing,
                          tokens=case.rows * case.length,
                          response_tokens=case.rows * (case.length - _prompt_length(case.length)),
                          logprob_chunk=case.chunk, accumulates=case.micro_batches > 1,
                          cuda=False)


def build_model(shape: ModelShape) -> torch.nn.Module:
    """A random-weight float32 transformers model of ``shape`` (the learner's master weights)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(
        shape.architecture, vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size, num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads, num_key_value_heads=shape.num_kv_heads,
        head_dim=shape.head_dim, tie_word_embeddings=shape.tie_word_embeddings,
        max_position_embeddings=1024)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32)


def _prompt_length(length: int) -> int:
    return min(PROMPT, length // 2)


def _batch(case: Case, rows: int, length: int, seed: int):
    from rlvr.batch import StepBatch

    g = torch.Generator().manual_seed(seed)
    prompt = _prompt_length(length)
    response = length - prompt
    draw = lambda n: torch.randint(1, case.shape.vocab_size, (n,), generator=g).tolist()  # noqa: E731
    return StepBatch.of_rows([draw(prompt) for _ in range(rows)],
                             [draw(response) for _ in range(rows)],
                             torch.zeros(rows, response), torch.ones(rows, response),
                             torch.tensor([(-1.0) ** i for i in range(rows)]))


def measure(case: Case) -> dict[str, float]:
    """Peak CPU bytes of the steady-state update and the exact terms' real byte counts."""
    from torch.profiler import ProfilerActivity, profile

    from rlvr.config import AlgorithmConfig, LearnerConfig
    from rlvr.learner.learner import Learner

    torch.manual_seed(0)
    grad_bytes: list[int] = []
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        model = build_model(case.shape)
        if case.checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        model.train()
        learner = Learner(model, LearnerConfig(micro_batch_size=case.rows, lr=1e-6,
                                               logprob_chunk=case.chunk),
                          AlgorithmConfig(), vocab_size=case.shape.vocab_size, pad_id=0,
                          temperature=1.0, max_new_tokens=case.length, total_steps=2,
                          tis_cap=None, seed=0, dtype=case.dtype)
        learner.optimizer.register_step_pre_hook(lambda _opt, _args, _kwargs: grad_bytes.append(
            sum(p.grad.numel() * p.grad.element_size()
                for p in learner.params if p.grad is not None)))
        learner.update(_batch(case, 1, 8, seed=1), {})  # creates the optimiser state
        learner.update(_batch(case, case.rows * case.micro_batches, case.length, seed=2), {})
    with tempfile.NamedTemporaryFile(suffix=".json") as trace:
        prof.export_chrome_trace(trace.name)
        events = json.loads(Path(trace.name).read_text())["traceEvents"]
    peak = max(e["args"]["Total Allocated"] for e in events if e.get("name") == "[memory]")
    state = [t for s in learner.optimizer.state.values() for t in s.values()
             if isinstance(t, torch.Tensor)]
    return {"peak": peak,
            "weights": sum(p.numel() * p.element_size() for p in model.parameters()),
            "gradients": grad_bytes[-1],
            "optimizer": sum(t.numel() * t.element_size() for t in state)}


def _run_case(name: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "case.json"
        proc = subprocess.run([sys.executable, __file__, "--child", name, "--json", str(out)],
                              capture_output=True, text=True, cwd=REPO,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            raise RuntimeError(f"case {name} failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), action="append",
                        help="repeatable; default: all")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "memory_plan.md")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.json.write_text(json.dumps(measure(CASES[args.child])))
        return
    names = args.case or list(CASES)
    lines = ["# Memory plan against measurement (learner update on CPU)", "",
             "Peak bytes allocated through PyTorch's CPU allocator during a steady-state "
             "`Learner.update` (profiler memory events, a subprocess per case), against "
             "`rlvr.plan.memory.plan_learner(...).update_peak` with the CPU's per-tensor AdamW. "
             "Weights, gradients and optimiser state are compared with the real tensors' bytes.",
             "", "| case | parameters | dtype | checkpointing | "
             "micro-batches x rows x length (chunk) | planned GiB (largest moment) | "
             "measured GiB | planned/measured | "
             "weights, gradients, optimiser exact | s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    errors = []
    for name in names:
        case = CASES[name]
        start = time.perf_counter()
        got = _run_case(name)
        plan = plan_learner(case.shape, _setting(case))
        exact = (plan.weights, plan.gradients, plan.optimizer) == \
            (got["weights"], got["gradients"], got["optimizer"])
        ratio = plan.update_peak / got["peak"]
        moment = max(plan.moments, key=plan.moments.__getitem__)
        errors.append(abs(ratio - 1))
        lines.append(f"| {name} | {case.shape.num_parameters() / 1e6:.1f} M | {case.dtype} | "
                     f"{'on' if case.checkpointing else 'off'} | {case.micro_batches} x "
                     f"{case.rows} x {case.length} ({case.chunk}) | "
                     f"{plan.update_peak / GIB:.3f} ({moment}) | "
                     f"{got['peak'] / GIB:.3f} | {ratio:.3f} | "
                     f"{'yes' if exact else 'NO'} | {time.perf_counter() - start:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", f"max |planned/measured - 1| over {len(errors)} shapes: {max(errors):.3f}",
              "", footer(" ".join(["python benchmarks/memory_plan.py", *sys.argv[1:]]))]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
