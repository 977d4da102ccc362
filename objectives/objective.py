"""The Optuna side of a trial: suggest a member, report its epochs, record its result.

Written for ask-and-tell: the sweep asks trials, ``run_trials`` trains them through the
Optuna-free training loop and says how each ended, and the sweep tells the study. Every
trial stores its whole learning curve as user attributes (``objectives/stored.py``), so the
dashboard and the reports need nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from objectives.engine.training import Curve, MemberConfig, MemberResult, train
from objectives.experiment import Experiment
from objectives.grid import SELECTION_SEED
from objectives.schedules import BASE_LR, get_family, suggest_space
from objectives.seeds import selection_seed
from objectives.stored import run_record, trial_attrs
from objectives.workloads.registry import Splits, Workload


def member_from_trial(trial: optuna.trial.BaseTrial, experiment: Experiment, seed: int) -> MemberConfig:
    """Suggest the base LR (log scale, within the experiment's bounds) and the family's own knobs;
    train with ``seed`` (the trial's place's), or in the grid protocol with the selection seed
    the trial draws as its grid point (``objectives.grid.SELECTION_SEED``)."""
    lr = trial.suggest_float(BASE_LR, *experiment.base_lr_bounds, log=True)
    if experiment.is_grid:
        seed = selection_seed(
            experiment.seed, trial.suggest_int(SELECTION_SEED, 0, experiment.selection_seeds - 1)
        )
    return member_from_params(experiment, {BASE_LR: lr, **suggest_space(trial, experiment.space)}, seed)


def member_from_params(experiment: Experiment, params: dict[str, Any], seed: int) -> MemberConfig:
    """The member a trial with these parameters trains: a stored trial's, or typed ones.

    Raises ValueError naming a parameter that is unknown, missing or of the wrong kind."""
    if BASE_LR not in params:
        raise ValueError(f"{experiment.family} needs the base LR ({BASE_LR})")
    params = {name: value for name, value in params.items() if name != SELECTION_SEED}  # not a knob
    return MemberConfig(
        optimizer=experiment.optimizer,
        lr=params[BASE_LR],
        family=experiment.family,
        schedule_kwargs=get_family(experiment.family).kwargs(params),
        seed=seed,
        optimizer_settings=experiment.optimizer_settings,
    )


def train_members(
    workload: Workload, experiment: Experiment, data: Splits, members: Sequence[MemberConfig], **options: Any
) -> list[MemberResult]:
    """Train members on the experiment's workload the way it says (epochs, batch size, early
    stopping, precision)."""
    return train(
        workload,
        data,
        members,
        epochs=experiment.epochs,
        batch_size=experiment.batch_size,
        early_stopping=experiment.early_stopping,
        precision=experiment.precision,
        **options,
    )


Judge = Callable[[Sequence[optuna.Trial]], set[int]]
"""Given the trials that just reported an epoch, the numbers of those to prune."""


def each_on_its_own(trials: Sequence[optuna.Trial]) -> set[int]:
    """The study's pruner asked trial by trial."""
    return {trial.number for trial in trials if trial.should_prune()}


@dataclass(frozen=True)
class Outcome:
    """How a trial ended, ready for ``study.tell``."""

    state: TrialState
    value: float | None


def run_trials(
    trials: Sequence[optuna.Trial],
    members: Sequence[MemberConfig],
    workload: Workload,
    experiment: Experiment,
    data: Splits,
    *,
    device: str = "cpu",
    judge: Judge | None = None,
) -> list[Outcome]:
    """Train the trials' members (``member_from_trial``) together on ``data``, reporting each
    epoch so the pruner can stop each one: ``judge`` names the trials to prune, by default each
    trial's own ``should_prune``."""
    judge = judge or each_on_its_own

    def report_then_prune(curves: dict[int, Curve]) -> set[int]:
        # Every member reports its epoch before any is judged, so none is compared with
        # companions one epoch behind.
        for index, curve in curves.items():
            trials[index].report(curve.val_metric[-1], step=curve.epoch[-1])
        pruned = judge([trials[index] for index in curves])
        return {index for index in curves if trials[index].number in pruned}

    results = train_members(workload, experiment, data, members, on_epoch=report_then_prune, device=device)
    outcomes = []
    for trial, result in zip(trials, results):
        for key, value in trial_attrs(run_record(result, workload.target, workload.metric)).items():
            trial.set_user_attr(key, value)
        pruned = result.stop_reason == "stopped"
        outcomes.append(
            Outcome(TrialState.PRUNED, None) if pruned else Outcome(TrialState.COMPLETE, result.final_metric)
        )
    return outcomes
