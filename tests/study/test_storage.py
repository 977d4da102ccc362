"""Storages and the bookkeeping on them: the journal's repair, lock and records, which trials
count as finished, which RUNNING trials are dead."""

from __future__ import annotations

import datetime
import errno
import json
import os
import subprocess
import sys
import threading
import time

import optuna
import pytest
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages.journal import JournalFileOpenLock, JournalFileSymlinkLock
from optuna.trial import TrialState

from objectives.stored import counts_as_finished, finished_count
from study.errors import UsageError
from study.reporting.analysis import load_studies
from study.storage import journal as journal_module
from study.storage.backends import held_tells, held_writes, open_storage
from study.storage.journal import JournalFile, JournalLock
from study.sweep import workers as workers_module
from study.sweep.workers import UNCLAIMED_GRACE_S, fail_abandoned_trials, this_worker
from tests.conftest import REPO, SWEEP, TINY


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_only_trials_of_dead_local_processes_are_failed(monkeypatch) -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s")
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    workers = {
        "dead": {**this_worker().record(), "pid": _dead_pid()},
        "alive": {
            **this_worker().record(),
            "pid": peer.pid,
            "started": workers_module.process_start(peer.pid),
        },
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
    study.ask().set_user_attr("worker", this_worker().record())
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


HOLD_LOCK = """
import sys, time
from pathlib import Path
from study.storage.journal import JournalLock
JournalLock(Path(sys.argv[1])).acquire()
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
    lock = JournalLock(journal)
    holder = _holder(journal, 0.5)
    start = time.monotonic()
    lock.acquire()  # waits for the holder to finish
    assert time.monotonic() - start > 0.3 and holder.wait() == 0
    lock.release()

    holder = _holder(journal, 60)
    holder.kill()  # dies holding the lock: Optuna's lock file stays behind
    holder.wait()
    assert (tmp_path / "optuna.journal.lock").exists()
    start = time.monotonic()
    lock.acquire()
    assert time.monotonic() - start < 5  # not Optuna's 30 s grace period
    lock.release()
    assert not (tmp_path / "optuna.journal.lock").exists()


@pytest.mark.parametrize("stock_lock", [JournalFileOpenLock, JournalFileSymlinkLock])
def test_stock_optuna_locks_and_ours_exclude_each_other(stock_lock, tmp_path) -> None:
    journal = tmp_path / "optuna.journal"
    journal.touch()
    ours, stock = JournalLock(journal), stock_lock(str(journal))
    for first, second in ((stock, ours), (ours, stock)):
        first.acquire()
        taken = threading.Event()
        waiter = threading.Thread(
            target=lambda lock=second, taken=taken: (lock.acquire(), taken.set(), lock.release())
        )
        waiter.start()
        assert not taken.wait(0.3), f"{type(second).__name__} took a lock {type(first).__name__} holds"
        first.release()
        assert taken.wait(5)
        waiter.join()


def test_threads_of_one_process_each_hold_the_lock_in_turn(tmp_path) -> None:
    lock, inside, overlaps = JournalLock(tmp_path / "optuna.journal"), [], []

    def work() -> None:
        for _ in range(50):
            lock.acquire()
            inside.append(1)
            overlaps.append(len(inside) > 1)
            time.sleep(0.0005)
            inside.pop()
            lock.release()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(overlaps) == 200 and not any(overlaps)


STOCK_HALF_WRITER = """
import json, os, sys, time
from optuna.storages.journal import JournalFileOpenLock
path = sys.argv[1]
record = json.dumps({"op_code": 2, "worker_id": "stock-0", "study_id": 0, "user_attr": {"note": "x" * 5000}},
                    separators=(",", ":")) + "\\n"
lock = JournalFileOpenLock(path)
lock.acquire()
with open(path, "ab") as file:
    file.write(record[:2500].encode()); file.flush()
    print("half", flush=True)
    sys.stdin.readline()  # the test says when to finish
    file.write(record[2500:].encode()); file.flush(); os.fsync(file.fileno())
lock.release()
"""


@pytest.mark.slow
def test_a_sweep_waits_for_a_stock_writer_half_way_through_a_record(tmp_path) -> None:
    """The issue's scenario: a stock writer holds Optuna's lock with half a record written as a
    sweep opens the journal; the sweep waits, the writer finishes, nothing of either is lost."""
    journal = tmp_path / "optuna.journal"
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    optuna.create_study(storage=stock, study_name="notes")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen(
        [sys.executable, "-c", STOCK_HALF_WRITER, str(journal)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert writer.stdout.readline() == "half\n"
    sweep = subprocess.Popen(
        [sys.executable, "-m", "study.run", *SWEEP, "--families", "constant", "--trials", "3",
         "--out", str(tmp_path), "--no-report"],
        env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not (tmp_path / "optuna.journal.lr-study.flock").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the sweep has reached the lock
    time.sleep(0.5)
    assert sweep.poll() is None, "the sweep must wait for the stock writer"
    assert not journal.read_bytes().endswith(b"\n"), "and must not cut its half record"
    writer.stdin.write("go\n")
    writer.stdin.close()
    assert writer.wait(timeout=30) == 0
    assert sweep.wait(timeout=120) == 0, sweep.stderr.read()
    reader = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    studies = {s.study_name: s for s in reader.get_all_studies()}
    assert studies["notes"].user_attrs["note"] == "x" * 5000
    trials = optuna.load_study(study_name="moons-sgd-constant", storage=reader).trials
    assert sum(map(counts_as_finished, trials)) == 3


def test_a_dead_writers_half_record_is_cut_before_the_next_append(tmp_path) -> None:
    journal = tmp_path / "optuna.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage, study_name="s")
    with journal.open("ab") as file:
        file.write(b'{"op_code":2,"worker_id":"dead","study_id":0,"user_a')  # its writer died here
    study.set_user_attr("after", 1)  # under the lock: no writer can be finishing that record
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert stock.get_all_studies()[0].user_attrs == {"after": 1}


def test_a_read_with_nothing_appended_does_not_open_the_journal(tmp_path, monkeypatch) -> None:
    storage = open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(storage=storage, study_name="s")
    reads: list[int] = []
    real_read = optuna.storages.journal.JournalFileBackend.read_logs
    monkeypatch.setattr(
        optuna.storages.journal.JournalFileBackend, "read_logs",
        lambda self, number: (self is storage.file and reads.append(number), real_read(self, number))[1],
    )  # fmt: skip
    study.get_trials()
    study.get_trials()
    assert reads == []
    optuna.load_study(study_name="s", storage=open_storage(str(tmp_path / "optuna.journal"))).set_user_attr(
        "k", 1
    )
    assert study.user_attrs == {"k": 1} and len(reads) == 1  # a peer's append is read


def test_a_half_record_replaced_by_a_whole_one_as_long_is_read(tmp_path) -> None:
    """The file's size alone cannot tell a read is due: a dead writer's half record, cut and
    followed by a whole record of the same length, leaves the size as it was."""
    journal = tmp_path / "optuna.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage, study_name="s")
    before = journal.stat().st_size
    whole = b'{"op_code":2,"worker_id":"peer","study_id":0,"user_attr":{"k":1}}\n'
    with journal.open("ab") as file:
        file.write(b"x" * len(whole))  # a writer died mid-record
    assert study.user_attrs == {}
    with journal.open("r+b") as file:  # what the next writer does, under the lock
        file.truncate(before)
        file.seek(before)
        file.write(whole)
    assert journal.stat().st_size == before + len(whole)
    assert study.user_attrs == {"k": 1}


def test_every_append_is_forced_to_disk_as_optunas_are(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    storage = open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    before = len(synced)
    for step in range(5):
        trial.report(0.5, step)
    study.tell(trial, 0.5)
    assert len(synced) == before + 6


def test_a_full_disk_at_any_byte_of_an_append_leaves_the_journal_as_it_was(tmp_path, monkeypatch) -> None:
    """Whatever part of an append reaches the disk before it fills up is taken back: a later
    append, and stock Optuna, read a whole journal."""
    journal = tmp_path / "optuna.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    before = journal.read_bytes()
    real_write = os.write
    room = 0
    while True:  # the disk fills up after `room` bytes of the record, for every `room` until it fits

        def fill_up(fd: int, data, room=room) -> int:
            if len(data) > room:
                real_write(fd, bytes(data[:room]))
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_write(fd, data)

        monkeypatch.setattr(os, "write", fill_up)
        try:
            trial.set_user_attr("k", "v" * 40)
            break
        except OSError as error:
            assert error.errno == errno.ENOSPC
        finally:
            monkeypatch.setattr(os, "write", real_write)
        assert journal.read_bytes() == before, f"{room} bytes of the record were left behind"
        room += 1
    assert room > 60, "every byte offset of the record was tried"
    study.tell(trial, 1.0)
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    [stored] = optuna.load_study(study_name="s", storage=stock).trials
    assert stored.user_attrs == {"k": "v" * 40} and stored.value == 1.0


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_full_tmpfs_then_space_back_the_sweep_finishes_and_stock_optuna_reads_it(run_cli, tmp_path) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], check=False).returncode:
        pytest.skip("this machine does not let the tests mount a tmpfs")
    try:
        args = [*SWEEP, "--families", "constant,cosine", "--trials", "30", "--out", str(disk), "--no-report"]
        filler = disk / "filler"
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        filler.write_bytes(b"\0" * (free - 60_000))  # room for a few trials' records only
        code, _, err = run_cli("run", *args)
        assert code == 1 and "no space left on the device" in err, err
        filler.unlink()
        code, _, err = run_cli("run", *args)
        assert code == 0, err
        stock = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(disk / "optuna.journal"))
        )
        for name in ("moons-sgd-constant", "moons-sgd-cosine"):
            trials = optuna.load_study(study_name=name, storage=stock).trials
            assert sum(map(counts_as_finished, trials)) == 30
    finally:
        subprocess.run(["umount", str(disk)], check=False)


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
    dead.set_user_attr("worker", {**this_worker().record(), "pid": _dead_pid()})
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
        "zombie": {**this_worker().record(), "pid": zombie.pid, "started": "1"},
        "reused pid": {
            **this_worker().record(),
            "pid": peer.pid,
            "started": str(int(peer_started) - 1),
        },  # another start
        "alive": {**this_worker().record(), "pid": peer.pid, "started": peer_started},
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
    study.set_user_attr("k", 1)
    trial = study.ask()
    trial.suggest_float("lr", 0.1, 1.0)
    trial.report(0.5, 1)
    trial.set_user_attr("curve", [1])
    stock.set_trial_system_attr(trial._trial_id, "k", 1)
    study.tell(trial, 0.5)
    codes = [json.loads(line)["op_code"] for line in path.read_text().splitlines()]
    names = [
        "create_study", "study_user_attr", "create_trial", "param", "intermediate", "user_attr", "system_attr", "state"
    ]  # fmt: skip
    return dict(zip(names, codes, strict=True))


def test_held_op_codes_are_the_ones_optuna_writes_for_params_reports_attributes_and_states(tmp_path) -> None:
    codes = _stock_op_codes(tmp_path)
    OpCode = journal_module.OpCode
    named = {"study_user_attr": OpCode.SET_STUDY_USER_ATTR, "param": OpCode.SET_TRIAL_PARAM,
             "intermediate": OpCode.SET_TRIAL_INTERMEDIATE_VALUE, "user_attr": OpCode.SET_TRIAL_USER_ATTR,
             "system_attr": OpCode.SET_TRIAL_SYSTEM_ATTR, "state": OpCode.SET_TRIAL_STATE_VALUES}  # fmt: skip
    assert {name: codes[name] for name in named} == {name: int(code) for name, code in named.items()}
    assert (
        journal_module.HELD_OP_CODES == set(named.values()) and journal_module.STATE_OP_CODE == codes["state"]
    )


def test_no_private_name_of_optuna_is_imported_by_the_project() -> None:
    """Issue 36: Optuna by its public names (its private ones are for tests that check an assumption)."""
    import ast

    from tests.conftest import REPO

    private = []
    for path in [*REPO.glob("study/**/*.py"), *REPO.glob("objectives/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in getattr(node, "names", [])]
                if isinstance(node, ast.Import)
                else []
            )
            private += [
                f"{path.name}: {n}"
                for n in names
                if n.startswith("optuna") and any(p.startswith("_") for p in n.split("."))
            ]
    assert private == []


def test_records_are_written_byte_for_byte_as_optuna_writes_them(tmp_path) -> None:
    logs = [
        {"op_code": code, "worker_id": "w-1", "trial_id": 3, "value": [0.25, None], "name": "é"}
        for code in range(11)
    ]
    ours_path, stock_path = tmp_path / "ours.journal", tmp_path / "stock.journal"
    ours = JournalFile(ours_path)
    for batch in (logs[:1], logs[1:]):
        ours.append_logs(batch)
        optuna.storages.journal.JournalFileBackend(str(stock_path)).append_logs(batch)
    assert ours_path.read_bytes() == stock_path.read_bytes()


@pytest.mark.slow
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
    opened = open_storage(journal)
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
    real_append, calls = JournalFile.append_logs, []

    def fill_up(self, logs):
        calls.append(1)
        if len(calls) > 120:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_append(self, logs)

    monkeypatch.setattr(JournalFile, "append_logs", fill_up)
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
    monkeypatch.setattr(JournalFile, "append_logs", real_append)
    assert run_cli("run", *args)[0] == 0
    after = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    assert sum(counts_as_finished(t) for t in after) == 20
    assert all(counts_as_finished(after[n]) for n in finished)


def test_a_waiting_worker_says_what_it_waits_for(capsys) -> None:
    from study.sweep import top_up as sweep

    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    held = {**this_worker().record(), "pid": peer.pid, "started": workers_module.process_start(peer.pid)}
    study.ask().set_user_attr("worker", held)
    first_pass = sweep._top_up(storage, study, None, None, None, 1, 1, "cpu", False)
    assert list(first_pass) == [0], "without wait it leaves at once: the sweep goes on to other studies first"
    assert "waiting for" not in capsys.readouterr().err
    rounds = sweep._top_up(
        storage, study, None, None, None, 1, 1, "cpu", True
    )  # room 0: a peer holds the last trial
    assert [next(rounds), next(rounds), next(rounds)] == [0, 0, 0]
    err = capsys.readouterr().err
    assert err.count("waiting for") == 1, "said once, not every half second"
    assert f"waiting for 1 trial(s) other workers hold ({this_worker().host}:{peer.pid})" in err
    peer.kill()
    peer.wait()


def test_held_records_are_written_in_one_append_when_the_storage_is_next_read(tmp_path, monkeypatch) -> None:
    journal = tmp_path / "held.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage)
    trials = [study.ask() for _ in range(3)]
    appends = []
    real_write = JournalFile._write
    monkeypatch.setattr(
        JournalFile, "_write", lambda self, logs: (appends.append(len(logs)), real_write(self, logs))
    )
    lines = lambda: journal.read_bytes().count(b"\n")
    before = lines()
    with held_writes(storage):
        for trial in trials:
            trial.report(0.5, step=0)
        assert lines() == before and appends == [], "held back, not written"
        assert [t.intermediate_values for t in study.get_trials()] == [{0: 0.5}] * 3  # a read sees them
        assert lines() == before + 3 and appends == [3]
        trials[0].report(0.75, step=1)
        study.tell(trials[1], 1.0)  # reads the trial before and after: the report is written, then the state
        assert appends == [3, 1, 1]
        new = study.ask()  # creating a trial inside: its id is read back at once
        assert appends == [3, 1, 1, 1]
        assert new.number == 3 and study.trials[3].state == TrialState.RUNNING
    ops = [json.loads(line)["op_code"] for line in journal.read_text().splitlines()]
    assert ops[-3:] == [7, 6, 4]  # the intermediate value, the state, the new trial
    reread = optuna.load_study(study_name=study.study_name, storage=open_storage(str(journal)))
    assert reread.trials[0].intermediate_values == {0: 0.5, 1: 0.75}
    assert reread.trials[1].state == TrialState.COMPLETE


def test_held_parameters_are_checked_as_optunas_replay_checks_them(tmp_path, monkeypatch) -> None:
    storage = open_storage(str(tmp_path / "held.journal"))
    study = optuna.create_study(storage=storage)
    first, second = study.ask(), study.ask()
    first.suggest_float("lr", 0.1, 1.0)
    first.suggest_float("momentum", 0.0, 1.0)
    appends = []
    real_write = JournalFile._write
    monkeypatch.setattr(
        JournalFile, "_write", lambda self, logs: (appends.append(len(logs)), real_write(self, logs))
    )
    with held_writes(storage):
        second.suggest_float("lr", 0.1, 1.0)
        second.suggest_int("layers", 1, 3)
        second.set_user_attr("worker", "w")
        assert appends == [], "held back, not written"
        with pytest.raises(ValueError, match="Cannot set different distribution kind"):
            second.suggest_int(
                "momentum", 0, 1
            )  # a float in this study's first trial: refused at once, as unheld
        study.tell(first, 1.0)
        with pytest.raises(UpdateFinishedTrialError):
            storage.set_trial_param(first._trial_id, "momentum", 0.5, FloatDistribution(0, 1))
    assert appends == [3, 1], "the parameters and the attribute in one append (before the tell's state)"
    peer = optuna.load_study(
        study_name=study.study_name, storage=open_storage(str(tmp_path / "held.journal"))
    )
    made_elsewhere = peer.ask()._trial_id  # a trial this storage did not make: its study is looked up
    with held_writes(storage):
        with pytest.raises(ValueError, match="Cannot set different distribution kind"):
            storage.set_trial_param(made_elsewhere, "momentum", 1, IntDistribution(0, 1))
        storage.set_trial_param(made_elsewhere, "momentum", 0.5, FloatDistribution(0, 1))
    assert peer.trials[2].params == {"momentum": 0.5}
    reread = optuna.load_study(
        study_name=study.study_name, storage=open_storage(str(tmp_path / "held.journal"))
    )
    assert set(reread.trials[1].params) == {"lr", "layers"} and reread.trials[1].user_attrs == {"worker": "w"}


def test_a_populations_tells_and_a_studys_attributes_go_in_one_append_each(tmp_path, monkeypatch) -> None:
    storage = open_storage(str(tmp_path / "held.journal"))
    study = optuna.create_study(storage=storage)
    trials = [study.ask() for _ in range(3)]
    for trial in trials:
        trial.report(0.5, step=0)
    appends = []
    real_write = JournalFile._write
    monkeypatch.setattr(
        JournalFile, "_write", lambda self, logs: (appends.append(len(logs)), real_write(self, logs))
    )
    with held_tells(storage):
        study.tell(trials[0], 1.0)
        study.tell(trials[1], state=TrialState.PRUNED)  # reads its last report for its value
        study.tell(trials[2], state=TrialState.FAIL)
        assert appends == [], "held back, not written"
        with pytest.raises(UpdateFinishedTrialError):
            storage.set_trial_state_values(
                trials[0]._trial_id, TrialState.FAIL
            )  # told already: refused at once
    assert appends == [3]
    reread = optuna.load_study(
        study_name=study.study_name, storage=open_storage(str(tmp_path / "held.journal"))
    )
    assert [(t.state, t.value) for t in reread.trials] == [
        (TrialState.COMPLETE, 1.0), (TrialState.PRUNED, 0.5), (TrialState.FAIL, None)
    ]  # fmt: skip
    with held_writes(storage):
        study.set_user_attr("a", 1)
        study.set_user_attr("b", 2)
        with pytest.raises(KeyError):
            storage.set_study_user_attr(
                storage.get_study_id_from_name(study.study_name) + 1, "c", 3
            )  # no such study: refused at once
    assert appends == [3, 2] and reread.user_attrs == {"a": 1, "b": 2}


def test_a_queued_trials_start_is_written_at_once_while_held(tmp_path) -> None:
    """Its writer reads back whether it was the one that started it: held, it would not know."""
    storage = open_storage(str(tmp_path / "held.journal"))
    study = optuna.create_study(storage=storage)
    study.enqueue_trial({"lr": 0.5})
    with held_writes(storage):
        trial = study.ask()
        assert trial.number == 0 and trial.suggest_float("lr", 0.1, 1.0) == 0.5
    assert len(study.trials) == 1


def test_other_storages_write_at_once_while_held() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    with held_writes(storage):
        trial.report(0.5, step=0)
        assert study.trials[0].intermediate_values == {0: 0.5}


def _running_trial_of(study: optuna.Study, storage, host: str, started_ago_s: float) -> int:
    """A RUNNING trial claimed by a worker on ``host`` that started ``started_ago_s`` ago."""
    started = datetime.datetime.now() - datetime.timedelta(seconds=started_ago_s)
    template = optuna.trial.create_trial(state=TrialState.RUNNING)
    template.datetime_start = started
    study_id = storage.get_study_id_from_name(study.study_name)
    trial_id = storage.create_new_trial(study_id, template_trial=template)
    storage.set_trial_user_attr(trial_id, "worker", {"host": host, "pid": 4242, "started": "1"})
    return trial_id


def test_a_journal_trial_is_redone_once_its_worker_stops_beating_whatever_the_host(tmp_path) -> None:
    """A journal resumed under a new host name (a restarted container) has no process to look
    up: its trials' beats tell. A database trial of another machine waits for Optuna's heartbeat."""
    storage = open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.create_study(storage=storage, study_name="s")
    stale = _running_trial_of(study, storage, "old-host", workers_module.JOURNAL_STALE_S + 5)
    beating = _running_trial_of(study, storage, "old-host", workers_module.JOURNAL_STALE_S + 5)
    storage.set_trial_system_attr(beating, workers_module.BEAT, time.time())
    young = _running_trial_of(study, storage, "other-host", 1)
    assert fail_abandoned_trials(storage, study) == 1
    assert storage.get_trial(stale).state == TrialState.FAIL
    assert storage.get_trial(beating).state == storage.get_trial(young).state == TrialState.RUNNING
    storage.set_trial_system_attr(
        beating, workers_module.BEAT, time.time() - workers_module.JOURNAL_STALE_S - 1
    )
    assert fail_abandoned_trials(storage, study) == 1

    memory = optuna.storages.InMemoryStorage()
    other = optuna.create_study(storage=memory, study_name="s")
    _running_trial_of(other, memory, "old-host", 3600)
    assert fail_abandoned_trials(memory, other) == 0


@pytest.mark.slow
def test_a_sweep_resumed_under_a_new_host_name_finishes(tmp_path) -> None:
    args = [*SWEEP, "--families", "constant", "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = [sys.executable, "-m", "study.run", *args]
    assert subprocess.run([*run, "--trials", "2"], env=env, capture_output=True, check=False).returncode == 0
    storage = open_storage(str(tmp_path / "optuna.journal"))
    study = optuna.load_study(study_name="moons-sgd-constant", storage=storage)
    for _ in range(2):  # what the container held when it was restarted
        _running_trial_of(study, storage, "old-container", workers_module.JOURNAL_STALE_S + 60)
    done = subprocess.run(
        [*run, "--trials", "4"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (
        finished_count(
            optuna.load_study(
                study_name="moons-sgd-constant", storage=open_storage(str(tmp_path / "optuna.journal"))
            )
        )
        == 4
    )


def test_a_worker_whose_trials_were_redone_while_it_was_stopped_drops_them_and_goes_on(
    run_cli, tmp_path, monkeypatch
) -> None:
    """As a database worker paused past its heartbeat's grace finds its trials failed by peers."""
    from study.sweep import population

    real_run_trials, taken_over = population.run_trials, []

    def peers_take_over_first(trials, *args, **kwargs):
        if not taken_over:
            peer = open_storage(str(tmp_path / "optuna.journal"))
            study_id = peer.get_study_id_from_name("moons-sgd-constant")
            for trial in trials:
                trial_id = peer.get_trial_id_from_study_id_trial_number(study_id, trial.number)
                peer.set_trial_state_values(trial_id, state=TrialState.FAIL)
            taken_over.extend(t.number for t in trials)
        return real_run_trials(trials, *args, **kwargs)

    monkeypatch.setattr(population, "run_trials", peers_take_over_first)
    args = [*SWEEP, "--families", "constant", "--trials", "4", "--population", "2", "--out", str(tmp_path)]
    code, _, err = run_cli("run", *args)
    assert code == 0 and "Traceback" not in err, err
    assert f"trial(s) {taken_over[0]}, {taken_over[1]} were taken over by another worker" in err
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    assert sum(map(counts_as_finished, trials)) == 4
    assert all(trials[n].state == TrialState.FAIL and not counts_as_finished(trials[n]) for n in taken_over)


def test_a_full_disk_while_writing_the_report_is_one_line(run_cli, tmp_path, monkeypatch) -> None:
    from study.reporting import output

    args = [
        *TINY,
        "--repeats",
        "1",
        "--families",
        "constant",
        "--trials",
        "2",
        "--seeds",
        "2",
        "--out",
        str(tmp_path),
    ]

    def full(path, content):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(output, "write_file", full)
    code, _, err = run_cli("run", *args)
    [error] = [line for line in err.splitlines() if line.startswith("error")]
    assert code == 1 and "Traceback" not in err and "no space left on the device writing" in error, err
    assert (
        sum(
            map(
                counts_as_finished,
                load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials,
            )
        )
        == 2
    )


def test_a_worker_process_that_ran_out_of_space_is_said_as_a_full_disk(tmp_path) -> None:
    """So that --jobs 2 gives the same message, with its estimate, as one process."""
    from study.sweep import jobs

    log = tmp_path / "job0.stderr"
    log.write_text("error: OSError: [Errno 28] No space left on device\n")
    worker = type("Ended", (), {"exitcode": 1})()
    with pytest.raises(OSError) as raised:
        jobs._check([worker], [log])
    assert raised.value.errno == errno.ENOSPC


@pytest.mark.parametrize("lock", ["optuna.journal.lr-study.flock", "optuna.journal.lock"])
def test_no_lock_file_is_made_through_a_dangling_link(lock: str, tmp_path, monkeypatch) -> None:
    outside = tmp_path / "outside" / "made-through-the-link"
    outside.parent.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / lock).symlink_to(outside)
    monkeypatch.setattr(journal_module, "GRACE_S", 0.2)  # a link at Optuna's lock is a stale stock lock
    if lock.endswith(".flock"):
        with pytest.raises(UsageError, match="cannot lock the journal: .*lr-study.flock: Too many levels"):
            open_storage(str(out / "optuna.journal"))
        assert not (out / "optuna.journal").exists(), "nothing made before the lock"
    else:
        optuna.create_study(storage=open_storage(str(out / "optuna.journal")), study_name="s")
    assert not outside.exists()


def test_a_ctrl_c_during_an_append_comes_after_the_whole_record(tmp_path, monkeypatch) -> None:
    """Readers read without the lock, so a record another process may already have applied is
    never taken back: Ctrl-C half-way through writing it is raised once it is whole and on disk."""
    import signal as signals

    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(storage=open_storage(str(journal)), study_name="s")
    trial = study.ask()
    real_write, interrupted = os.write, []

    def interrupt_half_way(fd: int, data) -> int:
        if not interrupted:
            interrupted.append(len(data))
            written = real_write(fd, bytes(data[: len(data) // 2]))
            os.kill(os.getpid(), signals.SIGINT)  # Python acts on it at the next bytecode it may
            return written
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", interrupt_half_way)
    with pytest.raises(KeyboardInterrupt):
        trial.set_user_attr("k", "v" * 40)
    monkeypatch.setattr(os, "write", real_write)
    assert interrupted and journal.read_bytes().endswith(b"\n")
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    [stored] = optuna.load_study(study_name="s", storage=stock).trials
    assert stored.user_attrs == {"k": "v" * 40}
    assert signals.getsignal(signals.SIGINT) is signals.default_int_handler  # put back as it was


def _stock_view(journal) -> list[optuna.trial.FrozenTrial]:
    """The file's trials as stock Optuna reads them (its own backend and lock)."""
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=optuna.get_all_study_names(stock)[0], storage=stock).trials


def test_a_write_from_another_thread_while_a_hold_ends_is_not_lost(tmp_path, monkeypatch) -> None:
    """The hold's last append is slowed (its fsync), and another thread writes in that window: a
    heartbeat's record must reach the file, and the writer's own view, not a list already emptied."""
    journal = tmp_path / "held.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    in_flush, written = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if threading.current_thread() is threading.main_thread() and not in_flush.is_set():
            in_flush.set()
            written.wait(1.0)  # the other write, if it can finish now (it went into the hold), has
        real_fsync(fd)

    def beat() -> None:
        in_flush.wait(10)
        storage.set_trial_system_attr(trial._trial_id, "beat", 1)
        written.set()

    beater = threading.Thread(target=beat)
    beater.start()
    monkeypatch.setattr(os, "fsync", slow_fsync)
    with held_writes(storage):
        trial.report(0.5, step=0)  # held: written as the hold ends, slowly
    beater.join()
    monkeypatch.undo()
    assert _stock_view(journal)[0].system_attrs.get("beat") == 1
    assert study.trials[0].system_attrs.get("beat") == 1
    assert study.trials[0].intermediate_values == {0: 0.5}


def test_threads_writing_through_repeated_holds_lose_nothing(tmp_path) -> None:
    """A stress of the same window: two threads write attributes while the main thread holds and
    ends holds over and over; the file then has every record, as the writer's own view has."""
    journal = tmp_path / "held.journal"
    storage = open_storage(str(journal))
    study = optuna.create_study(storage=storage)
    trial = study.ask()
    writes = 300

    def write(name: str) -> None:
        for k in range(writes):
            storage.set_trial_system_attr(trial._trial_id, f"{name}{k}", k)

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    step = 0
    while any(thread.is_alive() for thread in threads):
        with held_writes(storage):
            trial.report(float(step), step=step)
            trial.set_user_attr("step", step)
        step += 1
    for thread in threads:
        thread.join()
    stock, own = _stock_view(journal)[0], study.trials[0]
    assert len(stock.system_attrs) == len(own.system_attrs) == 2 * writes
    assert len(stock.intermediate_values) == len(own.intermediate_values) == step


def test_train_from_a_read_only_journal_needs_no_lock(run_cli, tmp_path, monkeypatch) -> None:
    """F9: re-training a stored trial only reads the journal, so a read-only file system must do
    (simulated: every open of a file there for writing fails with EROFS, as the kernel's would;
    root ignores file modes, so a mode-444 file would not show it)."""
    out = tmp_path / "out"
    assert run_cli("run", *SWEEP, "--families", "constant", "--trials", "1", "--out", str(out))[0] == 0
    journal = out / "optuna.journal"
    before = journal.read_bytes()
    real_open = os.open
    writing = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def read_only_file_system(path, flags, *args, **kwargs):
        if str(path).startswith(str(out)) and flags & writing:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_file_system)
    code, _stdout, err = run_cli(
        "train", "--from-study", "moons-sgd-constant", "--trial", "0", "--out", str(out)
    )
    assert code == 0, err
    monkeypatch.undo()
    assert journal.read_bytes() == before


def test_the_read_only_backend_reads_what_optuna_reads_and_never_writes(tmp_path) -> None:
    from study.storage.journal import ReadOnlyJournalFile

    journal = tmp_path / "optuna.journal"
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.create_study(storage=stock, study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    with journal.open("ab") as file:
        file.write(b'{"op_code": 4, "worker_id"')  # a writer mid-append: not yet a record
    reader = optuna.storages.JournalStorage(ReadOnlyJournalFile(journal))
    seen = optuna.load_study(study_name="s", storage=reader).trials
    assert [(t.params, t.value) for t in seen] == [(t.params, t.value) for t in study.trials]
    with pytest.raises(PermissionError):
        optuna.load_study(study_name="s", storage=reader).set_user_attr("a", 1)
    assert open_storage(str(journal), read_only=True).get_all_studies()[0].study_name == "s"


def test_a_journal_given_as_a_symbolic_link_is_refused_saying_why_and_read_through(run_cli, tmp_path) -> None:
    """F15: a symlinked journal was refused as 'Too many levels of symbolic links'. Writers are told
    to use the target (Optuna's lock sits beside the path given); readers follow the link."""
    out = tmp_path / "out"
    assert run_cli("run", *SWEEP, "--families", "constant", "--trials", "1", "--out", str(out))[0] == 0
    link = tmp_path / "linked.journal"
    link.symlink_to(out / "optuna.journal")
    code, _, err = run_cli("run", *SWEEP, "--families", "constant", "--trials", "2", "--storage", str(link),
                           "--out", str(out))  # fmt: skip
    assert code == 2 and "is a symbolic link: give its target" in err and err.count("\n") == 1, err
    code, _, err = run_cli(
        "train", "--from-study", "moons-sgd-constant", "--trial", "0", "--storage", str(link)
    )
    assert code == 0, err


def test_after_a_killed_writer_opening_the_journal_makes_a_stock_writer_safe(tmp_path, capsys) -> None:
    """F4: a stock Optuna writer appending straight after one of ours was killed mid-append glues
    its record onto the half one. Any project command opening the journal first cuts it, and says so."""
    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(storage=open_storage(str(journal)), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with journal.open("ab") as file:
        file.write(b'{"op_code": 4, "worker_id": "killed-mid-append", "study_id": 0, "datetime_st')
    open_storage(str(journal))  # what any of this project's commands does first
    assert "dropped a half-written last record" in capsys.readouterr().err
    stock = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    optuna.load_study(study_name="s", storage=stock).optimize(
        lambda t: t.suggest_float("x", 0, 1), n_trials=2
    )
    fresh = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    assert len(optuna.load_study(study_name="s", storage=fresh).trials) == 4


def test_a_directory_where_the_lock_goes_is_one_line_at_once_and_left_alone(run_cli, tmp_path) -> None:
    """F13: a <journal>.lock that is a directory was waited on for 30 s, renamed aside and left."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "optuna.journal.lock").mkdir()
    started = time.monotonic()
    code, _, err = run_cli("run", *SWEEP, "--families", "constant", "--trials", "1", "--out", str(out))
    assert (
        code == 2 and "a directory stands where the journal's lock file goes" in err and err.count("\n") == 1
    ), err
    assert time.monotonic() - started < 10
    left = {p.name for p in out.iterdir()}
    assert (
        left <= {"optuna.journal.lock", "optuna.journal.lr-study.flock"}
        and (out / "optuna.journal.lock").is_dir()
    )


def test_a_read_only_journal_reads_only_what_is_new_and_an_archive_once(tmp_path, monkeypatch) -> None:
    """Optuna reads the logs on every access to a study: reading the whole file each time (and
    decompressing a 70 MB archive) made the published page's rebuild take hours. Appends made
    between reads are read, a half last line waits for its end, and an archive is read once."""
    import lzma

    from study.storage import journal as journal_module
    from study.storage.journal import ReadOnlyJournalFile

    record = b'{"op_code": 0, "worker_id": "w", "study_name": "s%d", "directions": [1]}\n'
    plain = tmp_path / "plain.journal"
    plain.write_bytes(record % 0 + (record % 1)[:10])
    reader = ReadOnlyJournalFile(plain)
    assert [r["study_name"] for r in reader.read_logs(0)] == ["s0"]
    with plain.open("ab") as file:  # the writer finishes its line, then appends one more
        file.write((record % 1)[10:] + record % 2)
    assert [r["study_name"] for r in reader.read_logs(1)] == ["s1", "s2"]
    assert [r["study_name"] for r in reader.read_logs(0)] == ["s0", "s1", "s2"]

    archive = tmp_path / "archived.journal.xz"
    archive.write_bytes(lzma.compress(record % 0 + record % 1))
    calls, decompress = [], lzma.decompress
    monkeypatch.setattr(journal_module.lzma, "decompress", lambda data: calls.append(1) or decompress(data))
    reader = ReadOnlyJournalFile(archive)
    for _ in range(5):
        assert len(list(reader.read_logs(0))) == 2
    assert len(calls) == 1
