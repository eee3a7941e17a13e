"""Peak memory of log-prob + entropy forward and backward: full float32 logits vs the fused op.

Shape of the issue: 4 x 1,024 response tokens, vocabulary 151,936 (Qwen), hidden 1,536
(Qwen2.5-1.5B), float32 on CPU, gradients to the hidden states and the output layer, a loss
using both the log-probs and the entropy. Each path runs in a fresh subprocess; its peak is the
rise of the process's maximum resident set size over the inputs and parameters (so the output
layer's gradient counts in both paths). The naive path needs about 10 GB; run it on a machine
with >= 16 GB free.

    python benchmarks/logprob_memory.py [--chunks 1024 512]

Prints a table and writes it to results/logprob_memory.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from rlvr.reporting.provenance import footer, publish

REPO = Path(__file__).resolve().parents[1]
TOKENS, VOCAB, HIDDEN = 4 * 1024, 151_936, 1_536


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child(path: str, chunk: int) -> None:
    """Runs in the subprocess: one forward + backward, prints a JSON line."""
    import torch

    from rlvr.learner.logprobs import fused_logprob_entropy, naive_logprob_entropy

    torch.manual_seed(0)
    hidden = (torch.randn(TOKENS, HIDDEN) * 0.5).requires_grad_()
    weight = (torch.randn(VOCAB, HIDDEN) * 0.02).requires_grad_()
    targets = torch.randint(0, VOCAB, (TOKENS,))
    coef = torch.randn(TOKENS)
    baseline = _max_rss_bytes()
    start = time.perf_counter()
    if path == "naive":
        logp, entropy = naive_logprob_entropy(hidden, weight, targets)
    else:
        logp, entropy = fused_logprob_entropy(hidden, weight, targets, chunk=chunk)
    (logp * coef).sum().add((entropy * coef).sum() * 1e-3).backward()
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_gib": (_max_rss_bytes() - baseline) / 2**30, "seconds": seconds,
                      "logp_sum": float(logp.sum())}))


def run(path: str, chunk: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, __file__, "--child", path, str(chunk)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, nargs="+", default=[1024, 512])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(REPO / "results" / "logprob_memory.md"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    naive = run("naive", 0)
    rows = [("naive (full float32 logits)", "-", naive)]
    rows += [("fused, recompute in backward", str(c), run("fused", c)) for c in args.chunks]
    lines = [
        f"logp + entropy forward and backward, {TOKENS} tokens x vocab {VOCAB} x hidden {HIDDEN},"
        f" float32, CPU ({os.cpu_count()} cores). Peak = rise of max RSS over inputs and"
        f" parameters (the output layer's float32 gradient, {VOCAB * HIDDEN * 4 / 2**30:.2f} GiB,"
        " counts in every row).", "",
        "| path | chunk | peak GiB | vs naive | seconds | sum of logp |",
        "|---|---|---|---|---|---|",
    ]
    for name, chunk, r in rows:
        lines.append(f"| {name} | {chunk} | {r['peak_gib']:.2f} | "
                     f"{r['peak_gib'] / naive['peak_gib']:.3f} | {r['seconds']:.1f} | "
                     f"{r['logp_sum']:.2f} |")
    lines += ["", footer("python benchmarks/logprob_memory.py --chunks "
                     f"{' '.join(map(str, args.chunks))}")]
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
