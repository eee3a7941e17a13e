"""Small-sample statistics for comparing two rows over seeds (no SciPy): Welch's t interval,
the minimum detectable effect, and the seeds needed to resolve a given difference.

Student's t distribution: the CDF integrates the density
f(t; v) = Gamma((v+1)/2) / (sqrt(v pi) Gamma(v/2)) (1 + t^2/v)^(-(v+1)/2) by Simpson's rule, and
the quantile inverts it by bisection (accurate to ~1e-9, enough for a report).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with ``df`` > 0 degrees of freedom."""
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(t: float) -> float:
        return math.exp(log_norm - (df + 1) / 2 * math.log1p(t * t / df))

    # substitute t = tan(u), u in [0, atan|x|], to integrate a bounded smooth function
    upper, steps = math.atan(abs(x)), 2000
    h = upper / steps

    def integrand(u: float) -> float:
        return density(math.tan(u)) / math.cos(u) ** 2

    area = integrand(0.0) + integrand(upper)
    area += sum((4 if k % 2 else 2) * integrand(k * h) for k in range(1, steps))
    half = area * h / 3
    return 0.5 + math.copysign(half, x)


def t_quantile(p: float, df: float) -> float:
    """The x with P(T <= x) = p, 0 < p < 1 (bisection on ``t_cdf``)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    low, high = -1e3, 1e3
    for _ in range(50):
        mid = (low + high) / 2
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


@dataclass(frozen=True)
class Difference:
    """direction x (mean_row - mean_baseline) with its two-sided 95 % Welch interval [low, high]
    and the minimum detectable effect (two-sided alpha 0.05, power 0.8) at these seed counts."""

    estimate: float
    low: float
    high: float
    mde: float
    n_row: int
    n_baseline: int


def welch_difference(row: list[float], baseline: list[float], direction: int = 1,
                     level: float = 0.95, power: float = 0.8) -> Difference | None:
    """Welch's t comparison of two independent samples (seeds of two rows; NaNs dropped):

        d = direction (mean_row - mean_base),  se = sqrt(s_r^2 / n_r + s_b^2 / n_b),
        df = se^4 / ((s_r^2/n_r)^2 / (n_r - 1) + (s_b^2/n_b)^2 / (n_b - 1))   (Welch-Satterthwaite)
        CI = d -+ t_{(1+level)/2, df} se,   MDE = (t_{(1+level)/2, df} + t_{power, df}) se.

    None when a side has fewer than two values (no variance estimate). When both samples are
    constant (se = 0) the interval is the point d.
    """
    r = [v for v in row if not math.isnan(v)]
    b = [v for v in baseline if not math.isnan(v)]
    if len(r) < 2 or len(b) < 2:
        return None
    d = direction * (statistics.fmean(r) - statistics.fmean(b))
    var_r, var_b = statistics.variance(r) / len(r), statistics.variance(b) / len(b)
    se = math.sqrt(var_r + var_b)
    if se == 0:
        return Difference(d, d, d, 0.0, len(r), len(b))
    df = se ** 4 / (var_r ** 2 / (len(r) - 1) + var_b ** 2 / (len(b) - 1))
    half = t_quantile((1 + level) / 2, df) * se
    mde = (t_quantile((1 + level) / 2, df) + t_quantile(power, df)) * se
    return Difference(d, d - half, d + half, mde, len(r), len(b))


def seeds_needed(std: float, effect: float, level: float = 0.95, power: float = 0.8,
                 limit: int = 1000) -> int | None:
    """The smallest number n of seeds per row for which a difference ``effect`` between two rows
    with per-seed standard deviation ``std`` is detectable (two-sided ``level``, ``power``):
    (t_{(1+level)/2, 2n-2} + t_{power, 2n-2}) std sqrt(2/n) <= effect. None beyond ``limit``."""
    if effect <= 0:
        raise ValueError(f"effect must be > 0, got {effect!r}")
    for n in range(2, limit + 1):
        df = 2 * n - 2
        if (t_quantile((1 + level) / 2, df) + t_quantile(power, df)) * std * math.sqrt(2 / n) \
                <= effect:
            return n
    return None
