"""The median rule with companions: Optuna's own when alone, and fair to a population."""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from objectives.pruners import PopulationMedianPruner
from study.reporting.analysis import load_studies

Decide = Callable[[optuna.Study, FrozenTrial], bool]


def _study(direction: str = "maximize") -> optuna.Study:
    return optuna.create_study(direction=direction, sampler=optuna.samplers.RandomSampler(seed=0))


def _complete(study: optuna.Study, curve: list[float]) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=curve[-1], intermediate_values=dict(enumerate(curve))
        )
    )


def _running(study: optuna.Study, curve: list[float]) -> optuna.Trial:
    trial = study.ask()
    for step, value in enumerate(curve):
        trial.report(value, step)
    return trial


def _decide(pruner: optuna.pruners.BasePruner, study: optuna.Study, trial: optuna.Trial) -> bool:
    return pruner.prune(study, study.get_trials(deepcopy=False)[trial.number])


def _random_curve(rng: random.Random, steps: int) -> list[float]:
    """Values in [0, 1], now and then NaN (a diverging epoch)."""
    return [math.nan if rng.random() < 0.05 else rng.random() for _ in range(steps)]


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize("seed", range(8))
def test_with_no_companions_it_decides_as_optunas_median_pruner(seed: int, direction: str) -> None:
    """Random studies, early-stopped trials among the completed (curves of any length), NaNs."""
    rng = random.Random(seed)
    study = _study(direction)
    for _ in range(rng.randint(0, 12)):
        curve = _random_curve(rng, rng.randint(1, 8))  # shorter than 8: stopped early
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.COMPLETE, value=rng.random(), intermediate_values=dict(enumerate(curve))
            )
        )
    startup, warmup = rng.randint(0, 6), rng.randint(0, 3)
    ours = PopulationMedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    optunas = optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    decisions = []
    for _ in range(10):
        trial = _running(study, [])
        for step, value in enumerate(_random_curve(rng, 8)):
            trial.report(value, step)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # numpy's all-NaN warnings, in Optuna's code
                expected = _decide(optunas, study, trial)
            with ours.judging([trial.number]):  # a population of one
                decisions.append(_decide(ours, study, trial))
            assert decisions[-1] == expected, (seed, startup, warmup, step)
        study.tell(trial, state=TrialState.FAIL)  # out of the way of the next one


def test_the_random_studies_cover_both_decisions() -> None:
    """The comparison above is not vacuous: over its studies both answers occur many times."""
    rng, study = random.Random(0), _study()
    for _ in range(8):
        _complete(study, [rng.random() for _ in range(8)])
    pruner = PopulationMedianPruner(n_startup_trials=5, n_warmup_steps=1)
    decisions = [_decide(pruner, study, _running(study, [rng.random()] * 3)) for _ in range(40)]
    assert 5 < sum(decisions) < 35


def test_companions_are_the_trials_it_is_told_of_and_no_others() -> None:
    study = _study()
    population = [_running(study, [v, v]) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    elsewhere = _running(study, [0.05, 0.05])  # another worker's population: RUNNING, not named
    pruner = PopulationMedianPruner(n_startup_trials=5, n_warmup_steps=1)
    with pruner.judging(t.number for t in population):
        assert [_decide(pruner, study, t) for t in population] == [True, True, True, False, False, False]
    with pruner.judging([elsewhere.number]):
        assert not _decide(pruner, study, elsewhere)  # nobody to compare with
    assert not _decide(pruner, study, population[0])  # outside judging: no companions at all


def test_a_companion_stopped_earlier_counts_with_its_last_value() -> None:
    """Or the median would be of survivors alone, climbing every epoch (see the pruner's docstring)."""
    study = _study()
    stopped = _running(study, [0.9])  # stopped after step 0
    others = [_running(study, [0.4, 0.4]), _running(study, [0.6, 0.6])]
    judged = _running(study, [0.5, 0.5])
    pruner = PopulationMedianPruner(n_startup_trials=3)
    with pruner.judging(t.number for t in [stopped, *others, judged]):
        assert _decide(pruner, study, judged)  # median of 0.9, 0.4 and 0.6 is 0.6
    with pruner.judging(t.number for t in [*others, judged]):
        assert not _decide(pruner, study, judged)  # not its companion: median 0.5, not worse


def test_a_population_is_pruned_in_a_studys_first_batch(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli(
        "run", "--workload", "moons", "--epochs", "8", "--families", "constant", "--no-report",
        "--trials", "12", "--population", "12", "--pruner", "median", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    [study] = load_studies(str(tmp_path / "optuna.journal")).values()
    assert 0 < sum(t.state == TrialState.PRUNED for t in study.trials) < 12


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize("seed", range(6))
def test_a_population_judged_in_one_pass_gets_each_members_own_decision(seed: int, direction: str) -> None:
    """Random populations with members stopped at earlier steps, beside random completed trials."""
    rng = random.Random(seed)
    study = _study(direction)
    for _ in range(rng.randint(0, 8)):
        _complete(study, [*_random_curve(rng, rng.randint(0, 5)), rng.random()])
    steps = 6
    population = [_running(study, _random_curve(rng, rng.choice([steps, steps, rng.randint(1, steps)])))
                  for _ in range(rng.randint(2, 12))]  # fmt: skip
    reported = [
        t for t in population if len(study.get_trials(deepcopy=False)[t.number].intermediate_values) == steps
    ]
    pruner = PopulationMedianPruner(n_startup_trials=rng.randint(0, 6), n_warmup_steps=rng.randint(0, 3))
    with pruner.judging(t.number for t in population):
        one_by_one = {t.number for t in reported if _decide(pruner, study, t)}
        assert pruner.prune_population(study, {t.number for t in reported}) == one_by_one


def test_one_pass_judging_prunes_some_and_keeps_some() -> None:
    """The comparison above is not vacuous: a population with a clear bottom half."""
    study = _study()
    population = [_running(study, [v, v]) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    pruner = PopulationMedianPruner(n_startup_trials=5, n_warmup_steps=1)
    with pruner.judging(t.number for t in population):
        assert pruner.prune_population(study, {t.number for t in population}) == {
            t.number for t in population[:3]
        }


def _unpruned(curves: list[list[float]]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for curve in curves:
        study.add_trial(
            optuna.trial.create_trial(
                value=curve[-1], intermediate_values={s + 1: v for s, v in enumerate(curve)}
            )
        )
    return study


def test_replaying_stored_curves_stops_the_trials_the_live_pruner_stops() -> None:
    """The same curves reported live, population by population, to a study with the default
    median pruner, and replayed from a study that ran them all to the end: the same trials are
    stopped at the same epochs."""
    from objectives.pruners import make_pruner, replay_median_pruner

    rng, epochs, population = np.random.default_rng(0), 8, 4
    curves = [list(np.cumsum(rng.uniform(0, 0.1, epochs)) + rng.normal(0, 0.1)) for _ in range(14)]
    live = optuna.create_study(direction="maximize", pruner=make_pruner("median", epochs))
    stopped: dict[int, int] = {}
    for start in range(0, len(curves), population):
        chunk = curves[start : start + population]
        trials = [live.ask() for _ in chunk]
        active = {trial.number: (trial, curve) for trial, curve in zip(trials, chunk)}
        with live.pruner.judging(active):
            for step in range(1, epochs + 1):
                for trial, curve in active.values():
                    trial.report(curve[step - 1], step)
                for number in live.pruner.prune_population(live, set(active)):
                    stopped[number] = step
                    del active[number]
        for trial, curve in zip(trials, chunk):
            live.tell(trial, None if trial.number in stopped else curve[-1],
                      state=TrialState.PRUNED if trial.number in stopped else TrialState.COMPLETE)  # fmt: skip
    replayed = replay_median_pruner(_unpruned(curves).trials, StudyDirection.MAXIMIZE, epochs, population)
    assert stopped and replayed == stopped


def test_a_schedule_that_decays_late_is_stopped_before_its_decay() -> None:
    """Trial 5 trails every other trial until its last two epochs, then ends best: the median
    pruner, judging from epoch 2, stops it."""
    from objectives.pruners import replay_median_pruner

    steady = [[0.5 + 0.01 * k + 0.02 * e for e in range(8)] for k in range(5)]
    late = [[0.40] * 6 + [0.70, 0.80]]
    stopped = replay_median_pruner(_unpruned(steady + late).trials, StudyDirection.MAXIMIZE, 8, 6)
    assert 5 in stopped and stopped[5] == 2
