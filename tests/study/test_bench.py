"""Every benchmark command imports and answers ``--help`` (what they count: ``test_counting``)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("command", sorted(p.stem for p in (REPO / "study").glob("bench*.py")))
def test_every_benchmark_command_imports_and_answers_help(command: str, run_cli) -> None:
    """A benchmark no test runs can rot unseen (study.bench once imported a function that had moved)."""
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and out.startswith(
        "usage: python -m study."
    )  # bench_bookkeeping takes study.run's flags
