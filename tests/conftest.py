"""Helpers shared by the tests: run the real commands in-process or as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import optuna
import pytest

from objectives.stored import stored_curve
from study.sweep.postgres import temporary_database

REPO = Path(__file__).resolve().parents[1]

CTRL_C = signal.default_int_handler
"""What Ctrl-C does in every test, whatever ran before it: raise KeyboardInterrupt. Started in the
background by a shell without job control (``cmd &``), this process would ignore Ctrl-C and so
would every command it starts; and a command run in-process (``study.cli.run_main``) ignores
Ctrl-C once it has ended, as its process would exit next, while a test's process goes on."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--slow",
        action="store_true",
        help="also run the tests marked slow (CI and the README's test command do)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (over ~8 s each: whole commands killed and resumed, several
    processes, the smoke suite) are skipped, saying so, unless ``--slow`` is given: the everyday
    run stays short, and CI runs them all."""
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


TINY = ["--workload", "moons", "--epochs", "3"]
"""Training small enough for tests: the moons workload for three epochs."""
SWEEP = [*TINY, "--no-report", "--repeats", "1", "--protocol", "budgeted"]
"""A tiny sweep, one tuning run per family; the report has tests of its own."""
SLOW_SWEEP = ["--workload", "moons", "--epochs", "10", "--families", "constant", "--no-report", "--repeats", "1",
              "--protocol", "budgeted"]  # fmt: skip
"""One family at 10 epochs a trial: slow enough to be stopped part-way."""


def comparable(study: optuna.Study) -> list[tuple]:
    """Everything about a study's trials that must be reproducible (wall seconds are not)."""
    rows = []
    for trial in study.get_trials():
        curve = {k: v for k, v in stored_curve(trial.user_attrs).items() if k != "seconds"}
        rows.append(
            (trial.number, trial.state.name, trial.value, trial.params, trial.intermediate_values, curve)
        )
    return rows


@pytest.fixture(autouse=True)
def one_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sweeps run in the test's own process unless a test asks for ``--jobs``: tests patch
    things that child processes would not see, and stop processes they must be able to name.
    And in-process sweeps tune each family once, in the budgeted protocol alone, unless a test
    asks for ``--repeats`` or ``--protocol``: three tuning runs and a grid would multiply every
    test's sweep (subprocesses get the real defaults)."""
    monkeypatch.setenv("LR_STUDY_JOBS", "1")
    monkeypatch.setattr("study.run.DEFAULT_REPEATS", 1)
    monkeypatch.setattr(
        "study.run.DEFAULT_PROTOCOL", "budgeted"
    )  # a grid too would triple them; tests ask for it


@pytest.fixture(autouse=True)
def _ctrl_c_as_usual() -> Iterator[None]:
    """``CTRL_C`` before each test and after it (a module's fixtures may have run a command)."""
    signal.signal(signal.SIGINT, CTRL_C)
    yield
    signal.signal(signal.SIGINT, CTRL_C)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run a command's real entry point in-process: (exit code, stdout, stderr)."""
    from study.cli import run_main

    def run(module: str, *argv: str) -> tuple[int, str, str]:
        main = __import__(f"study.{module}", fromlist=["main"]).main
        try:
            with pytest.raises(SystemExit) as exit_info:
                run_main(main, list(argv))
        finally:  # an ended command ignores Ctrl-C, as its process exits next; the test goes on
            signal.signal(signal.SIGINT, CTRL_C)
        out, err = capsys.readouterr()
        return exit_info.value.code, out, err

    return run


def run_subprocess(
    module: str, argv: Sequence[str], env_extra: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", f"study.{module}", *argv],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        **kwargs,
    )


POSTGRES_ENV = "LR_STUDY_POSTGRES_URL"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server that ``$LR_STUDY_POSTGRES_URL`` names.

    Skipped where no server is configured (a laptop); in CI (``$CI`` set) that is a failure,
    because .ci/run starts one.
    """
    server = os.environ.get(POSTGRES_ENV)
    if not server:
        reason = f"no PostgreSQL: run `bash .ci/postgres.sh start /tmp/pg` and set {POSTGRES_ENV} to the URL it prints"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests; {reason}")
        pytest.skip(reason)
    with temporary_database(server) as url:
        yield url
