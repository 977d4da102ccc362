"""A workload of the user's own that cannot work: one line naming it and what is wrong, exit 2,
and nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from study.reporting.analysis import load_studies

BAD_WORKLOADS = """
import dataclasses, math, sys
import torch
from torch import nn
from objectives.workloads.registry import Splits, Workload

def good_load(seed, data_dir):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(60, 5, generator=g)
    y = (x[:, 0] > 0).long()
    return Splits(x[:40], y[:40], x[40:50], y[40:50], x[50:], y[50:])

GOOD = Workload(name="good", description="5 inputs, 2 classes", load=good_load,
                make_model=lambda: nn.Linear(5, 2), input_shape=(5,), classes=2, epochs=2,
                batch_size=8, target=0.6)

def with_splits(change):
    def load(seed, data_dir):
        return change(good_load(seed, data_dir))
    return dataclasses.replace(GOOD, load=load)

def fail(seed, data_dir):
    raise RuntimeError("disk on fire")

def leave(seed, data_dir):
    sys.exit(3)

LOAD_RAISES = dataclasses.replace(GOOD, load=fail)
LOAD_EXITS = dataclasses.replace(GOOD, load=leave)
NOT_SPLITS = dataclasses.replace(GOOD, load=lambda seed, data_dir: (1, 2, 3))
WRONG_SHAPE = dataclasses.replace(GOOD, input_shape=(6,))
BAD_LABELS = with_splits(lambda s: dataclasses.replace(s, y_train=s.y_train + 5))
FLOAT_LABELS = with_splits(lambda s: dataclasses.replace(s, y_val=s.y_val.float()))
EMPTY_TRAIN = with_splits(lambda s: dataclasses.replace(s, x_train=s.x_train[:0], y_train=s.y_train[:0]))
EMPTY_TEST = with_splits(lambda s: dataclasses.replace(s, x_test=s.x_test[:0], y_test=s.y_test[:0]))
NAN_INPUTS = with_splits(lambda s: dataclasses.replace(s, x_train=s.x_train.masked_fill(s.x_train > 1, math.nan)))
MODEL_BREAKS = dataclasses.replace(GOOD, make_model=lambda: nn.Linear(7, 2))
MODEL_CLASSES = dataclasses.replace(GOOD, make_model=lambda: nn.Linear(5, 3))
UNKNOWN_OPTIMIZER = dataclasses.replace(GOOD, optimizer="rmsprop-ish")
ZERO_BATCH = dataclasses.replace(GOOD, batch_size=0)
FRACTIONAL_EPOCHS = dataclasses.replace(GOOD, epochs=2.5)
NAN_TARGET = dataclasses.replace(GOOD, target=math.nan)
NEGATIVE_MARGIN = dataclasses.replace(GOOD, margin=-1.0)
"""

CASES = {
    "LOAD_RAISES": "load() raised RuntimeError: disk on fire",
    "LOAD_EXITS": "load() raised SystemExit: 3",
    "NOT_SPLITS": "load() returned a tuple, not objectives.workloads.registry.Splits",
    "WRONG_SHAPE": "its train inputs are (5,) each, but input_shape says (6,)",
    "BAD_LABELS": "its train labels run from 5 to 6, outside [0, 2)",
    "FLOAT_LABELS": "its val labels are torch.float32; class indices must be integers",
    "EMPTY_TRAIN": "its train split has 0 inputs and 0 labels",
    "EMPTY_TEST": "its test split has 0 inputs and 0 labels",
    "NAN_INPUTS": "its train inputs hold NaN or infinite values",
    "MODEL_BREAKS": "its model's forward pass on two training examples raised RuntimeError",
    "MODEL_CLASSES": "its model returns (2, 3) for two examples, not logits of shape (2, 2)",
    "UNKNOWN_OPTIMIZER": "its optimizer 'rmsprop-ish' is not one of",
    "ZERO_BATCH": "batch_size=0: must be a whole number of at least 1",
    "FRACTIONAL_EPOCHS": "epochs=2.5: must be a whole number of at least 1",
    "NAN_TARGET": "target=nan: must be a finite number",
    "NEGATIVE_MARGIN": "margin=-1.0: must be a positive number",
}


@pytest.fixture
def bad_workloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad_own_workloads.py").write_text(BAD_WORKLOADS)
    (tmp_path / "exits_at_import.py").write_text("import sys\nsys.exit(7)\n")
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize("command", ["run", "train", "lr_find"])
@pytest.mark.parametrize("name", list(CASES))
def test_a_broken_own_workload_is_one_line_and_stores_nothing(
    name: str, command: str, bad_workloads: None, run_cli, tmp_path: Path
) -> None:
    spec = f"bad_own_workloads:{name}"
    out = tmp_path / "out"
    extra = {"run": ["--trials", "2", "--families", "constant"], "train": ["--lr", "0.1"], "lr_find": []}
    code, _, err = run_cli(command, "--workload", spec, *extra[command], "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert CASES[name] in err and spec in err, err
    assert not (out / "optuna.journal").exists(), "nothing is stored before the data is checked"


def test_a_module_that_exits_at_import_is_one_line(bad_workloads: None, run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("run", "--workload", "exits_at_import:W", "--out", str(tmp_path / "out"))
    assert code == 2 and "cannot import 'exits_at_import' (SystemExit: 7)" in err, err


def test_the_good_one_of_them_sweeps(bad_workloads: None, run_cli, tmp_path: Path) -> None:
    """The cases above differ from a workload that works by one thing each."""
    code, _, err = run_cli(
        "run", "--workload", "bad_own_workloads:GOOD", "--families", "constant", "--trials", "2",
        "--no-report", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    assert "bad_own_workloads:GOOD-sgd-constant" in load_studies(str(tmp_path / "optuna.journal"))


def test_a_workload_no_longer_importable_at_report_time_is_one_line(
    bad_workloads: None, run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    args = [
        "--workload",
        "bad_own_workloads:GOOD",
        "--families",
        "constant",
        "--trials",
        "2",
        "--out",
        str(out),
    ]
    assert run_cli("run", *args, "--no-report")[0] == 0
    (tmp_path / "bad_own_workloads.py").unlink()
    import importlib
    import sys

    monkeypatch.delitem(sys.modules, "bad_own_workloads")
    importlib.invalidate_caches()
    from objectives.workloads.registry import import_workload, load_splits

    import_workload.cache_clear()  # a later command is a new process: nothing of the module is kept
    load_splits.cache_clear()
    before = (out / "optuna.journal").read_bytes()
    for command, argv in (
        ("report", ["--out", str(out), "--seeds", "2"]),
        ("train", ["--from-study", "bad_own_workloads:GOOD-sgd-constant", "--trial", "0", "--out", str(out)]),
    ):
        code, _, err = run_cli(command, *argv)
        assert code == 2 and err.count("\n") == 1, err
        assert "cannot import 'bad_own_workloads'" in err, err
    assert (out / "optuna.journal").read_bytes() == before
