"""The measurements a published claim is judged on, as frames (``study.reporting.replication``
holds the rules): every trained run of a claim's arms, and the three readings of the standard
suite's grids (robustness to a misset LR, the convex bound, the loss-curve law).
Frames only; nothing here trains, draws or writes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import optuna
import pandas as pd

from objectives import stored
from objectives.grid import lattice_index, lattice_point
from objectives.metrics import Metric
from objectives.schedules import get_family
from objectives.stored import stored_reevaluation
from study.replications import Arm
from study.reporting import statistics, theory
from study.reporting.analysis import reevaluation_frame
from study.reporting.grid import points_frame
from study.reporting.replication import arm_of

RUN_COLUMNS = [
    "workload",
    "arm",
    "family",
    "epochs",
    "stage",
    "lr",
    "seed",
    "val_metric",
    "test_metric",
    "diverged",
]
"""One row per trained run: ``stage`` selection (a grid point) or evaluation (the chosen LR)."""


def metric_of(studies: Sequence[optuna.Study]) -> tuple[Metric, float]:
    """The studies' metric and margin (one workload's)."""
    attrs = stored.attrs_of(studies[0])
    return stored.stored_metric(attrs), float(stored.stored_workload_facts(attrs)["margin"])


def runs_frame(studies: Sequence[optuna.Study], arms: Sequence[Arm]) -> pd.DataFrame:
    """Every trained run of the claim's arms (``RUN_COLUMNS``): its grid points on the selection
    seeds, then its chosen LR on the evaluation seeds."""
    parts = []
    for study in studies:
        experiment = stored.stored_experiment(stored.attrs_of(study))
        if (arm := arm_of(experiment, arms)) is None:
            continue
        label = {"workload": experiment.workload, "arm": arm.label, "family": experiment.family,
                 "epochs": experiment.epochs}  # fmt: skip
        points = points_frame([study]).rename(columns={"selection_seed": "seed"})
        parts.append(points.assign(**label, stage="selection", test_metric=math.nan))
        if (record := stored_reevaluation(study)) is not None:
            evaluation = reevaluation_frame([study])
            parts.append(evaluation.assign(**label, stage="evaluation", lr=record.base_lr))
    return pd.concat(parts, ignore_index=True)[RUN_COLUMNS] if parts else pd.DataFrame(columns=RUN_COLUMNS)


def arm_table(runs: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Per arm and run length: its chosen LR and mean test metric over the evaluation seeds, with
    its 95% t-interval (within the metric's range)."""
    rows = []
    for (arm, epochs), part in runs[runs["stage"] == "evaluation"].groupby(["arm", "epochs"], sort=False):
        values = part["test_metric"].to_numpy(dtype=float)
        low, high = statistics.t_interval(values, metric.bounds)
        rows.append({"arm": arm, "epochs": epochs, "lr": part["lr"].iloc[0], f"test {metric.label}": values.mean(),
                     "ci_low": low, "ci_high": high, "seeds": len(values)})  # fmt: skip
    return pd.DataFrame(rows)


def decays(family: str, knobs: dict, total_steps: int, steps_per_epoch: int) -> bool:
    """Whether a schedule anneals: it ends at 10% of its peak or below (constant, cyclic ones and
    inverse_sqrt do not; plateau and schedule_free have no fixed schedule: not asked)."""
    s = theory.multipliers(family, knobs, total_steps, steps_per_epoch)
    return bool(s[-1] <= 0.1 * s.max())


def has_fixed_schedule(family: str) -> bool:
    """A schedule decided before training: not ``plateau`` (follows the validation loss) nor
    ``schedule_free`` (an optimizer of its own, its LR constant after warmup)."""
    spec = get_family(family)
    return not (spec.reacts_to_val_loss or spec.schedule_free)


def _run_shape(study: optuna.Study) -> tuple[int, int]:
    """(total steps, steps per epoch) of the study's runs."""
    record, epochs = stored_reevaluation(study), stored.stored_experiment(stored.attrs_of(study)).epochs
    steps_per_epoch = record.steps_per_epoch
    return epochs * steps_per_epoch, steps_per_epoch


RHOS = (1, 2, 3)
"""Lattice steps off the best LR: rho = 10^(k/4), 1.78, 3.16 and 5.62."""


def robustness_frame(studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """Per workload, family, k in ``RHOS``, direction (x rho or / rho) and selection seed: the
    validation metric lost against the family's chosen LR (positive: worse), where the grid has
    that LR; with whether the family's schedule decays."""
    rows = []
    for study in studies:
        attrs = stored.attrs_of(study)
        experiment, metric = stored.stored_experiment(attrs), stored.stored_metric(attrs)
        record = stored_reevaluation(study)
        if not has_fixed_schedule(experiment.family) or record is None:
            continue
        best = record.base_lr  # the LR its grid chose, which its evaluation trained
        total, per_epoch = _run_shape(study)
        decaying = decays(experiment.family, dict(experiment.fixed), total, per_epoch)
        points = points_frame([study]).pivot_table(index="lr", columns="selection_seed", values="val_metric")
        for k in RHOS:
            for direction, index in (("x rho", lattice_index(best) + k), ("/ rho", lattice_index(best) - k)):
                off = lattice_point(index)
                if off not in points.index:
                    continue
                lost = metric.sign * (points.loc[best] - points.loc[off])
                rows += [{"workload": experiment.workload, "family": experiment.family, "decays": decaying,
                          "k": k, "rho": round(10 ** (k / 4), 2), "direction": direction, "seed": seed,
                          "lost": float(value)} for seed, value in lost.items()]  # fmt: skip
    return pd.DataFrame(rows)


def robustness_contrasts(lost: pd.DataFrame) -> pd.DataFrame:
    """Per workload, rho and direction: constant's loss minus the mean loss of the decaying
    families there, per selection seed (positive: decaying loses less)."""
    rows = []
    for (workload, k, direction), part in lost.groupby(["workload", "k", "direction"]):
        constant = part[part["family"] == "constant"].set_index("seed")["lost"]
        decaying = part[part["decays"]].groupby("seed")["lost"].mean()
        common = constant.index.intersection(decaying.index)
        if len(common) == 0:
            continue
        families = part[part["decays"]]["family"].nunique()
        rows += [{"workload": workload, "k": k, "rho": round(10 ** (k / 4), 2), "direction": direction,
                  "seed": seed, "constant_lost": constant[seed], "decaying_lost": decaying[seed],
                  "families": families, "advantage": constant[seed] - decaying[seed]}
                 for seed in common]  # fmt: skip
    return pd.DataFrame(rows)


def bound_frame(studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """Per workload and family with a fixed schedule: the convex bound at its best base LR and
    that LR (unit D and G), the chosen grid LR, and the test metric per evaluation seed."""
    rows = []
    for study in studies:
        experiment = stored.stored_experiment(stored.attrs_of(study))
        record = stored_reevaluation(study)
        if not has_fixed_schedule(experiment.family) or record is None:
            continue
        total, per_epoch = _run_shape(study)
        bound = theory.convex_bound(
            theory.multipliers(experiment.family, dict(experiment.fixed), total, per_epoch)
        )
        for seed, run in zip(record.seeds, record.runs):
            rows.append({"workload": experiment.workload, "family": experiment.family, "bound": bound.best,
                         "bound_lr": bound.best_gamma, "lr": record.base_lr, "seed": seed,
                         "test_metric": run.test_metric})  # fmt: skip
    return pd.DataFrame(rows)


def curve_frame(studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """Per family with a fixed schedule, at its chosen LR: each epoch's validation metric (mean
    over the evaluation seeds) with the loss law's areas S1 and S2 at that epoch's last step."""
    rows = []
    for study in studies:
        experiment = stored.stored_experiment(stored.attrs_of(study))
        record = stored_reevaluation(study)
        if not has_fixed_schedule(experiment.family) or record is None:
            continue
        total, per_epoch = _run_shape(study)
        lrs = record.base_lr * theory.multipliers(experiment.family, dict(experiment.fixed), total, per_epoch)
        s1, s2 = theory.loss_areas(lrs)
        curves = np.array([run.curve["val_metric"] for run in record.runs], dtype=float)
        for epoch, value in enumerate(np.nanmean(curves, axis=0), start=1):
            end = epoch * per_epoch - 1
            rows.append({"workload": experiment.workload, "family": experiment.family, "epoch": epoch,
                         "val_metric": value, "s1": s1[end], "s2": s2[end]})  # fmt: skip
    return pd.DataFrame(rows)
