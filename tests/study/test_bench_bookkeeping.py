"""The bookkeeping benchmark times the parts of a real sweep and leaves nothing patched."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from objectives.engine import training
from study.bench import bookkeeping as bench_bookkeeping
from tests.conftest import SWEEP


def test_it_times_each_part_of_a_sweep_and_restores_what_it_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    originals = [getattr(owner, name) for _, owner, name in bench_bookkeeping.TIMED]
    bench_bookkeeping.main([*SWEEP, "--families", "constant", "--trials", "6", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    shares = {line[:45].strip(): line.split()[-1] for line in out.splitlines() if line.endswith("%")}
    assert shares["the sweep"] == "100.0%"
    assert float(shares["training epochs (train + validate)"].rstrip("%")) > 10
    assert float(shares["reporting each epoch (trial.report)"].rstrip("%")) > 0  # 6 trials x 3 epochs
    assert [getattr(owner, name) for _, owner, name in bench_bookkeeping.TIMED] == originals
    assert optuna.trial.Trial.report is originals[7] and training._train_epoch is originals[1]


def test_a_bad_argument_exits_as_the_run_does(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        bench_bookkeeping.main(["--trials", "0"])
    assert stopped.value.code == 2 and "--trials" in capsys.readouterr().err


def test_help_prints_the_runs_options_and_times_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    bench_bookkeeping.main(["--help"])
    out = capsys.readouterr().out
    assert "--trials" in out and "bookkeeping" not in out
