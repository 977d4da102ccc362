"""Pruners: which trials to stop early, chosen by ``--pruner``.

Optuna's ``MedianPruner`` compares a trial only with COMPLETE trials. Trials trained together
finish together, so in a study's first population it would have nothing to compare with and
would prune nothing, and later populations would be judged against a reference that stands still
for a whole batch. ``PopulationMedianPruner`` applies the same median rule but also counts the
trial's companions in its population, which report every epoch together with it.
"""

from __future__ import annotations

import math
import statistics

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

PRUNERS = ("median", "hyperband", "none")


def make_pruner(name: str, epochs: int) -> optuna.pruners.BasePruner:
    """Pruners compare trials of the same family, so slow-starting schedules are not punished."""
    if name == "median":
        # Let a quarter of the run pass first: warmups and cycles start slowly by design.
        return PopulationMedianPruner(n_min_trials=5, n_warmup_steps=max(1, epochs // 4))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of: {', '.join(PRUNERS)}")


class PopulationMedianPruner(optuna.pruners.BasePruner):
    """Prune a trial whose best value so far is worse than the median, at the current step, of
    the study's completed trials and of its companions.

    Companions are the other RUNNING trials of the same worker process (the ``worker`` user
    attribute the sweep records): the population being trained with it. A companion stopped
    earlier in the population counts with its last reported value. With no companions (one
    trial at a time) this is Optuna's ``MedianPruner``.

    Args:
        n_min_trials: judge only when at least this many other trials have a value to compare.
        n_warmup_steps: never prune before this step.
    """

    def __init__(self, n_min_trials: int = 5, n_warmup_steps: int = 0) -> None:
        self.n_min_trials = n_min_trials
        self.n_warmup_steps = n_warmup_steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        worker = trial.user_attrs.get("worker")
        others = [
            value
            for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING))
            if other.number != trial.number
            and (value := _comparable_value(other, worker, step)) is not None
            and math.isfinite(value)
        ]
        if len(others) < self.n_min_trials:
            return False
        own = [value for value in trial.intermediate_values.values() if math.isfinite(value)]
        if not own:
            return True  # nothing but NaN: as Optuna's MedianPruner does
        median = statistics.median(others)
        if study.direction == StudyDirection.MAXIMIZE:
            return max(own) < median
        return min(own) > median


def _comparable_value(other: FrozenTrial, worker: object, step: int) -> float | None:
    """``other``'s value at ``step`` if it is completed, its latest one up to ``step`` if it is
    a companion (run by ``worker``, the judged trial's); None if it does not count."""
    if other.state == TrialState.COMPLETE:
        return other.intermediate_values.get(step)
    if worker is None or other.user_attrs.get("worker") != worker:
        return None
    reached = [s for s in other.intermediate_values if s <= step]
    return other.intermediate_values[max(reached)] if reached else None
