"""Optuna's own storage tests, run against this project's journal file.

They come from the sdist of the installed Optuna (its wheel ships no tests), fetched once with
pip and kept in the user's cache; without the registry the test skips and says so. The journal
cases of ``test_storages.py`` and every file case of ``journal_tests/test_journal.py`` run with
``tests/optuna_suite/optuna_conftest.py`` substituting ``study.storage.journal.JournalFile``, plainly
and holding records as a sweep does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import optuna
import pytest

from tests.conftest import REPO

SUITE = ["tests/storages_tests/test_storages.py", "tests/storages_tests/journal_tests/test_journal.py"]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lr-schedule-study"


def _optuna_tests() -> Path:
    """The installed Optuna's ``tests/`` folder, from its sdist (downloaded once)."""
    root = CACHE / f"optuna-{optuna.__version__}"
    if (root / SUITE[1]).exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
         f"optuna=={optuna.__version__}", "--dest", str(CACHE)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    sdist = CACHE / f"optuna-{optuna.__version__}.tar.gz"
    if download.returncode or not sdist.exists():
        pytest.skip(
            f"cannot fetch Optuna {optuna.__version__}'s sdist for its tests: {download.stderr[-300:]}"
        )
    staging = CACHE / f".optuna-{optuna.__version__}-{os.getpid()}"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if "/tests/" in m.name]
        archive.extractall(staging, members=members, filter="data")
    shutil.rmtree(root, ignore_errors=True)
    (staging / f"optuna-{optuna.__version__}").rename(root)  # whole, or not there
    shutil.rmtree(staging, ignore_errors=True)
    return root


@pytest.mark.parametrize("held", [False, True], ids=["plain", "held"])
def test_optunas_storage_tests_pass_on_this_projects_journal(held: bool) -> None:
    root = _optuna_tests()
    shutil.copy(REPO / "tests" / "optuna_suite" / "optuna_conftest.py", root / "tests" / "conftest.py")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-k", "journal and not redis and not grpc or file_with", "-W", "ignore::DeprecationWarning",
         "-W", "ignore::FutureWarning", *SUITE],
        cwd=root, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO), "LR_STUDY_HELD": "1" if held else "0"},
    )  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary
