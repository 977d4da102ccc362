"""Where studies live: a journal file by default, or any Optuna database URL.

Opening a storage (one line, exit 2, for anything unusable); the journal file itself is
``study/storage/journal.py``. Which workers are alive and which trials count is ``study/sweep/workers.py``.
"""

from __future__ import annotations

import contextlib
import lzma
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import JournalStorage

from study.errors import UsageError
from study.places import is_archive, is_database_url, out_dir_problem, regular_file_problem, storage_problem
from study.storage.journal import (
    Journal,
    JournalFile,
    JournalLock,
    ReadOnlyJournalFile,
    check_journal,
)


@contextlib.contextmanager
def allow_experimental() -> Iterator[None]:
    """Use an Optuna feature marked experimental (heartbeats, metric names) without its warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def prepare_out_dir(out: Path) -> None:
    """Create ``--out`` or say in one line why it cannot be used (``out_dir_problem``)."""
    if problem := out_dir_problem(out):
        raise UsageError(f"--out: {problem}")
    try:
        out.mkdir(exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot use --out {out}: {error.strerror or error}") from None


def open_storage(
    spec: str, *, heartbeat: int | None = None, create: bool = True, read_only: bool = False
) -> optuna.storages.BaseStorage:
    """Open a journal file (a path ending in .journal) or a database URL (sqlite, postgresql, ...).

    Args:
        heartbeat: for a database, record each running trial's heartbeat every this many seconds;
            a trial silent for three times as long is failed by the next worker that looks.
        create: make a new journal file if there is none; commands that only read say there is
            none instead, and create nothing.
        read_only: a journal is only read: no lock, no write, so a read-only file will do.
    """
    if problem := storage_problem(spec):
        raise UsageError(problem)
    if is_archive(spec) and not read_only:
        raise UsageError(
            f"{spec} is an archived journal: python -m study.report reads it; to sweep on, decompress it (xz -dk)"
        )
    if is_database_url(spec):
        return _open_database(spec, heartbeat)
    if read_only:
        return _read_journal(Path(spec))
    return _open_journal(Path(spec), create=create)


def _read_journal(path: Path) -> JournalStorage:
    """A journal to read only (``ReadOnlyJournalFile``), checked as ``_open_journal`` checks one."""
    if problem := regular_file_problem(path):
        raise UsageError(f"journal storage {path} {problem}")
    if not path.exists():
        raise UsageError(f"no journal at {path}: run a sweep there first, or point --out / --storage at one")
    with _journal_errors(path):
        file = ReadOnlyJournalFile(path)
        file.check()
        storage = JournalStorage(file)
        storage.get_all_studies()
        return storage


def _open_database(url: str, heartbeat: int | None) -> optuna.storages.RDBStorage:
    with _database_errors(url):
        return _create_schema_once(url, heartbeat)


def probe_storage(spec: str) -> None:
    """For a database URL, connect and disconnect, writing nothing: an unreachable, refusing or
    driverless database is said in one line before the data and torch load (seconds). A
    journal is checked when it is opened."""
    if not is_database_url(spec):
        return
    with _database_errors(spec):
        engine = sqlalchemy.create_engine(spec)
        try:
            engine.connect().close()
        finally:
            engine.dispose()


@contextlib.contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """A database's missing driver or refusal as one line (``UsageError``)."""
    try:
        yield
    except ImportError as error:  # the driver's ModuleNotFoundError, or Optuna's wrapping of it
        missing = (
            getattr(error, "name", None) or getattr(error.__cause__, "name", None) or "its database driver"
        )
        raise UsageError(
            f"storage {url!r} needs the Python package {missing!r}, which is not installed "
            "(for PostgreSQL: pip install -e '.[postgresql]')"
        ) from None
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise UsageError(f"cannot open storage {url!r}: {reason}") from None


FROZEN_TRANSACTION_S = 30
"""A worker inside a PostgreSQL transaction this long is frozen (stopped, its machine paused):
the server ends its session, so the rows it locked do not hold its peers (Optuna's transactions
take milliseconds). Without it a peer that fails the frozen worker's trial waits on its lock for
as long as the worker stays stopped."""


def _engine_kwargs(url: str) -> dict[str, object]:
    """What every connection of a worker sets: on PostgreSQL, the end of a frozen transaction."""
    if sqlalchemy.engine.make_url(url).get_backend_name() != "postgresql":
        return {}
    timeout_ms = FROZEN_TRANSACTION_S * 1000
    return {"connect_args": {"options": f"-c idle_in_transaction_session_timeout={timeout_ms}"}}


IDLE_IN_TRANSACTION_TIMEOUT = "25P03"
"""PostgreSQL's SQLSTATE for a session it ended after ``FROZEN_TRANSACTION_S`` in a transaction."""


def session_lost(error: BaseException) -> bool:
    """Whether a storage error is this worker's session having been ended by the server inside
    a frozen transaction (the next call reconnects). A database that is down is not this."""
    cause = error.__cause__
    return isinstance(cause, sqlalchemy.exc.DBAPIError) and (
        getattr(cause.orig, "sqlstate", None) == IDLE_IN_TRANSACTION_TIMEOUT
    )


SCHEMA_ATTEMPTS = 5


def _create_schema_once(url: str, heartbeat: int | None) -> optuna.storages.RDBStorage:
    """Open the database, creating Optuna's tables if needed. Workers started together on an
    empty database race to create them; the losers see a conflict and simply open it again."""
    grace = None if heartbeat is None else 3 * heartbeat
    attempt = 1
    while True:
        try:
            with allow_experimental():
                return optuna.storages.RDBStorage(
                    url, _engine_kwargs(url), heartbeat_interval=heartbeat, grace_period=grace
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
            attempt += 1


def _open_journal(path: Path, *, create: bool) -> Journal:
    if problem := regular_file_problem(path):
        raise UsageError(f"journal storage {path} {problem}")
    if path.is_symlink():  # reading follows one (_read_journal); writing through one would not be safe
        raise UsageError(
            f"journal storage {path} is a symbolic link: give its target, {path.resolve()}, instead (Optuna's lock "
            "sits beside the path it is given, so writers through the link and to the target would not exclude each other)"
        )
    if not path.parent.is_dir():
        raise UsageError(f"cannot create journal storage {path}: {path.parent} is not a directory")
    if not create and not path.exists():
        raise UsageError(f"no journal at {path}: run a sweep there first, or point --out / --storage at one")
    with _journal_errors(path):
        if path.exists():  # before Optuna's backend, which creates the file, writes anything
            check_journal(path)
        _try_lock(JournalLock(path))  # before the file is made: a lock that cannot be made changes nothing
        file = JournalFile(path)
        if dropped := file.cut_half_record():  # said here, not in a worker whose output nobody reads
            print(f"recovered {path}: dropped a half-written last record ({dropped} bytes)", file=sys.stderr)
        storage = Journal(file)
        storage.get_all_studies()  # replays every record: a nonsensical one fails here, not mid-sweep
        return storage


@contextlib.contextmanager
def _journal_errors(path: Path) -> Iterator[None]:
    """A journal that cannot be used, or read as one, in one line (``UsageError``)."""
    try:
        yield
    except OSError as error:
        raise UsageError(f"cannot use journal storage {path}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError, AssertionError, lzma.LZMAError, EOFError) as error:
        reason = (  # Optuna asserts on an op code it does not know
            f"a record Optuna {optuna.__version__} cannot replay"
            if isinstance(error, AssertionError)
            else error
        )
        raise UsageError(
            f"{path} is not a readable Optuna journal ({reason}); move it aside or pick another --out"
        ) from None


def _try_lock(lock: JournalLock) -> None:
    """Take the journal's lock once, so that one that cannot be made fails here, in one line."""
    try:
        lock.acquire()
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        raise UsageError(f"cannot lock the journal: {where}{error.strerror or error}") from None
    lock.release()


def held_writes(storage: optuna.storages.BaseStorage) -> contextlib.AbstractContextManager[None]:
    """While it lasts, a journal opened here holds records that nothing reads back at once (a
    trial's parameters, reports, attributes and end, a study's attributes) back until the next
    read of the storage or the end: one append for many. Other storages write at once."""
    if isinstance(storage, Journal):
        return storage.file.holding()
    return contextlib.nullcontext()


@contextlib.contextmanager
def held_tells(storage: optuna.storages.BaseStorage) -> Iterator[None]:
    """A population's tells in one append: ``held_writes``, where a tell's own reads (of its
    trial, whose reports are written) do not write the tells held before it. A trial told here
    reads as running until the block ends; a tell killed before then leaves it running, to be
    redone as an interrupted trial is."""
    if not isinstance(storage, Journal):
        yield
        return
    with storage.file.holding(), storage.file.peeking():
        yield
