"""The Optuna side of a trial: suggest a member, report its epochs, record its result.

Written for ask-and-tell: the sweep asks trials, ``run_trials`` trains them through the
Optuna-free training loop and says how each ended, and the sweep tells the study. Every
trial stores its whole learning curve as user attributes, so the dashboard and the reports
need nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from objectives.engine.training import Curve, MemberConfig, MemberResult, train
from objectives.experiment import Experiment
from objectives.metrics import Metric
from objectives.schedules import get_family, suggest_space
from objectives.workloads.registry import Splits, get_workload


def member_from_trial(trial: optuna.trial.BaseTrial, experiment: Experiment, seed: int) -> MemberConfig:
    """Suggest the base LR (log scale, within the experiment's bounds) and the family's own knobs."""
    lr = trial.suggest_float("lr", *experiment.base_lr_bounds, log=True)
    return member_from_params(
        experiment, {"lr": lr, **suggest_space(trial, get_family(experiment.family).space)}, seed
    )


def member_from_params(experiment: Experiment, params: dict[str, Any], seed: int) -> MemberConfig:
    """The member a trial with these parameters trains: a stored trial's, or typed ones.

    Raises ValueError naming a parameter that is unknown, missing or of the wrong kind."""
    if "lr" not in params:
        raise ValueError(f"{experiment.family} needs the base LR (lr)")
    return MemberConfig(
        optimizer=experiment.optimizer,
        lr=params["lr"],
        family=experiment.family,
        schedule_kwargs=get_family(experiment.family).kwargs(params),
        seed=seed,
        optimizer_settings=experiment.optimizer_settings,
    )


def train_members(
    experiment: Experiment, data: Splits, members: Sequence[MemberConfig], **options: Any
) -> list[MemberResult]:
    """Train members the way the experiment says (workload, epochs, batch size, early stopping)."""
    return train(
        get_workload(experiment.workload),
        data,
        members,
        epochs=experiment.epochs,
        batch_size=experiment.batch_size,
        early_stopping=experiment.early_stopping,
        **options,
    )


CURVE_PREFIX = "curve_"
"""A trial stores each quantity of its curve as its own attribute, ``curve_<quantity>``: the
dashboard shows one attribute per line, so each reads on its own."""


def _stored(values: list[float]) -> list[float | None]:
    """Six significant digits (float32 training carries about seven), and null for NaN and inf:
    they are not JSON, and the dashboard must parse the attributes."""
    return [v if isinstance(v, int) else float(f"{v:.6g}") if math.isfinite(v) else None for v in values]


def trial_attrs(run: dict[str, Any]) -> dict[str, Any]:
    """A run's record (``result_attrs``) as a trial's user attributes: its curve one attribute per
    quantity."""
    curve = {CURVE_PREFIX + name: values for name, values in run["curve"].items()}
    return {**curve, **{key: value for key, value in run.items() if key != "curve"}}


def stored_curve(attrs: dict[str, Any]) -> dict[str, list[float | None]]:
    """A trial's curve from its user attributes: ``{quantity: per-epoch values}`` (empty when it
    stored none). Studies stored before ``CURVE_PREFIX`` hold one ``curve`` attribute instead."""
    curve = {key.removeprefix(CURVE_PREFIX): v for key, v in attrs.items() if key.startswith(CURVE_PREFIX)}
    return curve or attrs.get("curve", {})


def result_attrs(result: MemberResult, target: float, metric: Metric) -> dict[str, Any]:
    """What is stored of one training run: its whole curve and how fast it reached ``target``."""
    curve = result.curve
    reached = curve.first_reaching(target, metric)
    return {
        "curve": {name: _stored(values) for name, values in curve.as_dict().items()},
        "epochs_to_target": None if reached is None else curve.epoch[reached],
        "seconds_to_target": None if reached is None else curve.seconds[reached],
        "diverged": result.stop_reason == "diverged",
        "seed": result.config.seed,
    }


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

    results = train_members(experiment, data, members, on_epoch=report_then_prune, device=device)
    outcomes = []
    for trial, result in zip(trials, results):
        for key, value in trial_attrs(result_attrs(result, experiment.target, experiment.metric)).items():
            trial.set_user_attr(key, value)
        pruned = result.stop_reason == "stopped"
        outcomes.append(
            Outcome(TrialState.PRUNED, None) if pruned else Outcome(TrialState.COMPLETE, result.final_metric)
        )
    return outcomes
