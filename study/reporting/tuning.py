"""What tuning says beyond each family's best configuration: whether that configuration sits at
the edge of its search range (it may be under-tuned), how forgiving the family is to a mistuned
base LR, and how many trials it needs. Frames only, from stored studies or a ``trials_frame``,
each with an interval over tuning runs where there are several; nothing here draws or writes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from objectives import stored
from objectives.metrics import Metric
from objectives.pruners import replay_median_pruner
from objectives.stored import stored_reevaluation
from study.reporting.analysis import expected_best_frame
from study.reporting.statistics import t_interval

EDGE = 0.05
"""A tuned value within this share of its search range from an end (on the log scale for a
log-scale parameter) is at the edge: the best may lie beyond the range. Not a range that starts
at 0 (no warmup, say): nothing lies below it."""


def edge_position(value: float, distribution: BaseDistribution) -> float | None:
    """Where ``value`` lies in a numeric search range, 0 at its low end and 1 at its high end, on
    the scale it was searched on; None for a categorical parameter or a range of one point."""
    if (
        not isinstance(distribution, (FloatDistribution, IntDistribution))
        or distribution.high == distribution.low
    ):
        return None
    scale = math.log if distribution.log else float
    low, high = scale(distribution.low), scale(distribution.high)
    return (scale(value) - low) / (high - low)


EDGE_COLUMNS = ["family", "repeat", "param", "value", "low", "high", "side"]


def range_edges_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """Every re-evaluated best configuration's parameters that lie at an edge of their search
    range (``EDGE``). Columns: ``EDGE_COLUMNS``; side is "top" or "bottom"."""
    rows = []
    for study in studies:
        if (record := stored_reevaluation(study)) is None:
            continue
        experiment = stored.stored_experiment(stored.attrs_of(study))
        best = study.get_trials(deepcopy=False)[record.trial]
        for param, value in record.params.items():
            distribution = best.distributions[param]
            position = edge_position(value, distribution)
            if (
                position is None
                or EDGE <= position <= 1 - EDGE
                or (position < EDGE and distribution.low == 0)
            ):
                continue
            rows.append({"family": experiment.family, "repeat": experiment.repeat, "param": param, "value": value,
                         "low": distribution.low, "high": distribution.high,
                         "side": "top" if position > 0.5 else "bottom"})  # fmt: skip
    return pd.DataFrame(rows, columns=EDGE_COLUMNS)


def edge_notes(edges: pd.DataFrame, runs: int) -> dict[str, str]:
    """Per family with a value at the same edge in at least half its tuning runs (one odd run is
    the sampler's luck, not a range too narrow), in words: e.g. ``lr at the top (9.49, 9.8,
    range ends at 10) in 2 of 3 tuning runs``."""
    notes = {}
    for family, rows in edges.groupby("family", sort=False):
        parts = []
        for (param, side), same in rows.groupby(["param", "side"], sort=False):
            if 2 * len(same) < runs:
                continue
            bound = same["high" if side == "top" else "low"].iloc[0]
            values = ", ".join(f"{v:.3g}" for v in same["value"])
            where = f" in {len(same)} of {runs} tuning runs" if runs > 1 else ""
            parts.append(f"{param} at the {side} ({values}, range ends at {bound:g}){where}")
        if parts:
            notes[family] = "; ".join(parts)
    return notes


BAND_COLUMNS = ["family", "repeat", "low_lr", "high_lr", "decades", "trials_in_band"]


def lr_band_frame(trials: pd.DataFrame, metric: Metric, margin: float) -> pd.DataFrame:
    """How forgiving each tuning run of each family is: the band of base LRs whose complete
    trials ended within ``margin`` of that run's best final validation metric, and its width in
    decades (0 when one trial is that good). Trials TPE placed near the best crowd the band's
    middle, so its width is a lower bound where few trials were tried far out. Columns:
    ``BAND_COLUMNS``."""
    complete = trials[(trials["state"] == "COMPLETE") & trials["final_metric"].notna()]
    rows = []
    for (family, repeat), runs in complete.groupby(["family", "repeat"], sort=False):
        signed = metric.sign * runs["final_metric"]
        good = runs[signed >= signed.max() - margin]["param_lr"]
        rows.append({"family": family, "repeat": repeat, "low_lr": good.min(), "high_lr": good.max(),
                     "decades": float(np.log10(good.max() / good.min())), "trials_in_band": len(good)})  # fmt: skip
    return pd.DataFrame(rows, columns=BAND_COLUMNS)


def forgiveness_table(bands: pd.DataFrame) -> pd.DataFrame:
    """Per family, the LR band's width in decades: mean over tuning runs with its 95% t-interval
    (NaN with one run; a width is never negative, so neither is the interval's low end).
    Columns: family, lr_band_decades, lr_band_ci_low, lr_band_ci_high; widest first."""
    rows = []
    for family, runs in bands.groupby("family", sort=False):
        widths = runs["decades"].to_numpy(dtype=float)
        low, high = t_interval(widths)
        low = max(low, 0.0) if np.isfinite(low) else low
        rows.append(
            {
                "family": family,
                "lr_band_decades": widths.mean(),
                "lr_band_ci_low": low,
                "lr_band_ci_high": high,
            }
        )
    table = pd.DataFrame(rows, columns=["family", "lr_band_decades", "lr_band_ci_low", "lr_band_ci_high"])
    return table.sort_values(["lr_band_decades", "family"], ascending=[False, True]).reset_index(drop=True)


BUDGETS = (5, 10, 30)
"""The small tuning budgets the report gives numbers for, besides all trials."""


def budget_table(trials: pd.DataFrame, metric: Metric, budgets: Sequence[int] = BUDGETS) -> pd.DataFrame:
    """Per family and budget k (``budgets``, then every trial a run had): the expected best
    validation metric of k trials (``expected_best_frame``, per tuning run), its mean over tuning
    runs and 95% t-interval (NaN with one run). A budget larger than a run's trials is left out.
    Columns: family, trials, expected_best, ci_low, ci_high."""
    rows = []
    for family, runs in trials.groupby("family", sort=False):
        per_run = {
            repeat: expected_best_frame(of_run, metric).set_index("trials")["expected_best"]
            for repeat, of_run in runs.groupby("repeat")
        }
        fewest = min(len(curve) for curve in per_run.values())
        for k in [b for b in budgets if b < fewest] + [fewest]:
            values = np.array([curve[k] for curve in per_run.values()])
            low, high = t_interval(values, metric.bounds)
            rows.append(
                {
                    "family": family,
                    "trials": k,
                    "expected_best": values.mean(),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows, columns=["family", "trials", "expected_best", "ci_low", "ci_high"])


def within_margin_at(
    budget: pd.DataFrame, reference: str, trials: int, metric: Metric, margin: float
) -> list[str]:
    """The families (the reference left out) whose expected best after ``trials`` trials is within
    ``margin`` of the reference's after as many, or better."""
    at = budget[budget["trials"] == trials].set_index("family")["expected_best"]
    if reference not in at:
        return []
    gaps = metric.sign * (at.drop(reference) - at[reference])
    return sorted(gaps[gaps >= -margin].index)


def epochs_trained(studies: Iterable[optuna.Study]) -> int:
    """Every trial's epochs, summed: a sweep's compute in member-epochs (a trial reports each
    epoch it trains, so a pruned one counts the epochs it got to)."""
    return sum(len(t.intermediate_values) for study in studies for t in study.get_trials(deepcopy=False))


def pruning_replay_frame(studies: Iterable[optuna.Study], population: int, top: int = 5) -> pd.DataFrame:
    """For studies swept without pruning: per family and tuning run, how many of its ``top`` best
    configurations, and what share of all its trials, the default median pruner would have
    stopped (``replay_median_pruner``, populations of ``population``). Columns: family, repeat,
    top_stopped, stopped_share."""
    rows = []
    for study in studies:
        attrs = stored.attrs_of(study)
        experiment, metric = stored.stored_experiment(attrs), stored.stored_metric(attrs)
        trials = study.get_trials(deepcopy=False)
        stopped = replay_median_pruner(trials, study.direction, experiment.epochs, population)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = sorted(complete, key=lambda t: -metric.sign * t.value)[:top]
        rows.append({"family": experiment.family, "repeat": experiment.repeat,
                     "top_stopped": sum(t.number in stopped for t in best),
                     "stopped_share": len(stopped) / max(1, len(complete))})  # fmt: skip
    return pd.DataFrame(rows, columns=["family", "repeat", "top_stopped", "stopped_share"])
