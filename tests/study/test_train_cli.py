"""``python -m study.train``: one configuration, and stored trials re-trained exactly."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from objectives.stored import stored_curve
from study.reporting.analysis import load_studies
from tests.conftest import SWEEP, TINY


def test_train_prints_one_row_per_epoch(run_cli) -> None:
    code, out, err = run_cli("train", *TINY, "--family", "exponential", "--lr", "0.3", "--param", "gamma=0.9")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == [
        "epoch", "train_loss", "val_loss", "val_acc", "lr_at_epoch_end", "momentum_at_epoch_end", "seconds_cumulative"
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[1:4]] == ["1", "2", "3"]
    assert lines[-2].startswith("final val_acc ")
    assert re.fullmatch(r"test accuracy: 0\.\d{4}", lines[-1])


def test_a_stored_trial_is_retrained_to_the_same_curve(run_cli, tmp_path: Path) -> None:
    assert run_cli("run", *SWEEP, "--families", "one_cycle", "--trials", "2", "--out", str(tmp_path))[0] == 0
    stored = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-one_cycle"].trials[1]
    code, out, err = run_cli(
        "train", "--from-study", "moons-sgd-one_cycle", "--trial", "1", "--out", str(tmp_path)
    )
    assert code == 0, err
    rows = [line.split() for line in out.strip().splitlines()[2:-2]]
    curve = stored_curve(stored.user_attrs)  # six significant digits, as the table's six decimals
    assert [float(row[3]) for row in rows] == pytest.approx(curve["val_acc"], rel=1e-5)
    assert [float(row[2]) for row in rows] == pytest.approx(curve["val_loss"], rel=1e-5)
    assert f"final val_acc {stored.value:.4f}" in out
