"""The files the project writes under ``--out``: only its own, never through a link it did not make.

A report is written into a fresh hidden directory (``.report-XXXX``) and switched into place by
one rename of the symbolic link ``report``: a reader sees the previous report or the new one,
never a mix, and two reports written at once each finish whole (the last switch wins). While a
report is written, its writer holds an ``flock`` on its directory; a staging directory (named
``.report-XXXX.lr-study``) whose lock is free belongs to a report that has ended, and is removed
by the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from study.errors import UsageError, interrupts_deferred

STAGING_PREFIX, STAGING_SUFFIX = ".report-", ".lr-study"


def write_file(path: Path, content: str | bytes) -> None:
    """Write a file of ours; a symbolic link in its place (someone else's) is refused, not followed."""
    data = content.encode() if isinstance(content, str) else content
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError:
        if path.is_symlink():
            raise UsageError(
                f"refusing to write {path}: it is a symbolic link this project did not make"
            ) from None
        raise
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _is_our_report_link(report: Path) -> bool:
    return report.is_symlink() and _is_staging_name(os.readlink(report))


def _is_staging_name(name: str) -> bool:
    return name.startswith(STAGING_PREFIX) and name.endswith(STAGING_SUFFIX) and "/" not in name


def check_report_place(out: Path) -> None:
    """Refuse, in one line, an ``out/report`` this project did not make."""
    report = out / "report"
    if (report.exists() or report.is_symlink()) and not _is_our_report_link(report):
        raise UsageError(
            f"{report} is not a report this project wrote (its report is a symbolic link to a "
            f"{STAGING_PREFIX}* directory beside it); move it aside or pick another --out"
        )


@contextlib.contextmanager
def staged_report(out: Path) -> Iterator[Path]:
    """A fresh directory to write a report into, switched to ``out/report`` when the block ends
    without an error; ended reports' directories are removed after the switch."""
    check_report_place(out)
    staging, lock = _locked_staging_directory(out)
    try:
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)  # a report that failed leaves nothing behind
            raise
        check_report_place(out)
        link = staging.with_name(staging.name + ".link")
        link.symlink_to(staging.name)
        os.replace(link, out / "report")
        _remove_ended_reports(out, keep={staging.name, os.readlink(out / "report")})
    finally:
        os.close(lock)


def _locked_staging_directory(out: Path) -> tuple[Path, int]:
    """A new directory with the permissions the umask gives, locked before it takes the name
    that other reports look for, so that none sees it unlocked. Ctrl-C waits until it has that
    name: a ``.making`` directory left behind is one no later report can tell from a live one."""
    with interrupts_deferred():
        making = Path(tempfile.mkdtemp(dir=out, prefix=STAGING_PREFIX, suffix=".making"))
        umask = os.umask(0)
        os.umask(umask)
        making.chmod(0o777 & ~umask)
        lock = os.open(making, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(lock, fcntl.LOCK_EX)
        staging = making.with_name(making.name.removesuffix(".making") + STAGING_SUFFIX)
        making.rename(staging)
    return staging, lock


def _remove_ended_reports(out: Path, keep: set[str]) -> None:
    """Remove the directories (and links) of reports that ended, killed or replaced; touch
    nothing else, and nothing a report still writes."""
    for entry in out.glob(STAGING_PREFIX + "*"):
        if entry.name in keep:
            continue
        if entry.is_symlink() and entry.name.endswith(".link") and _is_staging_name(os.readlink(entry)):
            entry.unlink(missing_ok=True)  # a report killed between making its link and the switch
        elif _is_staging_name(entry.name) and not entry.is_symlink() and _has_ended(entry):
            shutil.rmtree(entry, ignore_errors=True)


def _has_ended(staging: Path) -> bool:
    """Whether the writer of report directory ``staging`` no longer holds its lock."""
    try:
        fd = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
