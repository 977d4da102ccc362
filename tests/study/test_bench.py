"""Every benchmark command imports and answers ``--help`` (what they count: ``test_counting``)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO

BENCHMARKS = sorted(
    f"bench.{p.stem}"
    for p in (REPO / "study" / "bench").glob("*.py")
    if p.stem not in {"__init__", "counting"}
)


def test_the_benchmarks_are_found() -> None:
    assert "bench.loop" in BENCHMARKS and len(BENCHMARKS) == 6


@pytest.mark.parametrize("command", BENCHMARKS)
def test_every_benchmark_command_imports_and_answers_help(command: str, run_cli) -> None:
    """A benchmark no test runs can rot unseen (the engine benchmark once imported a function that had moved)."""
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and out.startswith(
        "usage: python -m study."
    )  # the bookkeeping benchmark takes study.run's flags


def test_the_fairness_benchmark_counts_every_writers_appends(tmp_path) -> None:
    """It measures; it asserts no time (the machine is shared): each writer appended and said so,
    and every append is a whole record in the journal."""
    import json

    from study.bench.fairness import beside

    results = beside("ours", 1.0, tmp_path)
    assert sorted(kind for kind, _, _ in results) == ["ours", "ours", "stock"]
    assert all(appends > 0 for _, appends, _ in results)
    lines = (tmp_path / "ours.journal").read_text().splitlines()
    assert len(lines) == sum(appends for _, appends, _ in results)
    assert all(json.loads(line)["op_code"] == 2 for line in lines)
