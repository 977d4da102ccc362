"""Whether a published claim holds at this scale (``study.replications``): frames of what was
measured, each claim's rule, and one outcome: reproduced, contradicted or inconclusive.
Frames and words only; nothing here trains, draws or writes.

Every rule is fixed before its run (results/METHODS.md, Published claims). Arms are compared by
paired differences over the seeds every arm shares (``statistics.paired_t``); a claim's tests of
one kind are Holm-corrected (family-wise error 5%); a *lead* is signed so that ahead is positive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from objectives.experiment import Experiment
from objectives.metrics import Metric
from study.replications import Arm, Replication
from study.reporting import theory
from study.reporting.statistics import POWER, SIGNIFICANCE, holm

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
LATTICE_STEP = 0.25
"""Decades between neighbouring grid LRs (``objectives.grid``): the resolution of any LR finding."""


@dataclass(frozen=True)
class Outcome:
    """What one claim's measurement says, in one word and one sentence, with its table."""

    verdict: str  # REPRODUCED, CONTRADICTED or INCONCLUSIVE
    reason: str  # one sentence with the numbers
    table: pd.DataFrame  # the comparisons the verdict rests on
    settle: Callable[[], str] = lambda: ""  # for an inconclusive outcome: what would settle it (computed
    # when asked: a power search takes up to a second, which simulations of the rule need not pay)


def arm_of(experiment: Experiment, arms: Sequence[Arm]) -> Arm | None:
    """The arm a stored study trains: of the arms of its family whose fixed knobs it has, the
    one that fixes most (an arm at the defaults fixes none, so it matches every study of its family)."""
    knobs = dict(experiment.fixed)
    matching = [
        a for a in arms if a.family == experiment.family and all(knobs.get(k) == v for k, v in a.fixed)
    ]
    return max(matching, key=lambda a: len(a.fixed), default=None)


@dataclass(frozen=True)
class OneSided:
    """A paired lead over seeds with the one-sided p-values the claims use."""

    lead: float
    low: float  # 95% two-sided t-interval
    high: float
    sd: float
    n: int
    p_above: Callable[[float], float]  # p of H0 "lead <= x" (small: the lead is above x)


def paired_lead(leads: np.ndarray) -> OneSided:
    """Mean, interval and one-sided tests of per-seed leads (NaN tests with under 2 seeds or no spread)."""
    from scipy import stats

    leads = np.asarray(leads, dtype=float)
    n, mean = len(leads), float(np.mean(leads)) if len(leads) else math.nan
    sd = float(np.std(leads, ddof=1)) if n > 1 else math.nan
    if not (n > 1 and sd > 0):
        return OneSided(mean, math.nan, math.nan, sd, n, lambda x: math.nan)
    se, half = sd / math.sqrt(n), stats.t.ppf(1 - SIGNIFICANCE / 2, n - 1) * sd / math.sqrt(n)
    return OneSided(
        mean, mean - half, mean + half, sd, n, lambda x: float(stats.t.sf((mean - x) / se, n - 1))
    )


def seeds_to_settle(sd: float, distance: float, tests: int, limit: int = 10_000) -> int | None:
    """Seeds at which a one-sided paired t at 5%/``tests`` shows a lead ``distance`` from its
    threshold with 80% power (non-central t); None when it cannot be computed or passes ``limit``."""
    from scipy import stats

    if not (sd > 0 and abs(distance) > 0 and math.isfinite(distance)):
        return None
    alpha = SIGNIFICANCE / tests

    def power(n: int) -> float:
        return float(stats.nct.sf(stats.t.ppf(1 - alpha, n - 1), n - 1, abs(distance) / (sd / math.sqrt(n))))

    high = 2
    while power(high) < POWER:  # power grows with n: double, then bisect for the first n that does
        if high >= limit:
            return None
        high = min(2 * high, limit)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if power(middle) >= POWER else (middle + 1, high)
    return low


def _lead_row(what: str, result: OneSided, **tests: float) -> dict:
    return {"comparison": what, "lead": result.lead, "ci_low": result.low, "ci_high": result.high,
            "seeds": result.n, **tests}  # fmt: skip


def _settle_line(rows: list[tuple[str, OneSided, float]], tests: int) -> str:
    needs = []
    for what, result, threshold in rows:
        n = seeds_to_settle(result.sd, result.lead - threshold, tests)
        needs.append(f"{what}: {n if n else 'more than 10,000'} seeds")
    return "seeds for 80% power at the leads seen: " + "; ".join(needs)


def matches_reference(leads: dict[str, np.ndarray], claimed: Sequence[str], margin: float) -> Outcome:
    """Hägele et al.: each claimed arm's per-seed lead over the reference (the first arm).

    Reproduced when every claimed arm is non-inferior (its lead above -margin, one-sided, Holm
    over the claimed arms); contradicted when one is behind by more than the margin (lead below
    -margin, one-sided, Holm); else inconclusive. The other arms are tabled, not judged."""
    results = {arm: paired_lead(values) for arm, values in leads.items()}
    table = pd.DataFrame([_lead_row(arm, r) for arm, r in results.items()])
    mine = [arm for arm in results if arm in claimed]
    p_not_behind = holm([results[a].p_above(-margin) for a in mine])
    p_behind = holm([1 - results[a].p_above(-margin) if results[a].n > 1 else math.nan for a in mine])
    table["p_non_inferior_holm"] = table["comparison"].map(dict(zip(mine, p_not_behind)))
    table["p_inferior_holm"] = table["comparison"].map(dict(zip(mine, p_behind)))
    reason = "; ".join(
        f"{a} {results[a].lead:+.3f} ({results[a].low:+.3f} to {results[a].high:+.3f})" for a in mine
    )
    reason = f"lead over the reference, margin {margin:g}: {reason}"
    if np.any(p_behind < SIGNIFICANCE):
        return Outcome(CONTRADICTED, reason, table)
    if len(mine) and np.all(p_not_behind < SIGNIFICANCE):
        return Outcome(REPRODUCED, reason, table)
    settle = lambda: _settle_line([(a, results[a], -margin) for a in mine], len(mine))
    return Outcome(INCONCLUSIVE, reason, table, settle)


def lead_grows(leads: dict[int, np.ndarray], margin: float) -> Outcome:
    """Bergsma et al.: the challenger's per-seed lead over the baseline at each run length
    (epochs -> leads, seeds in the same order at every length).

    Reproduced when it is non-inferior at every length (lead above -margin, one-sided, Holm over
    lengths) and its lead at the longest length exceeds that at the shortest (paired over seeds,
    one-sided 5%); contradicted when it is behind by more than the margin at some length (Holm)
    or its lead shrinks (one-sided 5%); else inconclusive."""
    lengths = sorted(leads)
    results = {epochs: paired_lead(leads[epochs]) for epochs in lengths}
    growth = paired_lead(leads[lengths[-1]] - leads[lengths[0]])
    p_not_behind = holm([results[e].p_above(-margin) for e in lengths])
    p_behind = holm([1 - results[e].p_above(-margin) for e in lengths])
    rows = [
        _lead_row(f"{e} epochs", results[e], p_non_inferior_holm=p, p_inferior_holm=q)
        for e, p, q in zip(lengths, p_not_behind, p_behind)
    ]
    p_grows, p_shrinks = growth.p_above(0.0), 1 - growth.p_above(0.0)
    rows.append(_lead_row(f"growth, {lengths[-1]} minus {lengths[0]} epochs", growth, p_grows=p_grows))
    table = pd.DataFrame(rows)
    reason = ", ".join(
        f"{e} epochs {results[e].lead:+.3f} ({results[e].low:+.3f} to {results[e].high:+.3f})"
        for e in lengths
    )
    reason = f"lead {reason}; growth {growth.lead:+.3f} ({growth.low:+.3f} to {growth.high:+.3f})"
    if np.any(p_behind < SIGNIFICANCE) or p_shrinks < SIGNIFICANCE:
        return Outcome(CONTRADICTED, reason, table)
    if np.all(p_not_behind < SIGNIFICANCE) and p_grows < SIGNIFICANCE:
        return Outcome(REPRODUCED, reason, table)
    steps = [(f"{e} epochs non-inferior", results[e], -margin) for e in lengths] + [("growth", growth, 0.0)]
    return Outcome(INCONCLUSIVE, reason, table, lambda: _settle_line(steps, len(lengths)))


def band_tops(values: np.ndarray, lrs: np.ndarray, sign: float, margin: float) -> np.ndarray:
    """log10 of each curve's band top: the highest LR whose value is within ``margin`` of the
    curve's best (``values``: (..., LRs), ``lrs`` ascending)."""
    signed = sign * values
    within = signed >= signed.max(axis=-1, keepdims=True) - margin
    top = within.shape[-1] - 1 - np.argmax(within[..., ::-1], axis=-1)
    return np.log10(lrs)[top]


def band_reaches_higher(
    points: pd.DataFrame, arms: tuple[str, str], sign: float, margin: float, draws: int = 2000, seed: int = 0
) -> Outcome:
    """Kalra & Barkeshli: how many decades higher the band's top (the highest grid LR whose mean
    over the selection seeds is within ``margin`` of the arm's best mean) lies with warmup
    (arms[0]) than without (arms[1]); 95% interval a bootstrap over the selection seeds, both
    arms resampled with the same seeds (they share them).

    Reproduced when the interval's low end is at least one lattice step; contradicted when its
    high end is at most 0 (no higher at this resolution); else inconclusive."""
    cube = points.pivot_table(index=["arm", "lr"], columns="seed", values="value")
    lrs = np.sort(points["lr"].unique())
    values = np.stack([cube.loc[arm].reindex(lrs).to_numpy() for arm in arms])  # (arm, LR, seed)
    seeds = values.shape[-1]
    drawn = np.random.default_rng(seed).integers(0, seeds, (draws, seeds))
    tops = band_tops(values.mean(axis=-1), lrs, sign, margin)
    resampled = band_tops(
        values[:, :, drawn].mean(axis=-1).transpose(2, 0, 1), lrs, sign, margin
    )  # (draw, arm)
    shifts = resampled[:, 0] - resampled[:, 1]
    low, high = np.percentile(shifts, [2.5, 97.5])
    observed = float(tops[0] - tops[1])
    stable = points.groupby(["arm", "lr"])["diverged"].any()
    stable_top = [float(np.log10(stable[arm][~stable[arm]].index.max())) for arm in arms]
    table = pd.DataFrame([
        {"comparison": "band top (decades), with minus without warmup", "lead": observed, "ci_low": low,
         "ci_high": high, "seeds": seeds},
        {"comparison": "highest LR no seed diverged (decades), with minus without", "lead":
         stable_top[0] - stable_top[1], "ci_low": math.nan, "ci_high": math.nan, "seeds": seeds},
    ])  # fmt: skip
    reason = (
        f"the band's top (within {margin:g} of the best mean) lies {observed:+.2f} decades higher with warmup "
        f"({low:+.2f} to {high:+.2f}, bootstrap over {seeds} selection seeds): 10^{tops[0]:.2f} against 10^{tops[1]:.2f}"
    )
    if low >= LATTICE_STEP:
        return Outcome(REPRODUCED, reason, table)
    if high <= 0:
        return Outcome(CONTRADICTED, reason, table)
    return Outcome(
        INCONCLUSIVE, reason, table, lambda: "more selection seeds would narrow the bootstrap interval"
    )


def judge_leads(replication: Replication, evaluation: pd.DataFrame, metric: Metric, margin: float) -> Outcome:
    """The training claims' rules on the evaluation runs (arm, epochs, seed, test_metric)."""
    reference = replication.arms[0].label
    wide = evaluation.pivot_table(index=["epochs", "seed"], columns="arm", values="test_metric")
    if replication.test == "matches_reference":
        leads = {
            a.label: metric.sign * (wide[a.label] - wide[reference]).to_numpy() for a in replication.arms[1:]
        }
        return matches_reference(leads, replication.claimed, margin)
    challenger = replication.arms[1].label
    by_length = {
        int(e): metric.sign * (part[challenger] - part[reference]).to_numpy()
        for e, part in wide.groupby(level="epochs")
    }
    return lead_grows(by_length, margin)


def across_workloads(supports: int, against: int, workloads: int) -> str:
    """One rule for a claim judged on several workloads: reproduced when a majority support it
    and none goes against it, contradicted when a majority go against it and none supports it,
    else inconclusive."""
    if supports > workloads / 2 and not against:
        return REPRODUCED
    if against > workloads / 2 and not supports:
        return CONTRADICTED
    return INCONCLUSIVE


def robustness(contrasts: pd.DataFrame) -> Outcome:
    """Attia & Koren: per workload, constant's loss minus the decaying families' mean loss at the
    LR off its best by rho (``claims.robustness_contrasts``), averaged over every rho and
    direction the grid has, paired over the selection seeds.

    A workload *supports* the claim when that advantage is above 0 and *goes against* it when
    below (one-sided each, Holm over the workloads); the claim then follows ``across_workloads``.
    Each (rho, direction) cell is tabled too, unjudged."""
    rows, per_workload = [], []
    for workload, part in contrasts.groupby("workload", sort=False):
        result = paired_lead(part.groupby("seed")["advantage"].mean().to_numpy())
        per_workload.append(workload)
        rows.append(_lead_row(f"{workload}, every rho", result, p_more=result.p_above(0.0),
                              p_less=1 - result.p_above(0.0) if result.n > 1 else math.nan,
                              constant_lost=part["constant_lost"].mean(), decaying_lost=part["decaying_lost"].mean()))  # fmt: skip
    table = pd.DataFrame(rows)
    table["p_more_holm"], table["p_less_holm"] = holm(table["p_more"]), holm(table["p_less"])
    more, less = (
        int((table["p_more_holm"] < SIGNIFICANCE).sum()),
        int((table["p_less_holm"] < SIGNIFICANCE).sum()),
    )
    cells = [
        _lead_row(f"{w}, LR {d} {rho:g}", paired_lead(c["advantage"].to_numpy()),
                  constant_lost=c["constant_lost"].mean(), decaying_lost=c["decaying_lost"].mean())
        for (w, rho, d), c in contrasts.groupby(["workload", "rho", "direction"], sort=False)
    ]  # fmt: skip
    table = pd.concat([table, pd.DataFrame(cells)], ignore_index=True)
    reason = (f"decaying schedules lose less than constant at a misset LR on {more} of {len(per_workload)} workloads "
              f"and more on {less} (Holm): " + "; ".join(f"{r.comparison.split(',')[0]} {r.lead:+.3f} "
              f"({r.ci_low:+.3f} to {r.ci_high:+.3f})" for r in table.head(len(per_workload)).itertuples()))  # fmt: skip
    verdict = across_workloads(more, less, len(per_workload))
    return Outcome(verdict, reason, table, lambda: "" if verdict != INCONCLUSIVE else "more selection seeds")


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation; NaN where either side does not vary (no order to compare)."""
    from scipy import stats

    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(stats.spearmanr(x, y).statistic)


def bound_ordering(frame: pd.DataFrame, signs: dict[str, float], draws: int = 2000, seed: int = 0) -> Outcome:
    """Schaipp et al.: per workload, the rank correlation between the bound (smaller: better)
    and the measured test metric (signed: larger is better), 95% interval a bootstrap over the
    evaluation seeds (every family's runs resampled with the same seeds). The predicted best-LR
    ratio to ``constant`` against the measured one is tabled beside it, in decades.

    A workload *supports* the claim when the interval lies above 0 and *goes against* it when
    below; the claim then follows ``across_workloads``."""
    rng, rows = np.random.default_rng(seed), []
    for workload, part in frame.groupby("workload", sort=False):
        wide = part.pivot_table(index="seed", columns="family", values="test_metric") * signs[workload]
        bound = part.groupby("family")["bound"].first()[wide.columns].to_numpy()
        observed = _spearman(-bound, wide.mean().to_numpy())
        draws_ = [
            _spearman(-bound, wide.iloc[rng.integers(0, len(wide), len(wide))].mean().to_numpy())
            for _ in range(draws)
        ]
        low, high = np.percentile(draws_, [2.5, 97.5])
        lrs = part.groupby("family")[["lr", "bound_lr"]].first()
        predicted = np.log10(lrs["bound_lr"] / lrs.loc["constant", "bound_lr"])
        measured = np.log10(lrs["lr"] / lrs.loc["constant", "lr"])
        rows.append({"comparison": workload, "lead": observed, "ci_low": low, "ci_high": high, "seeds": len(wide),
                     "families": wide.shape[1], "lr_ratio_error_decades": float((predicted - measured).abs().median()),
                     "lr_ratio_spearman": _spearman(predicted.to_numpy(), measured.to_numpy())})  # fmt: skip
    table = pd.DataFrame(rows)
    agree, disagree = int((table["ci_low"] > 0).sum()), int((table["ci_high"] < 0).sum())
    reason = "rank correlation of the bound's order with the measured one: " + "; ".join(
        f"{r.comparison} {r.lead:+.2f} ({r.ci_low:+.2f} to {r.ci_high:+.2f})" for r in table.itertuples()
    )
    verdict = across_workloads(agree, disagree, len(table))
    return Outcome(
        verdict, reason, table, lambda: "" if verdict != INCONCLUSIVE else "more workloads: they disagree"
    )


FIT_ON = ("constant", "cosine")
"""The schedules the loss law is fitted on (Tissue et al. fit on a constant and a cosine run)."""


def curve_prediction(curves: pd.DataFrame, draws: int = 2000, seed: int = 0) -> Outcome:
    """Tissue et al.: the law fitted on every epoch of ``FIT_ON``'s curves predicts every other
    family's final validation metric. Skill = 1 - (squared prediction error) / (squared error of
    predicting the fitted runs' mean final value), summed over the predicted families; 95%
    interval a bootstrap over those families.

    Reproduced when the interval lies above 0 (the law beats knowing nothing of the schedule);
    contradicted when it lies below 0; else inconclusive."""
    fit_rows = curves[curves["family"].isin(FIT_ON)]
    params = theory.fit_loss_law(
        [
            ((g["s1"].to_numpy(), g["s2"].to_numpy()), g["val_metric"].to_numpy())
            for _, g in fit_rows.groupby("family")
        ]
    )
    finals = curves.sort_values("epoch").groupby("family").last()
    predicted = pd.Series(
        theory.loss_law((finals["s1"].to_numpy(), finals["s2"].to_numpy()), *params), finals.index
    )
    baseline = finals.loc[list(FIT_ON), "val_metric"].mean()
    others = [f for f in finals.index if f not in FIT_ON]
    error, spread = (
        (predicted[others] - finals.loc[others, "val_metric"]),
        finals.loc[others, "val_metric"] - baseline,
    )
    skill = lambda idx: 1 - float((error.iloc[idx] ** 2).sum() / (spread.iloc[idx] ** 2).sum())
    rng = np.random.default_rng(seed)
    low, high = np.percentile(
        [skill(rng.integers(0, len(others), len(others))) for _ in range(draws)], [2.5, 97.5]
    )
    observed = skill(np.arange(len(others)))
    table = pd.DataFrame({"comparison": others, "measured": finals.loc[others, "val_metric"].to_numpy(),
                          "predicted": predicted[others].to_numpy(), "error": error.to_numpy()})  # fmt: skip
    skill_row = {
        "comparison": "skill over the predicted families",
        "lead": observed,
        "ci_low": low,
        "ci_high": high,
    }
    table = pd.concat([pd.DataFrame([skill_row]), table], ignore_index=True)
    fitted = ", ".join(f"{n} {v:.4g}" for n, v in zip(("L0", "A", "alpha", "C"), params))
    reason = (f"fitted on {' and '.join(FIT_ON)} ({fitted}): skill {observed:+.2f} ({low:+.2f} to {high:+.2f}) over "
              f"{len(others)} families; median absolute error {error.abs().median():.4f} against a spread "
              f"(SD of the measured finals) of {finals.loc[others, 'val_metric'].std():.4f}")  # fmt: skip
    if low > 0:
        return Outcome(REPRODUCED, reason, table)
    if high < 0:
        return Outcome(CONTRADICTED, reason, table)
    return Outcome(INCONCLUSIVE, reason, table, lambda: "more families, or longer curves")
