"""What the project stores in Optuna, in one place: every study and trial attribute by name,
how it is written, and how it is read back.

A study stores its settings (the ``Experiment``), the metric it is judged by and what the
report says of its workload (``WORKLOAD_FACTS``), so reports, the dashboard and ``study.train``
work from stored studies alone, never from the live workload registry. A trial stores its run
(``run_record``): the learning curve one attribute per quantity, how fast it reached the
target, whether it diverged, and its training seed. Light (no torch): commands check stored
settings before they import the engine.

There is no reader of older formats: a study this project stored without today's attributes is
named by ``missing_attrs`` and refused, in one line, by whoever reads it.
"""

from __future__ import annotations

import contextlib
import math
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from optuna.trial import FrozenTrial, TrialState

from objectives import grid
from objectives.experiment import Experiment
from objectives.grid import SELECTION_SEED
from objectives.metrics import Metric
from objectives.schedules import BASE_LR

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import optuna

    from objectives.engine.training import MemberResult
    from objectives.workloads.registry import Workload

# --- study user attributes: the Experiment's fields, and these ----------------------------------

WORKLOAD = "workload"  # one of the Experiment's fields: the attribute that marks a study as ours
METRIC = "metric"
OPTIMIZER_LABEL = "optimizer_label"
WORKLOAD_FACTS = ("target", "classes", "margin", "test_drawn_from_seed", "description")
"""What the report says of a study's workload: the validation value that counts as converged,
the number of classes (what chance level is), the margin of equivalence, whether the test
split is drawn per seed, and the workload in words."""
REEVALUATION = "reevaluation"  # the report's re-training of the best trial over seeds

# --- trial parameters and user attributes ---------------------------------------------------------

# BASE_LR (from objectives.schedules): the parameter every study has, the base LR.

CURVE_PREFIX = "curve_"
"""Each quantity of a trial's curve is its own attribute, ``curve_<quantity>``: the dashboard
shows one attribute per line, so each reads on its own."""
EPOCHS_TO_TARGET = "epochs_to_target"
SECONDS_TO_TARGET = "seconds_to_target"
DIVERGED = "diverged"
SEED = "seed"  # the trial's training seed; a trial without it stored no run
WORKER = "worker"  # the process training it: a Worker's record
INTERRUPTED = "interrupted"  # stopped by Ctrl-C or a peer's death: redone, not counted
ERROR = "error"  # training raised: the one-line reason

# --- trial system attributes ----------------------------------------------------------------------

BEAT = "lr_study:beat"
"""When a journal trial's worker last showed it is alive (the journal has no heartbeat)."""


_DECODED: ContextVar[dict[int, tuple[optuna.Study, dict[str, Any]]] | None] = ContextVar(
    "decoded", default=None
)


@contextlib.contextmanager
def decoded_once() -> Iterator[None]:
    """Within it, ``attrs_of`` decodes each study's user attributes once: for a stage that reads
    and never writes them (the report). Optuna deep-copies them on every access: the published
    suite's 288 studies, read 10 times each as the report did, cost 4.8 s of CPU."""
    token = _DECODED.set({})
    try:
        yield
    finally:
        _DECODED.reset(token)


def attrs_of(study: optuna.Study) -> dict[str, Any]:
    """The study's user attributes: decoded once within ``decoded_once``, else read afresh."""
    cache = _DECODED.get()
    if cache is None:
        return study.user_attrs
    if id(study) not in cache:
        cache[id(study)] = (study, study.user_attrs)  # holding the study keeps its id its own
    return cache[id(study)][1]


def study_attrs(experiment: Experiment, workload: Workload) -> dict[str, Any]:
    """A study's user attributes: the settings (JSON types), the metric and workload facts they
    are judged by, and the optimizer's label (what tells sweeps with other settings apart)."""
    attrs = {
        **asdict(experiment), METRIC: asdict(workload.metric), OPTIMIZER_LABEL: experiment.optimizer_label,
        **{name: getattr(workload, name) for name in WORKLOAD_FACTS},
    }  # fmt: skip
    attrs["lr_range"] = None if experiment.lr_range is None else list(experiment.lr_range)
    attrs["fixed"] = [list(pair) for pair in experiment.fixed]
    for (
        name,
        default,
    ) in OPTIONAL_FIELDS.items():  # absent when default: every study stores what it did before
        if attrs[name] == default:
            del attrs[name]
    return attrs


def is_ours(attrs: dict[str, Any]) -> bool:
    """Whether a study's attributes are a sweep's (another writer's study in the storage is not)."""
    return WORKLOAD in attrs


def missing_attrs(attrs: dict[str, Any]) -> list[str]:
    """The attributes a study of ours lacks (stored by an earlier version of the project)."""
    wanted = [*Experiment.__dataclass_fields__, METRIC, OPTIMIZER_LABEL, *WORKLOAD_FACTS]
    return [name for name in wanted if name not in attrs and name not in OPTIONAL_FIELDS]


OPTIONAL_FIELDS = {"fixed": [], "precision": "fp32", "protocol": "budgeted", "selection_seeds": 0}
"""Experiment fields a study stores only when they are not their default (as stored)."""


def stored_experiment(attrs: dict[str, Any]) -> Experiment:
    fields = {name: attrs[name] for name in Experiment.__dataclass_fields__ if name in attrs}
    if fields["lr_range"] is not None:
        fields["lr_range"] = tuple(fields["lr_range"])
    fields["fixed"] = tuple(tuple(pair) for pair in fields.get("fixed", ()))
    return Experiment(**fields)


def stored_metric(attrs: dict[str, Any]) -> Metric:
    return Metric(**attrs[METRIC])


def stored_workload_facts(attrs: dict[str, Any]) -> dict[str, Any]:
    return {name: attrs[name] for name in WORKLOAD_FACTS}


def _stored(values: list[float]) -> list[float | None]:
    """Six significant digits (float32 training carries about seven), and null for NaN and inf:
    they are not JSON, and the dashboard must parse the attributes."""
    return [v if isinstance(v, int) else float(f"{v:.6g}") if math.isfinite(v) else None for v in values]


def run_record(result: MemberResult, target: float, metric: Metric) -> dict[str, Any]:
    """What is stored of one training run: its whole curve and how fast it reached ``target``."""
    curve = result.curve
    reached = curve.first_reaching(target, metric)
    return {
        "curve": {name: _stored(values) for name, values in curve.as_dict().items()},
        EPOCHS_TO_TARGET: None if reached is None else curve.epoch[reached],
        SECONDS_TO_TARGET: None if reached is None else curve.seconds[reached],
        DIVERGED: result.stop_reason == "diverged",
        SEED: result.config.seed,
    }


def trial_attrs(run: dict[str, Any]) -> dict[str, Any]:
    """A run's record (``run_record``) as a trial's user attributes: its curve one attribute per
    quantity."""
    curve = {CURVE_PREFIX + name: values for name, values in run["curve"].items()}
    return {**curve, **{key: value for key, value in run.items() if key != "curve"}}


def stored_curve(attrs: dict[str, Any]) -> dict[str, list[float | None]]:
    """A trial's curve from its user attributes: ``{quantity: per-epoch values}`` (empty when it
    stored none)."""
    return {key.removeprefix(CURVE_PREFIX): v for key, v in attrs.items() if key.startswith(CURVE_PREFIX)}


@dataclass(frozen=True)
class Worker:
    """The process that trains a trial, stored with it (``WORKER``) so a later run can tell
    whether it still lives: its machine, process id and start time (a reused id has another)."""

    host: str
    pid: int
    started: str | None  # None where the machine has no /proc

    def record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def read(cls, attrs: dict[str, Any]) -> Worker | None:
        """A trial's worker from its user attributes; None when none was recorded yet."""
        record = attrs.get(WORKER)
        return None if record is None else cls(record["host"], int(record["pid"]), record.get("started"))


def counts_as_finished(trial: FrozenTrial) -> bool:
    """Complete, pruned, or failed with a recorded error. Trials failed because their worker died
    (a killed process, Ctrl-C, a stopped heartbeat) carry no error: they are redone, not counted."""
    if trial.state == TrialState.FAIL:
        return ERROR in trial.user_attrs
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def finished_count(study: optuna.Study) -> int:
    return sum(counts_as_finished(trial) for trial in study.get_trials(deepcopy=False))


TEST_METRIC = "test_metric"  # an evaluation run's score on the test split


@dataclass(frozen=True)
class StoredRun:
    """One evaluation run as stored: ``run_record`` with its test score."""

    curve: dict[str, list[float | None]]
    epochs_to_target: float | None
    seconds_to_target: float | None
    diverged: bool
    seed: int
    test_metric: float | None

    @classmethod
    def read(cls, record: dict[str, Any]) -> StoredRun:
        return cls(
            curve=record["curve"],
            epochs_to_target=record[EPOCHS_TO_TARGET],
            seconds_to_target=record[SECONDS_TO_TARGET],
            diverged=record[DIVERGED],
            seed=record[SEED],
            test_metric=record[TEST_METRIC],
        )


@dataclass(frozen=True)
class Reevaluation:
    """A study's chosen configuration re-trained over evaluation seeds, as stored (``REEVALUATION``):
    the trial it re-trained (None for a grid study's chosen LR), its parameters, and each seed's run."""

    trial: int | None
    params: dict[str, Any]
    steps_per_epoch: int
    seeds: list[int]
    splits: str | None  # how the runs drew their data; a record of another way is redone
    runs: list[StoredRun]

    @property
    def base_lr(self) -> float:
        return float(self.params[BASE_LR])

    @classmethod
    def read(cls, record: dict[str, Any]) -> Reevaluation:
        return cls(
            trial=record["trial"],
            params=record["params"],
            steps_per_epoch=int(record["steps_per_epoch"]),
            seeds=list(record["seeds"]),
            splits=record.get("splits"),
            runs=[StoredRun.read(run) for run in record["runs"]],
        )


def reevaluation_record(
    trial: int | None, params: dict[str, Any], attrs: dict[str, Any], results: Sequence[MemberResult],
    steps_per_epoch: int, splits: str,
) -> dict[str, Any]:  # fmt: skip
    """The re-evaluation as stored (``Reevaluation.read`` reads it): runs judged by the study's
    stored target and metric."""
    target, metric = stored_workload_facts(attrs)["target"], stored_metric(attrs)
    return {
        "trial": trial,
        "params": params,
        "steps_per_epoch": steps_per_epoch,
        "seeds": [result.config.seed for result in results],
        "splits": splits,
        "runs": [
            {**run_record(result, target, metric), TEST_METRIC: result.test_metric} for result in results
        ],
    }


def stored_reevaluation(study: optuna.Study) -> Reevaluation | None:
    """The study's stored evaluation over seeds, or None before there is one."""
    record = attrs_of(study).get(REEVALUATION)
    return None if record is None else Reevaluation.read(record)


# --- grid studies as stored: their points, and the LR each has chosen ---------------------------

Point = tuple[float, int]
"""A grid point: (base LR, selection seed)."""


def point_of(trial: FrozenTrial) -> Point:
    return float(trial.params[BASE_LR]), int(trial.params[SELECTION_SEED])


def finished_values(study: optuna.Study, worst: float) -> list[tuple[float, int, float]]:
    """(lr, selection seed, final validation metric) of every finished point; a trial that
    failed for a reason of its own scores the metric's worst value, as a diverged one does."""
    return [
        (*point, worst if trial.value is None else trial.value)
        for trial in study.get_trials(deepcopy=False)
        if counts_as_finished(trial) and (point := claimed_point(trial))
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


def claimed_point(trial: FrozenTrial) -> Point | None:
    """The point a trial trains: its parameters once both are drawn (a peer may read it half
    drawn), else those it was enqueued with (Optuna's ``fixed_params`` record), else None."""
    if BASE_LR in trial.params and SELECTION_SEED in trial.params:
        return point_of(trial)
    fixed = trial.system_attrs.get("fixed_params")
    return (float(fixed[BASE_LR]), int(fixed[SELECTION_SEED])) if fixed else None  # None: being drawn
