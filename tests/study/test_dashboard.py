"""The real optuna-dashboard server shows what a sweep stored: studies, trials, curves, notes."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from study.reporting.dashboard import VERDICT_HEADING
from tests.conftest import SWEEP

FAMILIES = ["constant", "cosine", "plateau"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture
def dashboard(run_cli, tmp_path: Path) -> Iterator[str]:
    """The base URL of optuna-dashboard serving a tiny sweep's journal, after its report."""
    code, _, err = run_cli(
        "run", *SWEEP, "--families", ",".join(FAMILIES), "--trials", "3", "--out", str(tmp_path)
    )
    assert code == 0, err
    code, _, err = run_cli("report", "--out", str(tmp_path), "--seeds", "2")
    assert code == 0, err
    executable = shutil.which("optuna-dashboard")
    assert executable, "optuna-dashboard is a dependency and must be installed"
    port = _free_port()
    server = subprocess.Popen(
        [executable, str(tmp_path / "optuna.journal"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _get(f"{base}/api/studies")
            break
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline and server.poll() is None, "optuna-dashboard did not start"
            time.sleep(0.2)
    yield base
    server.terminate()
    server.wait(timeout=10)


def test_dashboard_lists_every_family_with_curves_params_and_attributes(dashboard: str) -> None:
    summaries = _get(f"{dashboard}/api/studies")["study_summaries"]
    assert sorted(s["study_name"] for s in summaries) == [
        f"moons-sgd-{family}" for family in sorted(FAMILIES)
    ]
    for summary in summaries:
        family = summary["study_name"].rsplit("-", 1)[1]
        study = _get(f"{dashboard}/api/studies/{summary['study_id']}?after=0")
        assert study["objective_names"] == ["val_acc"]
        assert study["note"]["body"].startswith(f"## {family} on moons with sgd")
        assert {a["key"]: a["value"] for a in study["user_attrs"]}["family"] == family
        assert study["has_intermediate_values"]
        assert len(study["trials"]) == 3
        for trial in study["trials"]:
            assert trial["state"] == "Complete"
            assert "lr" in {p["name"] for p in trial["params"]}
            assert [v["step"] for v in trial["intermediate_values"]] == [1, 2, 3]
            attrs = {a["key"]: a["value"] for a in trial["user_attrs"]}
            assert {"epochs_to_target", "seconds_to_target", "diverged", "seed", "worker"} <= set(attrs)
            assert json.loads(attrs["curve_epoch"]) == [1, 2, 3]  # one attribute per quantity
            assert len(json.loads(attrs["curve_val_acc"])) == 3


def test_each_study_page_shows_its_family_figures(dashboard: str) -> None:
    """The report stores three small Plotly figures per study; the dashboard serves them."""
    for summary in _get(f"{dashboard}/api/studies")["study_summaries"]:
        study = _get(f"{dashboard}/api/studies/{summary['study_id']}?after=0")
        graphs = {g["id"]: json.loads(g["graph_object"]) for g in study["plotly_graph_objects"]}
        assert sorted(graphs) == ["best-curves", "reevaluation", "tuned-schedule"]
        per_seed = graphs["reevaluation"]["data"][0]["y"]
        assert isinstance(per_seed, list) and len(per_seed) == 2 and all(0 <= v <= 1 for v in per_seed)
        assert len(graphs["best-curves"]["data"]) == 3  # the sweep's three complete trials
        assert all(len(g["graph_object"]) < 100_000 for g in study["plotly_graph_objects"]), "kept small"


def test_each_study_note_gains_its_verdict_once_however_many_reports(
    dashboard: str, run_cli, tmp_path: Path
) -> None:
    """Read through the dashboard's HTTP API, as its page shows it; a second report replaces the
    verdict instead of adding another, and keeps the rest of the note."""
    code, _, err = run_cli("report", "--out", str(tmp_path))
    assert code == 0, err
    page = (
        tmp_path / "report" / "index.html"
    ).absolute()  # the link that stays, not the copy it points to now
    verdicts = []
    for summary in _get(f"{dashboard}/api/studies")["study_summaries"]:
        family = summary["study_name"].rsplit("-", 1)[1]
        note = _get(f"{dashboard}/api/studies/{summary['study_id']}?after=0")["note"]["body"]
        assert note.startswith(f"## {family} on moons with sgd"), "the sweep's description is kept"
        assert note.count(VERDICT_HEADING) == 1 and note.rstrip().endswith(f"- Report: `{page}`")
        verdict = note.split(VERDICT_HEADING)[1]
        assert "- Reference on moons with sgd: **" in verdict and "decades of base LR" in verdict
        verdicts.append(re.search(r"Verdict: \*\*(\w+)\*\*|is the reference", verdict).group(0))
        assert ("Verdict: **" in verdict) == ("unadjusted 95% CI" in verdict and "Holm-corrected" in verdict)
    assert verdicts.count("is the reference") == 1 and len(verdicts) == len(FAMILIES)
    for shown in verdicts:
        assert shown == "is the reference" or shown.split("**")[1] in (
            "worse",
            "better",
            "equivalent",
            "inconclusive",
        )


def test_family_figures_keep_titles_and_labels_clear_of_the_toolbar_and_round_the_mean(
    dashboard: str,
) -> None:
    summary = _get(f"{dashboard}/api/studies")["study_summaries"][0]
    study = _get(f"{dashboard}/api/studies/{summary['study_id']}?after=0")
    for graph in study["plotly_graph_objects"]:
        layout = json.loads(graph["graph_object"])["layout"]
        assert layout["modebar"]["orientation"] == "v" and layout["title"]["x"] == 0.01
        assert all(a["xanchor"] == "left" for a in layout.get("annotations", [])), graph["id"]
    reevaluation = next(g for g in study["plotly_graph_objects"] if g["id"] == "reevaluation")
    [mean] = [
        a["text"]
        for a in json.loads(reevaluation["graph_object"])["layout"]["annotations"]
        if a["text"].startswith("mean ")
    ]
    assert len(mean.split()[1].split(".")[1]) <= 4, f"{mean}: to the interval's precision, not 0.98333333"


def test_a_grid_study_gets_its_own_verdict_note_and_figures_name_the_grids_lr(run_cli, tmp_path) -> None:
    """Issue 37, dashboard: every study's note has its own verdict, the grid's too."""
    from optuna_dashboard import get_note

    from study.reporting.analysis import load_studies

    args = ["--workload", "moons", "--epochs", "1", "--families", "constant,cosine", "--protocol", "grid",
            "--selection-seeds", "1", "--seeds", "2", "--out", str(tmp_path)]  # fmt: skip
    code, _, err = run_cli("run", *args)
    assert code == 0, err
    for name, study in load_studies(str(tmp_path / "optuna.journal")).items():
        note = get_note(study)
        assert "Grid protocol on moons with sgd" in note and "Chosen base LR" in note, name
        assert ("is the reference" in note) != ("Verdict: **" in note), name
        assert ("Verdict: **" in note) == ("unadjusted; equivalent" in note and "Holm-corrected" in note), (
            name
        )


def test_a_repeats_note_speaks_of_its_own_tuning_run(run_cli, tmp_path) -> None:
    """Issue 37: the note of a -repeat1 study repeated the family's text, its LR band the family's."""
    from optuna_dashboard import get_note

    from study.reporting.analysis import load_studies

    args = ["--workload", "moons", "--epochs", "2", "--families", "constant,cosine", "--protocol", "budgeted",
            "--trials", "3", "--repeats", "2", "--seeds", "2", "--out", str(tmp_path)]  # fmt: skip
    code, _, err = run_cli("run", *args)
    assert code == 0, err
    studies = load_studies(str(tmp_path / "optuna.journal"))
    first, second = get_note(studies["moons-sgd-cosine"]), get_note(studies["moons-sgd-cosine-repeat1"])
    assert "This tuning run (repeat 0 of 2)" in first and "This tuning run (repeat 1 of 2)" in second
    assert first.split("This tuning run")[1] != second.split("This tuning run")[1]
