"""Evaluation time against the world size: every rank samples its share of each benchmark.

The tiny default run (its held-out sets ``eval=arith``, vLLM engine, one thread per rank, rank r
on core r) evaluates the same weights ``--repeats`` times after one warm-up, in one process and
under ``torchrun --nproc_per_node N`` (gloo, ``learner.strategy=fsdp``) for each N of
``--world-sizes``. Per world size: the median seconds of ``Trainer.evaluate`` (sampling, scoring
and the gather of the results; engine start-up excluded), the speed-up over one process, the
ideal speed-up N, and whether ``eval/average`` equals one process's (problem i samples with
seed + i at any world size, rlvr/evaluation/runner.py).

    python benchmarks/eval_scaling.py [--world-sizes 1 2] [--repeats 3]

Prints a table and writes it to results/eval_scaling.md. On a machine with fewer cores than the
largest world size the ranks share cores and the speed-up says nothing.
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

from rlvr.reporting.machine import AVX2_PIN
from rlvr.reporting.provenance import footer, publish

REPO = Path(__file__).resolve().parents[1]


def child(out: Path, repeats: int) -> None:
    """One rank (or the one process): build the tiny run, time its evaluations, rank 0 writes
    ``out/result.json``."""
    rank = int(os.environ.get("LOCAL_RANK", "0"))
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = str(rank)
    from hydra import compose, initialize_config_dir

    from rlvr.checks import register_schema, validate
    from rlvr.train import Trainer

    world = int(os.environ.get("WORLD_SIZE", "1"))
    register_schema()
    overrides = ["logger=disabled", f"output_dir={out / 'run'}", "resume=never",
                 "checkpoint_every=0", "total_steps=1",
                 *(["learner.strategy=fsdp"] if world > 1 else [])]
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        run = validate(compose("config", overrides=overrides))
    trainer = Trainer(run, {})
    try:
        trainer.evaluate(0)
        seconds, metrics = [], {}
        for _ in range(repeats):
            start = time.perf_counter()
            metrics = trainer.evaluate(0)
            seconds.append(time.perf_counter() - start)
        samples = sum(len(b.problems) * b.spec.k for b in trainer.parts.eval_benchmarks)
    finally:
        trainer.close()
    if rank == 0:
        (out / "result.json").write_text(json.dumps({
            "seconds": seconds, "average": metrics["eval/average"], "samples": samples}))


def run(world: int, repeats: int, directory: Path) -> dict:
    env = {**os.environ, **AVX2_PIN, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "disabled",
           "TOKENIZERS_PARALLELISM": "false"}
    launch = [sys.executable] if world == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world),
        "--standalone"]
    out = directory / f"world{world}"
    out.mkdir()
    done = subprocess.run([*launch, __file__, "--child", str(out), str(repeats)], env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"world size {world} failed:\n{done.stderr[-4000:]}")
    return json.loads((out / "result.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-sizes", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "results" / "eval_scaling.md"))
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), int(args.child[1]))
        return
    os.environ.update(AVX2_PIN)  # the children run pinned; the footer names the pins
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rlvr-eval-scaling-") as tmp:
        results = {w: run(w, args.repeats, Path(tmp)) for w in args.world_sizes}
    load_after = os.getloadavg()
    base = statistics.median(results[min(results)]["seconds"])
    reference = results[min(results)]["average"]
    lines = [
        "Evaluation time against the world size: the tiny default run's held-out sets"
        " (`eval=arith`), vLLM engine, one thread per rank (rank r on core r), gloo; median"
        f" of {args.repeats} evaluations of the same weights after one warm-up, engine start-up"
        f" excluded. {os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f} before,"
        f" {load_after[0]:.2f} after.", "",
        "| world size | samples per evaluation | seconds | speed-up | ideal | eval/average |"
        " equals one process |",
        "|---|---|---|---|---|---|---|",
    ]
    for world, r in results.items():
        seconds = statistics.median(r["seconds"])
        lines.append(f"| {world} | {r['samples']} | {seconds:.2f} | {base / seconds:.2f} |"
                     f" {world / min(results):.0f} | {r['average']:.4f} |"
                     f" {'yes' if r['average'] == reference else 'no'} |")
    command = (f"python benchmarks/eval_scaling.py --world-sizes "
               f"{' '.join(map(str, args.world_sizes))} --repeats {args.repeats}")
    publish("\n".join([*lines, "", footer(command)]), args.out)


if __name__ == "__main__":
    main()
