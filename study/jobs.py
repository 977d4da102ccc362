"""``--jobs N``: one sweep on N worker processes, each training whole studies.

The families are dealt round-robin to N child processes of ``python -m study.run`` (the same
command line, restricted to one workload and the child's families, without the report), all on
the same storage: the mechanism workers on many machines use. Each study is trained by exactly
one process, and a trial's seeds depend only on its study and place (``objectives/seeds.py``),
so the stored trials are those of ``--jobs 1`` with the same ``--seed`` and ``--population``.

The parent shows one progress display read from the storage and waits. Ctrl-C reaches the
children too (one process group): each stops as a lone ``study.run`` would, and the parent
exits once they have. If the parent alone is killed, the children finish their studies; a
rerun waits for what they hold, or redoes it if they died (``study/workers.py``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import optuna

from objectives.experiment import Experiment
from study.errors import RunStopped
from study.sweep import Progress, open_studies
from study.workers import finished_count

POLL_S = 1.0
"""How often the parent reads the storage for its progress display."""


def deal(families: Sequence[str], jobs: int) -> list[list[str]]:
    """Families dealt round-robin to at most ``jobs`` non-empty hands."""
    return [list(families[k::jobs]) for k in range(min(jobs, len(families)))]


def run_sweep_in_processes(
    storage: optuna.storages.BaseStorage,
    experiments: Sequence[Experiment],
    argv: Sequence[str],
    *,
    trials: int,
    pruner: str,
    jobs: int,
) -> list[optuna.Study]:
    """Top every experiment's study (one workload) up to ``trials`` with ``jobs`` child processes
    running ``argv``; return the studies."""
    studies, done = open_studies(storage, experiments, trials, pruner)
    if all(count >= trials for count in done.values()):
        return studies
    workload = experiments[0].workload
    hands = deal(list(dict.fromkeys(e.family for e in experiments)), jobs)  # a family's repeats stay together
    progress = Progress(total=trials * len(studies), initial=sum(done.values()))
    with tempfile.TemporaryDirectory(prefix="lr-study-jobs-") as scratch:
        logs = [Path(scratch) / f"job{k}.stderr" for k in range(len(hands))]
        children = [_spawn(argv, workload, hand, log) for hand, log in zip(hands, logs)]
        try:
            while any(child.poll() is None for child in children):
                _show(progress, studies, trials, done)
                time.sleep(POLL_S)
        except KeyboardInterrupt:
            for child in children:  # they stop on the same Ctrl-C; let them record it
                child.wait()
            raise
        finally:
            _show(progress, studies, trials, done)
            progress.close()
        _check(children, logs)
    return studies


def _spawn(argv: Sequence[str], workload: str, families: list[str], log: Path) -> subprocess.Popen:
    """A child ``study.run`` for ``families`` of ``workload``; its stderr goes to ``log`` (a file,
    not a pipe: a pipe nobody reads would block a child that writes a lot)."""
    command = [
        sys.executable,
        "-m",
        "study.run",
        *argv,
        "--workload",
        workload,
        "--families",
        ",".join(families),
        "--no-report",
        "--jobs",
        "1",
        "--as-job",
    ]  # fmt: skip; later flags override earlier ones
    with log.open("w") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)


def _show(progress: Progress, studies: Sequence[optuna.Study], trials: int, done: dict[str, int]) -> None:
    for study in studies:
        finished = finished_count(study)
        if min(finished, trials) != done[study.study_name]:
            done[study.study_name] = min(finished, trials)
            progress.show(study, finished, trials, sum(done.values()))


def _check(children: Sequence[subprocess.Popen], logs: Sequence[Path]) -> None:
    """A child that failed stops the run with its own last error line."""
    for child, log in zip(children, logs):
        if child.returncode != 0:
            lines = [line for line in log.read_text().splitlines() if line.strip()]
            raise RunStopped(
                f"a worker process exited with code {child.returncode}: {lines[-1] if lines else 'no message'}"
            )
