"""The language model end to end: its studies minimize bits per character, and every label says so."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna_dashboard import get_note

from objectives.workloads import registry as workloads
from objectives.workloads.datasets import Dataset, md5_of
from study.reporting.analysis import load_studies
from tests.objectives.test_population import _verse


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A small made-up corpus standing in for tiny Shakespeare (its md5 is the canonical one here)."""
    data = _verse(30_000).encode()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input.txt").write_bytes(data)
    monkeypatch.setattr(workloads, "SHAKESPEARE", Dataset("tinyshakespeare", {"input.txt": md5_of(data)}, ()))
    return tmp_path / "data"


@pytest.mark.slow
def test_shakespeare_sweeps_and_reports_bits_per_character(run_cli, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--workload", "shakespeare", "--data-dir", str(corpus), "--families", "constant,warmup_cosine"]
    code, stdout, err = run_cli(
        "run", *args, "--trials", "2", "--epochs", "1", "--seeds", "2", "--out", str(out)
    )
    assert code == 0, err
    assert (
        "shakespeare, adamw: 2 trials per family and tuning run, target val_bits_per_char 3.2" in stdout
    )  # AdamW by default
    assert "best_val_bits_per_char" in stdout
    for name, study in load_studies(str(out / "optuna.journal")).items():
        assert study.direction == optuna.study.StudyDirection.MINIMIZE, name
        assert study.metric_names == ["val_bits_per_char"]
        assert "final validation bits per character (`val_bits_per_char`, minimized)" in get_note(study)
        for trial in study.trials:
            assert 0 < trial.value <= workloads.get_workload("shakespeare").metric.worst
    page = (out / "report" / "index.html").read_text()
    assert "test bits per character" in page and "validation bits per character &lt;= 3.2" in page
    assert "accuracy" not in page.replace("next-character accuracy", "")
