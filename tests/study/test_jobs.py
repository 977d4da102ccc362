"""``--jobs N``: worker processes that each train whole studies, with the trials of ``--jobs 1``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from objectives.engine.training import fork_is_safe
from objectives.stored import counts_as_finished
from study.reporting.analysis import load_studies
from study.sweep import population
from study.sweep.jobs import deal
from tests.conftest import REPO, SWEEP, comparable, run_subprocess

FAMILIES = ["--families", "constant,cosine,exponential,step"]


def test_families_are_dealt_round_robin_to_at_most_jobs_hands() -> None:
    assert deal(["a", "b", "c", "d", "e"], 2) == [["a", "c", "e"], ["b", "d"]]
    assert deal(["a"], 4) == [["a"]]


@pytest.mark.slow
def test_two_jobs_store_the_same_trials_as_one(run_cli, tmp_path: Path) -> None:
    args = [*SWEEP, *FAMILIES, "--trials", "6", "--population", "4", "--repeats", "2"]
    assert run_cli("run", *args, "--jobs", "1", "--out", str(tmp_path / "one"))[0] == 0
    done = run_subprocess("run", [*args, "--jobs", "2", "--out", str(tmp_path / "two")], timeout=300)
    assert done.returncode == 0, done.stderr
    one, two = (load_studies(str(tmp_path / name / "optuna.journal")) for name in ("one", "two"))
    assert sorted(one) == sorted(two) and len(one) == 8  # 4 families x 2 tuning repeats
    for name in one:
        assert comparable(two[name]) == comparable(one[name]), name
    workers = {t.user_attrs["worker"]["pid"] for study in two.values() for t in study.trials}
    assert len(workers) == 2, "two processes trained the studies"
    assert (
        "nothing to do"
        in run_subprocess("run", [*args, "--jobs", "2", "--out", str(tmp_path / "two")]).stdout
    )


@pytest.mark.slow
def test_ctrl_c_stops_every_job_and_the_same_command_finishes_the_sweep(run_cli, tmp_path: Path) -> None:
    """Ctrl-C at a terminal reaches the whole process group: the parent and both children. Long
    enough trials that a busy machine still interrupts the jobs mid-sweep."""
    args = ["--workload", "moons", "--epochs", "30", "--families", "constant,cosine", "--no-report", "--repeats", "1", "--protocol", "budgeted",
            "--trials", "40", "--population", "4", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parent = subprocess.Popen(
        [sys.executable, "-m", "study.run", *args, "--jobs", "2"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    journal = tmp_path / "optuna.journal"
    deadline = time.monotonic() + 120
    while not _both_started(journal):
        assert time.monotonic() < deadline, "the jobs never finished a trial each"
        time.sleep(0.1)
    os.killpg(parent.pid, signal.SIGINT)
    _, err = parent.communicate(timeout=60)
    assert parent.returncode == 130 and "Traceback" not in err, err
    for study in load_studies(str(journal)).values():
        held = [t for t in study.trials if t.state == TrialState.RUNNING and t.user_attrs.get("worker")]
        assert not held, "a child left a claimed trial running"
    code, _, err = run_cli("run", *args, "--jobs", "1")
    assert code == 0, err
    for study in load_studies(str(journal)).values():
        assert sum(counts_as_finished(t) for t in study.trials) == 40


def _both_started(journal: Path) -> bool:
    if not journal.exists():
        return False
    studies = load_studies(str(journal))
    return len(studies) == 2 and all(
        any(counts_as_finished(t) for t in study.trials) for study in studies.values()
    )


def test_a_worker_that_stops_stops_the_run_in_one_line(run_cli, tmp_path: Path, monkeypatch) -> None:
    """The workers are forked from this process, so they see the broken training too."""
    real_run_trials = population.run_trials

    def fail_cosine(trials, members, workload, experiment, data, **options):
        if experiment.family == "cosine":
            raise RuntimeError("out of memory")
        return real_run_trials(trials, members, workload, experiment, data, **options)

    monkeypatch.setattr(population, "run_trials", fail_cosine)
    args = [*SWEEP, "--families", "constant,cosine", "--trials", "3", "--no-report", "--out", str(tmp_path)]
    code, _, err = run_cli("run", *args, "--jobs", "2")
    assert code == 1 and err.count("error:") == 1 and "Traceback" not in err, err
    last = err.splitlines()[-1]  # after the progress lines
    assert last.startswith("error: a worker process exited with code 1: training moons-sgd-cosine failed")
    assert "RuntimeError: out of memory" in last
    monkeypatch.setattr(population, "run_trials", real_run_trials)  # fixed: the rerun finishes it
    assert run_cli("run", *args, "--jobs", "2")[0] == 0


@pytest.mark.slow
def test_workers_on_two_threads_do_not_deadlock_and_store_the_trials_of_one_job(
    run_cli, tmp_path: Path
) -> None:
    """A forked copy of a process whose torch ran on two threads hangs on two threads (OpenMP);
    such workers come from a fork server. The parent here ran torch on two threads first."""
    args = [*SWEEP, "--families", "constant,cosine", "--trials", "4", "--population", "2", "--threads", "2",
            "--lr-range", "auto", "--no-report"]  # fmt: skip
    assert run_cli("run", *args, "--jobs", "1", "--out", str(tmp_path / "one"))[0] == 0
    done = run_subprocess("run", [*args, "--jobs", "2", "--out", str(tmp_path / "two")], timeout=240)
    assert done.returncode == 0, done.stderr
    one, two = (load_studies(str(tmp_path / name / "optuna.journal")) for name in ("one", "two"))
    assert sorted(one) == sorted(two) and len(two) == 2
    for name in one:
        assert comparable(two[name]) == comparable(one[name]), name


def test_only_cpu_workers_on_one_thread_are_forked() -> None:
    import torch

    assert fork_is_safe(1, "cpu") and not fork_is_safe(2, "cpu") and not fork_is_safe(1, "cuda")
    assert fork_is_safe(1, "auto") is not torch.cuda.is_available()  # auto trains on a GPU where there is one


def test_a_killed_workers_error_is_its_signal_and_a_failed_ones_its_own_line() -> None:
    """F16: a SIGKILLed --jobs worker was reported with its last progress line as its error."""
    from study.sweep.jobs import _worker_error

    progress = "moons-sgd-constant: 3/5 trials, best val_acc 0.8, 4 s elapsed\n"
    assert _worker_error(-9, progress).startswith("killed by SIGKILL")
    assert (
        _worker_error(2, progress + "error: training failed for a whole batch\n")
        == "training failed for a whole batch"
    )
    assert (
        _worker_error(1, progress + "Traceback (most recent call last):\n  File x\nRuntimeError: boom\n")
        == "RuntimeError: boom"
    )
    assert _worker_error(1, progress) == "no message"
