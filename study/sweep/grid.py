"""The grid protocol's sweep: every family's grid points (a base LR of its window on the shared
lattice x a selection seed), each point one trial of the family's study, until every point has
finished and no family's best LR sits on the edge of the LRs it has tried (``objectives.grid``).

Each study samples with Optuna's ``GridSampler`` over (lr, selection seed, the fixed knobs), so the
dashboard shows the grid as it fills. Two kinds of point are enqueued instead (``enqueue_trial``,
which ``GridSampler`` leaves alone): a point whose trial a stopped worker left interrupted (the
sampler counts it as visited and would not hand it out again), and the points of an extension
beyond the window. What is wanted is recomputed from the stored trials on every call, so a
stopped sweep resumes with the same command and extends the grid exactly as an unstopped one.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives import grid
from objectives.experiment import Experiment
from objectives.grid import SELECTION_SEED, lattice
from objectives.seeds import sampler_seed
from objectives.stored import stored_metric
from study.sweep.workers import counts_as_finished, finished_count

GRID_ID = "grid_id"
"""The system attribute ``GridSampler`` marks the trials it assigned with (Optuna 5; a test
checks it): how the points it has yet to hand out are told from those it has."""

Point = tuple[float, int]
"""A grid point: (base LR, selection seed)."""


def search_space(experiment: Experiment) -> dict[str, list]:
    """The ``GridSampler`` space: the window's lattice, the selection seeds, each fixed knob."""
    return {
        "lr": lattice(*experiment.lr_range),
        SELECTION_SEED: list(range(experiment.selection_seeds)),
        **{name: [value] for name, value in experiment.fixed},
    }


class AskAndTellGridSampler(optuna.samplers.GridSampler):
    """``GridSampler`` for ask-and-tell: its ``after_trial`` stops the study once the grid is
    exhausted, which Optuna allows only inside ``optimize`` (a tell outside raises); the sweep
    knows when a grid is done (``grid_target``), so that step is left out."""

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: object) -> None:
        return None


def grid_sampler(experiment: Experiment) -> optuna.samplers.GridSampler:
    """The study's sampler; seeded, so the order it hands the points out in is reproducible."""
    return AskAndTellGridSampler(
        search_space(experiment), seed=sampler_seed(experiment.seed, experiment.study_name, 0)
    )


def point_of(trial: FrozenTrial) -> Point:
    return float(trial.params["lr"]), int(trial.params[SELECTION_SEED])


def finished_values(study: optuna.Study, worst: float) -> list[tuple[float, int, float]]:
    """(lr, selection seed, final validation metric) of every finished point; a trial that
    failed for a reason of its own scores the metric's worst value, as a diverged one does."""
    return [
        (*point, worst if trial.value is None else trial.value)
        for trial in study.get_trials(deepcopy=False)
        if counts_as_finished(trial) and (point := _claimed(trial))
    ]


def _points(study: optuna.Study) -> tuple[list[tuple[float, int, float]], float]:
    metric = stored_metric(study.user_attrs)
    return finished_values(study, metric.worst), metric.sign


def wanted_lrs(study: optuna.Study, experiment: Experiment) -> list[float]:
    """The LRs the study's grid is to have (``objectives.grid.wanted_lrs``)."""
    points, sign = _points(study)
    return grid.wanted_lrs(points, experiment.lr_range, experiment.selection_seeds, sign)


def chosen_lr(study: optuna.Study, experiment: Experiment) -> float | None:
    """The study's LR once its grid is complete (``objectives.grid.chosen_lr``), else None."""
    points, sign = _points(study)
    return grid.chosen_lr(points, experiment.lr_range, experiment.selection_seeds, sign)


def grid_target(study: optuna.Study, experiment: Experiment, *, enqueue: bool = True) -> int:
    """Enqueue every wanted point that neither a trial holds (finished, running, waiting) nor the
    sampler has yet to hand out (only the study's own worker may: ``enqueue``); return the
    finished count the study is to reach."""
    seeds = range(experiment.selection_seeds)
    wanted = {(lr, seed) for lr in wanted_lrs(study, experiment) for seed in seeds}
    trials = study.get_trials(deepcopy=False)
    finished = {point for t in trials if counts_as_finished(t) and (point := _claimed(t))}
    held = {
        point
        for t in trials
        if t.state in (TrialState.RUNNING, TrialState.WAITING) and (point := _claimed(t))
    }
    assigned = {point for t in trials if GRID_ID in t.system_attrs and (point := _claimed(t))}
    unassigned = {(lr, seed) for lr in lattice(*experiment.lr_range) for seed in seeds} - assigned
    for lr, seed in sorted(wanted - finished - held - unassigned) if enqueue else ():
        study.enqueue_trial({"lr": lr, SELECTION_SEED: seed, **dict(experiment.fixed)})
    return finished_count(study) + len(wanted - finished)


def _claimed(trial: FrozenTrial) -> Point | None:
    """The point a trial trains: its parameters once both are drawn (a peer may read it half
    drawn), else those it was enqueued with (Optuna's ``fixed_params`` record), else None."""
    if "lr" in trial.params and SELECTION_SEED in trial.params:
        return point_of(trial)
    fixed = trial.system_attrs.get("fixed_params")
    return (float(fixed["lr"]), int(fixed[SELECTION_SEED])) if fixed else None  # None: being drawn
