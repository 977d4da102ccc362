"""The stored schema: what a sweep writes of a study reads back as the same settings, metric and
workload facts, and a study stored without them is named as such."""

from __future__ import annotations

import json

import pytest

from objectives.experiment import Experiment
from objectives.stored import (
    WORKLOAD_FACTS,
    is_ours,
    missing_attrs,
    stored_curve,
    stored_experiment,
    stored_metric,
    stored_workload_facts,
    study_attrs,
)
from objectives.workloads.registry import get_workload

EXPERIMENT = Experiment(
    workload="moons", optimizer="sgd", family="cosine", epochs=3, batch_size=32, early_stopping=None, seed=0
)


@pytest.mark.parametrize("change", [{}, {"early_stopping": 3, "lr_range": (0.01, 0.5), "repeat": 2}])
def test_a_study_round_trips_through_its_attributes(change: dict) -> None:
    experiment = Experiment(**{**EXPERIMENT.__dict__, **change})
    moons = get_workload("moons")
    attrs = json.loads(json.dumps(study_attrs(experiment, moons)))  # as a storage keeps it
    assert stored_experiment(attrs) == experiment
    assert stored_metric(attrs) == moons.metric
    assert stored_workload_facts(attrs) == {name: getattr(moons, name) for name in WORKLOAD_FACTS}
    assert is_ours(attrs) and missing_attrs(attrs) == []


def test_a_study_without_todays_attributes_is_named_so() -> None:
    attrs = study_attrs(EXPERIMENT, get_workload("moons"))
    older = {k: v for k, v in attrs.items() if k not in ("margin", "optimizer_label", "repeat")}
    assert is_ours(older)
    assert missing_attrs(older) == ["repeat", "optimizer_label", "margin"]
    assert not is_ours({"some_other_writer": 1})


def test_a_stored_curve_reads_one_attribute_per_quantity() -> None:
    assert stored_curve({"curve_epoch": [1, 2], "curve_val_acc": [0.5, 0.75], "seed": 3}) == {
        "epoch": [1, 2],
        "val_acc": [0.5, 0.75],
    }
    assert stored_curve({"seed": 3}) == {}


def test_fixed_knobs_are_stored_only_when_set_and_read_back() -> None:
    fixed = Experiment(**{**EXPERIMENT.__dict__, "family": "wsd", "fixed": (("cooldown_shape", "linear"),)})
    attrs = json.loads(
        json.dumps(study_attrs(fixed, get_workload(fixed.workload)))
    )  # as a storage keeps them
    assert attrs["fixed"] == [["cooldown_shape", "linear"]]
    assert stored_experiment(attrs) == fixed
    plain = json.loads(json.dumps(study_attrs(EXPERIMENT, get_workload(EXPERIMENT.workload))))
    assert "fixed" not in plain and not missing_attrs(plain)  # every study stored before keeps its attributes
    assert stored_experiment(plain) == EXPERIMENT
