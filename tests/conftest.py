"""Helpers shared by the tests: run the real commands in-process or as subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["--workload", "moons", "--epochs", "3"]
"""A sweep small enough for tests: the moons workload for three epochs."""


def comparable(study: optuna.Study) -> list[tuple]:
    """Everything about a study's trials that must be reproducible (wall seconds are not)."""
    rows = []
    for trial in study.get_trials():
        curve = {k: v for k, v in trial.user_attrs.get("curve", {}).items() if k != "seconds"}
        rows.append(
            (trial.number, trial.state.name, trial.value, trial.params, trial.intermediate_values, curve)
        )
    return rows


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run a command's real entry point in-process: (exit code, stdout, stderr)."""
    from study.cli import run_main

    def run(module: str, *argv: str) -> tuple[int, str, str]:
        main = __import__(f"study.{module}", fromlist=["main"]).main
        with pytest.raises(SystemExit) as exit_info:
            run_main(main, list(argv))
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return run


def run_subprocess(module: str, argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", f"study.{module}", *argv],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        **kwargs,
    )
