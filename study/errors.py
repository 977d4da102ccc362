"""How a command stops: the errors it turns into one line on stderr (``study.cli.run_main``),
and Ctrl-C held back where acting on it at once would leave a half-made thing. Anything may
import them, the lowest layers included."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class UsageError(Exception):
    """Bad input from the user: shown as one line, exit code 2, nothing stored changed."""


class RunStopped(Exception):
    """An error that would fail every trial (training itself broke): the run stops, in one line,
    with exit code 1, and the trials it had started are redone on the next run."""


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C (SIGINT) arriving inside is acted on when the block ends. Python raises
    KeyboardInterrupt only in the main thread, so other threads need nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[FrameType | None] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught and callable(previous):
            previous(signal.SIGINT, caught[0])
        elif caught and previous == signal.SIG_DFL:
            signal.raise_signal(signal.SIGINT)
