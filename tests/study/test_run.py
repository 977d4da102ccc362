"""The real sweep, end to end on the tiny workload: stored results, resume, reproducibility, crashes."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from optuna_dashboard import get_note

from objectives.optim.optimizers import OPTIMIZERS
from objectives.stored import counts_as_finished, stored_curve
from study.reporting.analysis import load_studies
from study.sweep import population
from tests.conftest import REPO, SLOW_SWEEP, SWEEP, comparable, run_subprocess

FAMILIES = ["--families", "cosine,plateau"]


def test_sweep_stores_one_study_per_family_with_curves(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("run", *SWEEP, *FAMILIES, "--trials", "4", "--out", str(tmp_path))
    assert code == 0, err
    studies = load_studies(str(tmp_path / "optuna.journal"))
    assert sorted(studies) == ["moons-sgd-cosine", "moons-sgd-plateau"]
    for family in ("cosine", "plateau"):
        study = studies[f"moons-sgd-{family}"]
        assert study.user_attrs == {
            "workload": "moons",
            "optimizer": "sgd",
            "family": family,
            "epochs": 3,
            "batch_size": 32,
            "early_stopping": None,
            "seed": 0,
            "lr_range": None,
            "momentum": 0.9,
            "nesterov": False,
            "weight_decay": 0.0,
            "repeat": 0,
            "target": 0.93,
            "metric": {
                "name": "acc",
                "label": "accuracy",
                "direction": "maximize",
                "worst": 0.0,
                "from_loss": False,
            },
            "classes": 2,
            "optimizer_label": "sgd",
            "margin": 0.0093,
            "test_drawn_from_seed": True,
            "description": "two noisy half circles, tanh MLP 2-16-16-2 (the tiny one for quick tests)",
        }
        assert study.direction == optuna.study.StudyDirection.MAXIMIZE
        assert study.metric_names == ["val_acc"]
        assert get_note(study).startswith(f"## {family} on moons with sgd\n")
        trials = study.get_trials()
        assert len(trials) == 4 and all(
            t.state == TrialState.COMPLETE for t in trials
        )  # 5 startup trials: no pruning
        for trial in trials:
            curve = stored_curve(trial.user_attrs)
            assert curve["epoch"] == [1, 2, 3]
            assert trial.intermediate_values == pytest.approx(
                dict(zip(curve["epoch"], curve["val_metric"])), rel=1e-6
            )
            assert "lr" in trial.params and {"diverged", "seed", "epochs_to_target", "worker"} <= set(
                trial.user_attrs
            )
    assert "optuna-dashboard " + str(tmp_path / "optuna.journal") in out
    assert "cosine" in out and "plateau" in out and "best_val_acc" in out


def test_rerun_adds_nothing_and_more_trials_add_only_the_difference(run_cli, tmp_path: Path) -> None:
    args = [*SWEEP, *FAMILIES, "--out", str(tmp_path)]
    assert run_cli("run", *args, "--trials", "3")[0] == 0
    first = {
        name: comparable(study) for name, study in load_studies(str(tmp_path / "optuna.journal")).items()
    }
    assert run_cli("run", *args, "--trials", "3")[0] == 0
    assert {
        name: comparable(study) for name, study in load_studies(str(tmp_path / "optuna.journal")).items()
    } == first
    assert run_cli("run", *args, "--trials", "5")[0] == 0
    for name, study in load_studies(str(tmp_path / "optuna.journal")).items():
        assert len(study.trials) == 5
        assert comparable(study)[:3] == first[name]


def test_same_seed_same_numbers(run_cli, tmp_path: Path) -> None:
    # 8 trials in one population, which the median pruner judges against each other.
    args = [*SWEEP, *FAMILIES, "--trials", "8", "--pruner", "median"]
    for out in ("a", "b"):
        assert run_cli("run", *args, "--out", str(tmp_path / out))[0] == 0
    assert run_cli("run", *args, "--seed", "1", "--out", str(tmp_path / "c"))[0] == 0
    a, b, c = (load_studies(str(tmp_path / d / "optuna.journal")) for d in "abc")
    assert any(t.state == TrialState.PRUNED for study in a.values() for t in study.trials)
    for name in a:
        assert comparable(a[name]) == comparable(b[name])
        assert comparable(a[name]) != comparable(c[name])


def test_one_at_a_time_a_resumed_sweep_has_the_same_numbers(run_cli, tmp_path: Path) -> None:
    # Median pruning starts after 5 trials, so 8 trials exercise the pruner too. (With larger
    # populations a resumed sweep cuts its populations differently: complete, not identical.)
    args = [*SWEEP, *FAMILIES, "--population", "1"]
    assert run_cli("run", *args, "--trials", "8", "--out", str(tmp_path / "a"))[0] == 0
    assert run_cli("run", *args, "--trials", "3", "--out", str(tmp_path / "b"))[0] == 0
    assert run_cli("run", *args, "--trials", "8", "--out", str(tmp_path / "b"))[0] == 0
    a, b = (load_studies(str(tmp_path / d / "optuna.journal")) for d in "ab")
    for name in a:
        assert comparable(a[name]) == comparable(b[name])


@pytest.mark.slow
def test_killed_mid_trial_one_at_a_time_the_resumed_sweep_has_the_same_numbers(
    run_cli, tmp_path: Path
) -> None:
    """SIGKILL during training, past TPE's 10 random start-up trials: the trial redone takes the
    killed one's place, so every counted trial is what an uninterrupted sweep gets."""
    args = ["--workload", "moons", "--epochs", "60", "--families", "constant", "--no-report"]
    args += ["--trials", "16", "--population", "1", "--protocol", "budgeted"]
    assert run_cli("run", *args, "--out", str(tmp_path / "a"))[0] == 0
    journal = tmp_path / "b" / "optuna.journal"
    (tmp_path / "b").mkdir()
    worker = _start_sweep([*args, "--out", str(tmp_path / "b")])
    _wait_for_finished_trials(journal, 12)
    worker.kill()
    worker.communicate()
    assert run_cli("run", *args, "--out", str(tmp_path / "b"))[0] == 0

    def counted(journal: Path) -> list[tuple]:
        study = load_studies(str(journal))["moons-sgd-constant"]
        return [row[1:] for row, t in zip(comparable(study), study.trials) if counts_as_finished(t)]

    assert counted(journal) == counted(tmp_path / "a" / "optuna.journal")


def test_diverging_trials_are_recorded_and_the_sweep_goes_on(run_cli, tmp_path: Path, monkeypatch) -> None:
    # An LR this high overflows digits' ReLU MLP to NaN in the first epoch.
    monkeypatch.setitem(OPTIMIZERS, "sgd", dataclasses.replace(OPTIMIZERS["sgd"], lr_range=(1e10, 1e11)))
    args = ["--workload", "digits", "--epochs", "2", "--families", "constant,step", "--trials", "3"]
    code, out, err = run_cli("run", *args, "--out", str(tmp_path))
    assert code == 0, err
    for study in load_studies(str(tmp_path / "optuna.journal")).values():
        assert [(t.state, t.value, t.user_attrs["diverged"]) for t in study.trials] == [
            (TrialState.COMPLETE, 0.0, True)
        ] * 3
    assert "diverged" in out


def test_an_error_that_breaks_a_batch_stops_the_run_and_counts_nothing(
    run_cli, tmp_path: Path, monkeypatch
) -> None:
    real_run_trials = population.run_trials

    def fail_trial_one(trials, members, workload, experiment, data, **options):
        if trials[0].number == 1:
            raise RuntimeError("out of memory")
        return real_run_trials(trials, members, workload, experiment, data, **options)

    monkeypatch.setattr(population, "run_trials", fail_trial_one)
    args = [*SWEEP, "--families", "constant", "--trials", "3", "--population", "1", "--out", str(tmp_path)]
    code, _, err = run_cli("run", *args)
    assert code == 1
    assert err.count("\n") == 1 and "training moons-sgd-constant failed for a whole batch" in err
    assert "RuntimeError: out of memory" in err and "Traceback" not in err
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["interrupted"] is True and "error" not in trials[1].user_attrs

    monkeypatch.setattr(population, "run_trials", real_run_trials)  # fixed: the rerun redoes it
    assert run_cli("run", *args)[0] == 0
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, *[TrialState.COMPLETE] * 2]


def test_a_trial_whose_own_configuration_fails_is_recorded_and_the_sweep_goes_on(
    run_cli, tmp_path: Path, monkeypatch
) -> None:
    real_member = population.member_from_trial

    def reject_trial_one(trial, experiment, seed):
        if trial.number == 1:
            raise ValueError("cosine needs 0 <= final_fraction < 1, but got final_fraction=2.0")
        return real_member(trial, experiment, seed)

    monkeypatch.setattr(population, "member_from_trial", reject_trial_one)
    args = [*SWEEP, "--families", "cosine", "--trials", "3", "--population", "2"]
    code, _, err = run_cli("run", *args, "--out", str(tmp_path))
    assert code == 0, err
    warning = "warning: moons-sgd-cosine trial 1 failed: ValueError: cosine needs 0 <= final_fraction < 1, but got final_fraction=2.0"
    assert [line for line in err.splitlines() if line.startswith("warning")] == [warning]
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-cosine"].trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert "final_fraction=2.0" in trials[1].user_attrs["error"]


@pytest.mark.slow
def test_without_a_terminal_progress_is_plain_lines_and_a_rerun_says_there_is_nothing_to_do(
    tmp_path: Path,
) -> None:
    args = [*SWEEP, "--families", "constant,cosine", "--trials", "3", "--out", str(tmp_path)]
    done = run_subprocess("run", args, timeout=120)  # stderr is a pipe, as in a log file or CI
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "moons-sgd-constant: 3/3 trials",
        "moons-sgd-cosine: 3/3 trials",
    ]
    assert all(re.search(r"best val_acc 0\.\d{4}, \d+ s elapsed$", line) for line in lines)
    again = run_subprocess("run", args, timeout=120)
    assert again.stdout.startswith("nothing to do: every study already has 3 finished trials")
    assert again.stderr == ""
    fewer = [*args[:-4], "--trials", "2", "--out", str(tmp_path)]
    less = run_subprocess("run", fewer, timeout=120)
    assert less.stdout.startswith(
        "nothing to do: every study already has at least 2 (the fewest 3) finished trials "
        "(raise --trials above 3 to add more)"
    ), less.stdout  # the count the table below shows, not the --trials asked for


def test_a_long_study_reports_progress_while_it_runs(run_cli, tmp_path: Path, monkeypatch) -> None:
    from study.sweep import top_up as sweep

    monkeypatch.setattr(sweep, "PLAIN_PROGRESS_EVERY_S", 0.0)  # every update, not every 10 s
    args = [*SWEEP, "--families", "constant", "--trials", "4", "--population", "1", "--out", str(tmp_path)]
    code, _, err = run_cli("run", *args)
    assert code == 0, err
    counts = [line.split(": ")[1].split(" ")[0] for line in err.splitlines()]
    assert counts[:2] == ["0/4", "1/4"] and counts[-1] == "4/4"


def test_sqlite_storage_url_works(run_cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sweep.db'}"
    code, out, err = run_cli(
        "run", *SWEEP, "--families", "step", "--trials", "2", "--out", str(tmp_path), "--storage", url
    )
    assert code == 0, err
    assert len(load_studies(url)["moons-sgd-step"].trials) == 2
    assert f"optuna-dashboard {url}" in out


LONG_SWEEP = [*SLOW_SWEEP, "--epochs", "30", "--trials", "40", "--population", "4"]
"""Long enough (several seconds, more on a busy machine) to be stopped part-way."""


def _start_sweep(args: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "study.run", *args], env=env, stderr=subprocess.PIPE, text=True
    )


def _wait_for_finished_trials(journal: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        studies = load_studies(str(journal)) if journal.exists() else {}
        if studies and sum(counts_as_finished(t) for t in studies["moons-sgd-constant"].trials) >= count:
            return
        time.sleep(0.05)
    raise TimeoutError(f"the sweep never reached {count} finished trials")


@pytest.mark.slow
def test_killed_sweep_resumes_with_the_same_command(run_cli, tmp_path: Path) -> None:
    args = [*LONG_SWEEP, "--out", str(tmp_path)]
    journal = tmp_path / "optuna.journal"
    worker = _start_sweep(args)
    _wait_for_finished_trials(journal, 3)
    worker.kill()  # SIGKILL: no cleanup at all
    worker.communicate()  # reap it, or its pid still looks alive
    before = load_studies(str(journal))["moons-sgd-constant"]
    finished_before = [row for row, t in zip(comparable(before), before.trials) if counts_as_finished(t)]
    running_before = [t.number for t in before.trials if t.state == TrialState.RUNNING]
    assert 3 <= len(finished_before) < 40

    code, out, err = run_cli("run", *args)

    assert code == 0, err
    after = load_studies(str(journal))["moons-sgd-constant"]
    assert sum(counts_as_finished(t) for t in after.trials) == 40
    assert [row for row in comparable(after) if row[0] in {r[0] for r in finished_before}] == finished_before
    for number in running_before:
        assert after.trials[number].state == TrialState.FAIL
        assert after.trials[number].user_attrs["interrupted"] is True
    assert len(after.trials) == 40 + len(running_before)
    # Said as they are failed: one claimed by the killed worker at once, one it had asked but not
    # yet claimed once that is 10 s old (UNCLAIMED_GRACE_S), so possibly in two lines.
    said = re.findall(r"(\d+) trial\(s\) of a stopped worker marked failed; redoing them", out)
    assert sum(map(int, said)) == len(running_before)


@pytest.mark.slow
def test_ctrl_c_marks_the_running_trial_interrupted_and_says_how_to_resume(run_cli, tmp_path: Path) -> None:
    args = [*LONG_SWEEP, "--out", str(tmp_path)]
    worker = _start_sweep(args)
    _wait_for_finished_trials(tmp_path / "optuna.journal", 3)
    worker.send_signal(signal.SIGINT)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 130
    assert err.endswith("interrupted; finished trials are stored, run the same command again to resume\n")
    assert "Traceback" not in err
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    interrupted = [t for t in trials if t.user_attrs.get("interrupted")]
    assert all(t.state == TrialState.FAIL for t in interrupted) and len(interrupted) <= 4  # one batch
    # Only an interrupt inside Optuna's own ask() can leave a trial behind, unclaimed (no worker,
    # no parameters); the next run redoes it once it has been unclaimed for 10 s.
    assert all(t.user_attrs == {} and not t.params for t in trials if t.state == TrialState.RUNNING)

    assert run_cli("run", *args)[0] == 0
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    assert sum(counts_as_finished(t) for t in trials) == 40


@pytest.mark.slow
def test_ctrl_c_twice_still_exits_in_one_line(tmp_path: Path) -> None:
    worker = _start_sweep([*LONG_SWEEP, "--out", str(tmp_path)])
    _wait_for_finished_trials(tmp_path / "optuna.journal", 2)
    worker.send_signal(signal.SIGINT)
    time.sleep(0.05)
    worker.send_signal(signal.SIGINT)  # impatient: a second Ctrl-C while the first is handled
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 130 and "Traceback" not in err, err
    assert err.endswith("interrupted; finished trials are stored, run the same command again to resume\n")


@pytest.mark.parametrize("pruner,may_prune", [("none", False), ("hyperband", True), ("median", True)])
def test_pruners(run_cli, tmp_path: Path, pruner: str, may_prune: bool) -> None:
    args = [
        "--workload",
        "moons",
        "--epochs",
        "6",
        "--families",
        "constant",
        "--trials",
        "20",
        "--pruner",
        pruner,
        "--population",  # batches of 4: the median pruner compares with complete trials
        "4",
    ]
    assert run_cli("run", *args, "--out", str(tmp_path))[0] == 0
    trials = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-constant"].trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert bool(pruned) == may_prune
    for trial in pruned:
        assert len(stored_curve(trial.user_attrs)["epoch"]) == max(trial.intermediate_values) < 6


def test_half_written_journal_record_is_dropped_and_the_sweep_goes_on(run_cli, tmp_path: Path) -> None:
    args = [*SWEEP, "--families", "constant", "--out", str(tmp_path)]
    assert run_cli("run", *args, "--trials", "2")[0] == 0
    journal = tmp_path / "optuna.journal"
    partial = b'{"op_code": 6, "worker_id": "x", "trial_id": 0, "us'  # power cut mid-write
    with journal.open("ab") as file:
        file.write(partial)
    code, _, err = run_cli("run", *args, "--trials", "3")
    assert code == 0, err
    assert f"dropped a half-written last record ({len(partial)} bytes)" in err
    assert journal.read_bytes().endswith(b"\n")
    assert len(load_studies(str(journal))["moons-sgd-constant"].trials) == 3


@pytest.mark.slow
def test_module_entry_point_exits_cleanly(tmp_path: Path) -> None:
    done = run_subprocess(
        "run", [*SWEEP, "--families", "constant", "--trials", "1", "--out", str(tmp_path)], timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "optuna-dashboard" in done.stdout


def test_lr_range_auto_sets_and_records_the_bounds(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli(
        "run", *SWEEP, "--families", "cosine", "--trials", "4", "--lr-range", "auto", "--out", str(tmp_path)
    )
    assert code == 0, err
    study = load_studies(str(tmp_path / "optuna.journal"))["moons-sgd-cosine"]
    low, high = study.user_attrs["lr_range"]
    assert 0 < low < high and all(low <= t.params["lr"] <= high for t in study.trials)
    assert (tmp_path / "lr_find" / "moons-sgd.png").stat().st_size > 5_000
    assert f"base LR searched in {low:.3g} to {high:.3g}" in out
