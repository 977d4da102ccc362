"""Every statistical test, interval and correction of the project, in one place.

A comparison is a ``Difference``: an estimate with its 95% interval, the two-sided p that it is 0,
the p of two one-sided tests (TOST) that it lies within +-margin, and the name of its method,
which the prose quotes. Statistics that are undefined (fewer than two units, or no spread at all)
give NaN p-values and a reason, never a verdict: ``verdicts`` calls them inconclusive and says why.
Changing a test or the verdict rule is a change to this module and its tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SIGNIFICANCE = 0.05
"""Family-wise error rate of every set of verdicts (Holm over the set)."""

POWER = 0.8
"""The power a stated sample size is computed for."""

PAIRED_SEEDS = "paired t over evaluation seeds"
WELCH_RUNS = "Welch's t over tuning runs"


@dataclass(frozen=True)
class Difference:
    """One comparison (a difference, or any contrast of group means) and its tests.

    ``low``/``high`` are its unadjusted 95% interval; ``p_value`` is two-sided (no difference),
    ``p_equivalent`` the larger of the two one-sided p-values that it lies within +-``margin``.
    ``sd`` is the standard deviation of one unit's difference (a seed's, or a tuning run's
    contrast scaled to one run per group), and ``df`` the t statistic's degrees of freedom, both
    what a power calculation needs. ``undefined`` says why the tests could not be made (NaN p)."""

    method: str
    estimate: float
    low: float
    high: float
    p_value: float
    p_equivalent: float
    n: int  # units: seeds (paired), or the smallest group's tuning runs (Welch)
    sd: float
    df: float
    undefined: str = ""

    @property
    def se(self) -> float:
        return self.sd / math.sqrt(self.n) if self.n else math.nan


def _undefined(method: str, estimate: float, n: int, why: str) -> Difference:
    nan = math.nan
    return Difference(method, estimate, nan, nan, nan, nan, n, nan, nan, why)


def _tests(
    method: str, estimate: float, se: float, df: float, margin: float, n: int, sd: float
) -> Difference:
    from scipy import stats  # here, not at the top: the sweep's summary table does not need it (1.2 s)

    half = stats.t.ppf(1 - SIGNIFICANCE / 2, df) * se
    p = 2 * stats.t.sf(abs(estimate) / se, df)
    p_equivalent = max(stats.t.sf((estimate + margin) / se, df), stats.t.sf((margin - estimate) / se, df))
    return Difference(
        method, estimate, estimate - half, estimate + half, float(p), float(p_equivalent), n, sd, df
    )


def paired_t(differences: np.ndarray, margin: float) -> Difference:
    """The paired differences over seeds (each seed trains both sides on the same split, data
    order and initialization): their mean, t-interval, t-test and TOST."""
    differences = np.asarray(differences, dtype=float)
    n = len(differences)
    estimate = float(differences.mean()) if n else math.nan
    if n < 2:
        return _undefined(PAIRED_SEEDS, estimate, n, f"{n} seed(s): a paired t needs two or more")
    sd = float(differences.std(ddof=1))
    if not sd > 0:
        return _undefined(PAIRED_SEEDS, estimate, n, "every seed's difference is the same: no spread to test")
    return _tests(PAIRED_SEEDS, estimate, sd / math.sqrt(n), n - 1, margin, n, sd)


def welch_contrast(groups: Sequence[np.ndarray], weights: Sequence[float]) -> tuple[float, float, float]:
    """A weighted sum of independent groups' means (``[1, -1]``: a difference; ``[1, -1, -1, 1]``:
    a difference of differences), its standard error, and the Welch-Satterthwaite degrees of
    freedom of its t statistic (each group its own variance). The error is NaN when a group has
    fewer than two values, 0 when every group's values are all the same."""
    estimate = float(sum(w * np.mean(g) for g, w in zip(groups, weights, strict=True)))
    if min(len(g) for g in groups) < 2:
        return estimate, math.nan, math.nan
    parts = [w**2 * np.var(g, ddof=1) / len(g) for g, w in zip(groups, weights, strict=True)]
    variance = float(sum(parts))
    if not variance > 0:
        return estimate, 0.0, math.nan
    df = variance**2 / sum(p**2 / (len(g) - 1) for p, g in zip(parts, groups, strict=True))
    return estimate, variance**0.5, float(df)


def welch(groups: Sequence[np.ndarray], weights: Sequence[float], margin: float) -> Difference:
    """A contrast of independent groups' means by Welch's t (``welch_contrast``), with its
    interval, test and TOST; the unit is the tuning run (each group: one value per run)."""
    groups = [np.asarray(g, dtype=float) for g in groups]
    estimate, se, df = welch_contrast(groups, weights)
    n = min(len(g) for g in groups)
    if math.isnan(se):
        return _undefined(
            WELCH_RUNS, estimate, n, f"{n} tuning run(s) in a group: Welch's t needs two or more"
        )
    if not se > 0:
        return _undefined(WELCH_RUNS, estimate, n, "every tuning run ended the same: no spread to test")
    return _tests(WELCH_RUNS, estimate, se, df, margin, n, se * math.sqrt(n))


def t_interval(values: np.ndarray, bounds: tuple[float, float] | None = None) -> tuple[float, float]:
    """The 95% t-interval of a mean; NaN with fewer than two values. With ``bounds`` (a metric's
    range: accuracy 0 to 1) it is cut at them: the mean cannot lie outside, so the cut interval
    covers it at least as often (three tuning runs gave accuracies up to 1.17 uncut)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return math.nan, math.nan
    from scipy import stats

    half = stats.t.ppf(1 - SIGNIFICANCE / 2, len(values) - 1) * stats.sem(values)
    low, high = float(values.mean() - half), float(values.mean() + half)
    if bounds is None:
        return low, high
    return max(low, bounds[0]), min(high, bounds[1])


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment for multiple comparisons; a NaN p (an undefined test) stays
    NaN and does not count as a comparison."""
    p = np.asarray(p_values, dtype=float)
    result = np.full_like(p, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined])]
    adjusted = np.maximum.accumulate(np.minimum(1.0, (len(order) - np.arange(len(order))) * p[order]))
    result[order] = adjusted
    return result


def verdicts(differences: Sequence[Difference], sign: float) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The one verdict rule, over a set of comparisons with one reference (Holm over the set):

    - **worse** / **better**: the test of no difference rejects it (Holm), and the difference is
      against / for the family (``sign``: +1 where higher is better, -1 where lower is);
    - **equivalent**: TOST (Holm) puts the difference within +-margin;
    - **inconclusive**: neither, or the tests are undefined.

    Returns the Holm-adjusted p-values of both tests and the verdicts."""
    p_holm = holm([d.p_value for d in differences])
    p_equivalent_holm = holm([d.p_equivalent for d in differences])
    words = []
    for d, p, p_eq in zip(differences, p_holm, p_equivalent_holm, strict=True):
        if p < SIGNIFICANCE:
            words.append("worse" if sign * d.estimate < 0 else "better")
        else:
            words.append("equivalent" if p_eq < SIGNIFICANCE else "inconclusive")
    return p_holm, p_equivalent_holm, words


def _power(n: int, sd: float, difference: float, margin: float, alpha: float, df_per_n: float) -> float:
    """Power at ``n`` units: of TOST where |difference| < margin (to show equivalence), else of
    the two-sided t-test (to show the difference). Non-central t; TOST by the usual lower bound,
    the two one-sided powers less one."""
    from scipy import stats

    df = max(df_per_n * n - (1 if df_per_n == 1 else 2), 1)
    se = sd / math.sqrt(n)
    if abs(difference) < margin:
        critical = stats.t.ppf(1 - alpha, df)
        above = stats.nct.sf(critical, df, (difference + margin) / se)
        below = stats.nct.cdf(-critical, df, (difference - margin) / se)
        return max(0.0, float(above + below - 1))
    critical = stats.t.ppf(1 - alpha / 2, df)
    ncp = difference / se
    return float(stats.nct.sf(critical, df, ncp) + stats.nct.cdf(-critical, df, ncp))


def units_for_power(
    sd: float, difference: float, margin: float, *, comparisons: int = 1, paired: bool = True,
    limit: int = 100_000,
) -> int | None:  # fmt: skip
    """The smallest number of units (seeds, paired; or tuning runs per group, Welch with two
    groups of equal spread, ``sd`` then that of one run's contrast) at which the verdict the
    data point to is reached with ``POWER``: equivalence where |difference| < margin, else a
    difference. Bonferroni over ``comparisons`` (Holm's first step: conservative). None when
    ``limit`` units would not do, or ``sd`` is not a positive number."""
    if not (sd > 0 and math.isfinite(sd)) or not math.isfinite(difference):
        return None
    alpha = SIGNIFICANCE / comparisons
    df_per_n = 1.0 if paired else 2.0
    high = 2  # power grows with n: double it until it reaches POWER (large n's non-central t is
    while _power(high, sd, difference, margin, alpha, df_per_n) < POWER:  # numerically fragile: not
        if high >= limit:  # probed further than needed), then bisect for the first n that does
            return None
        high = min(2 * high, limit)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if _power(middle, sd, difference, margin, alpha, df_per_n) >= POWER:
            high = middle
        else:
            low = middle + 1
    return low


@dataclass(frozen=True)
class Placement:
    """Where the data place each family across workloads (``place``): Holm-adjusted p-values that
    it is within the margin of the best on every workload, and that it is worse somewhere."""

    p_safe: np.ndarray
    p_worse: np.ndarray

    def words(self) -> list[str]:
        """Per family: "worse somewhere", "within the margin everywhere" or "not placed"."""
        return [
            "worse somewhere" if worse < SIGNIFICANCE else "within the margin everywhere" if safe < SIGNIFICANCE
            else "not placed"
            for safe, worse in zip(self.p_safe, self.p_worse, strict=True)
        ]  # fmt: skip


def place(
    differences: Sequence[Sequence[Difference | None]], signs: Sequence[float], margins: Sequence[float]
) -> Placement:
    """Families (rows) across workloads (columns), each cell the family minus that workload's
    reference (``None`` where the family is the reference), aggregated over the workloads before
    testing, so that the correction is over the families only:

    - **within the margin everywhere**: an intersection-union test, the largest over workloads of
      the one-sided p that it trails the reference by the margin or more (a test at 5% as it is);
    - **worse somewhere**: the smallest over workloads of the one-sided p that it is not behind,
      times the workloads (Bonferroni);

    each then Holm-corrected over the families. An undefined comparison places nothing (p 1)."""
    from scipy import stats

    safe, worse = [], []
    for row in differences:
        not_inferior, not_behind = [], []
        for d, sign, margin in zip(row, signs, margins, strict=True):
            if d is None:  # the reference itself: within its own margin, not behind itself
                not_inferior.append(0.0)
                not_behind.append(1.0)
            elif d.undefined:
                not_inferior.append(1.0)
                not_behind.append(1.0)
            else:
                lead = sign * d.estimate
                not_inferior.append(float(stats.t.sf((lead + margin) / d.se, d.df)))
                not_behind.append(float(stats.t.cdf(lead / d.se, d.df)))
        safe.append(max(not_inferior))
        worse.append(min(1.0, len(row) * min(not_behind)))
    return Placement(holm(safe), holm(worse))


COMPONENTS = ("schedule", "tuning run", "seed", "residual")
"""The sources of a tuned result's spread: the family, the tuning run within it, the evaluation
seed (shared by every run: split, initialization and data order), and what is left (each run's
own response to a seed)."""


def _anova_components(y: np.ndarray) -> np.ndarray:
    """Variance components of a balanced families x runs x seeds array, by the expected mean
    squares of y = mu + schedule + run(schedule) + seed + residual (seed crossed with runs); each
    truncated at 0. Works on a leading batch axis too."""
    f, r, s = y.shape[-3:]
    grand = y.mean(axis=(-3, -2, -1), keepdims=True)
    family = y.mean(axis=(-2, -1), keepdims=True)
    cell = y.mean(axis=-1, keepdims=True)
    seed = y.mean(axis=(-3, -2), keepdims=True)
    ms_family = r * s * ((family - grand) ** 2).sum(axis=(-3, -2, -1)) / (f - 1)
    ms_run = s * ((cell - family) ** 2).sum(axis=(-3, -2, -1)) / (f * (r - 1))
    ms_seed = f * r * ((seed - grand) ** 2).sum(axis=(-3, -2, -1)) / (s - 1)
    ms_residual = ((y - cell - seed + grand) ** 2).sum(axis=(-3, -2, -1)) / ((f * r - 1) * (s - 1))
    parts = [
        (ms_family - ms_run) / (r * s),
        (ms_run - ms_residual) / s,
        (ms_seed - ms_residual) / (f * r),
        ms_residual,
    ]
    return np.maximum(np.stack(parts, axis=-1), 0.0)


def variance_components(y: np.ndarray, draws: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """The spread of tuned results split into ``COMPONENTS`` (a balanced families x tuning runs x
    seeds array of test metrics): each variance and its share of their sum, with 95%
    parametric-bootstrap intervals (``draws`` datasets simulated from the fitted components).
    On balanced data these are the REML estimates wherever all are positive (a test checks them
    against statsmodels' MixedLM)."""
    f, r, s = y.shape
    if min(f, r, s) < 2:
        raise ValueError(f"variance components need 2 or more families, runs and seeds; got {f}, {r}, {s}")
    estimate = _anova_components(y)
    sd = np.sqrt(estimate)
    rng = np.random.default_rng(seed)
    simulated = (
        rng.normal(0, sd[0], (draws, f, 1, 1)) + rng.normal(0, sd[1], (draws, f, r, 1))
        + rng.normal(0, sd[2], (draws, 1, 1, s)) + rng.normal(0, sd[3], (draws, f, r, s))
    )  # fmt: skip
    boot = _anova_components(simulated)
    shares = boot / boot.sum(axis=-1, keepdims=True)
    return {
        "variance": estimate,
        "variance_ci": np.percentile(boot, [2.5, 97.5], axis=0).T,
        "share": estimate / estimate.sum(),
        "share_ci": np.percentile(shares, [2.5, 97.5], axis=0).T,
    }
