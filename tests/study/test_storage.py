"""Resumability bookkeeping: which trials count as finished, which RUNNING trials are dead."""

from __future__ import annotations

import subprocess
import sys

import optuna
from optuna.trial import TrialState

from study.storage import WORKER, fail_dead_trials, finished_count


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_trials_of_dead_local_processes_are_failed() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    workers = {
        "dead": {**WORKER, "pid": _dead_pid()},
        "alive": WORKER,
        "other machine": {"host": "elsewhere", "pid": _dead_pid()},
    }
    trials = {}
    for name, worker in workers.items():
        trials[name] = study.ask()
        trials[name].set_user_attr("worker", worker)
    trials["no worker"] = study.ask()

    assert fail_dead_trials(storage, study) == 2

    states = {name: study.trials[trial.number] for name, trial in trials.items()}
    for name in ("dead", "no worker"):
        assert states[name].state == TrialState.FAIL and states[name].user_attrs["interrupted"] is True
    for name in ("alive", "other machine"):
        assert states[name].state == TrialState.RUNNING


def test_finished_means_complete_pruned_or_failed_but_not_interrupted() -> None:
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), state=TrialState.PRUNED)
    study.tell(study.ask(), state=TrialState.FAIL)
    interrupted = study.ask()
    interrupted.set_user_attr("interrupted", True)
    study.tell(interrupted, state=TrialState.FAIL)
    study.ask()  # still running
    assert finished_count(study) == 3
