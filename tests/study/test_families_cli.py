"""The newer families and the optimizer settings through the real commands, end to end."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from objectives.stored import stored_curve
from study.reporting.analysis import load_studies
from study.reporting.sections import group_studies
from tests.conftest import SWEEP, TINY

NEW_FAMILIES = ["wsd", "inverse_sqrt", "rex", "schedule_free"]


def test_new_families_sweep_and_report_beside_an_old_one(run_cli, tmp_path: Path) -> None:
    families = ",".join(["cosine", *NEW_FAMILIES])
    code, out, err = run_cli(
        "run", "--workload", "moons", "--epochs", "4", "--families", families, "--trials", "4",
        "--seeds", "2", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, err
    answer = out.split(
        "The report's answer (best configurations re-trained over seeds, on the test split):\n"
    )[1]
    assert (
        answer.startswith("moons with sgd: ")
        and "Reference (chosen by validation accuracy" in answer.splitlines()[0]
    )
    studies = load_studies(str(tmp_path / "optuna.journal"))
    assert sorted(studies) == sorted(f"moons-sgd-{family}" for family in ["cosine", *NEW_FAMILIES])
    ranking = pd.read_csv(tmp_path / "report" / "moons-sgd-ranking.csv", comment="#")
    assert set(ranking["family"]) == {"cosine", *NEW_FAMILIES}
    page = (tmp_path / "report" / "index.html").read_text()
    assert all(family in page for family in NEW_FAMILIES)
    trial = studies["moons-sgd-schedule_free"].trials[0]
    assert set(trial.params) == {"lr", "warmup_fraction"}


def test_all_families_leave_out_what_the_optimizer_cannot_train(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("run", *SWEEP, "--optimizer", "rmsprop", "--trials", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert (
        "note: leaving out schedule_free: schedule_free needs an optimizer with a schedule-free variant"
        in err
    )
    studies = load_studies(str(tmp_path / "optuna.journal"))
    assert "moons-rmsprop-schedule_free" not in studies and "moons-rmsprop-wsd" in studies


def test_optimizer_settings_are_stored_and_keep_sweeps_apart(run_cli, tmp_path: Path) -> None:
    out = ["--families", "cosine", "--trials", "2", "--out", str(tmp_path)]
    assert run_cli("run", *SWEEP, *out)[0] == 0
    assert run_cli("run", *SWEEP, *out, "--momentum", "0.9")[0] == 0  # the default, said: the same study
    assert run_cli("run", *SWEEP, *out, "--momentum", "0", "--weight-decay", "1e-4")[0] == 0
    studies = load_studies(str(tmp_path / "optuna.journal"))
    assert sorted(studies) == ["moons-sgd-cosine", "moons-sgd_momentum0_wd0.0001-cosine"]
    plain = studies["moons-sgd_momentum0_wd0.0001-cosine"]
    assert (plain.user_attrs["momentum"], plain.user_attrs["weight_decay"]) == (0.0, 1e-4)
    assert all(m == 0.0 for m in stored_curve(plain.trials[0].user_attrs)["momentum"])
    assert len(studies["moons-sgd-cosine"].trials) == 2
    assert sorted(group_studies(list(studies.values()))) == [
        ("moons", "sgd", "budgeted"),
        ("moons", "sgd_momentum0_wd0.0001", "budgeted"),
    ]


def test_train_plain_sgd_ends_with_the_test_accuracy(run_cli) -> None:
    code, out, err = run_cli(
        "train", *TINY, "--optimizer", "sgd", "--momentum", "0", "--family", "exponential",
        "--lr", "0.1", "--param", "gamma=0.95",
    )  # fmt: skip
    assert code == 0, err
    lines = out.strip().splitlines()
    momentum = lines[0].split().index("momentum_at_epoch_end")
    assert [float(line.split()[momentum]) for line in lines[1:4]] == [0.0, 0.0, 0.0]
    assert lines[-1].startswith("test accuracy: ")


def test_one_cycle_records_its_cycled_momentum(run_cli, tmp_path: Path) -> None:
    assert run_cli("run", *SWEEP, "--families", "one_cycle", "--trials", "2", "--out", str(tmp_path))[0] == 0
    [trial, _] = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-one_cycle"].trials
    momentum = stored_curve(trial.user_attrs)["momentum"]
    assert all(0.85 <= m <= 0.95 for m in momentum) and len(set(momentum)) > 1


@pytest.mark.parametrize(
    ("text", "families"),
    [
        ("all,constant", "all"),
        ("constant, all", "all"),
        (" all", "all"),
        ("constant , cosine", ["constant", "cosine"]),
    ],
)
def test_all_anywhere_and_spaces_anywhere_read_the_same_way(text: str, families) -> None:
    """F12: 'all,constant' and ' all' were refused as unknown families while 'constant, cosine' passed."""
    from objectives.schedules import FAMILIES
    from study.run import family_list

    assert family_list(text) == (list(FAMILIES) if families == "all" else families)


def test_thousands_of_unknown_names_are_one_short_line(run_cli, tmp_path: Path) -> None:
    names = ",".join(f"nope{k}" for k in range(12_000))
    code, _, err = run_cli("run", "--families", names, "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and len(err) < 800, len(err)
    assert "'nope0', 'nope1', 'nope2', 'nope3', 'nope4' and 11995 more" in err
