"""The report end to end on a tiny sweep: re-evaluation, files, page, reuse, crash safety."""

from __future__ import annotations

import contextlib
import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import PIL.Image
import pytest
import torch

from objectives.experiment import Experiment
from objectives.metrics import ACCURACY
from objectives.objective import member_from_params, train_members
from objectives.seeds import trial_seed
from objectives.stored import REEVALUATION, stored_experiment
from objectives.workloads.registry import get_workload, load_splits
from study.evaluation import reevaluate
from study.reporting import render
from study.reporting.analysis import load_studies
from study.reporting.figures import draw_section
from study.reporting.sections import Section, build_section, group_studies
from tests.conftest import REPO, TINY

FAMILIES = ["constant", "cosine", "plateau"]
FIGURES = [
    "convergence",
    "schedules",
    "epochs_to_target",
    "distribution",
    "sensitivity",
    "tuning_budget",
    "importance",
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny sweep with its report, written by study.run's default ending."""
    from study.cli import run_main
    from study.run import main

    out = tmp_path_factory.mktemp("report")
    with pytest.raises(SystemExit) as done:
        run_main(
            main,
            [
                *TINY,
                "--families",
                ",".join(FAMILIES),
                "--trials",
                "6",
                "--seeds",
                "3",
                "--repeats",
                "1",
                "--protocol",
                "budgeted",
                "--out",
                str(out),
            ],
        )
    assert done.value.code == 0
    return out


def test_the_page_is_self_contained_and_answers_first(swept: Path) -> None:
    report = swept / "report"
    page = (report / "index.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.index("Reference (chosen by validation accuracy") < page.index("<table")  # the headline first
    assert "Fastest to converge:" in page or "reaches validation accuracy" in page
    images = re.findall(r'<img src="([^"]+)"', page)
    assert len(images) == len(FIGURES) and all(src.startswith("data:image/png;base64,") for src in images)
    assert page.count("<figcaption>") == len(FIGURES) and "How these numbers were made" in page
    for figure in FIGURES:
        assert (report / f"moons-sgd-{figure}.png").stat().st_size > 5_000
    for table in ("ranking", "pairwise", "trials", "reevaluation"):
        assert (report / f"moons-sgd-{table}.csv").is_file()
    ranking, tuning = (page.index(f"<h3>{title}") for title in ("Ranking", "What tuning found"))
    assert "tuned hyperparameters" in page[tuning:] and "tuned hyperparameters" not in page[ranking:tuning]
    outcomes = ("complete</th>", "pruned</th>", "failed</th>", "diverged</th>", "at chance</th>")
    assert not any(column in page[ranking:tuning] for column in outcomes), (
        "the trial outcomes beside what tuning found (those that differ between families), not in the ranking"
    )
    summary = (report / "summary.md").read_text()
    assert summary.startswith("# Which learning-rate schedule? moons / sgd") and "| family" in summary
    assert not list(report.glob(".*")), "no temporary files left"


def test_every_report_file_says_which_command_commit_machine_and_time_made_it(swept: Path) -> None:
    report = swept / "report"
    made_by = re.search(r"Made by `python -m study.run [^`]*--out [^`]*` at commit \S+.* on \d{4}-\d\d-\d\d .*UTC, on "
                        r"\d+ cores, .*torch \S+; the command had run \d+ min \d+ s when it began writing this report\.",
                        (report / "index.html").read_text())  # fmt: skip
    assert made_by, "the page names its command, commit, date, machine and wall time"
    line = html.unescape(made_by.group(0))
    assert (report / "summary.md").read_text().splitlines()[2] == line
    for table in report.glob("*.csv"):
        assert table.read_text().splitlines()[0] == f"# {line}", table.name
    for figure in report.glob("*.png"):
        assert PIL.Image.open(figure).text["Description"] == line, figure.name


def test_reevaluation_is_stored_with_fresh_seeds_on_the_test_split(swept: Path) -> None:
    for study in load_studies(str(swept / "optuna.journal")).values():
        record = study.user_attrs["reevaluation"]
        assert record["trial"] == study.best_trial.number and record["params"] == study.best_trial.params
        assert len(record["runs"]) == 3 and [run["seed"] for run in record["runs"]] == record["seeds"]
        assert not set(record["seeds"]) & {trial_seed(0, n) for n in range(1000)}, "never a tuning seed"
        for run in record["runs"]:
            assert 0 <= run["test_metric"] <= 1 and run["curve"]["epoch"] == [1, 2, 3]
    ranking = (swept / "report" / "moons-sgd-ranking.csv").read_text().splitlines()
    assert ranking[0].startswith("# Made by") and len(ranking) == 2 + len(FAMILIES)


def test_each_seed_draws_its_own_split_and_runs_as_if_alone(swept: Path) -> None:
    """A stored run is its configuration trained alone on its own seed's split (families of one
    seed train together, so this also checks that companions change nothing)."""
    study = load_studies(str(swept / "optuna.journal"))["moons-sgd-cosine"]
    record, experiment = study.user_attrs[REEVALUATION], stored_experiment(study.user_attrs)
    moons = get_workload("moons")
    splits = [load_splits(moons, seed) for seed in record["seeds"]]
    assert not torch.equal(splits[0].x_test, splits[1].x_test), "the test split is redrawn per seed"
    for seed, data, stored in zip(record["seeds"], splits, record["runs"]):
        member = member_from_params(experiment, study.best_trial.params, seed)
        [alone] = train_members(moons, experiment, data, [member], evaluate_test=True)
        assert alone.test_metric == pytest.approx(stored["test_metric"], abs=1e-6)
        np.testing.assert_allclose(alone.curve.val_loss, stored["curve"]["val_loss"], rtol=1e-5)


@pytest.mark.slow
def test_report_reuses_stored_runs_and_redoes_them_when_the_seeds_change(
    swept: Path, run_cli, monkeypatch
) -> None:
    def no_training(*args, **kwargs):
        raise AssertionError("the stored re-evaluation should have been reused")

    with monkeypatch.context() as patch:
        patch.setattr(reevaluate, "train_members", no_training)
        code, out, err = run_cli("report", "--out", str(swept))  # by default, the stored seed count (3)
        assert code == 0, err
    code, out, err = run_cli("report", "--out", str(swept), "--seeds", "2")
    assert code == 0, err
    for study in load_studies(str(swept / "optuna.journal")).values():
        assert len(study.user_attrs["reevaluation"]["runs"]) == 2
    assert out.strip().endswith("index.html")


def test_report_without_a_sweep_is_a_one_line_error(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("report", "--out", str(tmp_path))
    assert (
        code == 2
        and err
        == f"error: no sweep in {tmp_path}: {tmp_path}/optuna.journal does not exist; run python -m study.run first or give --storage\n"
    )


def test_report_on_a_sweep_with_no_finished_trial_is_a_one_line_error(run_cli, tmp_path: Path) -> None:
    """F2: a sweep killed before any trial finished made the report fail with a KeyError and
    leave a staging directory behind; now one line, exit 2, and nothing made."""
    from objectives.experiment import Experiment
    from objectives.workloads.registry import get_workload
    from study.storage.backends import open_storage
    from study.sweep.top_up import open_studies

    workload = get_workload("moons")
    experiments = [Experiment("moons", "sgd", family, 3, 32, None, 0) for family in ("constant", "cosine")]
    studies, _, _ = open_studies(
        open_storage(str(tmp_path / "optuna.journal")), workload, experiments, 2, "none"
    )
    studies[0].ask()  # a trial started, never finished: the sweep was killed
    before = sorted(p.name for p in tmp_path.iterdir())
    code, _, err = run_cli("report", "--out", str(tmp_path))
    assert code == 2 and err.startswith("error: no trial in ") and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_report_that_fails_leaves_no_staging_directory(tmp_path: Path) -> None:
    from study.reporting.output import staged_report

    with pytest.raises(RuntimeError), staged_report(tmp_path):
        raise RuntimeError("drawing failed")
    assert list(tmp_path.iterdir()) == []


HARNESS = """
import os, signal, sys
from study.reporting import output
from study import report
from study.cli import run_main

die_at, calls, write = int(sys.argv[1]), 0, output.write_file

def write_or_die(path, data):
    global calls
    calls += 1
    if calls == die_at:  # files before this one are written, the switch has not happened
        os.kill(os.getpid(), signal.SIGKILL)
    return write(path, data)

output.write_file = write_or_die
run_main(report.main, sys.argv[2:])
"""


def _contents(report: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(report.iterdir())}


@pytest.mark.parametrize("die_at", [1, 12])  # the first file, and one half-way
@pytest.mark.slow
def test_killed_while_writing_the_report_shows_the_previous_one_whole(
    die_at: int, run_cli, tmp_path: Path
) -> None:
    sweep = ["--families", "constant,cosine", "--trials", "3", "--out", str(tmp_path)]
    assert run_cli("run", *TINY, *sweep, "--seeds", "3")[0] == 0
    report = tmp_path / "report"
    previous = _contents(report)
    killed = subprocess.run(
        [sys.executable, "-c", HARNESS, str(die_at), "--out", str(tmp_path), "--seeds", "2"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert killed.returncode == -9
    assert list(tmp_path.glob(".report-*")), "the kill left a half-written report aside"
    assert _contents(report) == previous, "a reader still sees the previous report, all of it"

    code, _, err = run_cli("report", "--out", str(tmp_path), "--seeds", "2")

    assert code == 0, err
    new = _contents(report)
    assert new != previous and set(new) == set(previous)
    assert new["index.html"].rstrip().endswith(b"</html>")
    assert len(list(tmp_path.glob(".report-*"))) == 1, "only the current report's directory is left"


def test_report_files_follow_the_umask(swept: Path) -> None:
    umask = os.umask(0)
    os.umask(umask)
    for path in [swept / "report", *(swept / "report").iterdir()]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o777 if path.is_dir() else 0o666) & ~umask, (path, oct(mode))


def test_speed_ties_are_broken_by_the_curve_not_the_clock() -> None:
    ranking = pd.DataFrame(
        {
            "family": ["a", "b", "c"],
            "seeds": 3,
            "test_metric": [0.95, 0.94, 0.93],
            "test_metric_ci_low": 0.9,
            "test_metric_ci_high": 0.99,
            "epochs_to_target": [5.0, 5.0, 6.0],
            "steps_to_target": [300.0, 300.0, 360.0],
            "seconds_to_target": [0.5, 0.1, 0.05],  # b's clock is faster, by noise
            "reached_target": "3/3",
            "auc": [0.91, 0.90, 0.95],
        }
    )
    section = _section(ranking)
    assert render.headline(section)[0].startswith(
        "Fastest to converge: a, which reaches validation accuracy >= 0.93 in a median 5 epochs"
    )
    assert render.headline(section)[0].endswith("tied on epochs with b, ahead on area under the curve.")


def _section(ranking: pd.DataFrame, pairwise: pd.DataFrame | None = None) -> Section:
    """A moons / sgd report section holding only ``ranking`` (and a validation score per family)
    and, where given, ``pairwise``."""
    experiment = Experiment("moons", "sgd", "a", 10, 32, None, 0)
    reevaluation = pd.DataFrame({"family": ranking["family"], "val_metric": ranking["test_metric"]})
    empty = pd.DataFrame()
    return Section(
        "moons",
        "sgd",
        experiment,
        ACCURACY,
        0.005,
        0.93,  # target
        2,  # classes
        True,  # test split drawn per seed
        "two noisy half circles",
        empty,
        reevaluation,
        *[empty] * 4,
        ranking,
        pd.DataFrame() if pairwise is None else pairwise,
        10,
    )


GOAL = "validation accuracy >= 0.93"


@pytest.mark.parametrize(
    "verdicts,reach,first_line",
    [
        ({}, False, f"a does not reach {GOAL} with most seeds within 10 epochs."),
        ({"b": "inconclusive", "c": "equivalent"}, False, f"No family reaches {GOAL} with most seeds within 10 epochs."),
        ({"b": "worse", "c": "worse"}, False,
         f"The reference, a, does not reach {GOAL} with most seeds within 10 epochs, and every other family is worse than it."),
        ({"b": "worse", "c": "inconclusive"}, False,
         f"Neither the reference nor the 1 family not worse than it reaches {GOAL} with most seeds within 10 epochs."),
        ({"b": "worse", "c": "inconclusive"}, True, f"Fastest to converge among the reference and the 1 family not worse than it: a, which reaches {GOAL} in a median 5 epochs"),
        ({"b": "worse", "c": "worse"}, True, f"The reference, a, reaches {GOAL} in a median 5 epochs"),
        ({"b": "inconclusive", "c": "equivalent"}, True, f"Fastest to converge: a, which reaches {GOAL} in a median 5 epochs"),
    ],
)  # fmt: skip
def test_the_headline_reads_naturally_however_many_families_are_worse(
    verdicts: dict, reach: bool, first_line: str
) -> None:
    families = ["a", *verdicts]
    ranking = pd.DataFrame({"family": families, "seeds": 3, "test_metric": 0.9, "test_metric_ci_low": 0.89,
                            "test_metric_ci_high": 0.91, "epochs_to_target": 5.0 if reach else np.nan,
                            "steps_to_target": 300.0, "reached_target": "3/3" if reach else "1/3", "auc": 0.9})  # fmt: skip
    pairwise = pd.DataFrame({"family": list(verdicts), "reference": "a", "difference": -0.01, "ci_low": -0.02,
                             "ci_high": 0.0, "verdict": list(verdicts.values())})  # fmt: skip
    line = render.headline(_section(ranking, pairwise if verdicts else None))[0]
    assert line.startswith(first_line), line


def test_the_ranking_says_never_where_seeds_never_reached_the_target() -> None:
    ranking = pd.DataFrame(
        {
            "family": ["a", "b"], "seeds": 3, "test_metric": [0.95, 0.94], "test_metric_ci_low": 0.9,
            "test_metric_ci_high": 0.99, "epochs_to_target": [5.5, np.nan], "epochs_to_target_min": [4.0, 3.0],
            "epochs_to_target_max": [7.0, np.nan], "reached_target": ["3/3", "1/3"],
            "steps_to_target": [330.0, np.nan], "auc": [0.91, 0.90], "hyperparameters": ["lr=0.1", "lr=0.2"],
            "complete": [3.0, 2.0], "pruned": [0.0, 1.0], "failed": 0.0, "diverged": 0.0, "at_chance": [0.0, 1.0],
        }
    )  # fmt: skip
    [(_, shown), (_, tuning)] = render._ranking_tables(_section(ranking))
    assert list(shown["epochs to target (median)"]) == ["5.5", "never"]
    assert list(shown["min"]) == ["4", "3"] and list(shown["max"]) == ["7", "never"]
    assert list(shown["optimizer steps to target (median)"]) == ["330", "never"]
    assert "tuned hyperparameters" not in shown and list(tuning["at chance"]) == ["0", "1"]
    assert "seconds to target (median)" not in shown  # a member's share of a population's time


def test_a_column_that_says_the_same_on_every_row_is_not_shown() -> None:
    table = pd.DataFrame({"family": ["a", "b"], "max": ["never", "never"], "verdict": ["reference", "worse"]})
    assert list(render._without_constant_columns(table).columns) == ["family", "verdict"]
    assert list(render._without_constant_columns(table.head(1)).columns) == ["family", "max", "verdict"]


def test_several_workloads_get_sections_and_a_performance_profile(run_cli, tmp_path: Path) -> None:
    for workload in ("moons", "digits"):
        args = [
            "--workload",
            workload,
            "--epochs",
            "4",
            "--families",
            "constant,cosine",
            "--trials",
            "3",
            "--no-report",
        ]
        assert run_cli("run", *args, "--out", str(tmp_path))[0] == 0
    code, _, err = run_cli("report", "--out", str(tmp_path), "--seeds", "2")
    assert code == 0, err
    page = (tmp_path / "report" / "index.html").read_text()
    assert "<h2>digits with sgd</h2>" in page and "<h2>moons with sgd</h2>" in page
    assert "Across workloads (sgd)" in page and "performance profile" in page
    assert page.index("<h2>Across workloads (budgeted)</h2>") < page.index("<h2>digits with sgd</h2>"), (
        "it opens the page"
    )
    across = pd.read_csv(tmp_path / "report" / "across_workloads.csv", comment="#")
    assert set(across["family"]) == {"constant", "cosine"} and list(across["worst_gap_pct"]) == sorted(
        across["worst_gap_pct"], reverse=True
    )
    assert f"Smallest worst gap: {across['family'][0]}" in page
    assert ("Recommended: " in page) != ("picks none" in page), "the rule's answer, one way or the other"
    assert across["picked_share"].between(0, 1).all() and across["picked_share"].sum() <= 1 + 1e-9
    assert (tmp_path / "report" / "sgd-performance_profile.png").stat().st_size > 5_000
    assert (tmp_path / "report" / "digits-sgd-ranking.csv").is_file() and (
        tmp_path / "report" / "moons-sgd-ranking.csv"
    ).is_file()


def test_counts_show_as_whole_numbers_and_missing_ones_as_a_dash(swept: Path) -> None:
    shown = render._display(pd.DataFrame({"family": ["a", "b"], "max": [8.0, np.nan], "acc": [0.91234, 0.5]}))
    assert list(shown["max"]) == ["8", "-"] and list(shown["acc"]) == [0.9123, 0.5]
    summary = (swept / "report" / "summary.md").read_text()
    assert "nan" not in summary and "<NA>" not in summary


@pytest.mark.parametrize("command", ["run", "train", "report", "lr_find"])
def test_help_reads_as_plain_text(command: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"study.{command}", "--help"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert "``" not in done.stdout and not re.search(r"\w- \w", done.stdout)  # not "self- contained"


def test_repeats_store_independent_tuning_studies_and_the_report_shows_their_spread(
    run_cli, tmp_path: Path
) -> None:
    args = [*TINY, "--families", "constant,cosine", "--trials", "4", "--repeats", "2", "--seeds", "6"]
    code, _, err = run_cli("run", *args, "--out", str(tmp_path))
    assert code == 0, err
    studies = load_studies(str(tmp_path / "optuna.journal"))
    assert sorted(studies) == [
        "moons-sgd-constant", "moons-sgd-constant-repeat1", "moons-sgd-cosine", "moons-sgd-cosine-repeat1"
    ]  # fmt: skip
    first, second = studies["moons-sgd-cosine"], studies["moons-sgd-cosine-repeat1"]
    assert [t.params for t in first.trials] != [t.params for t in second.trials], "their own sampler seeds"
    assert all(len(s.user_attrs["reevaluation"]["runs"]) == 6 for s in studies.values())
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Tuning variance: 2 independent tuning studies per family" in page and "top_in" in page


def test_a_single_tuning_run_says_tuning_variance_is_not_covered(swept: Path) -> None:
    assert (
        "tuning variance is not covered (--repeats R measures it)"
        in (swept / "report" / "index.html").read_text()
    )


def test_artifact_dir_stores_each_sections_files_once_per_study(run_cli, tmp_path: Path) -> None:
    artifacts, families = tmp_path / "artifacts", ["constant", "cosine"]
    sweep = [*TINY, "--families", ",".join(families), "--trials", "3", "--seeds", "2"]
    assert run_cli("run", *sweep, "--out", str(tmp_path), "--artifact-dir", str(artifacts))[0] == 0
    studies = load_studies(str(tmp_path / "optuna.journal"))
    shown = sorted(p.name for p in (tmp_path / "report").glob("moons-sgd-*") if p.suffix in (".png", ".csv"))
    assert len(shown) >= 8  # the section's figures and tables
    for study in studies.values():
        assert sorted(m.filename for m in optuna.artifacts.get_all_artifact_meta(study)) == shown
    store = optuna.artifacts.FileSystemArtifactStore(str(artifacts))
    meta = optuna.artifacts.get_all_artifact_meta(studies["moons-sgd-cosine"])[0]
    with store.open_reader(meta.artifact_id) as stored:
        assert stored.read() == (tmp_path / "report" / meta.filename).read_bytes()

    code, _, err = run_cli("report", "--out", str(tmp_path), "--seeds", "2", "--artifact-dir", str(artifacts))
    assert code == 0, err
    for study in load_studies(str(tmp_path / "optuna.journal")).values():  # unchanged files: not again
        assert len(optuna.artifacts.get_all_artifact_meta(study)) == len(shown)


def test_artifact_dir_that_is_a_file_is_a_one_line_error(run_cli, tmp_path: Path) -> None:
    (tmp_path / "artifacts").write_text("mine")
    code, _, err = run_cli(
        "run", *TINY, "--trials", "1", "--out", str(tmp_path), "--artifact-dir", str(tmp_path / "artifacts")
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "not a directory" in err
    assert (tmp_path / "artifacts").read_text() == "mine" and not (tmp_path / "optuna.journal").exists()


@pytest.mark.parametrize("threads", ["1", "2"])  # forked workers; spawned ones
@pytest.mark.slow
def test_seeds_re_trained_in_two_processes_store_what_one_process_stores(
    run_cli, tmp_path: Path, threads: str
) -> None:
    sweep = [*TINY, "--families", "constant,cosine", "--trials", "3", "--no-report"]
    assert run_cli("run", *sweep, "--out", str(tmp_path / "one"))[0] == 0
    shutil.copytree(tmp_path / "one", tmp_path / "two")
    for name, jobs in (("one", "1"), ("two", "2")):
        argv = ["--out", str(tmp_path / name), "--seeds", "3", "--jobs", jobs, "--threads", threads]
        code, _, err = run_cli("report", *argv)
        assert code == 0, err
    one, two = (load_studies(str(tmp_path / name / "optuna.journal")) for name in ("one", "two"))
    for name in one:
        records = [s[name].user_attrs["reevaluation"] for s in (one, two)]
        for record in records:
            for run in record["runs"]:
                del run["curve"]["seconds"], run["seconds_to_target"]  # wall time differs
        assert records[0] == records[1] and len(records[0]["runs"]) == 3


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the workers through /proc")
def test_ctrl_c_twice_during_re_evaluation_in_two_processes_exits(run_cli, tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group, workers included; a second one during the
    shutdown once left the command waiting for its pool forever."""
    sweep = ["--workload", "moons", "--epochs", "30", "--families", "constant,cosine", "--trials", "2"]
    assert run_cli("run", *sweep, "--out", str(tmp_path), "--no-report")[0] == 0
    report = subprocess.Popen(
        [sys.executable, "-m", "study.report", "--out", str(tmp_path), "--seeds", "40", "--jobs", "2"],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_children(report.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(_children(report.pid)) >= 2, "the re-evaluation workers never started"
    time.sleep(0.5)
    os.killpg(report.pid, signal.SIGINT)
    time.sleep(0.2)
    os.killpg(report.pid, signal.SIGINT)
    try:
        code = report.wait(timeout=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(report.pid, signal.SIGKILL)
    assert code == 130, report.stderr.read()


def test_the_report_reads_what_a_study_stored_of_its_workload_not_the_registry(
    swept: Path, monkeypatch
) -> None:
    """A study carries its workload's classes, margin, test split and description: the report of
    a stored sweep needs no workload definition, and says what was true when it was stored."""
    from objectives.workloads import registry

    [study, *_] = load_studies(str(swept / "optuna.journal")).values()
    assert {k: study.user_attrs[k] for k in ("classes", "margin", "test_drawn_from_seed")} == {
        "classes": 2, "margin": 0.0093, "test_drawn_from_seed": True,
    }  # fmt: skip
    monkeypatch.setitem(registry.WORKLOADS, "moons", None)  # the registry no longer knows it
    [group] = group_studies(list(load_studies(str(swept / "optuna.journal")).values())).values()
    section = build_section(group)
    assert (section.classes, section.margin, section.test_drawn_from_seed) == (2, 0.0093, True)
    assert section.target == study.user_attrs["target"]
    assert set(draw_section(section)) <= set(render.figure_captions(section))  # drawn, each with its caption
    assert render.headline(section) and "Converged means" in render._markdown_section(section)
    assert section.description.startswith("two noisy half circles")


def test_numbers_that_round_to_zero_carry_no_sign() -> None:
    assert render.rounded(-0.00001, 0.003, signed=True) == "0.0000"
    assert render.rounded(-0.00001, 0.003) == "0.0000"
    assert render.rounded(-0.0123, 0.003, signed=True) == "-0.0123"
    assert render.rounded(0.0123, 0.003, signed=True) == "+0.0123"
    shown = render._display(pd.DataFrame({"difference": [-0.00001, 0.01234]})).to_html()
    assert "-0.0" not in shown and "0.0000" in shown and "0.0123" in shown


def test_legends_list_only_the_trial_states_that_occur_and_captions_count_what_is_shown() -> None:
    from study.reporting import figures

    trials = pd.DataFrame(
        {"family": ["a", "a", "b"], "final_metric": [0.9, 0.5, 0.8], "state": ["COMPLETE", "PRUNED", "COMPLETE"],
         "param_lr": [0.1, 0.2, 0.3]}
    )  # fmt: skip
    for figure in (
        figures.metric_distribution(trials, ["a", "b"], ACCURACY, 0.55),
        figures.sensitivity(trials, ["a", "b"], ACCURACY),
    ):
        [legend] = [ax.get_legend() for ax in figure.axes if ax.get_legend()]
        assert [text.get_text() for text in legend.get_texts()] == ["COMPLETE", "PRUNED"]
    assert render._highlighted(3) == "each family"
    assert render._highlighted(8) == "the 5 best-ranked families, the other 3 as grey means"


def test_the_tuning_budget_colours_the_leading_families_and_greys_the_rest() -> None:
    from study.reporting import figures

    order = [f"f{k}" for k in range(8)]
    expected = pd.DataFrame([{"family": f, "trials": n, "expected_best": 0.9 + 0.001 * n, "sd": 0.01}
                             for f in order for n in (1, 2, 4)])  # fmt: skip
    [ax] = figures.tuning_budget(expected, order, ACCURACY).axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == order[: figures.HIGHLIGHTED]
    grey = [line for line in ax.get_lines() if line.get_color() == "0.75"]
    assert len(grey) == len(order) - figures.HIGHLIGHTED and len(ax.collections) == figures.HIGHLIGHTED


def test_the_words_beside_a_bar_start_past_its_whisker() -> None:
    from study.reporting import figures

    ranking = pd.DataFrame({"family": ["a", "b", "c"], "epochs_to_target": [4.0, 5.0, np.nan],
                            "epochs_to_target_min": [3.0, 2.0, 6.0], "epochs_to_target_max": [15.0, np.nan, np.nan],
                            "reached_target": ["19/20", "12/20", "3/20"]})  # fmt: skip
    [ax] = figures.epochs_to_target(ranking, 0.9, ACCURACY, budget=20).axes
    said = {t.get_text(): t.get_position()[0] for t in ax.texts}
    assert said["only 19/20 seeds reach it"] > 15, "past the slowest seed's whisker end, at 15"
    assert said["only 12/20 seeds reach it"] > 20, "past the arrow at the end of the run"
    assert "most seeds never reach it (3/20 do)" in said
    assert ax.get_xlim()[1] > 20 * 1.4, "room for the words"


def test_the_page_shows_human_headers_and_the_csv_keeps_machine_names(swept: Path) -> None:
    page = (swept / "report" / "index.html").read_text()
    assert "p (Holm)" in page and "vs constant, 95% CI low" in page
    assert "p_holm" not in page and "vs_constant_ci_low" not in page
    assert "<th>reference</th>" not in page and "Against the reference, " in page  # named once, in the title
    csv = next((swept / "report").glob("*-pairwise.csv")).read_text().splitlines()[1]  # after the provenance
    assert "p_holm" in csv and "vs_constant_ci_low" in csv


def test_a_study_stored_by_an_earlier_version_is_refused_in_one_line(run_cli, tmp_path: Path) -> None:
    """No reader of older formats: a study of ours without today's attributes is named, with
    what it lacks, and nothing is re-trained or written."""
    from objectives.stored import study_attrs
    from study.storage.backends import open_storage

    journal = tmp_path / "optuna.journal"
    study = optuna.create_study(
        study_name="moons-sgd-cosine", storage=open_storage(str(journal)), direction="maximize"
    )
    attrs = study_attrs(Experiment("moons", "sgd", "cosine", 3, 32, None, 0), get_workload("moons"))
    for key, value in attrs.items():
        if key != "margin":
            study.set_user_attr(key, value)
    before = journal.read_bytes()
    code, out, err = run_cli("report", "--out", str(tmp_path))
    assert (code, out) == (2, "")
    assert (
        err.count("\n") == 1
        and "'moons-sgd-cosine' was stored by an earlier version" in err
        and "margin" in err
    )
    assert journal.read_bytes() == before and not (tmp_path / "report").exists()


def test_the_report_says_which_section_it_is_drawing(swept: Path, run_cli) -> None:
    """Without a terminal (stderr captured here) as on one: a plain line per section."""
    code, _, err = run_cli("report", "--out", str(swept), "--seeds", "3")
    assert code == 0, err
    assert "drawing the report: moons-sgd (1 of 1)" in err


@pytest.mark.slow
def test_a_report_rebuilds_from_an_archived_journal_without_training(run_cli, tmp_path: Path) -> None:
    """The published study keeps its journal as .journal.xz: study.report rebuilds its page from it
    on a fresh clone, nothing re-trained, the archive untouched; writers refuse it in one line."""
    import lzma

    out = tmp_path / "out"
    args = [
        "--workload",
        "moons",
        "--epochs",
        "2",
        "--families",
        "constant,cosine",
        "--trials",
        "2",
        "--seeds",
        "2",
    ]
    assert run_cli("run", *args, "--out", str(out))[0] == 0
    archive = tmp_path / "optuna.journal.xz"
    archive.write_bytes(lzma.compress((out / "optuna.journal").read_bytes()))
    before = (
        (out / "report" / "moons-sgd-reevaluation.csv").read_text().split("\n", 1)[1]
    )  # past the provenance
    (out / "optuna.journal").unlink()
    packed = archive.read_bytes()
    rebuilt = tmp_path / "rebuilt"
    code, _, err = run_cli("report", "--storage", str(archive), "--out", str(rebuilt))
    assert code == 0, err
    assert "re-evaluating" not in err
    assert (rebuilt / "report" / "moons-sgd-reevaluation.csv").read_text().split("\n", 1)[1] == before
    assert archive.read_bytes() == packed
    code, _, err = run_cli("run", *args, "--storage", str(archive), "--out", str(tmp_path / "again"))
    assert code == 2 and "archived journal" in err and err.count("\n") == 1
    code, _, err = run_cli("report", "--storage", str(archive), "--out", str(rebuilt), "--seeds", "3")
    assert code == 2 and "drop --seeds" in err


def test_a_journal_that_is_a_directory_is_said_to_be_one(run_cli, tmp_path: Path) -> None:
    """F16: study.report said a journal that is a directory does not exist."""
    (tmp_path / "optuna.journal").mkdir()
    code, _, err = run_cli("report", "--out", str(tmp_path))
    assert code == 2 and "is a directory, not a file" in err and err.count("\n") == 1, err


@pytest.mark.parametrize("damage", ["params", "values"])
def test_a_trial_no_sweep_could_have_stored_is_one_line_not_a_crash(
    run_cli, tmp_path: Path, damage: str
) -> None:
    """F8: a journal that passes the open check but holds a trial with a family's knob missing, or
    two values in a one-objective study, crashed the report with a traceback."""
    import json

    out = tmp_path / "out"
    args = ["--workload", "moons", "--epochs", "1", "--families", "one_cycle", "--trials", "2", "--seeds", "2",
            "--protocol", "budgeted", "--no-report"]  # fmt: skip
    assert run_cli("run", *args, "--out", str(out))[0] == 0
    journal = out / "optuna.journal"
    records = [json.loads(line) for line in journal.read_text().splitlines()]
    if damage == "params":  # the first trial's pct_start, never set
        records = [r for r in records if not (r["op_code"] == 5 and r.get("param_name") == "pct_start")]
    else:
        for record in records:
            if record["op_code"] == 6 and record.get("values"):
                record["values"] = [*record["values"], 0.5]
                break
    journal.write_text("".join(json.dumps(r) + "\n" for r in records))
    code, _, err = run_cli("report", "--out", str(out), "--seeds", "2")
    assert code == 2 and err.count("\n") == 1 and "holds a trial this project did not write" in err, err


def test_the_report_decodes_each_studys_attributes_once(swept: Path, run_cli, monkeypatch) -> None:
    """Optuna deep-copies a study's user attributes on every read; the report stage reads each
    study's once (``stored.decoded_once``), however many tables and figures use them."""
    import optuna

    from study.reporting import publish as publish_module

    reads: list[str] = []
    plain = optuna.Study.user_attrs

    def counted(study: optuna.Study) -> dict:
        reads.append(study.study_name)
        return plain.fget(study)

    publish = publish_module.publish

    def counting_publish(*args, **kwargs):
        reads.clear()  # the evaluation stage before it reads on its own
        with monkeypatch.context() as patch:
            patch.setattr(optuna.Study, "user_attrs", property(counted))
            return publish(*args, **kwargs)

    monkeypatch.setattr(publish_module, "publish", counting_publish)
    code, _, err = run_cli("report", "--out", str(swept), "--seeds", "3")
    assert code == 0, err
    assert reads and max(reads.count(name) for name in set(reads)) == 1, sorted(reads)
