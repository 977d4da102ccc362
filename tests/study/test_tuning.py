"""What tuning says beyond the best configuration, on constructed data where the answer is known:
range edges, how forgiving a family is, how many trials it needs."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from objectives.metrics import ACCURACY, bits_per_character
from study.reporting import tuning
from study.reporting.analysis import expected_best_frame


def test_an_edge_is_measured_on_the_scale_the_parameter_was_searched_on() -> None:
    log = FloatDistribution(1e-3, 10.0, log=True)
    assert tuning.edge_position(1e-3, log) == 0 and tuning.edge_position(10.0, log) == pytest.approx(1)
    assert tuning.edge_position(1e-1, log) == pytest.approx(0.5)  # halfway in decades, not in value
    assert tuning.edge_position(9.49, log) == pytest.approx(1 - math.log(10 / 9.49) / math.log(1e4))
    assert tuning.edge_position(0.285, FloatDistribution(0.0, 0.3)) == pytest.approx(0.95)
    assert tuning.edge_position(2, IntDistribution(1, 3)) == 0.5
    assert tuning.edge_position("a", CategoricalDistribution(["a", "b"])) is None


def test_best_values_within_five_percent_of_an_edge_are_flagged_where_most_runs_put_them() -> None:
    edges = pd.DataFrame(
        [
            {
                "family": "sf",
                "repeat": 0,
                "param": "lr",
                "value": 9.49,
                "low": 0.01,
                "high": 10.0,
                "side": "top",
            },
            {
                "family": "sf",
                "repeat": 2,
                "param": "lr",
                "value": 9.8,
                "low": 0.01,
                "high": 10.0,
                "side": "top",
            },
            {
                "family": "rex",
                "repeat": 1,
                "param": "lr",
                "value": 0.0011,
                "low": 0.001,
                "high": 1.0,
                "side": "bottom",
            },
        ]
    )
    notes = tuning.edge_notes(edges, runs=3)
    assert notes == {"sf": "lr at the top (9.49, 9.8, range ends at 10) in 2 of 3 tuning runs"}
    assert tuning.edge_notes(edges[edges["family"] == "rex"], runs=1) == {
        "rex": "lr at the bottom (0.0011, range ends at 0.001)"
    }


def test_a_stored_best_at_the_top_of_its_lr_range_is_found(tmp_path) -> None:
    """From stored studies: the re-evaluated trial's value against its own distribution."""
    from objectives.experiment import Experiment
    from objectives.stored import REEVALUATION, study_attrs
    from objectives.workloads.registry import get_workload

    study = optuna.create_study(direction="maximize")
    for key, value in study_attrs(
        Experiment("digits", "sgd", "constant", 3, 32, None, 0), get_workload("digits")
    ).items():
        study.set_user_attr(key, value)
    for lr in (0.05, 0.97):
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": lr}, distributions={"lr": FloatDistribution(1e-3, 1.0, log=True)}, value=lr
            )
        )
    study.set_user_attr(
        REEVALUATION, {"trial": 1, "params": {"lr": 0.97}, "steps_per_epoch": 1, "seeds": [], "runs": []}
    )
    [row] = tuning.range_edges_frame([study]).to_dict("records")
    assert (row["family"], row["param"], row["side"], row["value"]) == ("constant", "lr", "top", 0.97)
    study.set_user_attr(
        REEVALUATION, {"trial": 0, "params": {"lr": 0.05}, "steps_per_epoch": 1, "seeds": [], "runs": []}
    )
    assert tuning.range_edges_frame([study]).empty
    warmup = {"warmup_fraction": FloatDistribution(0.0, 0.3)}
    for value in (0.001, 0.299):  # no warmup is a natural end, not a range too narrow
        study.add_trial(
            optuna.trial.create_trial(params={"warmup_fraction": value}, distributions=warmup, value=0.5)
        )
    study.set_user_attr(
        REEVALUATION,
        {"trial": 2, "params": {"warmup_fraction": 0.001}, "steps_per_epoch": 1, "seeds": [], "runs": []},
    )
    assert tuning.range_edges_frame([study]).empty
    study.set_user_attr(
        REEVALUATION,
        {"trial": 3, "params": {"warmup_fraction": 0.299}, "steps_per_epoch": 1, "seeds": [], "runs": []},
    )
    assert tuning.range_edges_frame([study])["side"].tolist() == ["top"]


def _trials(
    family: str, repeat: int, lrs: list[float], values: list[float], states: list[str] | None = None
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "family": family,
            "repeat": repeat,
            "param_lr": lrs,
            "final_metric": values,
            "state": states or ["COMPLETE"] * len(lrs),
        }
    )


def test_the_lr_band_spans_the_complete_trials_within_the_margin_of_the_run_best() -> None:
    trials = pd.concat(
        [
            # best 0.97 at 0.1; within 0.005: 0.01 (0.966) and 1.0 (0.965); 10 (0.90) is out,
            # and a pruned trial at 1e-4 does not count.
            _trials(
                "a",
                0,
                [0.01, 0.1, 1.0, 10.0, 1e-4],
                [0.966, 0.97, 0.965, 0.90, 0.97],
                ["COMPLETE"] * 4 + ["PRUNED"],
            ),
            _trials("a", 1, [0.1, 0.3], [0.95, 0.96]),  # 0.3 alone is within 0.005 of 0.96
        ]
    )
    bands = tuning.lr_band_frame(trials, ACCURACY, margin=0.005).set_index("repeat")
    assert bands.loc[0, ["low_lr", "high_lr", "trials_in_band"]].tolist() == [0.01, 1.0, 3]
    assert bands.loc[0, "decades"] == pytest.approx(2.0) and bands.loc[1, "decades"] == 0.0
    [row] = tuning.forgiveness_table(bands).to_dict("records")
    half = 12.706 * np.std([2.0, 0.0], ddof=1) / math.sqrt(2)  # t(0.975, 1 df)
    assert row["lr_band_decades"] == pytest.approx(1.0)
    assert row["lr_band_ci_low"] == 0.0  # -11.7 clipped: a width is never negative
    assert row["lr_band_ci_high"] == pytest.approx(1.0 + half, rel=1e-4)


def test_a_minimized_metrics_band_counts_values_below_its_best_plus_the_margin() -> None:
    trials = _trials("a", 0, [0.001, 0.003, 0.01], [2.0, 2.005, 2.02])
    [row] = tuning.lr_band_frame(trials, bits_per_character(64), margin=0.01).to_dict("records")
    assert (row["low_lr"], row["high_lr"]) == (0.001, 0.003)


def test_the_budget_table_averages_each_runs_expected_best_over_runs() -> None:
    rng = np.random.default_rng(3)
    runs = [
        _trials("a", r, list(rng.uniform(0.01, 1, 40)), list(rng.uniform(0.9, 0.98, 40))) for r in range(3)
    ]
    table = tuning.budget_table(pd.concat(runs), ACCURACY).set_index("trials")
    assert list(table.index) == [5, 10, 30, 40]
    per_run = [
        expected_best_frame(run, ACCURACY).set_index("trials").loc[10, "expected_best"] for run in runs
    ]
    assert table.loc[10, "expected_best"] == pytest.approx(np.mean(per_run))
    from scipy import stats

    half = stats.t.ppf(0.975, 2) * stats.sem(per_run)
    assert table.loc[10, ["ci_low", "ci_high"]].tolist() == pytest.approx(
        [np.mean(per_run) - half, np.mean(per_run) + half]
    )
    at_all = [expected_best_frame(run, ACCURACY).set_index("trials").loc[40, "expected_best"] for run in runs]
    assert table.loc[40, "expected_best"] == pytest.approx(
        np.mean(at_all)
    )  # draws with replacement: below the max
    assert table.loc[40, "expected_best"] < np.mean([max(run["final_metric"]) for run in runs])


def test_families_within_the_margin_of_the_reference_at_a_small_budget() -> None:
    budget = pd.DataFrame(
        {
            "family": ["ref", "a", "b", "ref", "a", "b"],
            "trials": [10, 10, 10, 40, 40, 40],
            "expected_best": [0.970, 0.966, 0.960, 0.975, 0.974, 0.973],
        }
    )
    assert tuning.within_margin_at(budget, "ref", 10, ACCURACY, 0.005) == ["a"]
    assert tuning.within_margin_at(budget, "ref", 40, ACCURACY, 0.005) == ["a", "b"]


def test_a_sweeps_compute_counts_each_trials_reported_epochs_pruned_ones_included() -> None:
    from study.reporting.tuning import epochs_trained

    study = optuna.create_study()
    for epochs, pruned in ((5, False), (2, True), (0, True)):
        trial = study.ask()
        for epoch in range(1, epochs + 1):
            trial.report(1.0 / epoch, epoch)
        study.tell(trial, None if pruned else 0.2, state=TrialState.PRUNED if pruned else TrialState.COMPLETE)
    assert epochs_trained([study, study]) == 14
