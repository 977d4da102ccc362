"""The errors a command turns into one line on stderr (``study.cli.run_main``); anything may
import them, the lowest layers included."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: shown as one line, exit code 2, nothing stored changed."""


class RunStopped(Exception):
    """An error that would fail every trial (training itself broke): the run stops, in one line,
    with exit code 1, and the trials it had started are redone on the next run."""
