"""Pruners: which trials to stop early, chosen by ``--pruner``.

Optuna's ``MedianPruner`` compares a trial only with COMPLETE trials. Trials trained together
finish together, so in a study's first population it would have nothing to compare with and
would prune nothing, and later populations would be judged against a reference that stands still
for a whole batch. ``PopulationMedianPruner`` applies the same median rule but also counts the
trial's companions in its population, which report every epoch together with it; the sweep
names them (``PopulationMedianPruner.judging``), nothing is read back from trial attributes.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator

import numpy as np
import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

PRUNERS = ("median", "hyperband", "none")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """Pruners compare trials of the same family, so slow-starting schedules are not punished."""
    if name == "median":
        # Let a quarter of the run pass first: warmups and cycles start slowly by design.
        return PopulationMedianPruner(n_startup_trials=5, n_warmup_steps=max(1, epochs // 4))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")


class PopulationMedianPruner(optuna.pruners.BasePruner):
    """Optuna's ``MedianPruner`` rule, with the trial's population counted as if completed.

    A trial is pruned when its best value so far is worse than the median of the values, at the
    current step, of the reference trials: the study's completed trials and the trial's
    companions, the other members of its population. One rule for both: a trial counts with its
    value at this step, so a companion stopped earlier counts no more than a trial pruned in an
    earlier batch. The sweep hands the companions over in memory (``judging``); without any,
    every decision is exactly ``optuna.pruners.MedianPruner(n_startup_trials, n_warmup_steps)``
    (a test compares them over many random studies, early-stopped trials included).

    Args:
        n_startup_trials: judge only once there are this many reference trials.
        n_warmup_steps: never prune before this step.
    """

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0) -> None:
        self.n_startup_trials = n_startup_trials
        self.n_warmup_steps = n_warmup_steps
        self._companions: frozenset[int] = frozenset()

    @contextlib.contextmanager
    def judging(self, population: Iterable[int]) -> Iterator[None]:
        """While a population trains: the numbers of its trials, each one's companions."""
        self._companions = frozenset(population)
        try:
            yield
        finally:
            self._companions = frozenset()

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        reference = [
            other
            for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
            if other.state == TrialState.COMPLETE
            or (other.number in self._companions and other.number != trial.number)
        ]
        step = trial.last_step
        if (
            not reference
            or len(reference) < self.n_startup_trials
            or step is None
            or step < self.n_warmup_steps
        ):
            return False
        best = _best(trial.intermediate_values.values(), study.direction)
        if math.isnan(best):
            return True  # nothing but NaN so far, as Optuna's MedianPruner decides
        median = _median_at(reference, step)
        if math.isnan(median):
            return False
        return best < median if study.direction == StudyDirection.MAXIMIZE else best > median


def _best(values: Iterable[float], direction: StudyDirection) -> float:
    finite = [v for v in values if not math.isnan(v)]
    if not finite:
        return math.nan
    return max(finite) if direction == StudyDirection.MAXIMIZE else min(finite)


def _median_at(trials: Iterable[FrozenTrial], step: int) -> float:
    """The median of the trials' values at ``step``, NaN ignored; NaN when none has one."""
    values = [t.intermediate_values[step] for t in trials if step in t.intermediate_values]
    finite = [v for v in values if not math.isnan(v)]
    return float(np.percentile(finite, 50)) if finite else math.nan
