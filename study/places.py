"""Where a command reads and writes: an output directory and a storage spec, checked cheaply.

Nothing here imports more than the standard library (and SQLAlchemy's URL parser when a URL is
given), so bad input is said before any heavy library loads; the command line and the storage
both use it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def out_dir_problem(out: Path) -> str | None:
    """Why ``out`` cannot be (made) an output directory, or None. Its parent must exist: a
    mistyped deep path should be an error, not a new tree. Creates nothing."""
    if not out.parent.is_dir():
        return f"cannot use {out}: its parent {out.parent} is not an existing directory"
    if out.exists() and not out.is_dir():
        return f"cannot use {out}: it exists and is not a directory"
    where = out if out.exists() else out.parent
    if not os.access(where, os.W_OK | os.X_OK):
        return f"cannot use {out}: {where} is not writable"
    return None


JOURNAL_SUFFIX = ".journal"
ARCHIVE_SUFFIX = ".journal.xz"
"""A journal compressed with xz (``xz -k FILE``): what a published study keeps in the repository.
Read-only: ``study.report`` rebuilds a page from it, retraining nothing; to resume, decompress it."""


def is_archive(spec: str) -> bool:
    return not is_database_url(spec) and spec.endswith(ARCHIVE_SUFFIX)


def is_database_url(spec: str) -> bool:
    """A database URL (``scheme://...``), not a journal path."""
    return "://" in spec


def storage_problem(spec: str) -> str | None:
    """Why ``spec`` is neither a database URL SQLAlchemy knows (parsed, not connected to) nor a
    journal path ending in .journal, or None. Cheap, so bad input answers before heavy imports."""
    if not is_database_url(spec):
        if spec.endswith((JOURNAL_SUFFIX, ARCHIVE_SUFFIX)):
            return None
        return (
            f"storage {spec!r} is neither a database URL (sqlite:///sweep.db, postgresql://user@host/db) "
            f"nor a journal file path ending in {JOURNAL_SUFFIX} (or {ARCHIVE_SUFFIX}, to report from)"
        )
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(spec).get_dialect()
    except NoSuchModuleError:  # a kind of ArgumentError: first
        return f"unknown storage URL scheme {spec.split('://', 1)[0]!r}; use sqlite, postgresql or mysql"
    except (ArgumentError, ValueError):
        return f"malformed storage URL {spec!r}; expected e.g. postgresql://user@host/db"
    return None


def regular_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be a journal (a FIFO would block the reader forever), or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as error:
        return error.strerror or str(error)
    if stat.S_ISDIR(mode):
        return "is a directory, not a file"
    return None if stat.S_ISREG(mode) else "is not a regular file"
