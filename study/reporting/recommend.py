"""The cross-workload answer: which family to use, by a rule stated in one sentence, and how
often that rule picks it when each family's tuning runs are resampled.

The rule: of the families whose mean test metric is never worse than a workload's reference by
more than that workload's margin, the most forgiving, i.e. the widest LR band (``tuning.
lr_band_frame``) averaged over the workloads. The reference is each workload's own (chosen on
validation, never on the test split). The rule is applied to point estimates; its uncertainty is
the share of bootstrap draws, each resampling every family's tuning runs on every workload with
replacement, in which it picks each family. That share covers the tuning run (each run's mean is
over the same seeds), not seed noise within a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DRAWS = 1000
"""Bootstrap draws of the tuning runs; the share picked is then within about 1.6 points (95%)."""


@dataclass(frozen=True)
class WorkloadRuns:
    """One workload's per-tuning-run numbers, as the rule needs them."""

    name: str
    reference: str
    sign: float  # +1: higher is better; -1: lower is better
    margin: float  # in the metric's units
    means: pd.DataFrame  # family x repeat: the run's mean test metric over its seeds
    bands: pd.DataFrame  # family x repeat: the run's LR band width in decades

    @staticmethod
    def from_frames(
        name: str,
        reference: str,
        sign: float,
        margin: float,
        reevaluation: pd.DataFrame,
        lr_bands: pd.DataFrame,
    ) -> WorkloadRuns:
        """From a ``reevaluation_frame`` and an ``lr_band_frame`` of one workload."""
        means = reevaluation.groupby(["family", "repeat"])["test_metric"].mean().unstack("repeat")
        bands = lr_bands.set_index(["family", "repeat"])["decades"].unstack("repeat")
        return WorkloadRuns(name, reference, sign, margin, means, bands.reindex(means.index))


def common_families(workloads: Sequence[WorkloadRuns]) -> list[str]:
    """The families re-evaluated on every workload, in the first workload's order."""
    shared = set.intersection(*(set(w.means.index) for w in workloads))
    return [family for family in workloads[0].means.index if family in shared]


def pick(differences: np.ndarray, margins: np.ndarray, forgiveness: np.ndarray) -> np.ndarray:
    """The rule, vectorized: ``differences`` (draws x families x workloads; signed, so negative is
    worse), ``margins`` (workloads), ``forgiveness`` (draws x families). Returns, per draw, the
    index of the family picked, or -1 where no family stays within the margin everywhere."""
    eligible = (differences >= -margins).all(axis=2)
    scored = np.where(eligible, forgiveness, -np.inf)
    return np.where(eligible.any(axis=1), scored.argmax(axis=1), -1)


def _resampled(
    workload: WorkloadRuns, families: list[str], picks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per draw and family: the difference from the reference and the LR band width, of the
    tuning runs ``picks`` (draws x families x runs: run indices) chose."""
    means, bands = workload.means.loc[families].to_numpy(), workload.bands.loc[families].to_numpy()
    family_means = np.nanmean(np.take_along_axis(np.broadcast_to(means, picks.shape), picks, axis=2), axis=2)
    family_bands = np.nanmean(np.take_along_axis(np.broadcast_to(bands, picks.shape), picks, axis=2), axis=2)
    reference = family_means[:, families.index(workload.reference)]
    return workload.sign * (family_means - reference[:, None]), family_bands


def _apply(
    workloads: Sequence[WorkloadRuns], families: list[str], picks: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rule on the runs ``picks`` chose (one array per workload): per draw, the family picked
    (-1: none), and per draw and family, whether it is eligible and its forgiveness."""
    drawn = [_resampled(w, families, p) for w, p in zip(workloads, picks)]
    differences = np.stack([d for d, _ in drawn], axis=2)
    forgiveness = np.mean([b for _, b in drawn], axis=0)
    margins = np.array([w.margin for w in workloads])
    return pick(differences, margins, forgiveness), (differences >= -margins).all(axis=2), forgiveness


@dataclass(frozen=True)
class Recommendation:
    family: str | None  # None: no family stays within the margin on every workload
    eligible: list[str]  # the families within the margin everywhere (point estimates)
    shares: pd.Series  # per family (and "none"): the share of bootstrap draws the rule picks it
    forgiveness: pd.Series  # per family: LR band decades, averaged over runs and workloads
    draws: int


def recommend(workloads: Sequence[WorkloadRuns], draws: int = DRAWS, seed: int = 0) -> Recommendation:
    """Apply the rule to the data, and to ``draws`` bootstrap resamplings of the tuning runs."""
    families = common_families(workloads)
    every_run = [
        np.broadcast_to(np.arange(w.means.shape[1]), (1, len(families), w.means.shape[1])) for w in workloads
    ]
    picked, eligible, forgiveness = _apply(workloads, families, every_run)
    rng = np.random.default_rng(seed)
    resampled = [
        rng.integers(0, w.means.shape[1], size=(draws, len(families), w.means.shape[1])) for w in workloads
    ]
    names = np.array([*families, "none"])
    shares = pd.Series(names[_apply(workloads, families, resampled)[0]]).value_counts(normalize=True)
    return Recommendation(
        family=None if picked[0] < 0 else families[picked[0]],
        eligible=[f for f, ok in zip(families, eligible[0]) if ok],
        shares=shares.sort_values(ascending=False, kind="stable"),
        forgiveness=pd.Series(forgiveness[0], index=families),
        draws=draws,
    )
