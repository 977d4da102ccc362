"""The Optuna-free training loop: curves, determinism, divergence, early stopping, stopping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from objectives.engine.training import MemberConfig, train
from objectives.schedules import Run, get_family
from objectives.workloads.registry import get_workload, load_splits

MOONS = get_workload("moons")
DATA = load_splits(get_workload("moons"), 0)


def _member(lr: float = 0.3, family: str = "exponential", seed: int = 1, **kwargs: object) -> MemberConfig:
    kwargs = kwargs or ({"gamma": 0.8} if family == "exponential" else {})
    return MemberConfig(optimizer="sgd", lr=lr, family=family, schedule_kwargs=kwargs, seed=seed)


def _train(*members: MemberConfig, epochs: int = 4, **options: object) -> list:
    return train(MOONS, DATA, list(members), epochs=epochs, batch_size=32, **options)


def test_curve_records_every_epoch_with_the_scheduled_lr() -> None:
    [result] = _train(_member())
    curve = result.curve
    assert curve.epoch == [1, 2, 3, 4]
    assert all(len(values) == 4 for values in curve.as_dict().values())
    steps_per_epoch = math.ceil(len(DATA.y_train) / 32)
    schedule = get_family("exponential").build(Run(4 * steps_per_epoch, steps_per_epoch), gamma=0.8)
    last_steps = np.arange(1, 5) * steps_per_epoch - 1
    np.testing.assert_allclose(curve.lr, 0.3 * schedule(last_steps))
    assert curve.seconds == sorted(curve.seconds) and curve.seconds[0] > 0
    assert all(0 <= acc <= 1 for acc in curve.val_acc) and result.stop_reason is None
    assert result.final_metric == curve.val_acc[-1] == curve.val_metric[-1]  # digits: accuracy
    assert curve.train_loss[-1] < curve.train_loss[0]


def test_same_seed_same_curve_and_members_do_not_affect_each_other() -> None:
    alone = _train(_member(seed=7))[0].curve
    [_, together] = _train(_member(lr=0.05, seed=3), _member(seed=7))
    for name in ("train_loss", "val_loss", "val_acc", "val_metric", "lr"):
        assert getattr(together.curve, name) == getattr(alone, name)
    assert _train(_member(seed=8))[0].curve.val_loss != alone.val_loss


def test_nan_loss_marks_the_member_diverged_and_the_others_go_on() -> None:
    # Moons' tanh network saturates (its loss only grows with the LR); digits' ReLU MLP overflows.
    digits, members = get_workload("digits"), [_member(lr=1e10, family="constant"), _member()]
    diverging, healthy = train(digits, load_splits(digits, 0), members, epochs=4, batch_size=32)
    assert diverging.stop_reason == "diverged"
    assert diverging.final_metric == digits.metric.worst == 0.0
    assert diverging.curve.epoch == [1]
    assert math.isnan(diverging.curve.val_metric[-1]) and not math.isfinite(diverging.curve.train_loss[-1])
    assert healthy.stop_reason is None and len(healthy.curve.epoch) == 4


def test_early_stopping_stops_after_patience_and_restores_the_best() -> None:
    # An LR this small leaves the weights (and so the accuracy) unchanged after epoch 1.
    [result] = _train(_member(lr=1e-12, family="constant"), epochs=10, early_stopping=2)
    assert result.stop_reason == "early_stopping"
    assert result.curve.epoch == [1, 2, 3]
    assert result.final_metric == max(result.curve.val_metric)


def test_test_accuracy_only_when_asked_and_of_the_final_model() -> None:
    [tuning] = _train(_member())
    [final] = _train(_member(), evaluate_test=True)
    assert tuning.test_metric is None
    assert final.curve.val_acc == tuning.curve.val_acc, "measuring the test split changes nothing else"
    assert 0.5 < final.test_metric <= 1 and final.test_metric * len(DATA.y_test) == round(
        final.test_metric * len(DATA.y_test)
    )


def test_early_stopping_reports_the_best_epoch_not_the_last() -> None:
    [result] = _train(_member(lr=2.0, family="constant", seed=5), epochs=10, early_stopping=3)
    assert result.final_metric == max(result.curve.val_metric)


def test_on_epoch_can_stop_one_member() -> None:
    seen: list[tuple[int, int]] = []

    def stop_first_after_two(curves: dict) -> set[int]:
        seen.extend((index, curve.epoch[-1]) for index, curve in curves.items())
        return {0} if 0 in curves and curves[0].epoch[-1] == 2 else set()

    first, second = _train(_member(), _member(seed=2), on_epoch=stop_first_after_two)
    assert first.stop_reason == "stopped" and first.curve.epoch == [1, 2]
    assert second.stop_reason is None and len(second.curve.epoch) == 4
    assert seen == [(0, 1), (1, 1), (0, 2), (1, 2), (1, 3), (1, 4)]  # epoch by epoch, as they train together


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"lr": -0.1}, "positive number, but got lr=-0.1"),
        ({"lr": math.nan}, "lr=nan"),
        ({"optimizer": "lion"}, "unknown optimizer 'lion'; choose one of: sgd, adam"),
        ({"family": "linear"}, "unknown schedule 'linear'"),
        ({"family": "step", "schedule_kwargs": {"gamma": 0.5}}, "step_fraction"),
        ({"schedule_kwargs": {"gamma": 3.0}}, "gamma=3.0"),
    ],
)
def test_bad_configurations_are_rejected_before_training(changes: dict, message: str) -> None:
    fields = {
        "optimizer": "sgd",
        "lr": 0.1,
        "family": "exponential",
        "schedule_kwargs": {"gamma": 0.9},
        "seed": 0,
    }
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        MemberConfig(**{**fields, **changes})
