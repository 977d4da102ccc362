"""The fair final comparison: each family's best configuration, re-trained over fresh seeds.

Tuning picks a family's best trial on the validation split, which flatters it. So that
configuration is trained again with ``seeds`` seeds it was never tuned on, and scored on the
test split, which tuning never saw. Each re-evaluation seed is also the data seed: it draws the
workload's split (``Workload.load``), so where the test split is drawn from the seed (``digits``,
``moons``) the intervals include test-set sampling too; where the test set is fixed (MNIST-style
official test sets, MNIST-1D, Shakespeare) they do not, and the report says which.

All families of one workload are re-trained together: for each seed, one population of every
family's configuration on that seed's split (the engine splits it by optimizer). The runs are
stored in each study's user attribute ``reevaluation``, so a report reuses them; they are redone
only when the best trial or the seeds change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.experiment import Experiment
from objectives.objective import member_from_params, result_attrs, train_members
from objectives.seeds import reevaluation_seeds
from objectives.training import MemberResult
from objectives.workloads import Splits, get_workload

ATTR = "reevaluation"
SPLITS = "drawn per seed"
"""Recorded with every re-evaluation: its runs' data splits come from their own seeds."""


def stored_reevaluation(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(ATTR)


def is_current(study: optuna.Study, seeds: int) -> bool:
    """Whether the stored re-evaluation is of today's best trial with these many seeds."""
    stored = stored_reevaluation(study)
    if stored is None or not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return False
    if stored.get("splits") != SPLITS:  # stored by an older version: one split, other metric names
        return False
    experiment = Experiment.from_attrs(study.user_attrs)
    return stored["trial"] == study.best_trial.number and stored["seeds"] == reevaluation_seeds(
        experiment.seed, seeds
    )


def reevaluate_together(
    studies: Sequence[optuna.Study],
    load: Callable[[str, int], Splits],
    seeds: int,
    *,
    device: str = "cpu",
    on_seed: Callable[[int, int], None] = lambda done, total: None,
) -> None:
    """Re-train every study's best trial over ``seeds`` seeds and store the runs with each study.

    The studies must share their workload, sweep seed, epochs, batch size and early stopping
    (``same_training``). ``load(workload, seed)`` gives a seed's splits; ``on_seed`` hears of
    each seed trained."""
    experiments = [Experiment.from_attrs(study.user_attrs) for study in studies]
    bests = [study.best_trial for study in studies]  # each a scan of the study's trials: once
    first = experiments[0]
    runs: list[list[MemberResult]] = [[] for _ in studies]
    seed_list = reevaluation_seeds(first.seed, seeds)
    for done, seed in enumerate(seed_list, start=1):
        data = load(first.workload, seed)
        members = [member_from_params(e, best.params, seed) for e, best in zip(experiments, bests)]
        results = train_members(first, data, members, evaluate_test=True, device=device)
        for study_runs, result in zip(runs, results):
            study_runs.append(result)
        on_seed(done, len(seed_list))
    steps_per_epoch = get_workload(first.workload).epoch_steps(
        data, first.batch_size
    )  # the same for every split
    for study, best, experiment, results in zip(studies, bests, experiments, runs):
        study.set_user_attr(ATTR, _record(best, experiment, results, steps_per_epoch))


def same_training(study: optuna.Study) -> tuple:
    """What studies re-evaluated together must share: the workload and how it is trained."""
    e = Experiment.from_attrs(study.user_attrs)
    return e.workload, e.seed, e.epochs, e.batch_size, e.early_stopping


def _record(
    best: FrozenTrial, experiment: Experiment, results: Sequence[MemberResult], steps_per_epoch: int
) -> dict[str, Any]:
    return {
        "trial": best.number,
        "params": best.params,
        "steps_per_epoch": steps_per_epoch,
        "seeds": [result.config.seed for result in results],
        "splits": SPLITS,
        "runs": [
            {**result_attrs(result, experiment.target, experiment.metric), "test_metric": result.test_metric}
            for result in results
        ],
    }
