"""Where a report came from: the command, the project's commit, the date, the machine and the
wall time, in one line that every report file carries (a published page is read long after, on
other machines, and its numbers mean little without these)."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

PROJECT = Path(__file__).resolve().parents[2]


def commit() -> str:
    """The project's git commit, "+ changes" when the working tree differs from it; "unknown"
    outside a git checkout (an installed copy)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(PROJECT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(PROJECT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + changes" if changed else head


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{cores} cores, {cpu_model()}{gpu}, torch {torch.__version__}"


def provenance_line(command: str, started: float) -> str:
    """One line: the command as typed, commit, date (UTC), machine, and the wall time since
    ``started`` (``time.monotonic()`` when the command parsed its arguments), taken when the
    report starts being written (drawing it takes a minute or two more)."""
    minutes, seconds = divmod(round(time.monotonic() - started), 60)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    line = (
        f"Made by `{command}` at commit {commit()} on {date}, on {machine()}; "
        f"the command had run {minutes} min {seconds} s when it began writing this report."
    )
    return line.encode(
        "utf-8", "backslashreplace"
    ).decode()  # bytes of a non-UTF-8 path as \xNN: every file takes it
