"""Whether a published claim holds at this scale (``study.replications``): each arm's tuned
result per tuning run, the differences the claim is about with intervals over tuning runs, and
one outcome: reproduced, not reproduced or inconclusive. Frames and words only; nothing here
trains, draws or writes.

The tuning run is the unit, as in the report's verdicts with several runs: an arm's result in a
run is its best configuration's mean test metric over the re-evaluation seeds, and arms are
compared by Welch's t over runs (``welch_contrast``). Every family of tests a claim makes is
Holm-corrected (family-wise error 5%).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from objectives import stored
from objectives.metrics import Metric
from study.replications import Arm, Replication
from study.reporting.analysis import reevaluation_frame, trials_frame
from study.reporting.statistics import SIGNIFICANCE, holm, t_interval, welch
from study.reporting.tuning import lr_band_frame

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


@dataclass(frozen=True)
class Outcome:
    """What one workload's measurement says of the claim, with the table and the frames behind it."""

    workload: str
    verdict: str  # REPRODUCED, NOT_REPRODUCED or INCONCLUSIVE
    reason: str  # one sentence with the numbers
    table: pd.DataFrame
    metric: Metric
    margin: float
    runs: pd.DataFrame  # runs_frame: empty where the claim is about tuning trials
    trials: pd.DataFrame | None  # tuning_trials_frame, where the claim is about them


def arm_of(experiment_fixed: tuple, family: str, arms: Sequence[Arm]) -> Arm | None:
    """The arm a stored study tuned: the one with its family and fixed knobs."""
    return next((arm for arm in arms if arm.family == family and tuple(arm.fixed) == experiment_fixed), None)


def _labelled(studies: Iterable[optuna.Study], arms: Sequence[Arm], frame) -> pd.DataFrame:
    """``frame`` (a per-study frame of the report's) of every study that tunes one of ``arms``,
    with its arm's label and its run length in epochs."""
    parts = []
    for study in studies:
        experiment = stored.stored_experiment(study.user_attrs)
        if (arm := arm_of(experiment.fixed, experiment.family, arms)) is not None:
            parts.append(frame([study]).assign(arm=arm.label, epochs=experiment.epochs))
    return (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["arm", "epochs", "workload"])
    )


def runs_frame(studies: Iterable[optuna.Study], arms: Sequence[Arm]) -> pd.DataFrame:
    """One row per arm, run length and tuning run: workload, arm, epochs, repeat, test_metric
    (the mean over the run's re-evaluation seeds), seeds."""
    runs = _labelled(studies, arms, reevaluation_frame)
    if runs.empty:
        return pd.DataFrame(columns=["workload", "arm", "epochs", "repeat", "test_metric", "seeds"])
    grouped = runs.groupby(["workload", "arm", "epochs", "repeat"], sort=False)["test_metric"]
    return grouped.agg(test_metric="mean", seeds="size").reset_index()


def tuning_trials_frame(studies: Iterable[optuna.Study], arms: Sequence[Arm]) -> pd.DataFrame:
    """The tuning trials of every arm (``trials_frame`` rows, with arm and epochs)."""
    return _labelled(studies, arms, trials_frame)


@dataclass(frozen=True)
class Lead:
    """How far an arm is ahead of another (positive: better, in the metric's units) with its
    95% interval over tuning runs, and the one-sided p-values the claims use."""

    estimate: float
    low: float
    high: float
    p_two_sided: float  # that there is no lead
    p_not_behind: float  # that it is behind by ``margin`` or more (small: non-inferior)
    p_ahead: float  # that it is not ahead (small: ahead)


def lead(groups: Sequence[np.ndarray], weights: Sequence[float], sign: float, margin: float) -> Lead:
    """The contrast of run means (``statistics.welch``) as a lead: times ``sign`` (a metric's:
    1 maximized, -1 minimized) so that ahead is positive. Undefined (a group of one tuning run,
    or no spread at all): NaN p-values, so no outcome but inconclusive follows from it."""
    from scipy import stats

    contrast = welch(groups, weights, margin)
    estimate = sign * contrast.estimate
    if contrast.undefined:
        return Lead(estimate, math.nan, math.nan, math.nan, math.nan, math.nan)
    se, df = contrast.se, contrast.df
    low, high = sorted((sign * contrast.low, sign * contrast.high))
    return Lead(
        estimate, low, high, contrast.p_value,
        float(stats.t.sf((estimate + margin) / se, df)), float(stats.t.sf(estimate / se, df)),
    )  # fmt: skip


def _means(runs: pd.DataFrame, arm: str, epochs: int) -> np.ndarray:
    return runs[(runs["arm"] == arm) & (runs["epochs"] == epochs)]["test_metric"].to_numpy(dtype=float)


def _row(what: str, result: Lead) -> dict:
    return {"comparison": what, "lead": result.estimate, "ci_low": result.low, "ci_high": result.high,
            "p": result.p_two_sided, "p_not_behind": result.p_not_behind, "p_ahead": result.p_ahead}  # fmt: skip


def lead_grows(
    runs: pd.DataFrame, arms: Sequence[Arm], metric: Metric, margin: float
) -> tuple[str, str, pd.DataFrame]:
    """Bergsma et al.: the second arm (linear to 0) at least as good as the first (cosine to 10%)
    at every length (non-inferior by ``margin``, Holm over lengths), and its lead larger at the
    longest length than at the shortest (one-sided, 5%). Not reproduced when it is behind at a
    length (two-sided, Holm) or its lead shrinks significantly."""
    reference, challenger = arms[0].label, arms[1].label
    lengths = sorted(runs["epochs"].unique())
    rows = [
        _row(f"{challenger} vs {reference}, {epochs} epochs",
             lead([_means(runs, challenger, epochs), _means(runs, reference, epochs)], [1, -1], metric.sign, margin))
        for epochs in lengths
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    table["p_holm"], table["p_not_behind_holm"] = holm(table["p"]), holm(table["p_not_behind"])
    groups = [
        _means(runs, arm, epochs) for epochs in (lengths[-1], lengths[0]) for arm in (challenger, reference)
    ]
    growth = lead(groups, [1, -1, -1, 1], metric.sign, margin)
    table = pd.concat(
        [table, pd.DataFrame([_row(f"lead at {lengths[-1]} minus at {lengths[0]} epochs", growth)])]
    )
    behind = bool(((table["p_holm"] < SIGNIFICANCE) & (table["lead"] < 0)).any())
    shrinks = growth.p_two_sided < SIGNIFICANCE and growth.estimate < 0
    as_good = bool((table["p_not_behind_holm"].iloc[:-1] < SIGNIFICANCE).all())  # NaN: not shown
    grows = growth.p_ahead < SIGNIFICANCE
    reason = (
        f"{challenger}'s lead over {reference}: "
        + ", ".join(f"{epochs} epochs {r['lead']:+.4g} ({r['ci_low']:+.4g} to {r['ci_high']:+.4g})" for epochs, r in zip(lengths, rows))
        + f"; its growth from {lengths[0]} to {lengths[-1]} epochs {growth.estimate:+.4g} ({growth.low:+.4g} to {growth.high:+.4g})"
    )  # fmt: skip
    if behind or shrinks:
        return NOT_REPRODUCED, reason, table.reset_index(drop=True)
    return (REPRODUCED if as_good and grows else INCONCLUSIVE), reason, table.reset_index(drop=True)


def matches_reference(
    runs: pd.DataFrame, arms: Sequence[Arm], claimed: Sequence[str], metric: Metric, margin: float
) -> tuple[str, str, pd.DataFrame]:
    """Hägele et al.: every other arm against the first (the reference); the ``claimed`` arms
    match it when each is non-inferior by ``margin`` (Holm over the claimed arms). Not reproduced
    when a claimed arm is behind (two-sided, Holm over every arm)."""
    reference, epochs = arms[0].label, int(runs["epochs"].iloc[0])
    others = [arm.label for arm in arms[1:]]
    rows = [
        _row(
            f"{arm} vs {reference}",
            lead([_means(runs, arm, epochs), _means(runs, reference, epochs)], [1, -1], metric.sign, margin),
        )
        for arm in others
    ]
    table = pd.DataFrame(rows)
    table["p_holm"] = holm(table["p"])
    is_claimed = np.array([arm in claimed for arm in others])
    table["p_not_behind_holm"] = np.nan
    table.loc[is_claimed, "p_not_behind_holm"] = holm(table.loc[is_claimed, "p_not_behind"])
    claimed_rows = table[is_claimed]
    behind = bool(((claimed_rows["p_holm"] < SIGNIFICANCE) & (claimed_rows["lead"] < 0)).any())
    matches = bool((claimed_rows["p_not_behind_holm"] < SIGNIFICANCE).all())
    reason = "; ".join(
        f"{row['comparison']}: {row['lead']:+.4g} ({row['ci_low']:+.4g} to {row['ci_high']:+.4g})"
        for _, row in claimed_rows.iterrows()
    )
    return (NOT_REPRODUCED if behind else REPRODUCED if matches else INCONCLUSIVE), reason, table


BAND_TOP = "band_top_log10_lr"


def band_frame(trials: pd.DataFrame, metric: Metric, margin: float) -> pd.DataFrame:
    """Per arm and tuning run the LR band (``lr_band_frame``: base LRs whose trials ended within
    ``margin`` of the run's best), with its top as log10 of the LR."""
    bands = lr_band_frame(trials.assign(family=trials["arm"]), metric, margin).rename(
        columns={"family": "arm"}
    )
    return bands.assign(**{BAND_TOP: np.log10(bands["high_lr"].astype(float))})


def wider_toward_high_lrs(bands: pd.DataFrame, arms: Sequence[Arm]) -> tuple[str, str, pd.DataFrame]:
    """Kalra & Barkeshli: with warmup (the first arm) the band's top lies at a higher LR than
    without (the second), one-sided at 5%; not reproduced when it lies significantly lower.
    Also the band's width in decades, for the table."""
    warm, cold = arms[0].label, arms[1].label
    rows = []
    for column, what in ((BAND_TOP, "top of the LR band"), ("decades", "width of the LR band")):
        pair = [bands[bands["arm"] == arm][column].to_numpy(dtype=float) for arm in (warm, cold)]
        rows.append(_row(f"{what}, {warm} minus {cold}", lead(pair, [1, -1], 1.0, 0.0)))
    table = pd.DataFrame(rows)
    top = table.iloc[0]
    reason = (
        f"the band's top is {top['lead']:+.3g} decades ({top['ci_low']:+.3g} to {top['ci_high']:+.3g}) higher with "
        f"warmup; its width {table.iloc[1]['lead']:+.3g} decades ({table.iloc[1]['ci_low']:+.3g} to {table.iloc[1]['ci_high']:+.3g})"
    )
    if top["p"] < SIGNIFICANCE and top["lead"] < 0:
        return NOT_REPRODUCED, reason, table
    return (REPRODUCED if top["p_ahead"] < SIGNIFICANCE else INCONCLUSIVE), reason, table


def arm_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arm and run length: the mean over tuning runs of the test metric, its 95% t-interval,
    and how many runs."""
    rows = []
    for (arm, epochs), group in runs.groupby(["arm", "epochs"], sort=False):
        values = group["test_metric"].to_numpy(dtype=float)
        low, high = t_interval(values)
        rows.append({"arm": arm, "epochs": epochs, "test_metric": values.mean(), "ci_low": low, "ci_high": high,
                     "tuning_runs": len(values)})  # fmt: skip
    return pd.DataFrame(rows)


def judge(replication: Replication, studies: Sequence[optuna.Study]) -> Outcome:
    """The claim of ``replication`` (its ``test``) on one workload's studies."""
    attrs = studies[0].user_attrs
    metric, margin = stored.stored_metric(attrs), stored.stored_workload_facts(attrs)["margin"]
    arms, workload = replication.arms, attrs[stored.WORKLOAD]
    if replication.test == "band_reaches_higher":
        trials = tuning_trials_frame(studies, arms)
        verdict, reason, table = wider_toward_high_lrs(band_frame(trials, metric, margin), arms)
        return Outcome(workload, verdict, reason, table, metric, margin, runs_frame([], arms), trials)
    runs = runs_frame(studies, arms)
    if replication.test == "lead_grows":
        verdict, reason, table = lead_grows(runs, arms, metric, margin)
    else:
        verdict, reason, table = matches_reference(runs, arms, replication.claimed, metric, margin)
    return Outcome(workload, verdict, reason, table, metric, margin, runs, None)
