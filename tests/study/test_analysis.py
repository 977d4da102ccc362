"""The summary table, from hand-made trials."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from scipy import stats

from study import analysis
from study.analysis import summary_table, trials_frame


def _study(family: str, trials: list[tuple[TrialState, float | None, int | None, bool]]) -> optuna.Study:
    study = optuna.create_study(study_name=family, direction="maximize")
    study.set_user_attr("family", family)
    for state, value, epochs_to_target, diverged in trials:
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)})
        trial.set_user_attr("epochs_to_target", epochs_to_target)
        trial.set_user_attr("diverged", diverged)
        if state == TrialState.FAIL:
            trial.set_user_attr("error", "RuntimeError: boom")  # a real failure, which counts
        study.tell(trial, value, state=state)
    return study


def test_summary_counts_outcomes_and_ranks_by_best_accuracy() -> None:
    C, P, F = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL
    cosine = _study(
        "cosine", [(C, 0.9, 4, False), (C, 0.95, 2, False), (P, None, None, False), (C, 0.0, None, True)]
    )
    step = _study("step", [(C, 0.97, 6, False), (F, None, None, False)])
    interrupted = step.ask()
    interrupted.set_user_attr("interrupted", True)
    step.tell(interrupted, state=F)

    frame = trials_frame([cosine, step])
    assert len(frame) == 6 and "param_lr" in frame.columns
    table = summary_table(frame).set_index("family")

    assert list(table.index) == ["step", "cosine"]
    assert table.loc["cosine", "best_val_acc"] == 0.95
    assert table.loc["cosine", "median_epochs_to_target"] == 3
    assert table.loc["cosine", ["reached_target", "complete", "pruned", "failed", "diverged"]].tolist() == [
        2,
        3,
        1,
        0,
        1,
    ]
    assert table.loc["step", ["reached_target", "complete", "pruned", "failed", "diverged"]].tolist() == [
        1,
        1,
        0,
        1,
        0,
    ]


def test_empty_study_gives_an_empty_frame() -> None:
    frame = trials_frame([optuna.create_study()])
    assert isinstance(frame, pd.DataFrame) and frame.empty and "value" in frame.columns
    table = summary_table(frame)
    assert table.empty and {"family", "best_val_acc", "complete"} <= set(table.columns)


def test_expected_best_matches_a_brute_force_bootstrap() -> None:
    values = [0.5, 0.9, 0.7, 0.8, 0.6, 0.95]
    trials = pd.DataFrame({"family": "f", "final_val_acc": values})
    expected = analysis.expected_best_frame(trials).set_index("trials")
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 6):
        draws = rng.choice(values, size=(200_000, n)).max(axis=1)
        assert expected.loc[n, "expected_best"] == pytest.approx(draws.mean(), abs=2e-3)
        assert expected.loc[n, "sd"] == pytest.approx(draws.std(), abs=2e-3)
    assert expected.loc[1, "expected_best"] == pytest.approx(np.mean(values))
    assert list(expected.index) == [1, 2, 3, 4, 5, 6]


def test_holm_adjustment() -> None:
    # p-values 0.01, 0.04, 0.03: sorted 0.01 x3, 0.03 x2, 0.04 x1, then made monotone.
    np.testing.assert_allclose(analysis.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(analysis.holm([0.5, 0.9]), [1.0, 1.0])


def _reevaluation(
    test_accs: dict[str, list[float]],
    seconds: dict[str, list[float | None]] | None = None,
    workload: str = "w",
) -> pd.DataFrame:
    rows = []
    for family, accs in test_accs.items():
        for seed, acc in enumerate(accs):
            reached = (seconds or {}).get(family, [1.0] * len(accs))[seed]
            rows.append({"workload": workload, "family": family, "seed": seed, "test_acc": acc, "epochs_to_target": None if reached is None else 3,
                         "seconds_to_target": reached, "auc": 0.8, "diverged": False})  # fmt: skip
    return pd.DataFrame(rows)


def test_pairwise_uses_paired_t_tests_and_says_what_is_indistinguishable() -> None:
    runs = _reevaluation(
        {
            "a": [0.95, 0.96, 0.97, 0.96, 0.95],
            "b": [0.90, 0.91, 0.91, 0.90, 0.92],
            "c": [0.96, 0.94, 0.96, 0.95, 0.96],
        }
    )
    table = analysis.pairwise_table(runs).set_index("family")
    assert set(table["best"]) == {"a"} and list(table.index) == ["c", "b"]
    assert table.loc["b", "p_value"] == pytest.approx(
        stats.ttest_rel([0.95, 0.96, 0.97, 0.96, 0.95], [0.90, 0.91, 0.91, 0.90, 0.92]).pvalue
    )
    assert table.loc["b", "verdict"] == "worse" and table.loc["c", "verdict"] == "not distinguishable"
    np.testing.assert_allclose(table["p_holm"], analysis.holm(table["p_value"]))


def test_ranking_counts_seeds_that_never_converge_as_never() -> None:
    runs = _reevaluation(
        {"a": [0.9, 0.92, 0.94], "b": [0.8, 0.8, 0.8]},
        seconds={"a": [1.0, None, None], "b": [2.0, 3.0, None]},
    )
    table = analysis.ranking_table(
        runs, pd.DataFrame(columns=analysis.TRIAL_COLUMNS), {"a": {"lr": 0.1}}
    ).set_index("family")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "test_acc"] == pytest.approx(0.92)
    assert table.loc["a", "test_acc_ci_low"] < 0.92 < table.loc["a", "test_acc_ci_high"]
    assert np.isnan(table.loc["a", "seconds_to_target"]) and table.loc["a", "reached_target"] == "1/3"
    assert (
        table.loc["b", "seconds_to_target"] == 3.0
        and np.isnan(table.loc["b", "seconds_to_target_max"])  # one seed never: its max is never
    )
    assert table.loc["a", "hyperparameters"] == "lr=0.1"


def test_performance_profile_over_two_workloads() -> None:
    runs = pd.concat([
        _reevaluation({"a": [0.9], "b": [0.9]}, seconds={"a": [1.0], "b": [2.0]}, workload="w1"),
        _reevaluation({"a": [0.9], "b": [0.9]}, seconds={"a": [3.0], "b": [1.0]}, workload="w2"),
    ])  # fmt: skip
    profile = analysis.performance_profile_frame(runs, taus=[1.0, 2.0, 3.0]).set_index(["family", "tau"])[
        "share"
    ]
    assert profile["a"].tolist() == [0.5, 0.5, 1.0]  # fastest on w1; 3x slower on w2
    assert profile["b"].tolist() == [0.5, 1.0, 1.0]
