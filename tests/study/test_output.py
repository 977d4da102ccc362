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


CTRL_C_WHILE_MAKING = """
import os, signal, sys, tempfile
from study.cli import run_main
from study.reporting import output

make_directory = tempfile.mkdtemp

def mkdtemp_then_ctrl_c(**kwargs):
    made = make_directory(**kwargs)
    os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C before the directory is locked and named
    return made

output.tempfile.mkdtemp = mkdtemp_then_ctrl_c

def main(argv):
    with output.staged_report(output.Path(argv[0])):
        raise AssertionError("never reached: Ctrl-C stops the report before it draws")

run_main(main, sys.argv[1:])
"""


def test_ctrl_c_while_a_report_directory_is_made_leaves_nothing_a_later_report_keeps(tmp_path) -> None:
    """Issue 38 (F11): a ``.making`` directory was left for good; now Ctrl-C waits until the
    directory has the name, and the lock, by which the next report knows it ended."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_MAKING, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 130 and done.stderr.startswith("interrupted;"), done.stderr
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(STAGING_PREFIX) and left.name.endswith(STAGING_SUFFIX)
    with staged_report(tmp_path) as report:
        write_file(report / "index.html", "page")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["report", report.name])


CTRL_C_WHILE_PYTHON_TEARS_DOWN = """
import os, signal, sys, time
from study.cli import run_main

class SendsCtrlCWhenFreed:
    def __del__(self):  # module teardown, where CPython has put back SIGINT's default action
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)

kept_until_teardown = SendsCtrlCWhenFreed()
run_main(lambda argv: print("report: done"), [])
"""


def test_ctrl_c_after_a_command_has_ended_changes_nothing() -> None:
    """Issue 38 (F11): Ctrl-C in the seconds Python takes to free a finished report's memory
    ended the process by the signal, with no message and a failing exit code; the work was done."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_WHILE_PYTHON_TEARS_DOWN],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "report: done\n", "")
