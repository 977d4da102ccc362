"""The Optuna side of a trial, driven with ask / tell on an in-memory study."""

from __future__ import annotations

import dataclasses
import json

import optuna
import pytest
from optuna.trial import TrialState

from objectives.experiment import Experiment
from objectives.objective import member_from_trial, run_trials
from objectives.optim.optimizers import OPTIMIZERS
from objectives.seeds import trial_seed
from objectives.stored import stored_curve
from objectives.workloads.registry import get_workload, load_splits

EXPERIMENT = Experiment(
    workload="moons", optimizer="sgd", family="cosine", epochs=3, batch_size=32, early_stopping=None, seed=0
)


def _tell_one(study: optuna.Study, experiment: Experiment = EXPERIMENT) -> optuna.trial.FrozenTrial:
    trial = study.ask()
    member = member_from_trial(trial, experiment, trial_seed(experiment.seed, trial.number))
    workload = get_workload(experiment.workload)
    [outcome] = run_trials([trial], [member], workload, experiment, load_splits(workload, experiment.seed))
    return study.tell(trial, outcome.value, state=outcome.state)


def test_trial_reports_every_epoch_and_stores_its_curve() -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    trial = _tell_one(study)
    curve = stored_curve(trial.user_attrs)
    assert trial.state == TrialState.COMPLETE
    assert set(curve) == {
        "epoch",
        "train_loss",
        "val_loss",
        "val_acc",
        "val_metric",
        "lr",
        "momentum",
        "seconds",
    }
    assert curve["epoch"] == [1, 2, 3]
    assert curve["val_metric"] == curve["val_acc"]  # moons is judged by accuracy
    assert trial.intermediate_values == pytest.approx(
        dict(zip(curve["epoch"], curve["val_metric"])), rel=1e-6
    )
    assert trial.value == pytest.approx(curve["val_metric"][-1], rel=1e-6)
    assert trial.user_attrs["seed"] == trial_seed(0, trial.number)
    assert trial.user_attrs["diverged"] is False
    reached = trial.user_attrs["epochs_to_target"]
    if reached is None:
        assert (
            max(curve["val_acc"]) < get_workload("moons").target
            and trial.user_attrs["seconds_to_target"] is None
        )
    else:
        assert (
            curve["val_acc"][reached - 1]
            >= get_workload("moons").target
            > max(curve["val_acc"][: reached - 1], default=0)
        )
        assert trial.user_attrs["seconds_to_target"] == curve["seconds"][reached - 1]
    assert set(trial.params) == {"lr", "final_fraction"}


def test_target_bookkeeping_when_the_target_is_reached() -> None:
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 0.5, "final_fraction": 0.01})
    trial = _tell_one(study, Experiment(**{**EXPERIMENT.__dict__, "epochs": 10}))
    curve = stored_curve(trial.user_attrs)
    epoch = trial.user_attrs["epochs_to_target"]
    assert epoch is not None, curve["val_acc"]
    assert curve["val_acc"][epoch - 1] >= get_workload("moons").target
    assert all(acc < get_workload("moons").target for acc in curve["val_acc"][: epoch - 1])


def test_pruned_trial_keeps_its_partial_curve() -> None:
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1.5))
    trial = _tell_one(study)
    assert trial.state == TrialState.PRUNED
    assert stored_curve(trial.user_attrs)["epoch"] == [1]
    assert list(trial.intermediate_values) == [1]


def test_diverged_trial_is_complete_scored_worst_and_json_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    sgd = OPTIMIZERS["sgd"]
    monkeypatch.setitem(OPTIMIZERS, "sgd", dataclasses.replace(sgd, lr_range=(1e10, 1e11)))  # NaN at once
    study = optuna.create_study(direction="maximize")
    trial = _tell_one(study, Experiment(**{**EXPERIMENT.__dict__, "workload": "digits"}))
    assert trial.state == TrialState.COMPLETE and trial.value == 0.0
    assert trial.user_attrs["diverged"] is True
    assert stored_curve(trial.user_attrs)["val_acc"] == stored_curve(trial.user_attrs)["val_metric"] == [None]
    json.loads(json.dumps(trial.user_attrs, allow_nan=False))  # strict JSON, as the dashboard reads it


def test_member_from_a_fixed_trial_matches_the_suggested_one() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    trial = study.ask()
    suggested = member_from_trial(trial, EXPERIMENT, seed=11)
    assert member_from_trial(optuna.trial.FixedTrial(trial.params), EXPERIMENT, seed=11) == suggested


def test_schedule_free_sgd_searches_its_own_base_lr_range() -> None:
    """Its z-step is plain SGD (no 1 / (1 - momentum) amplification): ten times SGD's range."""
    sgd = dataclasses.replace(EXPERIMENT, optimizer="sgd", family="schedule_free")
    assert sgd.base_lr_bounds == (1e-2, 10.0)
    assert dataclasses.replace(sgd, family="cosine").base_lr_bounds == (1e-3, 1.0)
    assert dataclasses.replace(sgd, optimizer="adamw").base_lr_bounds == (1e-4, 3e-2)
    assert dataclasses.replace(sgd, lr_range=(0.1, 0.2)).base_lr_bounds == (0.1, 0.2)


FIXED = Experiment(
    **{
        **EXPERIMENT.__dict__,
        "family": "wsd",
        "fixed": (("cooldown_fraction", 0.1), ("cooldown_shape", "1-sqrt")),
    }
)


def test_a_fixed_knob_is_not_searched_but_stored_with_every_trial_and_trained_with() -> None:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    members = [member_from_trial(study.ask(), FIXED, seed) for seed in range(5)]
    for trial in study.get_trials():
        assert trial.params["cooldown_fraction"] == 0.1 and trial.params["cooldown_shape"] == "1-sqrt"
    assert len({trial.params["warmup_fraction"] for trial in study.get_trials()}) == 5  # the rest is searched
    assert {
        (m.schedule_kwargs["cooldown_fraction"], m.schedule_kwargs["cooldown_shape"]) for m in members
    } == {(0.1, "1-sqrt")}


def test_fixed_knobs_name_their_own_study_and_an_unknown_knob_is_refused() -> None:
    assert FIXED.study_name == "moons-sgd-wsd-[cooldown_fraction=0.1,cooldown_shape=1-sqrt]"
    assert dataclasses.replace(FIXED, repeat=2).study_name.endswith("1-sqrt]-repeat2")
    with pytest.raises(ValueError, match="wsd has no knob final_fraction"):
        dataclasses.replace(FIXED, fixed=(("final_fraction", 0.1),))
