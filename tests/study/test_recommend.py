"""The cross-workload recommendation rule and its bootstrap over tuning runs, on data whose
answer is known by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from study.reporting.recommend import WorkloadRuns, recommend


def _runs(name: str, reference: str, sign: float, margin: float, means: dict, bands: dict) -> WorkloadRuns:
    """Per family, its tuning runs' mean test metrics and LR band widths."""
    return WorkloadRuns(
        name, reference, sign, margin, pd.DataFrame(means).T, pd.DataFrame(bands).T.rename_axis("family")
    )


def _two_workloads(b_on_w1: list[float]) -> list[WorkloadRuns]:
    """w1: accuracy (higher is better), margin 0.01, reference a. w2: bits per character (lower
    is better), margin 0.02, reference b. d is the most forgiving but 0.05 bits worse on w2; c
    is within the margins everywhere but narrower than b."""
    w1 = _runs("w1", "a", 1.0, 0.01,
               {"a": [0.90] * 3, "b": b_on_w1, "c": [0.895] * 3, "d": [0.90] * 3},
               {"a": [0.5] * 3, "b": [1.5] * 3, "c": [1.0] * 3, "d": [3.0] * 3})  # fmt: skip
    w2 = _runs("w2", "b", -1.0, 0.02,
               {"a": [2.01] * 3, "b": [2.00] * 3, "c": [2.015] * 3, "d": [2.05] * 3},
               {"a": [0.5] * 3, "b": [1.5] * 3, "c": [1.0] * 3, "d": [3.0] * 3})  # fmt: skip
    return [w1, w2]


def test_the_rule_picks_the_most_forgiving_family_within_the_margin_everywhere() -> None:
    picked = recommend(_two_workloads([0.90, 0.90, 0.90]), draws=200)
    assert picked.eligible == ["a", "b", "c"], "d is 0.05 bits worse on w2, beyond its 0.02 margin"
    assert picked.family == "b", "of a, b, c, b has the widest LR band"
    assert picked.forgiveness.to_dict() == pytest.approx({"a": 0.5, "b": 1.5, "c": 1.0, "d": 3.0})
    assert picked.shares.to_dict() == {"b": 1.0}, "every tuning run the same: every draw picks b"


def test_the_bootstrap_share_is_the_chance_a_resampling_keeps_the_family_within_the_margin() -> None:
    """b's third tuning run on w1 is 0.04 worse, so its mean is 0.0133 below the reference's:
    beyond the 0.01 margin. A resampling of its three runs is within it only when it leaves that
    run out, with probability (2/3)^3 = 0.296; then b is picked, else c."""
    picked = recommend(_two_workloads([0.90, 0.90, 0.86]), draws=4000, seed=1)
    assert picked.family == "c" and picked.eligible == ["a", "c"]
    assert picked.shares["b"] == pytest.approx((2 / 3) ** 3, abs=0.03)
    assert picked.shares["b"] + picked.shares["c"] == pytest.approx(1.0)


def test_no_family_within_the_margin_everywhere_is_said_as_none() -> None:
    w1, w2 = _two_workloads([0.80, 0.80, 0.80])  # b far worse on w1
    w2 = _runs(
        "w2",
        "b",
        -1.0,
        0.02,
        {f: [2.0 + (f != "b") * 0.1] * 3 for f in "abcd"},
        {f: [1.0] * 3 for f in "abcd"},
    )
    picked = recommend([w1, w2], draws=100)
    assert picked.family is None and picked.eligible == []
    assert picked.shares.to_dict() == {"none": 1.0}


def test_frames_become_per_run_means_and_bands() -> None:
    reevaluation = pd.DataFrame({"family": ["a"] * 4 + ["b"] * 4, "repeat": [0, 0, 1, 1] * 2, "seed": [0, 1] * 4,
                                 "test_metric": [0.8, 0.9, 0.7, 0.7, 0.6, 0.6, 0.5, 0.7]})  # fmt: skip
    bands = pd.DataFrame(
        {"family": ["a", "a", "b", "b"], "repeat": [0, 1, 0, 1], "decades": [1.0, 2.0, 0.0, 0.5]}
    )
    runs = WorkloadRuns.from_frames("w", "a", 1.0, 0.01, reevaluation, bands)
    assert runs.means.loc["a"].tolist() == pytest.approx([0.85, 0.7])
    assert runs.means.loc["b"].tolist() == pytest.approx([0.6, 0.6])
    assert runs.bands.loc["b"].tolist() == [0.0, 0.5]
