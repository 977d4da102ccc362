"""Named cross-workload studies: which workloads, and each one's budget (``--suite``).

The ``standard`` suite is the study whose answer the README gives (``results/standard/``): every
family on four workloads in both protocols. The budgeted protocol's trials are the earlier
study's (three tuning runs a family), its re-evaluation seeds fewer on the costly workloads (they
measure tuning luck, not the answer); the grid's evaluation seeds follow from the power
calculation (results/METHODS.md): on the paired-difference SDs measured, enough for 80% power to
show equivalence where two families truly agree, fewer where runs cost most (a CNN run 5 s of
CPU here, a shakespeare run 16 s), so that the suite ends in about four hours on a 2-core CPU
machine with ``--jobs 2``. ``smoke`` is
the same command at a budget that only checks it still runs, on the workloads that need no
downloaded data; the test suite runs it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SuitePart:
    """One workload of a suite and its budget in each protocol."""

    workload: str
    trials: int  # budgeted: finished trials per family and tuning run
    seeds: int  # budgeted: re-evaluation seeds per family and tuning run
    epochs: int | None = None  # None: the workload's own
    selection_seeds: int = 3  # grid: seeds per grid point
    grid_seeds: int = 20  # grid: evaluation seeds of each family's chosen LR


@dataclass(frozen=True)
class Suite:
    name: str
    parts: tuple[SuitePart, ...]
    repeats: int  # tuning runs per family, on every workload
    protocol: str = "both"  # budgeted, grid or both


SUITES = {
    suite.name: suite
    for suite in (
        Suite(
            "standard",
            (
                SuitePart("digits", trials=40, seeds=20, selection_seeds=5, grid_seeds=60),
                SuitePart("mnist1d", trials=30, seeds=10, selection_seeds=3, grid_seeds=100),
                SuitePart("mnist1d-cnn", trials=10, seeds=4, selection_seeds=3, grid_seeds=32),
                SuitePart("shakespeare", trials=6, seeds=2, selection_seeds=2, grid_seeds=12),
            ),
            repeats=3,
        ),
        Suite(
            "smoke",
            (
                SuitePart("digits", trials=2, seeds=2, epochs=2, selection_seeds=1, grid_seeds=2),
                SuitePart("mnist1d", trials=2, seeds=2, epochs=2, selection_seeds=1, grid_seeds=2),
                SuitePart("mnist1d-cnn", trials=2, seeds=2, epochs=2, selection_seeds=1, grid_seeds=2),
            ),
            repeats=2,
        ),
    )
}
