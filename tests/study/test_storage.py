"""Storages and the bookkeeping on them: the journal's repair, lock and records, which trials
count as finished, which RUNNING trials are dead."""

from __future__ import annotations

import datetime
import errno
import json
import os
import subprocess
import sys
import time

import optuna
from optuna.trial import TrialState

from study import storage as storage_module
from study import workers as workers_module
from study.analysis import load_studies
from study.storage import held_writes, open_storage
from study.workers import (
    UNCLAIMED_GRACE_S,
    counts_as_finished,
    fail_abandoned_trials,
    finished_count,
    this_worker,
)
from tests.conftest import REPO, SWEEP


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_trials_of_dead_local_processes_are_failed(monkeypatch) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    workers = {
        "dead": {**this_worker(), "pid": _dead_pid()},
        "alive": {**this_worker(), "pid": peer.pid, "started": workers_module.process_start(peer.pid)},
        "other machine": {"host": "elsewhere", "pid": _dead_pid()},
    }
    trials = {}
    for name, worker in workers.items():
        trials[name] = study.ask()
        trials[name].set_user_attr("worker", worker)
    trials["just asked"] = study.ask()  # a peer may not have recorded its worker yet

    assert fail_abandoned_trials(storage, study) == 1

    states = {name: study.trials[trial.number] for name, trial in trials.items()}
    assert states["dead"].state == TrialState.FAIL and states["dead"].user_attrs["interrupted"] is True
    for name in ("alive", "other machine", "just asked"):
        assert states[name].state == TrialState.RUNNING

    later = datetime.datetime.now() + datetime.timedelta(seconds=UNCLAIMED_GRACE_S + 1)
    monkeypatch.setattr(
        workers_module.datetime,
        "datetime",
        type("Later", (datetime.datetime,), {"now": staticmethod(lambda: later)}),
    )
    assert fail_abandoned_trials(storage, study) == 1
    assert study.trials[trials["just asked"].number].state == TrialState.FAIL
    peer.kill()
    peer.wait()


def test_this_process_own_running_trials_are_left_over_between_batches() -> None:
    """A run stopped in this process (a full disk, say) leaves trials RUNNING under its own name;
    it looks only between its batches, so those are redone, not waited for."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    study.ask().set_user_attr("worker", this_worker())
    assert fail_abandoned_trials(storage, study) == 1


def test_finished_means_complete_pruned_or_failed_with_an_error() -> None:
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), state=TrialState.PRUNED)
    broken = study.ask()
    broken.set_user_attr("error", "RuntimeError: boom")
    study.tell(broken, state=TrialState.FAIL)
    interrupted = study.ask()
    interrupted.set_user_attr("interrupted", True)
    study.tell(interrupted, state=TrialState.FAIL)
    study.tell(study.ask(), state=TrialState.FAIL)  # failed by a heartbeat check: no error recorded
    study.ask()  # still running
    assert finished_count(study) == 3


def test_the_journal_forces_to_disk_when_a_trial_ends_not_on_each_report(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    journal = str(tmp_path / "optuna.journal")
    study = optuna.create_study(storage=storage_module.open_storage(journal), study_name="s")
    trial = study.ask()
    before = len(synced)
    trial.suggest_float("lr", 0.01, 1.0)
    for step in range(5):
        trial.report(0.5, step)
    trial.set_user_attr("curve", [0.5] * 5)
    assert len(synced) == before  # written, not forced
    study.tell(trial, 0.5)
    assert len(synced) == before + 1  # the end forces everything before it too
    [stored] = optuna.load_study(study_name="s", storage=storage_module.open_storage(journal)).trials
    assert len(stored.intermediate_values) == 5 and stored.user_attrs["curve"] == [0.5] * 5


HOLD_LOCK = """
import sys, time
from pathlib import Path
from study.storage import _JournalLock
_JournalLock(Path(sys.argv[1])).acquire()
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _holder(journal, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(journal), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_the_journal_lock_excludes_other_writers_and_dies_with_its_holder(tmp_path) -> None:
    journal = tmp_path / "optuna.journal"
    lock = storage_module._JournalLock(journal)
    holder = _holder(journal, 0.5)
    start = time.monotonic()
    lock.acquire()  # waits for the holder to finish
    assert time.monotonic() - start > 0.3 and holder.wait() == 0
    lock.release()

    holder = _holder(journal, 60)
    holder.kill()  # dies holding the lock
    holder.wait()
    start = time.monotonic()
    lock.acquire()
    assert time.monotonic() - start < 5  # no stale lock to wait out
    lock.release()


# --- issue 11: nothing lost, nothing stuck --------------------------------------------------


def test_a_file_that_is_not_a_journal_is_refused_untouched(run_cli, tmp_path) -> None:
    for content in (b"hello\nworld-no-newline", b"no newline at all", b'{"op_code": 0}\nnot json\n'):
        journal = tmp_path / "x.journal"
        journal.write_bytes(content)
        code, _, err = run_cli(
            "run", *SWEEP, "--trials", "1", "--storage", str(journal), "--out", str(tmp_path)
        )
        assert code == 2 and "is not" in err and "journal" in err, err
        assert journal.read_bytes() == content


def test_a_peer_failing_the_same_dead_trial_first_is_no_error(monkeypatch) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    dead = study.ask()
    dead.set_user_attr("worker", {**this_worker(), "pid": _dead_pid()})
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))  # what this worker saw
    study.tell(dead, state=TrialState.FAIL)  # the peer won the race
    monkeypatch.setattr(study, "get_trials", lambda **kwargs: stale)
    assert fail_abandoned_trials(storage, study) == 0  # nothing marked by this process, no crash


def test_a_peer_finishing_a_trial_is_not_counted_as_stopped() -> None:
    """The count is what this process marked, not the change in RUNNING trials (which was -1 here)."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    peer_trial = study.ask()
    peer_trial.set_user_attr("worker", {"host": "elsewhere", "pid": 1})
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    study.tell(peer_trial, 1.0)  # the peer's trial ends while this worker looks
    real_get_trials = study.get_trials
    seen = iter([stale])
    study.get_trials = lambda **kwargs: next(seen, None) or real_get_trials(**kwargs)
    assert fail_abandoned_trials(storage, study) == 0


def test_zombie_and_reused_process_ids_count_as_stopped() -> None:
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits, never collected: a zombie
    deadline = time.monotonic() + 30
    while workers_module.process_start(zombie.pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    peer_started = workers_module.process_start(peer.pid)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    workers = {
        "zombie": {**this_worker(), "pid": zombie.pid, "started": "1"},
        "reused pid": {
            **this_worker(),
            "pid": peer.pid,
            "started": str(int(peer_started) - 1),
        },  # another start
        "alive": {**this_worker(), "pid": peer.pid, "started": peer_started},
    }
    for worker in workers.values():
        study.ask().set_user_attr("worker", worker)
    assert fail_abandoned_trials(storage, study) == 2
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL, TrialState.RUNNING]
    zombie.wait()
    peer.kill()
    peer.wait()


def _stock_op_codes(tmp_path) -> dict[str, int]:
    """The op code a stock JournalStorage writes for each operation, read back from its file."""
    path = tmp_path / "stock.journal"
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(storage=stock, study_name="s")
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    trial.report(0.5, 1)
    trial.set_user_attr("curve", [1])
    stock.set_trial_system_attr(trial._trial_id, "k", 1)
    study.tell(trial, 0.5)
    codes = [json.loads(line)["op_code"] for line in path.read_text().splitlines()]
    names = ["create_study", "create_trial", "param", "intermediate", "user_attr", "system_attr", "state"]
    return dict(zip(names, codes, strict=True))


def test_running_trial_op_codes_are_the_ones_optuna_writes(tmp_path) -> None:
    codes = _stock_op_codes(tmp_path)
    running = {codes[name] for name in ("create_trial", "param", "intermediate", "user_attr", "system_attr")}
    assert storage_module.RUNNING_TRIAL_OP_CODES == running
    assert codes["state"] not in running and codes["create_study"] not in running


def test_records_are_written_byte_for_byte_as_optuna_writes_them(tmp_path) -> None:
    logs = [
        {"op_code": code, "worker_id": "w-1", "trial_id": 3, "value": [0.25, None], "name": "é"}
        for code in sorted(storage_module.RUNNING_TRIAL_OP_CODES)
    ]
    ours_path, stock_path = tmp_path / "ours.journal", tmp_path / "stock.journal"
    ours = storage_module._JournalFile(ours_path, storage_module._JournalLock(ours_path))
    for batch in (logs[:1], logs[1:]):
        ours.append_logs(batch)
        optuna.storages.journal.JournalFileBackend(str(stock_path)).append_logs(batch)
    assert ours_path.read_bytes() == stock_path.read_bytes()


def test_a_stock_optuna_writer_and_a_sweep_share_a_journal(run_cli, tmp_path) -> None:
    """optuna-dashboard saving a note is a stock writer: it must neither stall nor lose records."""
    journal = tmp_path / "optuna.journal"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "study.run", *SWEEP, "--families", "constant", "--trials", "40",
         "--population", "2", "--out", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (journal.exists() and journal.stat().st_size) and time.monotonic() < deadline:
        time.sleep(0.02)
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    start = time.monotonic()
    for index in range(40):
        stock.set_study_user_attr(stock.get_study_id_from_name("moons-sgd-constant"), f"note-{index}", index)
    assert time.monotonic() - start < 10, "the stock writer stalled"
    assert sweep.wait(timeout=120) == 0, sweep.stderr.read()
    assert not (tmp_path / "optuna.journal.lock").exists() or not (tmp_path / "optuna.journal.lock").is_file()
    [study] = load_studies(str(journal)).values()
    assert {f"note-{i}" for i in range(40)} <= set(study.user_attrs)
    assert sum(counts_as_finished(t) for t in study.trials) == 40


def test_a_study_this_project_did_not_make_is_refused(run_cli, tmp_path) -> None:
    journal = str(tmp_path / "optuna.journal")
    opened = storage_module.open_storage(journal)
    foreign = optuna.create_study(storage=opened, study_name="moons-sgd-constant", direction="minimize")
    before = (tmp_path / "optuna.journal").read_bytes()
    code, _, err = run_cli("run", *SWEEP, "--families", "constant", "--trials", "1", "--out", str(tmp_path))
    assert code == 2 and "is not one of this project's (it is to minimize" in err
    assert (tmp_path / "optuna.journal").read_bytes() == before
    other = optuna.create_study(storage=opened, study_name="moons-sgd-cosine", direction="maximize")
    other.tell(other.ask(), 5.0)
    code, _, err = run_cli("run", *SWEEP, "--families", "cosine", "--trials", "1", "--out", str(tmp_path))
    assert code == 2 and "was not made by lr-schedule-study" in err
    assert foreign.trials == []


def test_a_full_disk_stops_cleanly_keeping_finished_trials(run_cli, tmp_path, monkeypatch) -> None:
    real_append, calls = storage_module._JournalFile.append_logs, []

    def fill_up(self, logs):
        calls.append(1)
        if len(calls) > 120:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_append(self, logs)

    monkeypatch.setattr(storage_module._JournalFile, "append_logs", fill_up)
    args = [*SWEEP, "--families", "constant", "--trials", "20", "--population", "1", "--out", str(tmp_path)]
    code, _, err = run_cli("run", *args)
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "no space left on the device" in err and "MB more" in err and "every finished trial is kept" in err
    finished = [
        t.number
        for t in load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
        if counts_as_finished(t)
    ]
    assert finished
    monkeypatch.setattr(storage_module._JournalFile, "append_logs", real_append)
    assert run_cli("run", *args)[0] == 0
    after = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    assert sum(counts_as_finished(t) for t in after) == 20
    assert all(counts_as_finished(after[n]) for n in finished)


def test_a_waiting_worker_says_what_it_waits_for(capsys) -> None:
    from study import sweep

    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    held = {**this_worker(), "pid": peer.pid, "started": workers_module.process_start(peer.pid)}
    study.ask().set_user_attr("worker", held)
    rounds = sweep._top_up(storage, study, None, None, 1, 1, "cpu")  # room 0: a peer holds the last trial
    assert [next(rounds), next(rounds), next(rounds)] == [0, 0, 0]
    err = capsys.readouterr().err
    assert err.count("waiting for") == 1, "said once, not every half second"
    assert f"waiting for 1 trial(s) other workers hold ({this_worker()['host']}:{peer.pid})" in err
    peer.kill()
    peer.wait()


def test_held_records_are_written_in_one_append_and_before_what_follows(tmp_path, monkeypatch) -> None:
    journal = tmp_path / "held.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage)
    trials = [study.ask() for _ in range(3)]
    appends = []
    real_append = storage_module._JournalFile._append_running
    monkeypatch.setattr(
        storage_module._JournalFile,
        "_append_running",
        lambda self, logs: (appends.append(len(logs)), real_append(self, logs)),
    )
    lines = lambda: journal.read_bytes().count(b"\n")
    before = lines()
    with held_writes(storage) as flush:
        for trial in trials:
            trial.report(0.5, step=0)
        assert lines() == before, "held back, not written"
        flush()
        assert lines() == before + 3 and appends == [3]
        trials[0].report(0.75, step=1)
        study.tell(trials[1], 1.0)  # not a running trial's record: the held report is written first
    ops = [json.loads(line)["op_code"] for line in journal.read_text().splitlines()]
    assert ops[-2:] == [7, 6]  # the intermediate value, then the state
    reread = optuna.load_study(study_name=study.study_name, storage=open_storage(str(journal)))
    assert reread.trials[0].intermediate_values == {0: 0.5, 1: 0.75}
    assert reread.trials[1].state == TrialState.COMPLETE


def test_other_storages_write_at_once_while_held() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    with held_writes(storage) as flush:
        trial.report(0.5, step=0)
        assert study.trials[0].intermediate_values == {0: 0.5}
        flush()
