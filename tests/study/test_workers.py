"""Many workers on one storage: shared studies, exact accounting, dead workers' trials redone."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState

from objectives.stored import counts_as_finished
from study.reporting.analysis import load_studies
from study.storage.backends import open_storage
from tests.conftest import REPO, SLOW_SWEEP, SWEEP

ENV = {**os.environ, "PYTHONPATH": str(REPO), "LR_STUDY_JOBS": "1"}  # each worker is one process


def _worker(args: list[str], *, as_other_machine: bool = False) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "study.run", *args]
    if as_other_machine:  # its own hostname, so only its heartbeat can tell that it died
        command = ["unshare", "--uts", "sh", "-c", 'hostname other-machine && exec "$@"', "sh", *command]
    return subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err


def _check_accounting(storage: str, trials: int, workers: int) -> dict[str, int]:
    """Every study ends with ``trials`` finished trials (one more per extra worker at most),
    nothing left running, no number twice; returns how many finished per study."""
    finished = {}
    for name, study in load_studies(storage).items():
        all_trials = study.get_trials()
        assert [t.number for t in all_trials] == list(range(len(all_trials)))
        assert not [t for t in all_trials if t.state == TrialState.RUNNING]
        finished[name] = sum(map(counts_as_finished, all_trials))
        assert trials <= finished[name] <= trials + workers - 1, (name, finished[name])
        redone = [t for t in all_trials if not counts_as_finished(t)]
        assert all(t.state == TrialState.FAIL and t.user_attrs.get("interrupted") for t in redone)
    return finished


@pytest.fixture(params=["journal", "postgresql"])
def shared_storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "journal":
        return str(tmp_path / "optuna.journal")
    return request.getfixturevalue("postgres_url")


@pytest.mark.slow
def test_two_workers_share_every_study(shared_storage: str, tmp_path: Path) -> None:
    # Work enough (2 x 30 trials of 20 epochs, about 3 s) that the worker that starts later,
    # by up to a few seconds of imports on a loaded machine, still finds trials left.
    args = [
        *SWEEP,
        "--epochs",
        "20",
        "--families",
        "constant,cosine",
        "--trials",
        "30",
        "--population",  # batches of 4, yet at most one trial too many per study
        "4",
        "--out",
        str(tmp_path),
        "--storage",
        shared_storage,
    ]
    workers = [_worker(args), _worker(args)]
    _finish(workers)
    finished = _check_accounting(shared_storage, trials=30, workers=2)
    assert sorted(finished) == ["moons-sgd-constant", "moons-sgd-cosine"]
    pids = {
        t.user_attrs["worker"]["pid"] for study in load_studies(shared_storage).values() for t in study.trials
    }
    assert pids == {worker.pid for worker in workers}, "both workers took trials"


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to pose as another machine")
def test_a_dead_machines_trial_is_redone_after_its_heartbeat_stops(postgres_url: str, tmp_path: Path) -> None:
    if subprocess.run(["unshare", "--uts", "true"], check=False).returncode != 0:
        pytest.skip("unshare --uts needs root here")
    args = [*SLOW_SWEEP, "--trials", "16", "--heartbeat", "1", "--population", "2"]
    args += ["--out", str(tmp_path), "--storage", postgres_url]
    watch = open_storage(
        postgres_url
    )  # one pool for all the polling: a storage per poll ran out of connections
    doomed = _worker(args, as_other_machine=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until it holds a trial after finishing two
        trials = load_studies(watch).get("moons-sgd-constant")
        if (
            trials
            and sum(map(counts_as_finished, trials.trials)) >= 2
            and trials.trials[-1].state == TrialState.RUNNING
        ):
            break
        time.sleep(0.02)
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    held = [
        t.number for t in load_studies(watch)["moons-sgd-constant"].trials if t.state == TrialState.RUNNING
    ]
    assert held, "the killed worker held a trial"

    survivor = _worker(args)  # same command, this machine
    _finish([survivor])

    study = load_studies(watch)["moons-sgd-constant"]
    for number in held:
        assert study.trials[number].state == TrialState.FAIL  # failed by the heartbeat check, not counted
    assert sum(map(counts_as_finished, study.trials)) == 16


def test_wrong_database_password_is_one_line(postgres_url: str, tmp_path: Path) -> None:
    user_and_password, host = postgres_url.split("://", 1)[1].split("@", 1)
    wrong = f"postgresql://{user_and_password.split(':')[0]}:not-the-password@{host}"
    done = subprocess.run(
        [sys.executable, "-m", "study.run", "--storage", wrong, "--out", str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "password authentication failed" in done.stderr


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare to pose as another machine")
def test_a_worker_paused_past_its_heartbeat_drops_the_trials_peers_redid(
    postgres_url: str, tmp_path: Path
) -> None:
    """Stopped (SIGSTOP) long enough for a peer to redo its trials, then continued: it drops
    them with a warning and goes on, instead of crashing on UpdateFinishedTrialError."""
    if subprocess.run(["unshare", "--uts", "true"], check=False).returncode != 0:
        pytest.skip("unshare --uts needs root here")
    args = [*SLOW_SWEEP, "--trials", "12", "--heartbeat", "1", "--population", "2"]
    args += ["--out", str(tmp_path), "--storage", postgres_url]
    watch = open_storage(
        postgres_url
    )  # one pool for all the polling: a storage per poll ran out of connections
    paused = _worker(args, as_other_machine=True)
    deadline = time.monotonic() + 120
    held: list[int] = []
    while not held and time.monotonic() < deadline:  # stopped while it trains a batch
        study = load_studies(watch).get("moons-sgd-constant")
        if study and any(t.state == TrialState.RUNNING for t in study.trials):
            paused.send_signal(signal.SIGSTOP)
            trials = load_studies(watch)["moons-sgd-constant"].trials  # as it holds them now
            if not (held := [t.number for t in trials if t.state == TrialState.RUNNING]):
                paused.send_signal(signal.SIGCONT)  # it had just told them: try again
        time.sleep(0.02)
    assert held, "the worker never held a trial"
    peer = _worker(args)
    while time.monotonic() < deadline:  # the peer fails the silent trials and redoes them
        trials = load_studies(watch)["moons-sgd-constant"].trials
        if all(trials[n].state == TrialState.FAIL for n in held):
            break
        time.sleep(0.1)
    taken = all(trials[n].state == TrialState.FAIL for n in held)  # not waited out: stopped mid-commit too
    paused.send_signal(signal.SIGCONT)
    assert taken, "the peer never took over the stopped worker's trials"
    _finish([peer])
    _, err = paused.communicate(timeout=300)
    assert paused.returncode == 0 and "Traceback" not in err, err
    assert "taken over by another worker" in err
    trials = load_studies(watch)["moons-sgd-constant"].trials
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert 12 <= sum(map(counts_as_finished, trials)) <= 13
    assert all(trials[n].state == TrialState.FAIL and not counts_as_finished(trials[n]) for n in held)


def test_a_worker_frozen_inside_a_transaction_holds_its_peers_only_until_the_server_ends_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker stopped between a statement and its commit (seen in the test above, 1 run in 5)
    holds its trial's row lock. PostgreSQL ends that session after ``FROZEN_TRANSACTION_S``, so a
    peer failing the trial waits that long, not for as long as the worker stays stopped."""
    import threading

    import optuna
    import sqlalchemy

    from study.storage import backends

    monkeypatch.setattr(backends, "FROZEN_TRANSACTION_S", 2)
    frozen = open_storage(postgres_url)
    study = optuna.create_study(storage=frozen, study_name="frozen")
    number = study.ask().number
    trial_id = frozen.get_trial_id_from_study_id_trial_number(frozen.get_study_id_from_name("frozen"), number)
    held = frozen.engine.connect()  # a statement run, its commit never sent: as SIGSTOP leaves it
    held.execute(
        sqlalchemy.text("SELECT trial_id FROM trials WHERE trial_id = :id FOR UPDATE"), {"id": trial_id}
    )
    peer = open_storage(postgres_url)
    failing = threading.Thread(
        target=peer.set_trial_state_values, args=(trial_id, TrialState.FAIL), daemon=True
    )
    started = time.monotonic()
    failing.start()
    failing.join(timeout=30)
    waited = time.monotonic() - started
    assert not failing.is_alive(), "the peer still waits on the frozen worker's lock"
    assert 1 < waited < 15 and peer.get_trial(trial_id).state == TrialState.FAIL
    with pytest.raises(sqlalchemy.exc.DBAPIError) as ended:  # resumed, its session is gone
        held.execute(sqlalchemy.text("SELECT 1"))
    lost = optuna.exceptions.StorageInternalError("as Optuna wraps it")
    lost.__cause__ = ended.value
    assert backends.session_lost(lost), "the resumed worker would stop instead of dropping its trials"
    down = optuna.exceptions.StorageInternalError("a database that went away")
    down.__cause__ = sqlalchemy.exc.OperationalError(
        "SELECT 1", {}, OSError("refused"), connection_invalidated=True
    )
    assert not backends.session_lost(down), "an outage is not a peer taking over"
    assert frozen.get_trial(trial_id).state == TrialState.FAIL  # and its storage works again
