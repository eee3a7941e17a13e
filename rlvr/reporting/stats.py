"""Small-sample statistics for comparing two rows over seeds (no SciPy): Welch's and the paired
t interval, the minimum detectable effect, one-sided p-values with Holm's correction, and the
seeds needed to resolve a given difference or an observed one; the variance components of
grouped values and the chi-square interval of a std.

Student's t distribution: the CDF integrates the density
f(t; v) = Gamma((v+1)/2) / (sqrt(v pi) Gamma(v/2)) (1 + t^2/v)^(-(v+1)/2) by Simpson's rule, and
the quantile inverts it by bisection (accurate to ~1e-9, enough for a report); the chi-square
quantile likewise inverts the incomplete-gamma series of its CDF.
"""

from __future__ import annotations

import functools
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


@functools.lru_cache(maxsize=4096)
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


@dataclass(frozen=True)
class Interval:
    """d = direction x (row - baseline) with its standard error and degrees of freedom, from
    ``paired_interval`` (``paired``: per-seed differences, df = n - 1) or ``welch_interval``;
    ``spread`` is the per-seed std that ``seeds_to_resolve`` projects with (the std of the
    per-seed differences, or the pooled std of the two rows)."""

    estimate: float
    se: float
    df: float
    n_row: int
    n_baseline: int
    paired: bool
    spread: float

    def bounds(self, level: float) -> tuple[float, float]:
        """The two-sided ``level`` interval d -+ t_{(1+level)/2, df} se."""
        half = t_quantile((1 + level) / 2, self.df) * self.se if self.se > 0 else 0.0
        return self.estimate - half, self.estimate + half

    def p_claimed(self) -> float:
        """One-sided p-value of H0 "d <= 0" against the claimed side d > 0:
        1 - F_t(d / se; df) (0 or 1 when se = 0)."""
        if self.se == 0:
            return 0.0 if self.estimate > 0 else 1.0
        return 1 - t_cdf(self.estimate / self.se, self.df)

    def p_other(self) -> float:
        """One-sided p-value of H0 "d >= 0" against the other side d < 0: F_t(d / se; df)."""
        if self.se == 0:
            return 0.0 if self.estimate < 0 else 1.0
        return t_cdf(self.estimate / self.se, self.df)


def paired_interval(row: dict[int, float], baseline: dict[int, float], direction: int = 1
                    ) -> Interval | None:
    """Paired t over the seeds both rows ran (seed -> value; NaNs dropped): with
    D_s = direction (row_s - base_s) over the n shared seeds,

        d = mean(D),  se = sd(D) / sqrt(n),  df = n - 1

    (Student 1908; rows that share a seed share its prompt order and sampling streams, so
    their difference removes what the seed does to both). None below two shared seeds."""
    shared = [s for s in row if s in baseline
              and not math.isnan(row[s]) and not math.isnan(baseline[s])]
    if len(shared) < 2:
        return None
    diffs = [direction * (row[s] - baseline[s]) for s in shared]
    sd = statistics.stdev(diffs)
    return Interval(statistics.fmean(diffs), sd / math.sqrt(len(diffs)), len(diffs) - 1,
                    len(diffs), len(diffs), True, sd)


def welch_interval(row: list[float], baseline: list[float], direction: int = 1
                   ) -> Interval | None:
    """``welch_difference``'s d, se and Welch-Satterthwaite df as an ``Interval``; ``spread``
    is the pooled std sqrt(((n_r-1) s_r^2 + (n_b-1) s_b^2) / (n_r + n_b - 2))."""
    r = [v for v in row if not math.isnan(v)]
    b = [v for v in baseline if not math.isnan(v)]
    if len(r) < 2 or len(b) < 2:
        return None
    d = direction * (statistics.fmean(r) - statistics.fmean(b))
    var_r, var_b = statistics.variance(r), statistics.variance(b)
    se = math.sqrt(var_r / len(r) + var_b / len(b))
    pooled = math.sqrt(((len(r) - 1) * var_r + (len(b) - 1) * var_b) / (len(r) + len(b) - 2))
    if se == 0:
        return Interval(d, 0.0, len(r) + len(b) - 2, len(r), len(b), False, 0.0)
    df = se ** 4 / ((var_r / len(r)) ** 2 / (len(r) - 1) + (var_b / len(b)) ** 2 / (len(b) - 1))
    return Interval(d, se, df, len(r), len(b), False, pooled)


def holm_rejections(p_values: list[float], alpha: float) -> list[bool]:
    """Holm's step-down procedure (Holm 1979) at family-wise error ``alpha``: sort the m
    p-values, reject p_(1) <= alpha/m, p_(2) <= alpha/(m-1), ... up to the first that fails;
    returns per hypothesis (input order) whether it is rejected."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    rejected = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        rejected[i] = True
    return rejected


def seeds_to_resolve(estimate: float, spread: float, margin: float, paired: bool,
                     level: float = 0.95, equivalence_level: float = 0.90,
                     limit: int = 200) -> int | None:
    """The smallest seed count n per row at which, if the estimate and the per-seed spread stay
    as observed, the claim resolves: the ``level`` interval excludes 0
    (t_{(1+level)/2, df} se < |d|) or the ``equivalence_level`` interval lies inside
    +-``margin`` (t_{(1+equivalence_level)/2, df} se < margin - |d|), with
    se = spread / sqrt(n), df = n - 1 (paired) or se = spread sqrt(2/n), df = 2n - 2.
    None beyond ``limit``."""
    for n in range(2, limit + 1):
        se, df = ((spread / math.sqrt(n), n - 1) if paired
                  else (spread * math.sqrt(2 / n), 2 * n - 2))
        if t_quantile((1 + level) / 2, df) * se < abs(estimate):
            return n
        if t_quantile((1 + equivalence_level) / 2, df) * se < margin - abs(estimate):
            return n
    return None


@dataclass(frozen=True)
class VarianceComponents:
    """The one-way random-effects split of a reported number's variance over seeds: y_ij =
    mu + a_i + e_ij, a_i the training seed's effect (variance ``training``), e_ij the evaluation
    seed's (variance ``evaluation``); ``total`` = their sum is the variance of one run's number
    evaluated once."""

    training: float
    evaluation: float
    training_seeds: int
    evaluation_seeds: int

    @property
    def total(self) -> float:
        return self.training + self.evaluation

    def share(self, part: str) -> float:
        """``training`` or ``evaluation`` as a fraction of ``total`` (NaN when total is 0)."""
        value = self.training if part == "training" else self.evaluation
        return value / self.total if self.total > 0 else math.nan


def variance_components(groups: list[list[float]]) -> VarianceComponents:
    """ANOVA estimates for a balanced design (Searle, Casella & McCulloch 1992, sec. 3.5): I
    training seeds (``groups``), each evaluated under the same number J >= 2 of evaluation seeds,

        MSW = mean_i s_i^2 (within a training seed),  MSB = J var_i(mean_i),
        evaluation = MSW,  training = max(0, (MSB - MSW) / J).
    """
    sizes = {len(g) for g in groups}
    if len(groups) < 2 or len(sizes) != 1 or min(sizes) < 2:
        raise ValueError("need >= 2 training seeds, each with the same number >= 2 of "
                         f"evaluation seeds; got sizes {sorted(len(g) for g in groups)}")
    j = sizes.pop()
    within = statistics.fmean(statistics.variance(g) for g in groups)
    between = j * statistics.variance([statistics.fmean(g) for g in groups])
    return VarianceComponents(max(0.0, (between - within) / j), within, len(groups), j)


def chi2_cdf(x: float, df: float) -> float:
    """P(X <= x) for chi-square with ``df`` degrees of freedom: the regularised lower incomplete
    gamma P(a, y) at a = df/2, y = x/2, by its series

        P(a, y) = y^a e^-y / Gamma(a + 1) sum_{k>=0} y^k / ((a+1) (a+2) ... (a+k))

    (Abramowitz & Stegun 6.5.29), summed until a term is below 1e-15 of the sum."""
    if df <= 0:
        raise ValueError(f"df must be > 0, got {df!r}")
    if x <= 0:
        return 0.0
    a, y = df / 2, x / 2
    term = total = 1.0
    k = 0
    while term > 1e-15 * total:
        k += 1
        term *= y / (a + k)
        total += term
    return min(1.0, math.exp(a * math.log(y) - y - math.lgamma(a + 1)) * total)


@functools.lru_cache(maxsize=1024)
def chi2_quantile(p: float, df: float) -> float:
    """The x with P(X <= x) = p, 0 < p < 1 (bisection on ``chi2_cdf``)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    low, high = 0.0, df + 100 * math.sqrt(df) + 100
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if chi2_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


def std_interval(values: list[float], level: float = 0.90) -> tuple[float, float, float]:
    """The sample std s of n >= 2 values with its two-sided ``level`` interval for sigma under
    normality: s^2 (n-1) / sigma^2 ~ chi^2_{n-1}, so

        sigma in [s sqrt((n-1) / chi2_{(1+level)/2}), s sqrt((n-1) / chi2_{(1-level)/2})].

    Returns (s, low, high)."""
    if len(values) < 2:
        raise ValueError(f"need >= 2 values for a std, got {len(values)}")
    s, df = statistics.stdev(values), len(values) - 1
    return (s, s * math.sqrt(df / chi2_quantile((1 + level) / 2, df)),
            s * math.sqrt(df / chi2_quantile((1 - level) / 2, df)))
