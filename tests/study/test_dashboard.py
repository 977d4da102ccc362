"""The real optuna-dashboard server shows what a sweep stored: studies, trials, curves, notes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

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
