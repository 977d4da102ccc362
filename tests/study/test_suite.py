"""``study.run --suite``: the cross-workload study as one resumable command. The ``smoke`` suite
(the standard suite's command at a tiny budget, on the workloads that need no download) runs
here, so CI runs the command end to end."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from objectives.stored import counts_as_finished, stored_experiment
from study.reporting.analysis import load_studies
from study.reporting.artifacts import substance
from study.suites import SUITES
from tests.conftest import REPO
from tests.study.test_crash_safety import HARNESS

pytestmark = pytest.mark.slow  # the smoke suite is the whole command on three workloads

SMOKE = SUITES["smoke"]
FAMILIES = ["constant", "cosine", "wsd", "schedule_free"]
"""Four families keep the run short; each kind of schedule code (torch scheduler, own formula,
schedule-free optimizer) is among them."""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The smoke suite, run once as a user would (``--jobs 2``), on four families."""
    from study.cli import run_main
    from study.run import main

    out = tmp_path_factory.mktemp("smoke")
    with pytest.raises(SystemExit) as done:
        run_main(
            main, ["--suite", "smoke", "--families", ",".join(FAMILIES), "--jobs", "2", "--out", str(out)]
        )
    assert done.value.code == 0
    return out


def _without_provenance(page: str) -> str:
    """The page without its provenance line, each embedded figure as a hash of its pixels."""
    page = re.sub(r"Made by `[^`]*` at commit .*? when it began writing this report\.", "", page)
    return re.sub(
        r"data:image/png;base64,([^\"]+)",
        lambda m: hashlib.sha256(substance("x.png", base64.b64decode(m.group(1)))).hexdigest(),
        page,
    )


def test_each_workload_is_swept_and_re_evaluated_with_its_own_budget(smoke: Path) -> None:
    studies = load_studies(str(smoke / "optuna.journal")).values()
    for part in SMOKE.parts:
        mine = [s for s in studies if stored_experiment(s.user_attrs).workload == part.workload]
        budgeted = [s for s in mine if not stored_experiment(s.user_attrs).is_grid]
        assert len(budgeted) == len(FAMILIES) * SMOKE.repeats, part.workload
        for study in budgeted:
            assert sum(map(counts_as_finished, study.trials)) == part.trials
            assert stored_experiment(study.user_attrs).epochs == part.epochs
            assert len(study.user_attrs["reevaluation"]["seeds"]) == part.seeds
        grids = [s for s in mine if stored_experiment(s.user_attrs).is_grid]
        assert len(grids) == len(FAMILIES), part.workload  # one grid study a family
        for study in grids:
            experiment = stored_experiment(study.user_attrs)
            assert experiment.selection_seeds == part.selection_seeds and experiment.epochs == part.epochs
            assert (
                sum(map(counts_as_finished, study.trials)) >= 13 * part.selection_seeds
            )  # the window, maybe more
            assert len(study.user_attrs["reevaluation"]["seeds"]) == part.grid_seeds


def test_the_suite_report_opens_with_the_cross_workload_answer(smoke: Path) -> None:
    page = (smoke / "report" / "index.html").read_text()
    assert page.index("<h2>The answer</h2>") < page.index("<h2>digits with sgd: the grid protocol</h2>")
    assert page.index("the grid protocol</h2>") < page.index("<h2>Across workloads (budgeted)</h2>")
    assert page.index("<h2>Across workloads (budgeted)</h2>") < page.index("<h2>digits with sgd</h2>")
    placement = pd.read_csv(smoke / "report" / "placement.csv", comment="#")
    assert sorted(placement["family"]) == sorted(FAMILIES)
    assert "bootstrap draws" in page and "Made by `python -m study.run --suite smoke --families" in page
    across = pd.read_csv(smoke / "report" / "across_workloads.csv", comment="#")
    assert len(across) == len(FAMILIES) and {f"{p.workload}-sgd verdict" for p in SMOKE.parts} <= set(
        across.columns
    )
    assert {"worst_gap_pct", "lr_band_decades", "picked_share", "profile_score"} <= set(across.columns)


def test_study_report_rebuilds_the_same_page_from_the_suites_storage(
    smoke: Path, run_cli, tmp_path: Path
) -> None:
    code, _, err = run_cli("report", "--storage", str(smoke / "optuna.journal"), "--out", str(tmp_path))
    assert code == 0, err
    assert "re-evaluating" not in err, "each study's stored seeds are reused: nothing is re-trained"
    rebuilt, original = ((out / "report" / "index.html").read_text() for out in (tmp_path, smoke))
    assert _without_provenance(rebuilt) == _without_provenance(original)


def test_a_suite_sets_the_budgets_so_setting_one_beside_it_is_a_usage_error(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("run", "--suite", "smoke", "--trials", "5", "--out", str(tmp_path))
    assert code == 2 and err.strip().count("\n") == 0 and "--suite smoke sets --trials" in err
    code, _, err = run_cli("run", "--suite", "nope", "--out", str(tmp_path))
    assert code == 2 and "unknown suite 'nope'" in err
    assert not any(tmp_path.iterdir()), "nothing written"


def test_killed_in_its_second_workload_the_same_command_finishes_the_suite(run_cli, tmp_path: Path) -> None:
    """SIGKILLed mid-write while the second workload sweeps (the harness of
    ``test_crash_safety``): the same command resumes, keeps what finished, and ends with the
    report."""
    args = ["--suite", "smoke", "--families", "constant,cosine", "--jobs", "1", "--no-report", "--protocol", "budgeted",
            "--out", str(tmp_path)]  # fmt: skip
    killed = subprocess.run(
        [sys.executable, "-c", HARNESS, "80", *args],  # mnist1d is appends 53 to 104 of the 156
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, check=False, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    before = load_studies(str(tmp_path / "optuna.journal"))
    assert {name.split("-sgd-")[0] for name in before} == {
        "digits",
        "mnist1d",
    }  # (attributes may be unwritten)

    code, _, err = run_cli("run", *[a for a in args if a != "--no-report"])

    assert code == 0, err
    after = load_studies(str(tmp_path / "optuna.journal"))
    assert len(after) == 3 * 2 * SMOKE.repeats
    for name, study in after.items():
        assert sum(map(counts_as_finished, study.trials)) == 2, name
        finished = [t.number for t in before[name].trials if counts_as_finished(t)] if name in before else []
        assert all(counts_as_finished(study.trials[n]) for n in finished), "finished trials stay finished"
    assert (tmp_path / "report" / "across_workloads.csv").is_file()
