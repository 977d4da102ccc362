"""The median rule with companions: Optuna's own when alone, and fair to a population."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from study.analysis import load_studies
from study.pruners import PopulationMedianPruner

Decide = Callable[[optuna.Study, FrozenTrial], bool]


def _study() -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))


def _complete(study: optuna.Study, curve: list[float]) -> None:
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.COMPLETE, value=curve[-1], intermediate_values=dict(enumerate(curve))
        )
    )


def _running(study: optuna.Study, worker: str | None, curve: list[float]) -> optuna.Trial:
    trial = study.ask()
    if worker is not None:
        trial.set_user_attr("worker", worker)
    for step, value in enumerate(curve):
        trial.report(value, step)
    return trial


def _decide(pruner: optuna.pruners.BasePruner, study: optuna.Study, trial: optuna.Trial) -> bool:
    return pruner.prune(study, study.get_trials(deepcopy=False)[trial.number])


@pytest.mark.parametrize("completed", [3, 4, 5, 12])
def test_with_no_companions_it_decides_as_optunas_median_pruner(completed: int) -> None:
    rng = random.Random(completed)
    study = _study()
    for _ in range(completed):
        _complete(study, [rng.random() for _ in range(6)])
    ours = PopulationMedianPruner(n_min_trials=5, n_warmup_steps=2)
    optunas = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    decisions = []
    for _ in range(20):
        trial = _running(study, "alone", [])
        for step in range(6):
            trial.report(rng.random(), step)
            decisions.append(_decide(ours, study, trial))
            assert decisions[-1] == _decide(optunas, study, trial), (completed, step)
        study.tell(trial, state=TrialState.FAIL)  # out of the way of the next one
    assert any(decisions) == (completed >= 5)  # the comparison is not vacuous


def test_companions_are_compared_and_other_workers_trials_are_not() -> None:
    study = _study()
    population = [_running(study, "this worker", [v, v]) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    stranger = _running(study, "another worker", [0.05, 0.05])
    pruner = PopulationMedianPruner(n_min_trials=5, n_warmup_steps=1)
    assert [_decide(pruner, study, t) for t in population] == [True, True, True, False, False, False]
    assert not _decide(pruner, study, stranger)  # nobody to compare with
    assert not _decide(PopulationMedianPruner(n_min_trials=5, n_warmup_steps=2), study, population[0])


def test_a_companion_stopped_earlier_counts_with_its_last_value() -> None:
    study = _study()
    _running(study, "this worker", [0.9])  # stopped after step 0
    _running(study, "this worker", [0.4, 0.4])
    _running(study, "this worker", [0.6, 0.6])
    judged = _running(study, "this worker", [0.5, 0.5])
    assert _decide(PopulationMedianPruner(n_min_trials=3), study, judged)  # median of 0.9, 0.4, 0.6


def test_a_population_is_pruned_in_a_studys_first_batch(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli(
        "run", "--workload", "moons", "--epochs", "8", "--families", "constant", "--no-report",
        "--trials", "12", "--population", "12", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    [study] = load_studies(str(tmp_path / "optuna.journal")).values()
    assert 0 < sum(t.state == TrialState.PRUNED for t in study.trials) < 12
