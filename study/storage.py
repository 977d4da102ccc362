"""Where studies live: a journal file by default, or any Optuna database URL.

Also the bookkeeping that makes a sweep resumable: which trials count as finished, and which
trials were left RUNNING by a process that no longer exists.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from study.cli import UsageError

JOURNAL_SUFFIX = ".journal"
WORKER = {"host": socket.gethostname(), "pid": os.getpid()}
"""Stored on each trial this process runs, so a later run can tell whether it is still alive."""


def storage_spec(storage: str | None, out: Path) -> str:
    """The storage to use: ``--storage`` if given, else the journal file in ``--out``."""
    return storage if storage is not None else str(out / f"optuna{JOURNAL_SUFFIX}")


def prepare_out_dir(out: Path) -> None:
    """Create ``--out`` (and its parents) or say in one line why it cannot be used."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot use --out {out}: {error.strerror or error}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"cannot use --out {out}: not writable")


def open_storage(spec: str) -> optuna.storages.BaseStorage:
    """Open a journal file (a path ending in .journal) or a database URL (sqlite, postgresql, ...)."""
    if "://" in spec:
        return _open_database(spec)
    if spec.endswith(JOURNAL_SUFFIX):
        return _open_journal(Path(spec))
    raise UsageError(
        f"storage {spec!r} is neither a database URL (sqlite:///sweep.db, postgresql://user@host/db) "
        f"nor a journal file path ending in {JOURNAL_SUFFIX}"
    )


def _open_database(url: str) -> optuna.storages.RDBStorage:
    try:
        sqlalchemy.engine.make_url(url)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UsageError(f"malformed storage URL {url!r}; expected e.g. postgresql://user@host/db") from None
    try:
        return optuna.storages.RDBStorage(url)
    except sqlalchemy.exc.NoSuchModuleError:
        scheme = url.split("://", 1)[0]
        raise UsageError(f"unknown storage URL scheme {scheme!r}; use sqlite, postgresql or mysql") from None
    except ImportError as error:  # Optuna wraps the driver's ModuleNotFoundError
        missing = getattr(error.__cause__, "name", None) or "its database driver"
        raise UsageError(
            f"storage {url!r} needs the Python package {missing!r}, which is not installed "
            "(for PostgreSQL: pip install -e '.[postgresql]')"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise UsageError(f"cannot open storage {url!r}: {reason}") from None


def _open_journal(path: Path) -> JournalStorage:
    if path.is_dir():
        raise UsageError(f"journal storage {path} is a directory, not a file")
    if not path.parent.is_dir():
        raise UsageError(f"cannot create journal storage {path}: {path.parent} is not a directory")
    lock = JournalFileSymlinkLock(str(path))
    backend = JournalFileBackend(str(path), lock_obj=lock)
    _check_journal(path, lock)
    try:
        storage = JournalStorage(backend)
        storage.get_all_studies()  # replays every record: a nonsensical one fails here, not mid-sweep
        return storage
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"{path} is not a readable Optuna journal ({error}); move it aside or pick another --out"
        ) from None


def _check_journal(path: Path, lock: JournalFileSymlinkLock) -> None:
    """Cut off a half-written last record; reject any other line that is not a JSON record.

    A process killed mid-write leaves a last line without its newline. Optuna skips such a line
    when reading but would append after it, corrupting the file, so it goes. Any other bad line
    is damage we must not write past. The journal's lock is held: no writer is mid-append.
    """
    lock.acquire()
    try:
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            with path.open("rb+") as file:
                file.truncate(complete)
            print(f"recovered {path}: dropped a half-written last record ({len(data) - complete} bytes)")
    finally:
        lock.release()
    for number, line in enumerate(data[:complete].splitlines(), start=1):
        try:
            json.loads(line)
        except ValueError:
            raise UsageError(
                f"{path} is not a readable Optuna journal (line {number} is not a JSON record); "
                "move it aside or pick another --out"
            ) from None


def counts_as_finished(trial: FrozenTrial) -> bool:
    """Complete, pruned or failed; not failed because its process was killed (it is redone)."""
    if trial.state == TrialState.FAIL:
        return not trial.user_attrs.get("interrupted", False)
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED)


def finished_count(study: optuna.Study) -> int:
    return sum(counts_as_finished(trial) for trial in study.get_trials(deepcopy=False))


def _process_is_gone(worker: dict | None) -> bool:
    if worker is None:
        return True  # killed between ask() and recording its worker
    if worker.get("host") != WORKER["host"]:
        return False  # another machine's trial: its own worker resumes it
    try:
        os.kill(int(worker["pid"]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def fail_dead_trials(storage: optuna.storages.BaseStorage, study: optuna.Study) -> int:
    """Mark RUNNING trials of processes that no longer exist as failed (interrupted); count them."""
    study_id = storage.get_study_id_from_name(study.study_name)
    dead = [
        trial
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _process_is_gone(trial.user_attrs.get("worker"))
    ]
    for trial in dead:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "interrupted", True)
        storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    return len(dead)
