"""The fair final comparison: each family's best configuration, re-trained over fresh seeds.

Tuning picks a family's best trial on the validation split, which flatters it. So that
configuration is trained again with ``seeds`` seeds it was never tuned on, and scored on the
test split, which tuning never saw. The runs are stored in the study's user attribute
``reevaluation``, so a report reuses them; they are redone only when the best trial or the
seeds change.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState

from objectives.objective import Experiment, member_from_params, result_attrs, train_members
from objectives.seeds import reevaluation_seeds
from objectives.workloads import Splits, get_workload

ATTR = "reevaluation"


def stored_reevaluation(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(ATTR)


def is_current(study: optuna.Study, seeds: int) -> bool:
    """Whether the stored re-evaluation is of today's best trial with these many seeds."""
    stored = stored_reevaluation(study)
    if stored is None or not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return False
    if any("test_metric" not in run for run in stored["runs"]):  # stored before metrics: redo it
        return False
    experiment = Experiment.from_attrs(study.user_attrs)
    return stored["trial"] == study.best_trial.number and stored["seeds"] == reevaluation_seeds(
        experiment.seed, seeds
    )


def reevaluate(
    study: optuna.Study, data: Splits, seeds: int, *, device: str = "cpu"
) -> dict[str, Any] | None:
    """Re-train the study's best trial ``seeds`` times (unless already stored); None without one."""
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    if is_current(study, seeds):
        return stored_reevaluation(study)
    experiment = Experiment.from_attrs(study.user_attrs)
    best = study.best_trial
    members = [
        member_from_params(experiment, best.params, seed)
        for seed in reevaluation_seeds(experiment.seed, seeds)
    ]
    results = train_members(experiment, data, members, evaluate_test=True, device=device)
    record = {
        "trial": best.number,
        "params": best.params,
        "steps_per_epoch": get_workload(experiment.workload).epoch_steps(data, experiment.batch_size),
        "seeds": [member.seed for member in members],
        "runs": [
            {**result_attrs(result, experiment.target, experiment.metric), "test_metric": result.test_metric}
            for result in results
        ],
    }
    study.set_user_attr(ATTR, record)
    return record
