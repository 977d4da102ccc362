"""Copied as ``conftest.py`` beside Optuna's own storage tests: every journal file they make is
this project's ``JournalFile`` (with its lock, whatever lock the test asked for) under this
project's ``Journal``, and with ``LR_STUDY_HELD=1`` every one holds the records of the thread that
made it as a sweep does, across all of a test's calls, while the threads of Optuna's multi-thread
tests write at once beside that hold. (The Redis cases are deselected: only journal files are substituted.)"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import optuna.storages.journal
import optuna.testing.storages

from study.storage.journal import Journal, JournalFile


class ProjectJournalFile(JournalFile):
    """This project's journal file, made where a test makes Optuna's."""

    def __init__(self, file_path: str, lock_obj: Any = None) -> None:
        super().__init__(Path(file_path))
        if (
            os.environ.get("LR_STUDY_HELD") == "1"
        ):  # as inside ``holding()`` for the file's whole life, in the
            self._held, self._holder = [], threading.get_ident()  # thread that made it; others write at once


optuna.storages.journal.JournalFileBackend = ProjectJournalFile
optuna.storages.JournalStorage = optuna.storages.journal.JournalStorage = Journal
optuna.testing.storages.JournalFileBackend = ProjectJournalFile
