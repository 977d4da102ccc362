"""The grid protocol's report data: one ``GridSection`` of frames per (workload, optimizer), and
the answer across workloads. Frames and numbers only: figures are ``figures.py``'s, words
``grid_render.py``'s.

Per family: its LR-sensitivity curve (each grid LR's mean validation metric over the selection
seeds, with a 95% interval), the LR the grid chose (``objectives.grid.chosen_lr``) and whether it
lies on the edge of what was tried, and the band of LRs within the margin of that best. The
**reference** is the family whose chosen LR has the best mean over the selection seeds: chosen on
the selection runs' validation metric, never on the evaluation runs it is then tested on (ties,
exact, by name). Each family's chosen configuration is re-trained on the same fresh evaluation
seeds as every other's, so a verdict is the paired t over the per-seed differences in the test
metric (``statistics.paired_t``), Holm over the families; an inconclusive one says how many seeds
would settle it at 80% power, and what they cost here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd

from objectives import grid, stored
from objectives.experiment import Experiment
from objectives.metrics import Metric
from objectives.stored import finished_values, stored_reevaluation
from study.reporting import statistics
from study.reporting.analysis import paired_differences, reevaluation_frame

BAND_DRAWS = 1000
"""Bootstrap draws of the selection seeds behind an LR band's interval."""


@dataclass
class GridSection:
    """Everything the report shows of one (workload, optimizer) in the grid protocol."""

    workload: str
    optimizer: str
    experiment: Experiment  # the first family's: epochs, batch size, seed
    metric: Metric
    margin: float
    target: float
    classes: int
    test_drawn_from_seed: bool
    description: str
    points: pd.DataFrame  # points_frame: every finished grid point
    sensitivity: pd.DataFrame  # family, lr, mean, ci_low, ci_high, seeds, diverged
    choices: pd.DataFrame  # CHOICE_COLUMNS
    evaluation: pd.DataFrame  # reevaluation_frame of the chosen configurations
    verdicts: pd.DataFrame  # VERDICT_COLUMNS, the reference first
    reference: str
    differences: dict[str, statistics.Difference]  # family minus reference, each family but it

    @property
    def name(self) -> str:
        return f"{self.workload}-{self.optimizer}-grid"

    @property
    def seeds(self) -> int:
        """Evaluation seeds per family (0 before the evaluation)."""
        return int(self.evaluation.groupby("family")["seed"].nunique().max()) if len(self.evaluation) else 0

    @property
    def selection_seeds(self) -> int:
        return self.experiment.selection_seeds

    @property
    def order(self) -> list[str]:
        return list(self.verdicts["family"]) if len(self.verdicts) else list(self.choices["family"])


def points_frame(studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """One row per finished grid point: family, lr, selection_seed, val_metric (the metric's
    worst where it diverged or failed), diverged."""
    rows = []
    for study in studies:
        attrs = stored.attrs_of(study)
        family, metric = stored.stored_experiment(attrs).family, stored.stored_metric(attrs)
        for lr, seed, value in finished_values(study, metric.worst):
            rows.append({"family": family, "lr": lr, "selection_seed": seed, "val_metric": value,
                         "diverged": value == metric.worst})  # fmt: skip
    return pd.DataFrame(rows, columns=["family", "lr", "selection_seed", "val_metric", "diverged"])


def sensitivity_frame(points: pd.DataFrame, bounds: tuple[float, float]) -> pd.DataFrame:
    """Per family and grid LR: the mean final validation metric over the selection seeds, its
    95% t-interval within the metric's ``bounds`` (NaN with one seed), the seeds and how many diverged."""
    rows = []
    for (family, lr), group in points.groupby(["family", "lr"], sort=False):
        values = group["val_metric"].to_numpy(dtype=float)
        low, high = statistics.t_interval(values, bounds)
        rows.append({"family": family, "lr": lr, "mean": math.fsum(values) / len(values), "ci_low": low,
                     "ci_high": high, "seeds": len(values), "diverged": int(group["diverged"].sum())})  # fmt: skip
    columns = ["family", "lr", "mean", "ci_low", "ci_high", "seeds", "diverged"]
    return (
        pd.DataFrame(rows, columns=columns)
        .sort_values(["family", "lr"], kind="stable")
        .reset_index(drop=True)
    )


CHOICE_COLUMNS = [
    "family", "lr", "selection_mean", "window_low", "window_high", "tried_low", "tried_high", "edge",
    "band_decades", "band_ci_low", "band_ci_high",
]  # fmt: skip


def band_decades(means: dict[float, float], sign: float, margin: float) -> float:
    """How many decades of base LR the contiguous run of grid LRs around the best spans whose
    means are within ``margin`` of the best's (0 when the best alone is)."""
    lrs = sorted(means)
    best = lrs.index(grid.best_lr(means, sign))
    good = [sign * means[lr] >= sign * means[lrs[best]] - margin for lr in lrs]
    low = high = best
    while low > 0 and good[low - 1]:
        low -= 1
    while high < len(lrs) - 1 and good[high + 1]:
        high += 1
    return math.log10(lrs[high] / lrs[low])


def _band_interval(points: pd.DataFrame, lrs: list[float], sign: float, margin: float) -> tuple[float, float]:
    """The LR band's 95% bootstrap interval over the selection seeds (resampled with replacement,
    the same draw for every LR: a seed's runs share its initialization and data order)."""
    table = points.pivot_table(index="selection_seed", columns="lr", values="val_metric")[lrs]
    if len(table) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(0)
    draws = rng.integers(0, len(table), (BAND_DRAWS, len(table)))
    values = table.to_numpy()
    widths = [
        band_decades(dict(zip(lrs, values[draw].mean(axis=0), strict=True)), sign, margin) for draw in draws
    ]
    return float(np.percentile(widths, 2.5)), float(np.percentile(widths, 97.5))


def choices_frame(studies: Sequence[optuna.Study], points: pd.DataFrame, margin: float) -> pd.DataFrame:
    """Per family with a complete grid: the chosen LR and its mean over the selection seeds, the
    window it started from and the LRs it tried, ``edge`` ("lowest tried" / "highest tried" where
    the chosen LR is one: the grid could grow no further there), and the LR band with its
    interval. Columns: ``CHOICE_COLUMNS``."""
    rows = []
    for study in studies:
        attrs = stored.attrs_of(study)
        experiment, metric = stored.stored_experiment(attrs), stored.stored_metric(attrs)
        mine = points[points["family"] == experiment.family]
        values = list(mine[["lr", "selection_seed", "val_metric"]].itertuples(index=False, name=None))
        chosen = grid.chosen_lr(values, experiment.lr_range, experiment.selection_seeds, metric.sign)
        if chosen is None:
            continue
        lrs = grid.wanted_lrs(values, experiment.lr_range, experiment.selection_seeds, metric.sign)
        means = {lr: m for lr, m in grid.mean_by_lr(values, experiment.selection_seeds).items() if lr in lrs}
        edge = "lowest tried" if chosen == lrs[0] else "highest tried" if chosen == lrs[-1] else ""
        low, high = _band_interval(mine[mine["lr"].isin(lrs)], lrs, metric.sign, margin)
        rows.append({
            "family": experiment.family, "lr": chosen, "selection_mean": means[chosen],
            "window_low": experiment.lr_range[0], "window_high": experiment.lr_range[1],
            "tried_low": lrs[0], "tried_high": lrs[-1], "edge": edge,
            "band_decades": band_decades(means, metric.sign, margin), "band_ci_low": low, "band_ci_high": high,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=CHOICE_COLUMNS)


def reference_of(choices: pd.DataFrame, sign: float) -> str:
    """The family with the best selection mean at its chosen LR; a tie (``grid.tied_best``) goes by name."""
    return str(min(grid.tied_best(dict(zip(choices["family"], choices["selection_mean"])), sign)))


VERDICT_COLUMNS = [
    "family", "verdict", "lr", "test_metric", "test_ci_low", "test_ci_high", "difference", "ci_low", "ci_high",
    "p_value", "p_holm", "p_equivalent", "p_equivalent_holm", "seeds", "sd", "seeds_needed", "cpu_minutes_needed",
    "why",
]  # fmt: skip


def differences_from(
    evaluation: pd.DataFrame, choices: pd.DataFrame, reference: str, margin: float
) -> dict[str, statistics.Difference]:
    """Every evaluated family but the reference, minus the reference, paired over the seeds both
    were evaluated on (``statistics.paired_t``), in the choices' order."""
    by_seed = evaluation.pivot_table(index="seed", columns="family", values="test_metric")
    if reference not in by_seed.columns:
        return {}
    return {
        family: statistics.paired_t(paired_differences(by_seed[family], by_seed[reference]), margin)
        for family in choices["family"]
        if family in by_seed.columns and family != reference
    }


def verdict_frame(
    evaluation: pd.DataFrame, choices: pd.DataFrame, reference: str, metric: Metric, margin: float
) -> pd.DataFrame:
    """The reference's row, then every other family against it: the paired difference in the
    test metric over the shared evaluation seeds with its unadjusted 95% interval, both tests and
    their Holm-adjusted p-values, the verdict (``statistics.verdicts``) and, where inconclusive,
    the seeds that would settle it at 80% power (Bonferroni over the comparisons) and what the
    extra ones cost here (two runs a seed, at the evaluation runs' mean CPU seconds), or why not.
    Sorted: the reference, then by verdict and by difference, best first. Columns: ``VERDICT_COLUMNS``."""
    by_seed = evaluation.pivot_table(index="seed", columns="family", values="test_metric")
    compared = differences_from(evaluation, choices, reference, margin)
    if reference not in by_seed.columns:
        return pd.DataFrame(columns=VERDICT_COLUMNS)
    families, differences = list(compared), list(compared.values())
    p_holm, p_eq_holm, words = statistics.verdicts(differences, metric.sign)
    run_seconds = _mean_run_seconds(evaluation)
    rows = [_row(reference, "reference", by_seed[reference], choices, None, metric.bounds)]
    for family, d, p, p_eq, word in zip(families, differences, p_holm, p_eq_holm, words, strict=True):
        row = _row(family, word, by_seed[family], choices, d, metric.bounds)
        row |= {"p_holm": p, "p_equivalent_holm": p_eq}
        if word == "inconclusive":
            row |= _power_columns(d, margin, len(families), run_seconds)
        rows.append(row)
    table = pd.DataFrame(rows, columns=VERDICT_COLUMNS)
    order = {"reference": 0, "better": 1, "equivalent": 2, "inconclusive": 3, "worse": 4}
    table["_order"], table["_gap"] = table["verdict"].map(order), -metric.sign * table["difference"].fillna(0)
    return (
        table.sort_values(["_order", "_gap", "family"])
        .drop(columns=["_order", "_gap"])
        .reset_index(drop=True)
    )


def _row(
    family: str,
    verdict: str,
    tests: pd.Series,
    choices: pd.DataFrame,
    d: statistics.Difference | None,
    bounds: tuple[float, float],
) -> dict:
    values = tests.dropna().to_numpy(dtype=float)
    low, high = statistics.t_interval(values, bounds)
    row = {"family": family, "verdict": verdict, "lr": choices.set_index("family").loc[family, "lr"],
           "test_metric": values.mean(), "test_ci_low": low, "test_ci_high": high, "seeds": len(values)}  # fmt: skip
    if d is not None:
        row |= {"difference": d.estimate, "ci_low": d.low, "ci_high": d.high, "p_value": d.p_value,
                "p_equivalent": d.p_equivalent, "sd": d.sd, "why": d.undefined}  # fmt: skip
    return row


def _power_columns(d: statistics.Difference, margin: float, comparisons: int, run_seconds: float) -> dict:
    if d.undefined:
        return {"why": d.undefined}
    needed = statistics.units_for_power(d.sd, d.estimate, margin, comparisons=comparisons)
    if needed is None:
        return {"why": "no affordable number of seeds: the difference sits at the margin's edge"}
    extra = max(needed - d.n, 0)
    return {"seeds_needed": needed, "cpu_minutes_needed": 2 * extra * run_seconds / 60}


def _mean_run_seconds(evaluation: pd.DataFrame) -> float:
    """An evaluation run's seconds (its share of its population's time), mean over the runs."""
    return float(evaluation["seconds"].mean()) if "seconds" in evaluation and len(evaluation) else math.nan


def build_grid_section(studies: Sequence[optuna.Study], margin: float | None = None) -> GridSection:
    """The frames of one (workload, optimizer) group of grid studies (reads the stored evaluations)."""
    attrs = stored.attrs_of(studies[0])
    first, metric, facts = (
        stored.stored_experiment(attrs),
        stored.stored_metric(attrs),
        stored.stored_workload_facts(attrs),
    )
    margin = facts["margin"] if margin is None else margin
    points = points_frame(studies)
    choices = choices_frame(studies, points, margin)
    reference = reference_of(choices, metric.sign) if len(choices) else ""
    evaluated = [s for s in studies if stored_reevaluation(s) is not None]
    evaluation = _with_run_seconds(reevaluation_frame(evaluated), evaluated)
    return GridSection(
        workload=first.workload, optimizer=attrs[stored.OPTIMIZER_LABEL], experiment=first, metric=metric,
        margin=margin, target=facts["target"], classes=facts["classes"],
        test_drawn_from_seed=facts["test_drawn_from_seed"], description=facts["description"],
        points=points, sensitivity=sensitivity_frame(points, metric.bounds), choices=choices, evaluation=evaluation,
        verdicts=verdict_frame(evaluation, choices, reference, metric, margin) if len(evaluation) else
        pd.DataFrame(columns=VERDICT_COLUMNS),
        reference=reference, differences=differences_from(evaluation, choices, reference, margin) if len(evaluation) else {},
    )  # fmt: skip


def _with_run_seconds(evaluation: pd.DataFrame, studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """The evaluation frame with each run's seconds (its curve's last, cumulative)."""
    seconds = [
        run.curve["seconds"][-1] if run.curve["seconds"] else math.nan
        for study in studies
        for run in stored_reevaluation(study).runs
    ]
    return evaluation.assign(seconds=seconds) if len(seconds) == len(evaluation) else evaluation


def placement_frame(sections: Sequence[GridSection]) -> pd.DataFrame | None:
    """With two or more evaluated workloads: per family evaluated on every one, its verdict and
    signed gap (ahead positive, in the metric's units) on each, and where the data place it
    across them (``statistics.place``: within the margin everywhere, worse somewhere, or not
    placed) with both Holm-adjusted p-values. None with fewer workloads."""
    evaluated = [s for s in sections if len(s.verdicts)]
    if len(evaluated) < 2:
        return None
    shared = set.intersection(*(set(s.verdicts["family"]) for s in evaluated))
    families = [f for f in evaluated[0].verdicts["family"] if f in shared]
    rows = [[s.differences.get(f) if f != s.reference else None for s in evaluated] for f in families]
    placed = statistics.place(rows, [s.metric.sign for s in evaluated], [s.margin for s in evaluated])
    table = pd.DataFrame({"family": families, "placement": placed.words(), "p_safe_holm": placed.p_safe,
                          "p_worse_holm": placed.p_worse})  # fmt: skip
    for s in evaluated:
        shown = s.verdicts.set_index("family")
        table[f"{s.workload} verdict"] = table["family"].map(shown["verdict"])
        table[f"{s.workload} gap"] = table["family"].map(s.metric.sign * shown["difference"].fillna(0.0))
    order = {"within the margin everywhere": 0, "not placed": 1, "worse somewhere": 2}
    return table.sort_values(["placement", "p_worse_holm", "family"], key=lambda c: c.map(order) if c.name == "placement" else c,
                             ascending=[True, False, True]).reset_index(drop=True)  # fmt: skip
