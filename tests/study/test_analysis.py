"""The summary table, from hand-made trials."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from scipy import stats

from objectives.experiment import Experiment
from objectives.metrics import ACCURACY, bits_per_character
from objectives.stored import study_attrs
from objectives.workloads.registry import get_workload
from study.reporting import analysis, statistics
from study.reporting.analysis import summary_table, trials_frame


def _described(study: optuna.Study, family: str, **settings: object) -> optuna.Study:
    """A study with the attributes a digits sweep of ``family`` stores."""
    experiment = Experiment(**{**DIGITS_EXPERIMENT.__dict__, "family": family, **settings})
    for key, value in study_attrs(experiment, get_workload("digits")).items():
        study.set_user_attr(key, value)
    return study


DIGITS_EXPERIMENT = Experiment("digits", "sgd", "constant", 6, 32, None, 0)


def _study(family: str, trials: list[tuple[TrialState, float | None, int | None, bool]]) -> optuna.Study:
    study = _described(optuna.create_study(study_name=family, direction="maximize"), family)
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
    table = summary_table(frame, ACCURACY).set_index("family")

    assert list(table.index) == ["step", "cosine"]
    assert table.loc["cosine", "best_metric"] == 0.95
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
    frame = trials_frame([_described(optuna.create_study(), "cosine")])
    assert isinstance(frame, pd.DataFrame) and frame.empty and "value" in frame.columns
    table = summary_table(frame, ACCURACY)
    assert table.empty and {"family", "best_metric", "complete"} <= set(table.columns)


def test_expected_best_matches_a_brute_force_bootstrap() -> None:
    values = [0.5, 0.9, 0.7, 0.8, 0.6, 0.95]
    trials = pd.DataFrame({"family": "f", "final_metric": values})
    expected = analysis.expected_best_frame(trials, ACCURACY).set_index("trials")
    rng = np.random.default_rng(0)
    for n in (1, 2, 4, 6):
        draws = rng.choice(values, size=(200_000, n)).max(axis=1)
        assert expected.loc[n, "expected_best"] == pytest.approx(draws.mean(), abs=2e-3)
        assert expected.loc[n, "sd"] == pytest.approx(draws.std(), abs=2e-3)
    assert expected.loc[1, "expected_best"] == pytest.approx(np.mean(values))
    assert list(expected.index) == [1, 2, 3, 4, 5, 6]


def test_holm_adjustment() -> None:
    # p-values 0.01, 0.04, 0.03: sorted 0.01 x3, 0.03 x2, 0.04 x1, then made monotone.
    np.testing.assert_allclose(statistics.holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(statistics.holm([0.5, 0.9]), [1.0, 1.0])


def _reevaluation(
    test_accs: dict[str, list[float]],
    seconds: dict[str, list[float | None]] | None = None,
    workload: str = "w",
    steps: dict[str, list[int]] | None = None,
) -> pd.DataFrame:
    rows = []
    for family, accs in test_accs.items():
        for seed, acc in enumerate(accs):
            reached = (seconds or {}).get(family, [1.0] * len(accs))[seed]
            rows.append({"workload": workload, "family": family, "repeat": 0, "seed": seed, "test_metric": acc, "val_metric": acc,
                         "epochs_to_target": None if reached is None else 3,
                         "steps_to_target": None if reached is None else (steps or {}).get(family, [60] * len(accs))[seed],
                         "seconds_to_target": reached, "auc": 0.8, "diverged": False})  # fmt: skip
    return pd.DataFrame(rows)


def test_pairwise_uses_paired_t_tests_and_calls_an_unresolved_gap_inconclusive() -> None:
    runs = _reevaluation(
        {
            "a": [0.95, 0.96, 0.97, 0.96, 0.95],
            "b": [0.90, 0.91, 0.91, 0.90, 0.92],
            "c": [0.96, 0.94, 0.96, 0.95, 0.96],
        }
    )
    table = analysis.pairwise_table(runs, ACCURACY, margin=0.005).set_index("family")
    assert set(table["reference"]) == {"a"} and list(table.index) == ["c", "b"]
    assert table.loc["b", "p_value"] == pytest.approx(
        stats.ttest_rel([0.95, 0.96, 0.97, 0.96, 0.95], [0.90, 0.91, 0.91, 0.90, 0.92]).pvalue
    )
    assert table.loc["b", "verdict"] == "worse" and table.loc["c", "verdict"] == "inconclusive"
    # c - a per seed: +0.01, -0.02, -0.01, -0.01, +0.01; its 95% t-interval, by hand.
    differences = np.array([0.01, -0.02, -0.01, -0.01, 0.01])
    half = stats.t.ppf(0.975, 4) * differences.std(ddof=1) / np.sqrt(5)
    assert table.loc["c", ["difference", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [-0.004, -0.004 - half, -0.004 + half]
    )
    np.testing.assert_allclose(table["p_holm"], statistics.holm(table["p_value"]))


def test_ranking_counts_seeds_that_never_converge_as_never() -> None:
    runs = _reevaluation(
        {"a": [0.9, 0.92, 0.94], "b": [0.8, 0.8, 0.8]},
        seconds={"a": [1.0, None, None], "b": [2.0, 3.0, None]},
    )
    table = analysis.ranking_table(
        runs, pd.DataFrame(columns=analysis.TRIAL_COLUMNS), {"a": {"lr": 0.1}}, ACCURACY
    ).set_index("family")
    assert list(table.index) == ["a", "b"]
    assert table.loc["a", "test_metric"] == pytest.approx(0.92)
    assert table.loc["a", "test_metric_ci_low"] < 0.92 < table.loc["a", "test_metric_ci_high"]
    assert np.isnan(table.loc["a", "seconds_to_target"]) and table.loc["a", "reached_target"] == "1/3"
    assert (
        table.loc["b", "seconds_to_target"] == 3.0
        and np.isnan(table.loc["b", "seconds_to_target_max"])  # one seed never: its max is never
    )
    assert table.loc["a", "hyperparameters"] == "lr=0.1"


def test_performance_profile_over_two_workloads() -> None:
    runs = pd.concat([
        # Seconds say the opposite of steps: the profile goes by steps.
        _reevaluation({"a": [0.9], "b": [0.9]}, seconds={"a": [9.0], "b": [1.0]}, workload="w1", steps={"a": [100], "b": [200]}),
        _reevaluation({"a": [0.9], "b": [0.9]}, seconds={"a": [1.0], "b": [9.0]}, workload="w2", steps={"a": [300], "b": [100]}),
    ])  # fmt: skip
    profile = analysis.performance_profile_frame(runs, taus=[1.0, 2.0, 3.0]).set_index(["family", "tau"])[
        "share"
    ]
    assert profile["a"].tolist() == [0.5, 0.5, 1.0]  # fastest on w1; 3x slower on w2
    assert profile["b"].tolist() == [0.5, 1.0, 1.0]


@pytest.mark.parametrize(
    "accuracy,budget,diverged,expected",
    [
        # Diverged at epoch 6 of 10: epochs 6 to 10 count 0 (by hand: 3.55 / 9).
        ([0.5, 0.7, 0.8, 0.9, 0.9, np.nan], 10, True, 3.55 / 9),
        # Early-stopped after epoch 4 of 6: it keeps its best weights, 0.8, for epochs 5 and 6 (3.7 / 5).
        ([0.6, 0.8, 0.7, 0.7], 6, False, 3.7 / 5),
        ([0.5, 1.0], 2, False, 0.75),
        ([0.4], 1, False, 0.4),
    ],
)
def test_auc_spans_the_full_epoch_budget(
    accuracy: list[float], budget: int, diverged: bool, expected: float
) -> None:
    values = np.array(accuracy)
    assert analysis.full_budget_auc(values, budget, ACCURACY, diverged=diverged) == pytest.approx(expected)


def _reevaluated(early_stopping: int | None, curves: list[list[float]], diverged: list[bool]) -> optuna.Study:
    study = optuna.create_study(study_name="s", direction="maximize")
    _described(study, "cosine", early_stopping=early_stopping)
    runs = [
        {"seed": k, "test_metric": 0.9, "epochs_to_target": None, "seconds_to_target": None, "diverged": d,
         "curve": {"epoch": list(range(1, len(c) + 1)), "val_metric": c}}
        for k, (c, d) in enumerate(zip(curves, diverged))
    ]  # fmt: skip
    study.set_user_attr(
        "reevaluation", {"trial": 0, "params": {}, "steps_per_epoch": 1, "seeds": [0], "runs": runs}
    )
    return study


def test_with_early_stopping_the_accuracy_is_the_kept_best_epochs() -> None:
    curves, diverged = [[0.6, 0.8, 0.7, 0.7], [0.5, None]], [False, True]
    stopping = analysis.reevaluation_frame([_reevaluated(2, curves, diverged)])
    assert list(stopping["val_metric"]) == [0.8, 0.0]
    assert list(stopping["auc"]) == pytest.approx([3.7 / 5, 0.25 / 5])
    plain = analysis.reevaluation_frame([_reevaluated(None, [[0.6, 0.8, 0.7]], [False])])
    assert list(plain["val_metric"]) == [0.7]


def test_a_seed_that_never_converges_draws_its_whisker_to_the_end_and_speed_sorts() -> None:
    from study.reporting import figures

    ranking = pd.DataFrame(
        {
            "family": ["slow", "never-once", "fast", "mostly-never"],
            "epochs_to_target": [9.0, 5.0, 3.0, np.nan],
            "epochs_to_target_min": [8.0, 4.0, 2.0, 7.0],
            "epochs_to_target_max": [10.0, np.nan, 4.0, np.nan],
            "reached_target": ["5/5", "4/5", "5/5", "1/5"],
        }
    )
    figure = figures.epochs_to_target(ranking, 0.97, ACCURACY, budget=20)
    ax = figure.axes[0]
    assert [label.get_text() for label in ax.get_yticklabels()] == [
        "fast",
        "never-once",
        "slow",
        "mostly-never",
    ]
    [arrow] = [line for line in ax.get_lines() if line.get_marker() == ">"]
    assert list(arrow.get_xdata()) == [20.0] and list(arrow.get_ydata()) == [1]  # never-once, to the end
    [whiskers] = [c for c in ax.collections if c.get_segments()]
    right_ends = sorted(max(x for x, _ in segment) for segment in whiskers.get_segments())
    assert right_ends == [4.0, 10.0, 20.0], "the whisker of a never-converging seed is not collapsed"


def test_the_reference_is_chosen_on_validation_not_on_the_test_split() -> None:
    """a leads on validation, c on test: a is the reference, and c's lead over it is a verdict."""
    runs = _reevaluation({"a": [0.90, 0.91, 0.90, 0.91, 0.90], "c": [0.95, 0.96, 0.95, 0.97, 0.96]})
    runs["val_metric"] = np.where(runs["family"] == "a", 0.99, 0.95)
    assert analysis.reference_family(runs, ACCURACY) == "a"
    [row] = analysis.pairwise_table(runs, ACCURACY, margin=0.005).to_dict("records")
    assert (
        row["reference"] == "a" and row["difference"] == pytest.approx(0.054) and row["verdict"] == "better"
    )


BITS = bits_per_character(66)


def test_a_minimized_metric_ranks_lower_first_and_calls_a_higher_family_worse() -> None:
    """The same numbers read as bits per character: lower is better everywhere."""
    runs = _reevaluation({"a": [2.10, 2.11, 2.12, 2.10, 2.11], "b": [2.30, 2.32, 2.31, 2.30, 2.33]})
    assert analysis.reference_family(runs, BITS) == "a"
    [row] = analysis.pairwise_table(runs, BITS, margin=0.01).to_dict("records")
    assert row["family"] == "b" and row["difference"] == pytest.approx(0.204) and row["verdict"] == "worse"
    ranking = analysis.ranking_table(runs, pd.DataFrame(columns=analysis.TRIAL_COLUMNS), {}, BITS)
    assert list(ranking["family"]) == ["a", "b"]
    trials = pd.DataFrame({"family": "f", "final_metric": [3.0, 2.5, np.nan], "value": [3.0, 2.5, np.nan]})
    expected = analysis.expected_best_frame(trials, BITS).set_index("trials")["expected_best"]
    # One draw: the mean, a failed trial counting as the worst (a uniform guess, log2 66 bits).
    assert expected[1] == pytest.approx((3.0 + 2.5 + np.log2(66)) / 3) and expected[3] < expected[1]


def test_a_minimized_metric_fills_diverged_epochs_with_its_worst() -> None:
    # Diverged at epoch 3 of 4: epochs 3 and 4 count log2(66) bits.
    worst = np.log2(66)
    expected = ((4.0 + 3.0) / 2 + (3.0 + worst) / 2 + worst) / 3  # trapezoids over 3 intervals
    assert analysis.full_budget_auc(np.array([4.0, 3.0, np.nan]), 4, BITS, diverged=True) == pytest.approx(
        expected
    )


def _two(a: list[float], b: list[float]) -> pd.DataFrame:
    runs = _reevaluation({"a": a, "b": b})
    runs["val_metric"] = np.where(runs["family"] == "a", 0.99, 0.95)  # a is the reference
    return runs


def test_equivalent_needs_the_whole_interval_within_the_margin() -> None:
    """Two one-sided tests: b is within 0.001 of a on every seed, so within +-0.005 it is
    equivalent; within +-0.0005 it is neither shown equivalent nor distinguishable."""
    a = [0.950, 0.960, 0.940, 0.955, 0.945, 0.950]
    differences = np.array([0.001, -0.001, 0.0005, -0.0005, 0.0, 0.0002])
    runs = _two(a, list(np.array(a) + differences))
    [row] = analysis.pairwise_table(runs, ACCURACY, margin=0.005).to_dict("records")
    by_hand = max(
        stats.ttest_1samp(differences, -0.005, alternative="greater").pvalue,
        stats.ttest_1samp(differences, 0.005, alternative="less").pvalue,
    )
    assert row["p_equivalent"] == pytest.approx(by_hand) and row["verdict"] == "equivalent"
    [tight] = analysis.pairwise_table(runs, ACCURACY, margin=0.0005).to_dict("records")
    assert tight["p_holm"] > 0.05 and tight["verdict"] == "inconclusive"


def test_a_significant_gap_is_worse_even_inside_the_margin() -> None:
    a = [0.950, 0.960, 0.940, 0.955, 0.945, 0.950]
    b = list(np.array(a) - [0.0008, 0.0012, 0.0009, 0.0011, 0.001, 0.001])
    [row] = analysis.pairwise_table(_two(a, b), ACCURACY, margin=0.005).to_dict("records")
    assert row["p_equivalent"] < 0.05 and row["p_holm"] < 0.05 and row["verdict"] == "worse"


def test_every_family_is_also_compared_with_constant() -> None:
    runs = _reevaluation({"a": [0.95, 0.96, 0.97], "constant": [0.90, 0.92, 0.91], "c": [0.93, 0.93, 0.95]})
    table = analysis.pairwise_table(runs, ACCURACY, margin=0.005).set_index("family")
    differences = np.array([0.93, 0.93, 0.95]) - np.array([0.90, 0.92, 0.91])
    low, high = stats.t.interval(0.95, 2, loc=differences.mean(), scale=stats.sem(differences))
    assert table.loc[
        "c", ["vs_constant", "vs_constant_ci_low", "vs_constant_ci_high"]
    ].tolist() == pytest.approx([differences.mean(), low, high])
    assert np.isnan(table.loc["constant", "vs_constant"])


def test_the_cross_workload_table_and_its_robust_choice_by_hand() -> None:
    """Accuracy on w1 (reference a, 0.90), bits per character on w2 (reference b, 2.0): gaps in
    percent of the reference, negative when worse, whatever the metric's direction."""
    w1 = pd.DataFrame({"family": ["b", "c"], "reference": "a", "difference": [-0.009, -0.0018],
                       "verdict": ["worse", "equivalent"]})  # fmt: skip
    w2 = pd.DataFrame({"family": ["a", "c"], "reference": "b", "difference": [0.01, 0.08],
                       "verdict": ["inconclusive", "worse"]})  # fmt: skip
    table = analysis.cross_workload_table({"w1": (w1, 0.90, ACCURACY), "w2": (w2, 2.0, BITS)}).set_index(
        "family"
    )
    # a: 0 on w1, -0.5% on w2; b: -1% on w1, 0 on w2; c: -0.2% on w1, -4% on w2.
    assert list(table.index) == ["a", "b", "c"], "smallest worst gap first: a is the robust choice"
    assert table.loc["a", ["w1 gap %", "w2 gap %", "worst_gap_pct"]].tolist() == pytest.approx(
        [0.0, -0.5, -0.5]
    )
    assert table.loc["c", ["w1 gap %", "w2 gap %"]].tolist() == pytest.approx([-0.2, -4.0])
    assert table.loc["b", "w1 verdict"] == "worse" and table.loc["b", "w2 verdict"] == "reference"


def test_profile_score_integrates_the_profile_up_to_r_max() -> None:
    profile = pd.DataFrame({"family": "a", "tau": [1.0, 2.0, 3.0, 4.0], "share": [0.5, 0.5, 1.0, 1.0]})
    # Trapezoids: (0.5 + 0.5) / 2 + (0.5 + 1) / 2 + (1 + 1) / 2 = 2.25, over r_max - 1 = 3.
    assert analysis.profile_score(profile)["a"] == pytest.approx(0.75)


def test_tuning_variance_by_hand() -> None:
    """Two repeats: a wins the first (0.90 vs 0.80), b the second (0.85 vs 0.84)."""
    runs = pd.concat(
        [
            _reevaluation({"a": [0.90, 0.90], "b": [0.80, 0.80]}).assign(repeat=0),
            _reevaluation({"a": [0.84, 0.84], "b": [0.85, 0.85]}).assign(repeat=1),
        ]
    )
    table = analysis.tuning_variance_table(runs, ACCURACY).set_index("family")
    assert table.loc[
        "a", ["mean_over_repeats", "worst_repeat", "best_repeat", "spread"]
    ].tolist() == pytest.approx([0.87, 0.84, 0.90, 0.06])
    assert table.loc["a", "top_in"] == "1/2" and table.loc["b", "top_in"] == "1/2"
    assert list(table.index) == ["a", "b"] and table.loc["b", "spread"] == pytest.approx(0.05)


@pytest.mark.parametrize(
    "metric,classes,value,expected",
    [
        (ACCURACY, 10, 0.189, True),  # line: 0.1 + 0.1 * (1 - 0.1) = 0.19
        (ACCURACY, 10, 0.191, False),
        (ACCURACY, 2, 0.549, True),  # line: 0.55
        (bits_per_character(64), 64, 5.41, True),  # line: 6 - 0.1 * 6 = 5.4 bits
        (bits_per_character(64), 64, 5.39, False),
    ],
)
def test_at_chance_is_a_tenth_of_the_way_from_a_uniform_guess_to_perfect(
    metric, classes: int, value: float, expected: bool
) -> None:
    assert bool(metric.at_chance(value, classes)) is expected


def test_trials_at_chance_are_counted_apart_from_diverged_ones() -> None:
    C, P = TrialState.COMPLETE, TrialState.PRUNED
    study = _study("cyclic", [(C, 0.11, None, False), (C, 0.0, None, True), (C, 0.95, 2, False)])
    pruned_at_chance = study.ask()
    pruned_at_chance.report(0.12, step=0)
    study.tell(pruned_at_chance, state=P)

    table = summary_table(trials_frame([study]), ACCURACY).set_index("family")
    assert table.loc["cyclic", ["complete", "pruned", "diverged", "at_chance"]].tolist() == [3, 1, 1, 2]


def test_the_ranking_opens_with_the_reference_then_goes_by_verdict_and_gap() -> None:
    from study.reporting.analysis import by_verdict

    ranking = pd.DataFrame({"family": ["p", "w1", "ref", "e1", "i", "e2", "w2"], "test_metric": range(7)})
    pairwise = pd.DataFrame(
        {
            "family": ["p", "w1", "e1", "i", "e2", "w2"],
            "reference": "ref",
            "verdict": ["equivalent", "worse", "equivalent", "inconclusive", "equivalent", "worse"],
            "difference": [0.002, -0.03, -0.001, -0.004, 0.001, -0.01],
        }
    )
    assert list(by_verdict(ranking, pairwise, ACCURACY)["family"]) == [
        "ref",
        "p",
        "e2",
        "e1",
        "i",
        "w2",
        "w1",
    ]
    # Lower is better in bits per character: the most negative difference comes first.
    assert list(by_verdict(ranking, pairwise, bits_per_character(66))["family"]) == [
        "ref", "e1", "e2", "p", "i", "w1", "w2",
    ]  # fmt: skip
    assert by_verdict(ranking, pairwise.iloc[:0], ACCURACY).equals(ranking)


def test_by_tuning_run_the_comparison_is_welchs_as_statsmodels_computes_it() -> None:
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    a, b, margin = np.array([0.961, 0.955, 0.968]), np.array([0.950, 0.957, 0.946, 0.949]), 0.01
    d = statistics.welch([a, b], [1, -1], margin)
    reference = CompareMeans(DescrStatsW(a), DescrStatsW(b))
    assert d.estimate == pytest.approx(a.mean() - b.mean()) and d.method == statistics.WELCH_RUNS
    assert (d.low, d.high) == pytest.approx(reference.tconfint_diff(alpha=0.05, usevar="unequal"), rel=1e-12)
    assert d.p_value == pytest.approx(reference.ttest_ind(usevar="unequal")[1], rel=1e-12)
    assert d.p_equivalent == pytest.approx(
        reference.ttost_ind(-margin, margin, usevar="unequal")[0], rel=1e-12
    )


def _tuned_runs(rng: np.random.Generator, gap: float, tuning_sd: float, seeds: int = 10) -> pd.DataFrame:
    """Two families, three tuning runs each, re-evaluated on the same seeds: a run's configuration
    is off its family's mean by N(0, tuning_sd), a seed moves every run alike, noise is per run."""
    seed_effect = rng.normal(0, 0.01, seeds)
    tuned = {"ref": 0.95 + rng.normal(0, tuning_sd, 3), "b": 0.95 + gap + rng.normal(0, tuning_sd, 3)}
    return pd.DataFrame(
        [
            {
                "family": family,
                "repeat": repeat,
                "seed": seed,
                "val_metric": 0.95 + (family == "ref"),
                "test_metric": runs[repeat] + seed_effect[seed] + rng.normal(0, 0.004),
            }
            for family, runs in tuned.items()
            for repeat in range(3)
            for seed in range(seeds)
        ]
    )


def test_with_several_tuning_runs_the_pairwise_table_compares_their_means() -> None:
    runs = _tuned_runs(np.random.default_rng(1), -0.005, tuning_sd=0.006)
    [row] = analysis.pairwise_table(runs, ACCURACY, margin=0.005).to_dict("records")
    means = runs.groupby(["family", "repeat"])["test_metric"].mean()
    d = statistics.welch([means["b"].to_numpy(), means["ref"].to_numpy()], [1, -1], 0.005)
    assert [row[k] for k in ("difference", "ci_low", "ci_high", "p_value", "p_equivalent")] == [
        d.estimate,
        d.low,
        d.high,
        d.p_value,
        d.p_equivalent,
    ]
    assert row["reference"] == "ref" and analysis.several_tuning_runs(runs)
    assert not analysis.several_tuning_runs(runs[runs["repeat"] == 0])


def test_intervals_over_tuning_runs_cover_the_true_gap_and_seeds_alone_do_not() -> None:
    """On constructed data where the answer is known (true gap -0.005, tuning runs spread by
    0.006, seeds by 0.01, noise 0.004): the interval over three tuning runs covers the gap about
    95% of the time; the interval over the ten seeds of one tuning run, blind to that spread,
    much less often."""
    rng, gap, trials = np.random.default_rng(0), -0.005, 1000
    covered = seeds_only = 0
    for _ in range(trials):
        tuned = rng.normal(0, 0.006, (2, 3)) + [[0.0], [gap]]  # (ref, b) x tuning run
        noise = rng.normal(0, 0.004, (2, 3, 10))  # the seed effect, shared, cancels in b - ref
        means = tuned + noise.mean(axis=2)
        d = statistics.welch([means[1], means[0]], [1, -1], 0.005)
        covered += d.low <= gap <= d.high
        d = statistics.paired_t(tuned[1, 0] + noise[1, 0] - tuned[0, 0] - noise[0, 0], 0.005)
        seeds_only += d.low <= gap <= d.high
    assert 0.93 <= covered / trials <= 0.97
    assert seeds_only / trials < 0.5


def test_equivalence_is_holm_corrected_like_the_difference_tests() -> None:
    """Three families each within the margin at an unadjusted 5%, but not all after Holm's
    correction (0.029 and 0.042 become 0.058 and 0.058): those are inconclusive, not equivalent."""
    base = np.array([0.950, 0.960, 0.940, 0.955, 0.945, 0.950])
    shifts = {"b": [0.002, -0.002, 0.001, -0.001, 0.0, 0.0005],  # TOST p 0.0002
              "c": [0.005, 0.000, 0.004, -0.002, 0.005, 0.001],  # 0.029
              "d": [0.0055, 0.000, 0.0045, -0.002, 0.005, 0.0015]}  # fmt: skip  # 0.042
    runs = _reevaluation({"a": list(base + 0.0001), **{f: list(base + s) for f, s in shifts.items()}})
    runs.loc[runs["family"] == "a", "val_metric"] += 1  # the reference, chosen on validation
    table = analysis.pairwise_table(runs, ACCURACY, margin=0.005).set_index("family")
    np.testing.assert_allclose(table["p_equivalent_holm"], statistics.holm(table["p_equivalent"]))
    assert (table["p_equivalent"] < 0.05).all()
    crossed = table["p_equivalent_holm"] >= 0.05
    assert crossed.any() and not crossed.all()
    assert (table.loc[crossed, "verdict"] == "inconclusive").all()
    assert (table.loc[~crossed, "verdict"] == "equivalent").all()


def test_the_reference_of_a_tie_broken_only_by_rounding_goes_by_name() -> None:
    """Issue 34, the published digits study: wsd and warmup_linear got the same 21,078 of 21,600
    validation predictions right; stored at 6 significant digits per run, their means differed by
    6.7e-8 and wsd became the reference. The documented rule, ties by name, picks warmup_linear."""
    rng = np.random.default_rng(4)
    stored_values = lambda c: [float(f"{k / 360:.6g}") for k in c]
    counts = rng.integers(340, 359, 60)  # right of 360, per seed
    shuffled = counts.copy()
    for seed in range(1, 60):  # one more right on seed 0, one fewer on another: the same total
        shuffled = counts.copy()
        shuffled[0], shuffled[seed] = counts[0] + 1, counts[seed] - 1
        if np.mean(stored_values(shuffled)) != np.mean(stored_values(counts)):
            break
    runs = pd.DataFrame(
        [{"family": "wsd", "seed": s, "val_metric": v, "test_metric": 0.9} for s, v in enumerate(stored_values(counts))]
        + [{"family": "warmup_linear", "seed": s, "val_metric": v, "test_metric": 0.9}
           for s, v in enumerate(stored_values(shuffled))]
    )  # fmt: skip
    means = runs.groupby("family")["val_metric"].mean()
    assert means["wsd"] != means["warmup_linear"]  # rounding alone tells them apart
    assert analysis.reference_family(runs, ACCURACY) == "warmup_linear"
    runs.loc[(runs["family"] == "wsd") & (runs["seed"] == 0), "val_metric"] += (
        1 / 360
    )  # one more right of 21,600
    assert analysis.reference_family(runs, ACCURACY) == "wsd"


def test_a_family_whose_seeds_mostly_miss_the_target_is_never_the_fastest() -> None:
    """Issue 37: the profile took medians over the seeds that reached the target only, so a family
    9 of whose 30 seeds reached it scored as fastest. A miss is infinitely slow, as in AlgoPerf."""
    rows = [
        {"workload": "w", "family": "rarely", "seed": k, "steps_to_target": 100.0 if k < 9 else None}
        for k in range(30)
    ]
    rows += [{"workload": "w", "family": "always", "seed": k, "steps_to_target": 300.0} for k in range(30)]
    profile = analysis.performance_profile_frame(pd.DataFrame(rows), taus=[1.0, 4.0])
    shares = profile.set_index(["family", "tau"])["share"]
    assert shares[("always", 1.0)] == 1.0 and shares[("rarely", 4.0)] == 0.0
