"""Killed in the middle of a storage write: the same command recovers and loses nothing.

The sweep runs in a subprocess whose journal backend takes the journal's lock, writes half of its
k-th append and then SIGKILLs its own process, for several k: while creating the studies, while
a trial reports its epochs, and while a trial is told its result. The lock it dies holding must
not block the rerun, and the half record must not corrupt what follows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from objectives.stored import counts_as_finished
from study.reporting.analysis import load_studies
from tests.conftest import REPO, SWEEP, comparable

HARNESS = """
import json, os, signal, sys
from study.storage.journal import JournalFile
from study.cli import run_main
from study.run import main

die_at, calls, write = int(sys.argv[1]), 0, JournalFile._write

def write_or_die(self, logs):
    global calls
    calls += 1
    if calls == die_at:
        data = ("\\n".join(json.dumps(log) for log in logs) + "\\n").encode()
        self.lock.acquire()
        with open(self.path, "ab") as file:
            file.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return write(self, logs)

JournalFile._write = write_or_die
run_main(main, sys.argv[2:])
"""


@pytest.mark.parametrize("die_at", [3, 15, 27, 38])  # of the sweep's 50 appends (counted with --jobs 1)
@pytest.mark.slow
def test_killed_mid_write_resumes_with_nothing_lost(die_at: int, run_cli, tmp_path: Path) -> None:
    args = [*SWEEP, "--families", "constant,cosine", "--trials", "6", "--out", str(tmp_path)]
    killed = subprocess.run(
        [sys.executable, "-c", HARNESS, str(die_at), *args],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert killed.returncode == -9, "the harness must die mid-write"
    journal = tmp_path / "optuna.journal"
    assert not journal.read_bytes().endswith(b"\n")
    before = load_studies(str(journal))  # Optuna itself skips the half record
    finished_before = {
        name: [row for row, t in zip(comparable(study), study.trials) if counts_as_finished(t)]
        for name, study in before.items()
    }

    code, _, err = run_cli("run", *args)

    assert code == 0, err
    assert "dropped a half-written last record" in err
    after = load_studies(str(journal))
    assert sorted(after) == ["moons-sgd-constant", "moons-sgd-cosine"]
    for name, study in after.items():
        assert sum(map(counts_as_finished, study.trials)) == 6
        kept = {row[0] for row in finished_before.get(name, [])}
        assert [row for row in comparable(study) if row[0] in kept] == finished_before.get(name, [])
