"""Which workers are alive and which trials count: what makes a sweep resumable and shareable.

A trial counts as finished when complete, pruned, or failed for a reason of its own. A RUNNING
trial whose worker is gone was abandoned: it is failed (``interrupted``) and redone. A worker on
this machine is gone when its process is (the same process id with the same start time); a
worker anywhere is gone when its heartbeat stops: Optuna's in a database (``--heartbeat``), and
in a journal file a beat of our own (``BEAT``, every ``JOURNAL_BEAT_S``), which also covers a
machine whose name changed (a restarted container).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.trial import FrozenTrial, TrialState

from objectives.stored import BEAT, INTERRUPTED, Worker
from study.storage.backends import allow_experimental, session_lost


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks after boot, from /proc), or None when it
    is gone or a zombie (killed, not yet collected by its parent) or /proc is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, *rest = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return None if state in ("Z", "X") else rest[18]  # field 22 of proc(5): starttime


def this_worker() -> Worker:
    """Stored on each trial this process runs, so a later run can tell whether it is still alive:
    the same process id with the same start time (a reused process id has another). Looked up
    per call, not at import: a forked ``--jobs`` worker is a process of its own."""
    return _worker(os.getpid())


@functools.cache
def _worker(pid: int) -> Worker:
    return Worker(socket.gethostname(), pid, process_start(pid))


JOURNAL_BEAT_S = 20
"""How often a journal's running trials record that their worker is alive."""

JOURNAL_STALE_S = 4 * JOURNAL_BEAT_S
"""A journal trial of another machine's worker whose last beat is this old was abandoned (a
margin for clocks that differ between machines)."""

UNCLAIMED_GRACE_S = 10
"""A RUNNING trial with no worker recorded this long after it started was abandoned at once.
A live peer records its worker milliseconds after asking; this bounds the wait on resume."""


def _abandoned(trial: FrozenTrial, beats: bool) -> bool:
    worker = Worker.read(trial.user_attrs)
    if worker is None:  # killed between ask() and recording its worker, or just asked by a peer
        started = trial.datetime_start
        return started is not None and (datetime.datetime.now() - started).total_seconds() > UNCLAIMED_GRACE_S
    this = this_worker()
    if worker.host != this.host:
        return beats and _beat_stopped(trial)  # another machine's (or this one, renamed): its beat tells
    if worker == this:  # this process looks only between its batches: a trial of its own is left over
        return True
    return not _alive(worker.pid, worker.started)


def _beat_stopped(trial: FrozenTrial) -> bool:
    """Whether a journal trial's last beat (its start, before the first) is older than
    ``JOURNAL_STALE_S``. Database trials have Optuna's heartbeat instead, and never beat."""
    if (beat := trial.system_attrs.get(BEAT)) is not None:
        return time.time() - float(beat) > JOURNAL_STALE_S
    started = trial.datetime_start  # local time, as Optuna records it
    return started is not None and (datetime.datetime.now() - started).total_seconds() > JOURNAL_STALE_S


def _alive(pid: int, started: str | None) -> bool:
    """Whether the worker process still runs: with /proc, the same process id started at the same
    time and not a zombie; without, a process with that id exists."""
    if this_worker().started is not None:  # /proc is here
        now = process_start(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _trial_ids(
    storage: optuna.storages.BaseStorage, study: optuna.Study, numbers: Iterable[int]
) -> list[int]:
    """The storage's ids of a study's trials (the public API speaks numbers, the storage ids)."""
    study_id = storage.get_study_id_from_name(study.study_name)
    return [storage.get_trial_id_from_study_id_trial_number(study_id, number) for number in numbers]


def fail_abandoned_trials(storage: optuna.storages.BaseStorage, study: optuna.Study) -> int:
    """Fail the RUNNING trials whose worker is gone, so they are redone; return how many this
    process failed (a peer failing the same trial first is no error, and not counted)."""
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    beats = isinstance(storage, JournalStorage)
    marked = 0
    # Usually none: no lookups.
    if abandoned := [trial.number for trial in running if _abandoned(trial, beats)]:
        for trial_id in _trial_ids(storage, study, abandoned):
            try:
                storage.set_trial_user_attr(trial_id, INTERRUPTED, True)
                storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
                marked += 1
            except optuna.exceptions.UpdateFinishedTrialError:
                pass  # another worker failed it a moment ago
    if _heartbeat_interval(storage):
        with allow_experimental():
            optuna.storages.fail_stale_trials(study)  # the trials whose heartbeat stopped
    return marked


def _heartbeat_interval(storage: optuna.storages.BaseStorage) -> int | None:
    return storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None


def record_heartbeat(storage: optuna.storages.BaseStorage, study: optuna.Study, trial: optuna.Trial) -> None:
    """One heartbeat now, if the storage records Optuna's, so a trial is never without one (a
    journal trial's start counts as its first beat)."""
    if _heartbeat_interval(storage):
        [trial_id] = _trial_ids(storage, study, [trial.number])
        storage.record_heartbeat(trial_id)


def _beat(storage: optuna.storages.BaseStorage, trial_id: int) -> None:
    if _heartbeat_interval(storage):
        storage.record_heartbeat(trial_id)
    elif isinstance(storage, JournalStorage):
        storage.set_trial_system_attr(trial_id, BEAT, time.time())


def _beat_interval(storage: optuna.storages.BaseStorage) -> float | None:
    if interval := _heartbeat_interval(storage):
        return interval
    return JOURNAL_BEAT_S if isinstance(storage, JournalStorage) else None


@contextlib.contextmanager
def heartbeat(
    storage: optuna.storages.BaseStorage, study: optuna.Study, trials: Sequence[optuna.Trial]
) -> Iterator[None]:
    """Record the trials' heartbeats in the background while they run (``_beat``); a trial that
    ends meanwhile (told, or failed by a peer that thought this worker dead) beats no more."""
    if not (interval := _beat_interval(storage)):
        yield
        return
    trial_ids = _trial_ids(storage, study, [trial.number for trial in trials])
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            for trial_id in trial_ids:
                try:
                    _beat(storage, trial_id)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass  # told, or failed by a peer: it beats no more
                except optuna.exceptions.StorageInternalError as error:
                    if not session_lost(error):
                        raise
                    # a beat lost with the session (stopped inside it): the next one reconnects

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
