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

from objectives.experiment import Experiment
from objectives.grid import SELECTION_SEED, lattice
from objectives.seeds import sampler_seed
from objectives.stored import BASE_LR, claimed_point, counts_as_finished, finished_count, wanted_lrs

GRID_ID = "grid_id"
"""The system attribute ``GridSampler`` marks the trials it assigned with (Optuna 5; a test
checks it): how the points it has yet to hand out are told from those it has."""


def search_space(experiment: Experiment) -> dict[str, list]:
    """The ``GridSampler`` space: the window's lattice, the selection seeds, each fixed knob."""
    return {
        BASE_LR: lattice(*experiment.lr_range),
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


def grid_target(study: optuna.Study, experiment: Experiment, *, enqueue: bool = True) -> int:
    """Enqueue every wanted point that neither a trial holds (finished, running, waiting) nor the
    sampler has yet to hand out (only the study's own worker may: ``enqueue``); return the
    finished count the study is to reach."""
    seeds = range(experiment.selection_seeds)
    wanted = {(lr, seed) for lr in wanted_lrs(study, experiment) for seed in seeds}
    trials = study.get_trials(deepcopy=False)
    finished = {point for t in trials if counts_as_finished(t) and (point := claimed_point(t))}
    held = {
        point
        for t in trials
        if t.state in (TrialState.RUNNING, TrialState.WAITING) and (point := claimed_point(t))
    }
    assigned = {point for t in trials if GRID_ID in t.system_attrs and (point := claimed_point(t))}
    unassigned = {(lr, seed) for lr in lattice(*experiment.lr_range) for seed in seeds} - assigned
    for lr, seed in sorted(wanted - finished - held - unassigned) if enqueue else ():
        study.enqueue_trial({BASE_LR: lr, SELECTION_SEED: seed, **dict(experiment.fixed)})
    return finished_count(study) + len(wanted - finished)
