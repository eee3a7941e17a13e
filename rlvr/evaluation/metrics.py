"""Evaluation metrics over k samples per problem (METHODS.md section 5)."""

from __future__ import annotations


def avg_at_k(correct: list[list[bool]]) -> float:
    """avg@k: the mean accuracy over all k samples of all problems."""
    total = sum(len(c) for c in correct)
    if total == 0:
        raise ValueError("avg@k of an empty benchmark")
    return sum(sum(c) for c in correct) / total


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al. 2021) from n samples with c correct:
    1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i) for stability."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def summarize_benchmark(correct: list[list[bool]], ks: list[int]) -> dict[str, float]:
    """``avg@n`` (n samples per problem) and the mean unbiased ``pass@k`` for each k in ``ks``."""
    n = len(correct[0])
    if any(len(c) != n for c in correct):
        raise ValueError("every problem needs the same number of samples")
    out = {f"avg@{n}": avg_at_k(correct)}
    for k in ks:
        out[f"pass@{k}"] = sum(pass_at_k(n, sum(c), k) for c in correct) / len(correct)
    return out
