"""``python -m study.bench.workers``: sweep throughput with 1, 2, ... workers on one storage.

Each worker count runs the same sweep (same workload, families, trials, no pruning, so every
trial costs the same) from a fresh storage: a journal file, or a new database on the PostgreSQL
server given by ``--postgres``. Throughput is finished trials per minute between the first
trial's start and the last trial's end, read from the storage, so process start-up, which is the
same for any worker count, is left out. All counts run one after another in one invocation, so
their ratios are comparable on a noisy machine.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from objectives.stored import counts_as_finished
from study.cli import ArgumentParser, positive_int, run_main
from study.reporting.analysis import load_studies
from study.sweep.postgres import temporary_database


def _worker_counts(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(",")]


@contextlib.contextmanager
def _fresh_storage(postgres: str | None, scratch: Path) -> Iterator[str]:
    if postgres is None:
        yield str(scratch / "optuna.journal")
    else:
        with temporary_database(postgres) as url:
            yield url


def _measure(workers: int, storage: str, scratch: Path, sweep: Sequence[str]) -> dict[str, float]:
    command = [sys.executable, "-m", "study.run", *sweep, "--storage", storage, "--out", str(scratch)]
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(workers)]
    if any(process.wait() != 0 for process in processes):
        raise SystemExit(f"a worker failed: {' '.join(command)}")
    trials = [
        t for study in load_studies(storage).values() for t in study.get_trials() if counts_as_finished(t)
    ]
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return {
        "workers": workers,
        "trials": len(trials),
        "seconds": span,
        "trials_per_minute": 60 * len(trials) / span,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.bench.workers", description=__doc__)
    parser.add_argument("--workers", type=_worker_counts, default=[1, 2], help="comma list (default 1,2)")
    parser.add_argument(
        "--postgres", metavar="URL", help="a PostgreSQL server URL (a role that may create databases)"
    )
    parser.add_argument("--workload", default="digits")
    parser.add_argument("--families", default="constant,cosine,one_cycle,plateau")
    parser.add_argument(
        "--trials",
        type=positive_int,
        default=30,
        help="per family and tuning run (default 30; 3 tuning runs)",
    )
    args = parser.parse_args(argv)
    sweep = [
        "--workload",
        args.workload,
        "--families",
        args.families,
        "--trials",
        str(args.trials),
        "--pruner",
        "none",
        "--jobs",  # one process per worker: the workers are the parallelism measured
        "1",
        "--no-report",
    ]

    rows = []
    for workers in args.workers:
        with (
            tempfile.TemporaryDirectory() as scratch,
            _fresh_storage(args.postgres, Path(scratch)) as storage,
        ):
            rows.append(_measure(workers, storage, Path(scratch), sweep))
    table = pd.DataFrame(rows)
    table["speedup"] = table["trials_per_minute"] / table["trials_per_minute"].iloc[0]
    print(f"storage: {'PostgreSQL' if args.postgres else 'journal file'}; sweep: {' '.join(sweep)}")
    print(table.round({"seconds": 1, "trials_per_minute": 1, "speedup": 2}).to_string(index=False))


if __name__ == "__main__":
    run_main(main)
