"""What the project writes under --out: its own files only, and whole reports even two at once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from study.errors import UsageError
from study.reporting.output import STAGING_PREFIX, STAGING_SUFFIX, staged_report, write_file
from tests.conftest import REPO, TINY


def _report_files(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in (out / "report").iterdir()}


def test_two_reports_written_at_once_both_finish_whole_and_the_last_switch_wins(tmp_path) -> None:
    with staged_report(tmp_path) as first:
        write_file(first / "index.html", "first")
        with staged_report(tmp_path) as second:
            write_file(second / "index.html", "second, begun")
        assert _report_files(tmp_path) == {"index.html": "second, begun"}
        assert first.is_dir(), "a report being written is not removed by another's switch"
        write_file(first / "summary.md", "first, still writing")
    assert _report_files(tmp_path) == {"index.html": "first", "summary.md": "first, still writing"}
    assert [p.name for p in tmp_path.glob(STAGING_PREFIX + "*")] == [first.name]


def test_a_report_never_touches_what_it_did_not_write(tmp_path) -> None:
    (tmp_path / ".report-mine.txt").write_text("notes")
    (tmp_path / ".report-own").mkdir()
    (tmp_path / ".report-own" / "data").write_text("kept")
    with staged_report(tmp_path) as report:
        write_file(report / "index.html", "page")
    with staged_report(tmp_path) as report:
        write_file(report / "index.html", "page again")
    assert (tmp_path / ".report-mine.txt").read_text() == "notes"
    assert (tmp_path / ".report-own" / "data").read_text() == "kept"
    assert len(list(tmp_path.glob(STAGING_PREFIX + "*" + STAGING_SUFFIX))) == 1


@pytest.mark.parametrize("kind", ["directory", "link elsewhere"])
def test_a_report_folder_the_project_did_not_make_is_refused_untouched(kind: str, tmp_path) -> None:
    report, elsewhere = tmp_path / "report", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "thesis.tex").write_text("mine")
    if kind == "directory":
        report.mkdir()
        (report / "thesis.tex").write_text("mine")
    else:
        report.symlink_to(elsewhere)
    with pytest.raises(UsageError, match="is not a report this project wrote"), staged_report(tmp_path):
        pass
    assert (report / "thesis.tex").read_text() == "mine" and (elsewhere / "thesis.tex").read_text() == "mine"
    assert not list(tmp_path.glob(STAGING_PREFIX + "*"))


def test_a_file_is_never_written_through_a_link_someone_else_put_there(tmp_path) -> None:
    target = tmp_path / "precious.png"
    target.write_bytes(b"precious")
    (tmp_path / "figure.png").symlink_to(target)
    with pytest.raises(UsageError, match="symbolic link this project did not make"):
        write_file(tmp_path / "figure.png", b"plot")
    assert target.read_bytes() == b"precious"


def test_lr_find_refuses_to_write_through_a_link(run_cli, tmp_path) -> None:
    target = tmp_path / "precious.png"
    target.write_bytes(b"precious")
    (tmp_path / "out" / "lr_find").mkdir(parents=True)
    (tmp_path / "out" / "lr_find" / "moons-sgd.png").symlink_to(target)
    code, _, err = run_cli("lr_find", "--workload", "moons", "--out", str(tmp_path / "out"))
    assert code == 2 and err.count("\n") == 1 and "symbolic link this project did not make" in err, err
    assert target.read_bytes() == b"precious"


@pytest.mark.slow
def test_two_report_commands_on_one_output_both_finish(run_cli, tmp_path) -> None:
    sweep = [*TINY, "--families", "constant,cosine", "--trials", "3", "--out", str(tmp_path)]
    assert run_cli("run", *sweep, "--no-report")[0] == 0
    command = [sys.executable, "-m", "study.report", "--out", str(tmp_path), "--seeds", "2", "--jobs", "1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reports = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for report in reports:
        assert report.wait(timeout=300) == 0, report.stderr.read()
    page = (tmp_path / "report" / "index.html").read_text()
    assert page.rstrip().endswith("</html>") and (tmp_path / "report" / "summary.md").exists()
