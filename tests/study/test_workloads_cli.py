"""Workloads through the commands: several in one sweep, and your own, imported by path."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from study.reporting.analysis import load_studies
from tests.conftest import REPO

QUICK = ["--families", "constant,cosine", "--trials", "2", "--epochs", "2", "--seeds", "2"]


def _readme_example(module: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's example workload, written as ``module.py`` and importable, as a user would."""
    readme = (REPO / "README.md").read_text()
    [code] = re.findall(r"```python\n# my_workload\.py\n(.*?)```", readme, flags=re.DOTALL)
    (tmp_path / f"{module}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.slow
def test_the_readme_example_workload_sweeps_reports_and_trains(
    run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _readme_example("readme_workload", tmp_path, monkeypatch)
    out = tmp_path / "out"
    code, _, err = run_cli("run", "--workload", "readme_workload:WORKLOAD", *QUICK, "--out", str(out))
    assert code == 0, err
    studies = load_studies(str(out / "optuna.journal"))
    assert sorted(studies) == ["readme_workload:WORKLOAD-sgd-constant", "readme_workload:WORKLOAD-sgd-cosine"]
    assert studies["readme_workload:WORKLOAD-sgd-cosine"].user_attrs["target"] == 0.80
    assert (out / "report" / "index.html").exists()
    assert not [f.name for f in (out / "report").iterdir() if ":" in f.name], (
        "no colon in a file name (Windows)"
    )
    assert (out / "report" / "readme_workload_WORKLOAD-sgd-ranking.csv").is_file()
    summary = (out / "report" / "summary.md").read_text()
    assert "initialization, data order and the train/validation/test split" in summary  # its load draws them
    assert "the test set is fixed" not in summary
    code, out_text, err = run_cli(
        "report", "--out", str(out), "--seeds", "2"
    )  # stored studies find the workload again by its path
    assert code == 0, err
    code, out_text, err = run_cli(
        "train",
        "--workload",
        "readme_workload:WORKLOAD",
        "--family",
        "constant",
        "--lr",
        "0.05",
        "--epochs",
        "2",
    )
    assert code == 0, err
    assert out_text.strip().splitlines()[-1].startswith("test accuracy: ")


def test_a_function_returning_a_workload_works_too(run_cli, tmp_path: Path, monkeypatch) -> None:
    _readme_example("factory_workload", tmp_path, monkeypatch)
    (tmp_path / "factory_workload.py").write_text(
        (tmp_path / "factory_workload.py").read_text() + "\n\ndef make():\n    return WORKLOAD\n"
    )
    code, _, err = run_cli(
        "run", "--workload", "factory_workload:make", *QUICK, "--no-report", "--out", str(tmp_path)
    )
    assert code == 0, err
    assert "factory_workload:make-sgd-cosine" in load_studies(str(tmp_path / "optuna.journal"))


@pytest.mark.parametrize(
    "spec,message",
    [
        ("no_such_module_here:WORKLOAD", "cannot import 'no_such_module_here' (ModuleNotFoundError"),
        ("bad_workloads:MISSING", "module 'bad_workloads' has no 'MISSING'"),
        ("bad_workloads:NUMBER", "NUMBER is a int, not an objectives.Workload"),
        ("bad_workloads:broken", "broken() raised RuntimeError: no data today"),
        ("bad_workloads", "invalid choice: 'bad_workloads'"),
    ],
)
def test_a_bad_workload_path_is_one_line(
    spec: str, message: str, run_cli, tmp_path: Path, monkeypatch
) -> None:
    (tmp_path / "bad_workloads.py").write_text(
        "NUMBER = 3\n\ndef broken():\n    raise RuntimeError('no data today')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for command in ("run", "train", "lr_find"):
        code, _, err = run_cli(command, "--workload", spec, "--out", str(tmp_path / "out"))
        assert code == 2 and err.count("\n") == 1 and message in err, (command, err)
        assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_several_workloads_sweep_into_one_storage_and_one_report(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("run", "--workload", "moons,mnist1d", *QUICK, "--out", str(tmp_path))
    assert code == 0, err
    studies = load_studies(str(tmp_path / "optuna.journal"))
    assert sorted(studies) == [
        "mnist1d-sgd-constant", "mnist1d-sgd-cosine", "moons-sgd-constant", "moons-sgd-cosine"
    ]  # fmt: skip
    assert out.index("moons, sgd") < out.index("mnist1d, sgd"), "one after the other, as listed"
    report = tmp_path / "report"
    assert len(pd.read_csv(report / "moons-sgd-ranking.csv", comment="#")) == 2
    assert len(pd.read_csv(report / "mnist1d-sgd-ranking.csv", comment="#")) == 2
    assert (report / "sgd-performance_profile.png").exists()
