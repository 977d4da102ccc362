"""``--jobs N``: one sweep on N worker processes, each training whole studies.

The families are dealt round-robin to N workers, all on the same storage: the mechanism workers
on many machines use. Each study is trained by exactly one process, and a trial's seeds depend
only on its study and place (``objectives/seeds.py``), so the stored trials are those of
``--jobs 1`` with the same ``--seed`` and ``--population``.

Workers are forked once the parent has loaded the data and created the studies: they start
training at once instead of importing torch and loading the data again (about 3 s each); each
opens its own storage connection. Only CPU workers on one thread are forked
(``study.sweep.workers.fork_is_safe``: they never start the OpenMP pool that a fork breaks, and CUDA
does not survive a fork); others come from a fresh fork server, which imports torch once and
gets the data pickled. A test runs ``--threads 2``.

The parent shows one progress display read from the storage and waits. Ctrl-C reaches the
workers too (one process group): each stops as a lone ``study.run`` would, and the parent exits
once they have. If the parent alone is killed, the workers finish their studies; a rerun waits
for what they hold, or redoes it if they died (``study/sweep/workers.py``).
"""

from __future__ import annotations

import dataclasses
import errno
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import optuna

from objectives.engine.training import fork_is_safe
from objectives.experiment import Experiment
from objectives.stored import finished_count
from objectives.workloads.registry import Splits, Workload
from study.errors import RunStopped
from study.sweep.top_up import Progress, open_studies, run_sweep, target

POLL_S = 0.2
"""How often the parent looks whether a worker has ended."""
SHOW_EVERY_S = 1.0
"""How often the parent reads the storage for its progress display."""


@dataclass(frozen=True)
class SweepSettings:
    """How every worker trains and stores (the sweep's command-line settings)."""

    storage: str  # a journal path or database URL, opened anew by each worker
    heartbeat: int | None
    trials: int
    pruner: str
    population: int
    device: str
    threads: int


CommandRunner = Callable[[Callable[[Sequence[str] | None], None]], NoReturn]
"""Runs a command's ``main`` and exits with its exit code (``study.cli.run_main``)."""


def deal(arms: Sequence[str], jobs: int) -> list[list[str]]:
    """Arms (a family, or one with fixed knobs) dealt round-robin to at most ``jobs`` non-empty hands."""
    return [list(arms[k::jobs]) for k in range(min(jobs, len(arms)))]


def _arm(experiment: Experiment) -> str:
    """What a study tunes, whichever tuning run it is: its first run's name."""
    return dataclasses.replace(experiment, repeat=0).study_name


def sweep(
    storage: optuna.storages.BaseStorage,
    workload: Workload,
    experiments: Sequence[Experiment],
    data: Splits,
    settings: SweepSettings,
    *,
    jobs: int,
    run_command: CommandRunner,
) -> list[optuna.Study]:
    """Top every experiment's study up to ``settings.trials``: in ``jobs`` worker processes where
    there are several jobs and studies (``run_sweep_in_processes``), else in this process."""
    if jobs > 1 and len(experiments) > 1:
        return run_sweep_in_processes(
            storage, workload, experiments, data, settings, jobs=jobs, run_command=run_command
        )
    return run_sweep(
        storage, workload, experiments, data, trials=settings.trials, pruner=settings.pruner,
        population=settings.population, device=settings.device,
    )  # fmt: skip


def run_sweep_in_processes(
    storage: optuna.storages.BaseStorage,
    workload: Workload,
    experiments: Sequence[Experiment],
    data: Splits,
    settings: SweepSettings,
    *,
    jobs: int,
    run_command: CommandRunner,
) -> list[optuna.Study]:
    """Top every experiment's study (one workload) up to ``settings.trials`` with ``jobs`` forked
    workers, each running its sweep as a command through ``run_command`` (the command line's
    ``run_main``: its errors as one line and an exit code); return the studies."""
    studies, done, targets = open_studies(storage, workload, experiments, settings.trials, settings.pruner)
    if all(count >= targets[name] for name, count in done.items()):
        return studies
    arms = list(dict.fromkeys(_arm(e) for e in experiments))  # an arm's tuning runs stay together
    hands = [[e for e in experiments if _arm(e) in hand] for hand in deal(arms, jobs)]
    context = multiprocessing.get_context(
        "fork" if fork_is_safe(settings.threads, settings.device) else "forkserver"
    )
    with tempfile.TemporaryDirectory(prefix="lr-study-jobs-") as scratch:
        logs = [Path(scratch) / f"job{k}.stderr" for k in range(len(hands))]
        workers = [
            context.Process(
                target=_work, args=(workload, hand, data, settings, log, run_command), name=f"lr-study-job{k}"
            )
            for k, (hand, log) in enumerate(zip(hands, logs))
        ]
        for worker in workers:
            worker.start()
        # After the forks: a progress bar on a terminal starts a monitor thread, and a lock it
        # held at a fork would stay held in the worker.
        progress = Progress(total=sum(targets.values()), initial=sum(done.values()))
        shown = Shown(progress, studies, experiments, settings.trials, done)
        try:
            _wait(workers, shown)
        except KeyboardInterrupt:
            for worker in workers:  # they stop on the same Ctrl-C; let them record it
                worker.join()
            raise
        finally:
            shown.update()
            progress.close()
        _check(workers, logs)
    return studies


def _work(
    workload: Workload,
    experiments: list[Experiment],
    data: Splits,
    settings: SweepSettings,
    log: Path,
    run_command: CommandRunner,
) -> None:
    """A worker: its studies swept as a lone ``study.run`` would, exiting with its exit code;
    stderr goes to ``log`` (the parent shows the progress), stdout nowhere."""
    import torch

    from study.storage.backends import open_storage

    sys.stdout, sys.stderr = open(os.devnull, "w"), log.open("w", buffering=1)  # noqa: SIM115 -- until exit
    os.dup2(sys.stdout.fileno(), 1)  # what libraries write below Python too
    os.dup2(sys.stderr.fileno(), 2)
    torch.set_num_threads(settings.threads)

    def sweep(argv: Sequence[str] | None) -> None:
        storage = open_storage(settings.storage, heartbeat=settings.heartbeat)
        run_sweep(
            storage, workload, experiments, data, trials=settings.trials, pruner=settings.pruner,
            population=settings.population, device=settings.device,
        )  # fmt: skip

    run_command(sweep)


def _wait(workers: Sequence[multiprocessing.process.BaseProcess], shown: Shown) -> None:
    """Until every worker has ended: notice an end within ``POLL_S``, show progress every ``SHOW_EVERY_S``."""
    last = 0.0
    while any(worker.is_alive() for worker in workers):
        if time.monotonic() - last >= SHOW_EVERY_S:
            shown.update()
            last = time.monotonic()
        time.sleep(POLL_S)


@dataclass
class Shown:
    """The parent's progress display, read from the storage: each study's finished trials
    against its target (a grid's, read without enqueueing: its worker does that)."""

    progress: Progress
    studies: Sequence[optuna.Study]
    experiments: Sequence[Experiment]
    trials: int
    done: dict[str, int]

    def update(self) -> None:
        targets = {
            s.study_name: target(s, e, self.trials, enqueue=False)
            for s, e in zip(self.studies, self.experiments)
        }
        self.progress.grow(sum(targets.values()))
        for study in self.studies:
            finished, wanted = finished_count(study), targets[study.study_name]
            if min(finished, wanted) != self.done[study.study_name]:
                self.done[study.study_name] = min(finished, wanted)
                self.progress.show(study, finished, wanted, sum(self.done.values()))


def _check(workers: Sequence[multiprocessing.process.BaseProcess], logs: Sequence[Path]) -> None:
    """A worker that failed stops the run with its own last error line."""
    for worker, log in zip(workers, logs):
        if worker.exitcode != 0:
            last = _worker_error(worker.exitcode, log.read_text())
            if f"[Errno {errno.ENOSPC}]" in last:  # the command says how much more space the rest needs
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            raise RunStopped(f"a worker process exited with code {worker.exitcode}: {last}")


def _worker_error(exitcode: int, log: str) -> str:
    """What ended a worker, in its own words: its error line (``run_main`` writes one as
    ``error: ...``; a traceback ends with one), or the signal that killed it; never a progress line."""
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}; its finished trials are kept, run the same command to resume"
    lines = [line for line in log.splitlines() if line.strip()]
    said = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if said:
        return said[-1]
    traceback = next((k for k in range(len(lines) - 1, -1, -1) if lines[k].startswith("Traceback")), None)
    return lines[-1] if traceback is not None else "no message"
