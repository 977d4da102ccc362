"""Every built-in workload, end to end on its real data: sweep, re-evaluation in worker processes
(which take the workload by pickle), report. A defect only real data shows (MNIST's loader was a
closure no worker could unpickle) cannot hide behind tests on made-up files.

The real files are those in ``../shared/data`` (md5-checked by the loaders); where that folder is
absent the file-based workloads skip, saying so, and CI, which has it, runs them all."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from objectives.workloads.registry import WORKLOADS
from study.reporting.analysis import load_studies
from tests.conftest import run_subprocess

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

NEEDS = {
    "mnist": "mnist",
    "fashion-mnist": "fashion-mnist",
    "fashion-mnist-cnn": "fashion-mnist",
    "shakespeare": "tinyshakespeare",
    "shakespeare-small": "tinyshakespeare",
    "cifar10": "cifar-10-batches-py",
}
"""The folder of ``../shared/data`` a file-based workload reads; the others make their data."""

ONE_SEED = {"mnist", "fashion-mnist", "fashion-mnist-cnn", "cifar10"}
"""60,000-image workloads re-evaluate one seed, here in the main process: an epoch of
fashion-mnist-cnn takes 30 s here. Their pickling for the worker pool is
``test_workloads.py::test_every_built_in_workload_pickles_by_reference``; the pool itself runs
here for every other workload."""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_built_in_workload_sweeps_reevaluates_and_reports(name: str, tmp_path: Path) -> None:
    """Each workload's own settings but one epoch: the test is that the whole path runs on the
    real files, which one epoch shows as well as ten (and keeps CI under ten minutes)."""
    folder = NEEDS.get(name)
    if folder and not (SHARED_DATA / folder).is_dir():
        pytest.skip(f"{SHARED_DATA / folder} is absent (CI has MNIST, Fashion-MNIST and tiny Shakespeare)")
    out, seeds = tmp_path / "out", 1 if name in ONE_SEED else 2
    started = time.monotonic()
    done = run_subprocess(
        "run",
        ["--workload", name, "--data-dir", str(SHARED_DATA), "--families", "cosine", "--trials", "1",
         "--repeats", "1", "--seeds", str(seeds), "--jobs", "2", "--protocol", "budgeted", "--out", str(out), "--epochs", "1"],
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    print(f"{name}: {time.monotonic() - started:.0f} s end to end")  # the closing note's times (pytest -s)
    assert "Traceback" not in done.stderr
    (study,) = load_studies(str(out / "optuna.journal")).values()
    assert len(study.user_attrs["reevaluation"]["runs"]) == seeds  # two: from the worker pool
    assert (out / "report" / "index.html").is_file()
