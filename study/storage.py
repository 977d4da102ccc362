"""Where studies live: a journal file by default, or any Optuna database URL.

Opening a storage (one line, exit 2, for anything unusable), a journal's repair and its lock.
Which workers are alive and which trials count is ``study/workers.py``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import sqlalchemy.exc
from optuna.storages.journal import JournalFileBackend, JournalStorage

from study.cli import is_database_url, out_dir_problem, storage_problem
from study.errors import UsageError


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
    spec: str, *, heartbeat: int | None = None, create: bool = True
) -> optuna.storages.BaseStorage:
    """Open a journal file (a path ending in .journal) or a database URL (sqlite, postgresql, ...).

    Args:
        heartbeat: for a database, record each running trial's heartbeat every this many seconds;
            a trial silent for three times as long is failed by the next worker that looks.
        create: make a new journal file if there is none; commands that only read say there is
            none instead, and create nothing.
    """
    if problem := storage_problem(spec):
        raise UsageError(problem)
    if is_database_url(spec):
        return _open_database(spec, heartbeat)
    return _open_journal(Path(spec), create=create)


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


SCHEMA_ATTEMPTS = 5


def _create_schema_once(url: str, heartbeat: int | None) -> optuna.storages.RDBStorage:
    """Open the database, creating Optuna's tables if needed. Workers started together on an
    empty database race to create them; the losers see a conflict and simply open it again."""
    grace = None if heartbeat is None else 3 * heartbeat
    attempt = 1
    while True:
        try:
            with allow_experimental():
                return optuna.storages.RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)
            attempt += 1


def _open_journal(path: Path, *, create: bool) -> JournalStorage:
    if path.is_dir():
        raise UsageError(f"journal storage {path} is a directory, not a file")
    if not path.parent.is_dir():
        raise UsageError(f"cannot create journal storage {path}: {path.parent} is not a directory")
    if not create and not path.exists():
        raise UsageError(f"no journal at {path}: run a sweep there first, or point --out / --storage at one")
    lock = _JournalLock(path)
    lock.acquire()  # fails here, in one line, if the lock cannot be made (a directory in its place)
    lock.release()
    try:
        if path.exists():  # before Optuna's backend, which creates the file, writes anything
            _check_journal(path, lock)
        storage = _Journal(_JournalFile(path, lock))
        storage.get_all_studies()  # replays every record: a nonsensical one fails here, not mid-sweep
        return storage
    except OSError as error:
        raise UsageError(f"cannot use journal storage {path}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"{path} is not a readable Optuna journal ({error}); move it aside or pick another --out"
        ) from None


RUNNING_TRIAL_OP_CODES = frozenset({4, 5, 7, 8, 9})
"""The journal's op codes of what a trial writes while it runs (create trial, parameter,
intermediate value, user and system attribute); the state a trial ends in is never one. Optuna's
enum of them is private, so the codes are written here and a test checks them against what a
stock ``JournalStorage`` writes for each operation (Optuna 5)."""


LOCK_SUFFIX = ".lr-study.flock"
"""Our writers' lock file beside the journal. Not ``<journal>.lock``: that is the path Optuna's
own lock uses, and a stock writer (optuna-dashboard saving a note) would wait out its grace
period on our file and then delete it."""


class _JournalLock:
    """Our writers' mutual exclusion on a journal: an OS lock (``flock``) on ``<journal>``
    + ``LOCK_SUFFIX``.

    Optuna's default symlink lock costs about 40 us a record (a symlink made and removed), and
    one left by a writer killed mid-append blocks everyone for its 30 s grace period; the kernel
    releases an ``flock`` the moment its holder dies, and taking it costs about 10 us. A stock
    Optuna writer on the same journal takes its own lock instead; that is safe because every
    writer appends each batch of records in one ``write`` to a file opened for appending.
    """

    def __init__(self, journal: Path) -> None:
        self.path = journal.with_name(journal.name + LOCK_SUFFIX)
        self.fd: int | None = None

    def acquire(self) -> bool:
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UsageError(f"cannot lock the journal: {self.path}: {error.strerror or error}") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return True

    def release(self) -> None:
        assert self.fd is not None
        os.close(self.fd)  # which releases the lock
        self.fd = None


class _JournalFile(JournalFileBackend):
    """Optuna's journal file, made durable (fsync) when a trial ends or a study changes, not on
    every record: a running trial's records (parameters, one per epoch, attributes) are written
    but not forced to disk one by one. A killed process loses nothing either way; after a power
    cut, a trial that had not ended is redone, as it would be anyway.

    Each fsync cost about 0.2 ms, and a population of trials writes thousands of records.

    While ``holding``, a running trial's records are held back and written together, in order,
    by ``flush``, by any other record (which follows them) and at the end: a population's epoch
    of reports, or its trials' attributes, in one append instead of one each. Held records are
    not in the file yet, so not visible to reads: whoever holds flushes before reading them.
    """

    def __init__(self, path: Path, lock: _JournalLock) -> None:
        super().__init__(str(path), lock_obj=lock)
        self.path, self.lock = path, lock
        self.held: list[dict] | None = None  # a list while holding

    def append_logs(self, logs: list[dict]) -> None:
        running = all(log.get("op_code") in RUNNING_TRIAL_OP_CODES for log in logs)
        if running and self.held is not None:
            self.held.extend(logs)
            return
        self.flush()
        if not running:
            super().append_logs(logs)  # Optuna's own path: written and fsynced
            return
        self._append_running(logs)

    def flush(self) -> None:
        """Write the records held back so far, in one append."""
        if self.held:
            held, self.held = self.held, []
            self._append_running(held)

    @contextlib.contextmanager
    def holding(self) -> Iterator[Callable[[], None]]:
        """Hold back running trials' records until ``flush`` (yielded) or the end (one thread)."""
        self.held = []
        try:
            yield self.flush
        finally:
            try:
                self.flush()
            finally:
                self.held = None

    def _append_running(self, logs: list[dict]) -> None:
        records = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        self.lock.acquire()
        try:
            with self.path.open("ab") as file:
                file.write(records.encode("utf-8"))
        finally:
            self.lock.release()


class _Journal(JournalStorage):
    """Optuna's journal storage on ``_JournalFile``, kept at hand for ``held_writes``."""

    def __init__(self, file: _JournalFile) -> None:
        super().__init__(file)
        self.file = file


def held_writes(
    storage: optuna.storages.BaseStorage,
) -> contextlib.AbstractContextManager[Callable[[], None]]:
    """While it lasts, a journal opened here writes running trials' records (reports,
    attributes) only when the yielded ``flush`` is called, or at the end: one append for many.
    Call ``flush`` before reading what was written. Other storages write at once."""
    if isinstance(storage, _Journal):
        return storage.file.holding()
    return contextlib.nullcontext(lambda: None)


def _is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("op_code"), int)


def _check_journal(path: Path, lock: _JournalLock) -> None:
    """Cut off a half-written last record of a readable journal; touch nothing else.

    A process killed mid-write leaves a last line without its newline. Optuna skips such a line
    when reading but would append after it, corrupting the file, so it goes, but only once every
    complete line has proved to be a journal record: a file that is not a journal is refused as
    it is. The journal's lock is held: none of our writers is mid-append.
    """
    lock.acquire()
    try:
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        lines = data[:complete].splitlines()
        if bad := next((n for n, line in enumerate(lines, start=1) if not _is_record(line)), None):
            raise UsageError(
                f"{path} is not a readable Optuna journal (line {bad} is not a journal record); "
                "move it aside or pick another --out"
            )
        if complete < len(data):
            if not lines:
                raise UsageError(
                    f"{path} is not an Optuna journal (no complete record); move it aside or pick another --out"
                )
            with path.open("rb+") as file:
                file.truncate(complete)
            print(f"recovered {path}: dropped a half-written last record ({len(data) - complete} bytes)")
    finally:
        lock.release()
