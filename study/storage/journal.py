"""A journal file shared with stock Optuna writers on Optuna's terms.

Every writer, ours or stock (optuna-dashboard saving a note, a user's own script), takes Optuna's
own lock, ``<journal>.lock``, before it appends, so no two appends interleave and no record is
cut while its writer could still finish it. Each append is forced to disk (fsync) before it
returns, as Optuna's are. What this module adds to Optuna's ``JournalFileBackend``:

- a writer of ours killed while holding the lock does not block the others for Optuna's 30 s
  grace period (``JournalLock``);
- no whole record is ever taken back (readers read without the lock, and one may have applied it
  already): a Ctrl-C waits until an append is whole, an append the disk had no room for loses only
  its half last record, and a half record left by a writer killed mid-append is cut by our next
  append, under the lock, before it could glue its record onto it. A *stock* Optuna writer that
  appends first does glue its record onto the half one (as stock writers do among themselves):
  its call returns, its record is unreadable. The remedy is to open the journal with any of this
  project's commands after a writer of ours was killed (``study.storage.backends`` cuts a half
  record on opening, and says so), before stock writers go on; a test shows they are then safe;
- ``held_writes``: a trial's drawn parameters, a population's reports, attributes and results,
  a new study's attributes, in one append instead of one each.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import fcntl
import json
import lzma
import os
import stat
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages.journal import BaseJournalBackend, JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from study.errors import interrupts_deferred

OPTUNA_LOCK_SUFFIX = ".lock"
"""Where ``JournalFileOpenLock`` and ``JournalFileSymlinkLock`` (Optuna's default) lock a journal;
a test checks that each excludes ``JournalLock`` and the other way round (Optuna 5)."""

OURS_SUFFIX = ".lr-study.flock"
"""Our writers' queue beside the journal: an OS lock (``flock``), released by the kernel the moment
its holder dies. The same file is what our holder of Optuna's lock links there, so that a lock
left by a dead writer of ours is told from a stock writer's by its inode."""

GRACE_S = 30.0
"""A stock writer's lock unchanged this long is broken, as Optuna's own locks do (their default)."""


class OpCode(enum.IntEnum):
    """The journal's op codes this module acts on, by name. Optuna's own enum of them
    (``JournalOperation``) is private: a test checks each of these against what a stock
    ``JournalStorage`` writes for the same operation (Optuna 5)."""

    SET_STUDY_USER_ATTR = 2
    SET_TRIAL_PARAM = 5
    SET_TRIAL_STATE_VALUES = 6
    SET_TRIAL_INTERMEDIATE_VALUE = 7
    SET_TRIAL_USER_ATTR = 8
    SET_TRIAL_SYSTEM_ATTR = 9


HELD_OP_CODES = frozenset(OpCode)
"""A study's user attribute and a trial's parameter, state and values, intermediate value, user
attribute and system attribute: records that nothing reads back within the call that writes
them, but a trial's start (``is_held``)."""

STATE_OP_CODE = OpCode.SET_TRIAL_STATE_VALUES
"""A trial's state and values; held only when the state is finished, since a trial's start from
the queue reads back whether it was this writer that started it."""


def is_held(log: dict[str, Any]) -> bool:
    """Whether ``holding`` may keep ``log`` back: one of ``HELD_OP_CODES``, a trial's end not its start."""
    code = log.get("op_code")
    return code in HELD_OP_CODES and (code != STATE_OP_CODE or TrialState(log["state"]).is_finished())


class JournalLock:
    """Optuna's journal lock, taken so that writers of ours recover at once from a dead one's.
    Optuna's ``JournalFileBackend`` takes any lock with ``acquire`` and ``release`` (its base
    class for them is private), so this is one by those two methods alone.

    Our writers first queue on an ``flock`` of ``<journal>`` + ``OURS_SUFFIX``; its holder then takes
    Optuna's ``<journal>.lock`` as Optuna's locks do (made exclusively, removed on release), as a
    hard link to the queue file. Only the queue's holder ever makes that link, so a link it finds
    was left by a writer of ours that died holding it, and goes at once. Any other lock file is a
    stock writer's: waited for, and broken after ``GRACE_S`` unchanged, as Optuna would.

    Each thread holds its own descriptor (Optuna's storage may be used from several threads).
    """

    def __init__(self, journal: Path) -> None:
        self.ours = journal.with_name(journal.name + OURS_SUFFIX)
        self.optuna_lock = journal.with_name(journal.name + OPTUNA_LOCK_SUFFIX)
        self._thread = threading.local()

    def __getstate__(self) -> dict[str, Any]:  # a storage is pickled to worker processes
        return {**self.__dict__, "_thread": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _thread=threading.local())

    def acquire(self) -> bool:
        fd = _open_no_follow(self.ours, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._take_optuna_lock(os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        self._thread.fd = fd
        return True

    def release(self) -> None:
        fd = self._thread.fd
        self._thread.fd = None
        try:
            if _same_file(self.optuna_lock, os.fstat(fd)):  # not if a stock writer broke it meanwhile
                os.unlink(self.optuna_lock)
        finally:
            os.close(fd)  # which ends the flock

    def _take_optuna_lock(self, ours: os.stat_result) -> None:
        seen: tuple[float, float] | None = None  # (the stock lock's mtime, when first seen so)
        delay = 0.001
        while True:
            try:
                os.link(self.ours, self.optuna_lock, follow_symlinks=False)
                return
            except FileExistsError:
                pass
            try:
                held = os.lstat(self.optuna_lock)
            except FileNotFoundError:
                continue  # released just now
            if stat.S_ISDIR(held.st_mode):  # no writer makes one: never to be waited for, nor broken
                raise IsADirectoryError(
                    errno.EISDIR,
                    "a directory stands where the journal's lock file goes; remove it",
                    str(self.optuna_lock),
                )
            if _same_inode(held, ours):
                _break_lock(self.optuna_lock)  # a dead writer's of ours: we hold the queue
                continue
            if seen is None or seen[0] != held.st_mtime:
                seen = (held.st_mtime, time.monotonic())
            elif time.monotonic() - seen[1] > GRACE_S:
                _break_lock(self.optuna_lock)
                continue
            time.sleep(delay)
            delay = min(2 * delay, 0.05)


def _open_no_follow(path: Path, flags: int) -> int:
    """Open a file of ours, never through a symbolic link someone else put there."""
    return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)


def _same_inode(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _same_file(path: Path, ours: os.stat_result) -> bool:
    try:
        return _same_inode(os.lstat(path), ours)
    except FileNotFoundError:
        return False


def _break_lock(path: Path) -> None:
    """Remove a lock file as Optuna does: renamed away first, so two breakers remove it once."""
    aside = path.with_name(f"{path.name}{uuid.uuid4().hex}.rename")
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, aside)
        os.unlink(aside)


class JournalFile(JournalFileBackend):
    """Optuna's journal file under ``JournalLock``, whose appends are whole or absent.

    While ``holding``, records nothing reads back at once (``is_held``) wait in memory and go
    with the next append or read (but a ``peeking`` one), so every other read still sees every
    write. A population's epoch of reports then reaches the file in one append, when the pruner
    reads the study. (``Journal`` checks a held record's trial or study as Optuna's replay of the
    record would have.)
    """

    def __init__(self, path: Path) -> None:
        self.path, self.lock = path, JournalLock(path)
        os.close(_open_no_follow(path, os.O_WRONLY | os.O_CREAT))  # not through a symbolic link
        super().__init__(str(path), lock_obj=self.lock)
        self._held: list[dict[str, Any]] | None = None  # a list while holding
        self._holder: int | None = None  # the thread holding: only its records are held
        self._hold_lock = threading.RLock()  # every change of ``_held``, from any thread
        self.held_ends: set[int] = set()  # the trials whose end is held
        self._thread = threading.local()  # ``peeking`` and ``just_held``: each thread's own
        self._read_to: tuple[int, tuple[int, int]] | None = None  # (next log number, its ``_end_of``)

    def __getstate__(self) -> dict[str, Any]:  # a storage is pickled to worker processes
        return {**self.__dict__, "_thread": None, "_hold_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _thread=threading.local(), _hold_lock=threading.RLock())

    @property
    def is_holding(self) -> bool:
        """Whether this thread's records are held (another thread's never are)."""
        return self._held is not None and self._holder == threading.get_ident()

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with self._hold_lock:
            if self.is_holding and all(map(is_held, logs)):
                self._held.extend(logs)
                self.held_ends.update(log["trial_id"] for log in logs if log["op_code"] == STATE_OP_CODE)
                self._thread.just_held = True
                return
            held = self._take_held()
        self._write(held + logs)

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        if getattr(self._thread, "just_held", False):  # Optuna applying the record just held: not written yet
            self._thread.just_held = False
            return iter(())
        if not getattr(self._thread, "peeking", False):
            self.flush()
        end = _end_of(self.path)
        if self._read_to == (log_number_from, end):
            return iter(())  # nothing appended since a read that ended on a whole record
        return self._read(log_number_from, end)

    def _read(self, log_number_from: int, end: tuple[int, int]) -> Iterator[dict[str, Any]]:
        """Optuna's read; once it is read to the end, remember where the next read starts if
        the file ended on a whole record. The file only grows, but for a dead writer's half
        record, cut under the lock: a file the same size and inode holds no record not read."""
        read = 0
        for log in super().read_logs(log_number_from):
            read += 1
            yield log
        if _ends_whole(self.path, end):
            self._read_to = (log_number_from + read, end)

    @contextlib.contextmanager
    def peeking(self) -> Iterator[None]:
        """Read without writing what is held first (this thread)."""
        before, self._thread.peeking = getattr(self._thread, "peeking", False), True
        try:
            yield
        finally:
            self._thread.peeking = before

    def flush(self) -> None:
        """Write the records held back so far, in one append."""
        with self._hold_lock:
            held = self._take_held()
        if held:
            self._write(held)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold this thread's records (``is_held``) until the next read or the end. Another
        thread's records are written at once, and the hold ends in one step under the lock that
        every append takes, so none is added to a list already on its way out (and lost)."""
        if self.is_holding:  # nested: the outer hold ends it
            yield
            return
        with self._hold_lock:
            self._held, self._holder = [], threading.get_ident()
        try:
            yield
        finally:
            with self._hold_lock:
                held = self._take_held()
                self._held, self._holder = None, None
            self._thread.just_held = False
            if held:
                self._write(held)

    def cut_half_record(self) -> int:
        """Take the lock, cut a half record a dead writer left (``_cut_half_record``) and return
        how many bytes went."""
        with _locked(self.lock):
            fd = _open_no_follow(self.path, os.O_RDWR)
            try:
                end = os.fstat(fd).st_size
                return end - _cut_half_record(fd)
            finally:
                os.close(fd)

    def _take_held(self) -> list[dict[str, Any]]:
        """The held records, taken out of the hold; called under ``_hold_lock``."""
        if not self._held:
            return []
        held, self._held = self._held, []
        self.held_ends.clear()
        return held

    def _write(self, logs: list[dict[str, Any]]) -> None:
        """Append and fsync under the lock, as Optuna does. Readers read without the lock, and one
        may already have applied any whole record an append wrote, so none is ever taken back: a
        Ctrl-C waits until the append is whole (``interrupts_deferred``), and an append that fails
        (a full disk) loses only its last, half record."""
        records = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        with _locked(self.lock):
            fd = _open_no_follow(self.path, os.O_RDWR | os.O_APPEND)
            try:
                _cut_half_record(fd)
                with interrupts_deferred():
                    try:
                        _write_all(fd, records)
                        os.fsync(fd)
                    except BaseException:
                        _cut_half_record(fd)
                        raise
            finally:
                os.close(fd)


@contextlib.contextmanager
def _locked(lock: JournalLock) -> Iterator[None]:
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _cut_half_record(fd: int) -> int:
    """Cut a last line without its newline and return where the file ends.

    Called under the lock, where no writer can be mid-append: such a line was left by a writer
    that died writing it, and was never acknowledged. Optuna's reader skips it, but the next
    record appended would be glued to it and make a line no reader can parse."""
    end = os.fstat(fd).st_size
    if end == 0 or os.pread(fd, 1, end - 1) == b"\n":
        return end
    start = end
    while start > 0:
        chunk = os.pread(fd, min(start, 1 << 16), max(0, start - (1 << 16)))
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            start = start - len(chunk) + newline + 1
            break
        start -= len(chunk)
    os.ftruncate(fd, start)
    return start


def _end_of(path: Path) -> tuple[int, int]:
    """A file's inode and size: one ``stat``, where a read would open and seek."""
    status = os.stat(path)
    return status.st_ino, status.st_size


def _ends_whole(path: Path, end: tuple[int, int]) -> bool:
    """Whether the file, as big as ``end`` says, ended there on a newline (a whole record)."""
    inode, size = end
    if size == 0:
        return True
    with open(path, "rb") as file:
        return os.fstat(file.fileno()).st_ino == inode and os.pread(file.fileno(), 1, size - 1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class Journal(JournalStorage):
    """Optuna's journal storage on a ``JournalFile``, kept at hand for ``held_writes``.

    Optuna raises a bad write's error (no such trial, a finished trial) when it applies the
    record it has just written; a held record is applied later, so its trial is checked first."""

    def __init__(self, file: JournalFile) -> None:
        super().__init__(file)
        self.file = file
        self._study_of_trial: dict[int, int] = {}  # the trials made here, for ``_check_updatable``

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = super().create_new_trial(study_id, template_trial)
        self._study_of_trial[trial_id] = study_id
        return trial_id

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        self._check_updatable(trial_id)
        super().set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._check_updatable(trial_id)
        super().set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._check_updatable(trial_id)
        super().set_trial_system_attr(trial_id, key, value)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state.is_finished():
            self._check_updatable(trial_id)
        return super().set_trial_state_values(trial_id, state, values)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        if self.file.is_holding:
            with self.file.peeking():
                self.get_study_name_from_id(study_id)  # KeyError when there is none
        super().set_study_user_attr(study_id, key, value)

    def set_trial_param(
        self, trial_id: int, param_name: str, param_value_internal: float, distribution: BaseDistribution
    ) -> None:
        self._check_updatable(trial_id, param_name, distribution)
        super().set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def _check_updatable(
        self, trial_id: int, param_name: str | None = None, distribution: BaseDistribution | None = None
    ) -> None:
        """A trial's existence and state, and the distributions its study's parameters have,
        never wait in memory: reading without the held records (which change none of them but
        the trial's own new parameter) tells them as well, and costs no append. A parameter is
        checked as Optuna's replay checks it: against the first trial that has one of its name."""
        if not self.file.is_holding:
            return  # Optuna's own replay checks it
        with self.file.peeking():
            trial = self.get_trial(trial_id)  # KeyError when there is none
            if trial.state.is_finished() or trial_id in self.file.held_ends:
                raise UpdateFinishedTrialError(
                    f"Trial#{trial.number} has already finished and can not be updated."
                )
            if param_name is None or distribution is None:
                return
            study_id = self._study_of(trial_id, trial.number)
            earlier = (
                t for t in self.get_all_trials(study_id, deepcopy=False) if param_name in t.distributions
            )
            if (first := next(earlier, None)) is not None:
                check_distribution_compatibility(first.distributions[param_name], distribution)

    def _study_of(self, trial_id: int, number: int) -> int:
        """The study of a trial made here, or else (a trial another writer made and this one
        took, an enqueued one) found through the public getters."""
        if (study_id := self._study_of_trial.get(trial_id)) is not None:
            return study_id
        for study in self.get_all_studies():
            study_id = self.get_study_id_from_name(study.study_name)
            with contextlib.suppress(KeyError):
                if self.get_trial_id_from_study_id_trial_number(study_id, number) == trial_id:
                    self._study_of_trial[trial_id] = study_id
                    return study_id
        raise KeyError(f"No trial with trial_id {trial_id} exists.")


class ReadOnlyJournalFile(BaseJournalBackend):
    """A journal file read and never written: what a command that only reads opens, so that it
    works on a read-only file or file system, and takes no lock (Optuna's readers take none); an
    xz-compressed one (``.journal.xz``, a published study's) is read as it is. A last line without
    its newline (a writer mid-append) is left for a later read, as Optuna's reader leaves it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines: list[bytes] = []
        self._read_to = 0  # bytes of whole lines read so far (of the decompressed data, for .xz)

    def check(self) -> None:
        """Raise ``ValueError`` unless the file is a journal (``check_journal``), reading it once
        for the check and for Optuna's first read both."""
        data = self._unread()
        check_journal(self.path, data)
        self._keep(data)

    def _unread(self) -> bytes:
        """What is new since the last read: the whole archive once (it never grows), or what a
        writer appended to a plain file. Optuna reads the logs on every access to a study, so
        reading from the start each time (decompressing 70 MB) made a report take hours."""
        if self.path.suffix == ".xz":
            return b"" if self._read_to else lzma.decompress(self.path.read_bytes())
        with open(self.path, "rb") as file:
            file.seek(self._read_to)
            return file.read()

    def _keep(self, data: bytes) -> None:
        whole = data[: data.rfind(b"\n") + 1]
        self._lines += whole.splitlines()
        self._read_to += len(whole)

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        self._keep(self._unread())
        return (json.loads(line) for line in self._lines[log_number_from:])

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise PermissionError(f"{self.path} was opened to be read only")


def is_record(line: bytes) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and isinstance(record.get("op_code"), int)


def check_journal(path: Path, data: bytes | None = None) -> None:
    """Raise ``ValueError`` unless every complete line of ``path`` (or its ``data``) is a journal
    record and, when the file has bytes, at least one line is complete: a file that is not a
    journal is refused as it is, before anything is appended to it."""
    data = path.read_bytes() if data is None else data
    lines = data[: data.rfind(b"\n") + 1].splitlines()
    if bad := next((n for n, line in enumerate(lines, start=1) if not is_record(line)), None):
        raise ValueError(f"line {bad} is not a journal record")
    if data and not lines:
        raise ValueError("no complete record")
