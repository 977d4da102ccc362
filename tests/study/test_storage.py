"""Resumability bookkeeping: which trials count as finished, which RUNNING trials are dead."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from study import storage as storage_module
from study.storage import UNCLAIMED_GRACE_S, WORKER, fail_abandoned_trials, finished_count
from tests.conftest import REPO


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_trials_of_dead_local_processes_are_failed(monkeypatch) -> None:
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
    trials["just asked"] = study.ask()  # a peer may not have recorded its worker yet

    assert fail_abandoned_trials(storage, study) == 1

    states = {name: study.trials[trial.number] for name, trial in trials.items()}
    assert states["dead"].state == TrialState.FAIL and states["dead"].user_attrs["interrupted"] is True
    for name in ("alive", "other machine", "just asked"):
        assert states[name].state == TrialState.RUNNING

    later = datetime.datetime.now() + datetime.timedelta(seconds=UNCLAIMED_GRACE_S + 1)
    monkeypatch.setattr(
        storage_module.datetime,
        "datetime",
        type("Later", (datetime.datetime,), {"now": staticmethod(lambda: later)}),
    )
    assert fail_abandoned_trials(storage, study) == 1
    assert study.trials[trials["just asked"].number].state == TrialState.FAIL


def test_finished_means_complete_pruned_or_failed_with_an_error() -> None:
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), state=TrialState.PRUNED)
    broken = study.ask()
    broken.set_user_attr("error", "RuntimeError: boom")
    study.tell(broken, state=TrialState.FAIL)
    interrupted = study.ask()
    interrupted.set_user_attr("interrupted", True)
    study.tell(interrupted, state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.FAIL)  # failed by a heartbeat check: no error recorded
    study.ask()  # still running
    assert finished_count(study) == 3


def test_the_journal_forces_to_disk_when_a_trial_ends_not_on_each_report(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    journal = str(tmp_path / "optuna.journal")
    study = optuna.create_study(storage=storage_module.open_storage(journal), study_name="s")
    trial = study.ask()
    before = len(synced)
    trial.suggest_float("lr", 0.01, 1.0)
    for step in range(5):
        trial.report(0.5, step)
    trial.set_user_attr("curve", [0.5] * 5)
    assert len(synced) == before  # written, not forced
    study.tell(trial, 0.5)
    assert len(synced) == before + 1  # the end forces everything before it too
    [stored] = optuna.load_study(study_name="s", storage=storage_module.open_storage(journal)).trials
    assert len(stored.intermediate_values) == 5 and stored.user_attrs["curve"] == [0.5] * 5


HOLD_LOCK = """
import sys, time
from pathlib import Path
from study.storage import _JournalLock
_JournalLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(journal, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(journal), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_the_journal_lock_excludes_other_writers_and_dies_with_its_holder(tmp_path) -> None:
    journal = tmp_path / "optuna.journal"
    lock = storage_module._JournalLock(journal)
    holder = _holder(journal, 0.5)
    start = time.monotonic()
    lock.acquire()  # waits for the holder to finish
    assert time.monotonic() - start > 0.3 and holder.wait() == 0
    lock.release()

    holder = _holder(journal, 60)
    holder.kill()  # dies holding the lock
    holder.wait()
    start = time.monotonic()
    lock.acquire()
    assert time.monotonic() - start < 5  # no stale lock to wait out
    lock.release()
