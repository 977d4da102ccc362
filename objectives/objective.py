"""The Optuna side of a trial: suggest a member, report its epochs, record its result.

Written for ask-and-tell: the sweep asks trials, ``run_trials`` trains them through the
Optuna-free training loop and says how each ended, and the sweep tells the study. Every
trial stores its whole learning curve as user attributes, so the dashboard and the reports
need nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from objectives.metrics import Metric
from objectives.optimizers import OptimizerSettings, get_optimizer
from objectives.schedules import get_family, suggest_space
from objectives.training import Curve, MemberConfig, MemberResult, train
from objectives.workloads import Splits, get_workload


@dataclass(frozen=True)
class Experiment:
    """What stays fixed within one study: everything but the searched hyperparameters."""

    workload: str
    optimizer: str
    family: str
    epochs: int
    batch_size: int
    early_stopping: int | None  # patience in epochs; None trains every epoch
    seed: int  # fixes the data split; each trial's own seed derives from it
    lr_range: tuple[float, float] | None = None  # base-LR search bounds; None: the optimizer's default
    momentum: float | None = None  # SGD's momentum (0: plain SGD); None: the default, or no such setting
    nesterov: bool = False  # SGD only
    weight_decay: float | None = None  # None: the optimizer's default

    @property
    def base_lr_bounds(self) -> tuple[float, float]:
        """The searched base-LR range: the experiment's own, else the optimizer's (its
        schedule-free variant's for the ``schedule_free`` family)."""
        if self.lr_range:
            return self.lr_range
        spec = get_optimizer(self.optimizer)
        if get_family(self.family).schedule_free and spec.schedule_free_lr_range:
            return spec.schedule_free_lr_range
        return spec.lr_range

    @property
    def optimizer_settings(self) -> OptimizerSettings:
        return OptimizerSettings(
            momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay
        )

    @property
    def optimizer_label(self) -> str:
        """The optimizer and any setting that differs from its default, e.g. ``sgd_momentum0_wd0.0001``."""
        return optimizer_label(self.optimizer, self.optimizer_settings)

    @property
    def study_name(self) -> str:
        return f"{self.workload}-{self.optimizer_label}-{self.family}"

    @property
    def target(self) -> float:
        return get_workload(self.workload).target

    @property
    def metric(self) -> Metric:
        return get_workload(self.workload).metric

    def to_attrs(self) -> dict[str, Any]:
        """Study user attributes: the settings (JSON types), plus the metric and target they are
        judged by and the optimizer's label (what tells sweeps with other optimizer settings
        apart). Reports read these, so they need not import the workload."""
        attrs = {
            **asdict(self), "target": self.target, "metric": self.metric.to_attrs(),
            "optimizer_label": self.optimizer_label,
        }  # fmt: skip
        attrs["lr_range"] = None if self.lr_range is None else list(self.lr_range)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: dict[str, Any]) -> Experiment:
        fields = {name: attrs[name] for name in cls.__dataclass_fields__ if name in attrs}
        if fields.get("lr_range") is not None:
            fields["lr_range"] = tuple(fields["lr_range"])
        return cls(**fields)


def optimizer_label(optimizer: str, settings: OptimizerSettings) -> str:
    """The optimizer's name, then each setting that differs from its default: sweeps with other
    settings get their own studies and report sections. Defaults add nothing."""
    spec, default = get_optimizer(optimizer), OptimizerSettings()
    parts = [optimizer]
    if spec.momentum(settings) != spec.momentum(default):
        parts.append(f"momentum{spec.momentum(settings):g}")
    if settings.nesterov:
        parts.append("nesterov")
    if spec.weight_decay(settings) != spec.weight_decay(default):
        parts.append(f"wd{spec.weight_decay(settings):g}")
    return "_".join(parts)


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


def _json_safe(values: list[float]) -> list[float | None]:
    """NaN and inf become null: they are not JSON, and the dashboard must parse the attributes."""
    return [v if math.isfinite(v) else None for v in values]


def result_attrs(result: MemberResult, target: float, metric: Metric) -> dict[str, Any]:
    """What is stored of one training run: its whole curve and how fast it reached ``target``."""
    curve = result.curve
    reached = curve.first_reaching(target, metric)
    return {
        "curve": {name: _json_safe(values) for name, values in curve.as_dict().items()},
        "epochs_to_target": None if reached is None else curve.epoch[reached],
        "seconds_to_target": None if reached is None else curve.seconds[reached],
        "diverged": result.stop_reason == "diverged",
        "seed": result.config.seed,
    }


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
) -> list[Outcome]:
    """Train the trials' members (``member_from_trial``) together on ``data``, reporting each
    epoch so the pruner can stop each one."""

    def report_then_prune(curves: dict[int, Curve]) -> set[int]:
        # Every member reports its epoch before any is judged, so none is compared with
        # companions one epoch behind.
        for index, curve in curves.items():
            trials[index].report(curve.val_metric[-1], step=curve.epoch[-1])
        return {index for index in curves if trials[index].should_prune()}

    results = train_members(experiment, data, members, on_epoch=report_then_prune, device=device)
    outcomes = []
    for trial, result in zip(trials, results):
        for key, value in result_attrs(result, experiment.target, experiment.metric).items():
            trial.set_user_attr(key, value)
        pruned = result.stop_reason == "stopped"
        outcomes.append(
            Outcome(TrialState.PRUNED, None) if pruned else Outcome(TrialState.COMPLETE, result.final_metric)
        )
    return outcomes
