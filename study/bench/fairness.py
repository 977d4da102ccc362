"""``python -m study.bench.fairness``: does a stock Optuna writer starve beside this project's?

One stock writer (Optuna's own ``JournalFileBackend``, its symlink lock) appends in a tight loop
beside two rival writers, first two of this project's (``JournalFile``, which queue on an OS lock
and hand Optuna's lock on at once), then two stock ones; each prints its appends and its longest
wait for one append. Issue 38, F14: the stock writer must wait no longer beside ours than beside
its own kind (stock writers back off up to a second between tries, so among themselves one can
wait tens of seconds)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

RECORD = {"op_code": 2, "study_id": 0, "user_attr": {"k": 1}}


def _hammer(kind: str, path: str, stop_at: float, out: multiprocessing.Queue) -> None:
    from optuna.storages.journal import JournalFileBackend

    from study.storage.journal import JournalFile

    backend = JournalFile(Path(path)) if kind == "ours" else JournalFileBackend(path)
    appends, longest = 0, 0.0
    while time.time() < stop_at:
        started = time.time()
        backend.append_logs([{**RECORD, "worker_id": f"{kind}-{os.getpid()}"}])
        longest = max(longest, time.time() - started)
        appends += 1
    out.put((kind, appends, longest))


def beside(rivals: str, seconds: float, folder: Path) -> list[tuple[str, int, float]]:
    """The stock writer and two rivals ("ours" or "stock") on a fresh journal for ``seconds``."""
    path = folder / f"{rivals}.journal"
    path.touch()
    out, stop_at = multiprocessing.Queue(), time.time() + seconds
    kinds = [rivals, rivals, "stock"]
    workers = [multiprocessing.Process(target=_hammer, args=(k, str(path), stop_at, out)) for k in kinds]
    for worker in workers:
        worker.start()
    results = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m study.bench.fairness", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="each contest's length (default 30)")
    args = parser.parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # stock locks warn every 10 s of waiting
    with tempfile.TemporaryDirectory(prefix="lr-study-fairness-") as scratch:
        for rivals in ("ours", "stock"):
            results = beside(rivals, args.seconds, Path(scratch))
            said = "; ".join(f"{kind} {n} appends, longest wait {w:.2f} s" for kind, n, w in results)
            print(f"beside two {rivals} writers ({args.seconds:g} s): {said}")


if __name__ == "__main__":
    main()
