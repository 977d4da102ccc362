"""The grid protocol: a family's base LR on the shared lattice, knobs at published defaults, every
grid point on the same selection seeds; extended where its best lies on an edge; resumable."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from objectives import grid, stored
from objectives.experiment import Experiment
from objectives.grid import DEFAULTS, SELECTION_SEED, default_knobs
from objectives.objective import member_from_params
from objectives.schedules import FAMILIES, get_family
from objectives.seeds import selection_seed
from objectives.stored import finished_count
from objectives.workloads.registry import get_workload, load_splits
from study.storage.backends import open_storage
from study.sweep import grid as sweep_grid
from study.sweep.top_up import run_sweep

MOONS = get_workload("moons")


def _grid(family: str, window: tuple[float, float], seeds: int = 2, epochs: int = 2) -> Experiment:
    return Experiment("moons", "sgd", family, epochs, 32, None, 0, lr_range=window).on_grid(seeds)


def test_the_lattice_has_four_points_a_decade_shared_by_every_window() -> None:
    assert grid.lattice(1e-3, 1.0) == [0.001, 0.00177828, 0.00316228, 0.00562341, 0.01, 0.0177828,
                                       0.0316228, 0.0562341, 0.1, 0.177828, 0.316228, 0.562341, 1.0]  # fmt: skip
    assert set(grid.lattice(1e-2, 10.0)) & set(grid.lattice(1e-3, 1.0)) == set(grid.lattice(1e-2, 1.0))
    assert grid.extension_bounds((1e-3, 1.0)) == (1e-4, 10.0)
    ratios = [b / a for a, b in zip(grid.lattice(1e-3, 1.0), grid.lattice(1e-3, 1.0)[1:])]
    assert all(r == pytest.approx(10**0.25, rel=1e-5) for r in ratios)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_has_a_default_for_each_of_its_knobs_and_trains_with_it(family: str) -> None:
    for epochs in (10, 20, 30):
        knobs = dict(default_knobs(family, epochs))
        assert set(knobs) == set(get_family(family).space), family
        experiment = _grid(family, (1e-2, 1.0), epochs=epochs)
        member = member_from_params(experiment, {"lr": 0.1, SELECTION_SEED: 1, **knobs}, seed=5)
        assert member.seed == 5 and member.schedule_kwargs == get_family(family).kwargs(knobs)
    assert DEFAULTS[family].source


CYCLIC = ("cyclic_triangular", "cyclic_triangular2", "cyclic_exp_range")


@pytest.mark.parametrize("family", sorted(f for f in FAMILIES if f not in ("plateau", "schedule_free")))
def test_no_default_schedule_restarts_at_the_end_of_its_run(family: str) -> None:
    """A run ends at the lowest LR of its last tenth: with cycle_fraction 1/7, cosine_restarts'
    third cycle ended a step or three early on digits (680 steps) and shakespeare (500), and the
    published grid trained those last steps at the full LR. The cyclic ones' fourth cycle, its
    half-cycles rounded to whole steps, may end up to 7 steps early: they may climb that far back
    up a half-cycle of about T/8 steps toward their peak (4x the base), no further."""
    from study.reporting.theory import multipliers

    for epochs, steps_per_epoch in [(20, 34), (10, 50), (20, 150), (20, 12), (30, 41), (7, 13)]:
        total = epochs * steps_per_epoch
        s = multipliers(family, dict(default_knobs(family, epochs)), total, steps_per_epoch)
        if family in CYCLIC:
            assert s[-1] <= s.min() * (1 + 3 * 7 / (total / 8)), (family, total, s[-3:])
        else:
            assert s[-1] <= s[-max(total // 10, 1) :].min() + 1e-9, (family, total, s[-3:])


def test_a_grid_study_names_its_knobs_only_where_they_are_not_the_defaults() -> None:
    """The suite's grid studies keep their names (the published journal reads as before); a
    claim's arm with other knobs gets a study of its own beside the default one."""
    base = Experiment("shakespeare", "adamw", "wsd", 10, 16, None, 0).on_grid(2)
    assert base.study_name == "shakespeare-adamw-wsd-grid"
    other = {**dict(base.fixed), "cooldown_fraction": 0.1}
    named = dataclasses.replace(base, fixed=tuple(other.items())).study_name
    assert (
        named
        == "shakespeare-adamw-wsd-[warmup_fraction=0.05,cooldown_fraction=0.1,cooldown_shape=1-sqrt]-grid"
    )


def test_exponential_decays_to_one_percent_whatever_the_run_length() -> None:
    for epochs in (10, 20, 30):
        gamma = dict(default_knobs("exponential", epochs))["gamma"]
        assert gamma**epochs == pytest.approx(0.01, rel=1e-4)


def test_the_best_lr_is_the_best_mean_and_a_true_tie_goes_to_the_smaller_lr() -> None:
    points = [(0.1, 0, 0.90), (0.1, 1, 0.92), (0.3, 0, 0.92), (0.3, 1, 0.90), (1.0, 0, 0.5), (1.0, 1, 0.5)]
    means = grid.mean_by_lr(points, 2)
    assert means[0.1] == means[0.3]  # exactly: fsum of the same values
    assert grid.best_lr(means, 1.0) == 0.1
    assert grid.best_lr({0.1: 3.1, 0.3: 3.0}, -1.0) == 0.3  # bits per character: lower is better
    assert 3.0 not in grid.mean_by_lr([*points, (3.0, 0, 0.9)], 2)  # a mean needs every seed


def test_an_edge_best_extends_the_grid_one_point_at_a_time_up_to_a_decade() -> None:
    window = (0.01, 0.1)
    rising = lambda lr: math.log10(lr)  # the larger the better: always on the top edge
    points = [(lr, k, rising(lr)) for lr in grid.lattice(*window) for k in range(2)]
    assert grid.wanted_lrs(points, window, 2, 1.0)[-1] == grid.lattice_point(grid.lattice_index(0.1) + 1)
    assert grid.chosen_lr(points, window, 2, 1.0) is None  # the extension has not run yet
    everything = [(lr, k, rising(lr)) for lr in grid.lattice(0.01, 10.0) for k in range(2)]
    assert grid.wanted_lrs(everything, window, 2, 1.0) == grid.lattice(0.01, 1.0)  # a decade beyond, no more
    assert grid.chosen_lr(everything, window, 2, 1.0) == 1.0
    falling = [(lr, k, -rising(lr)) for lr in grid.lattice(0.001, 10.0) for k in range(2)]
    assert grid.wanted_lrs(falling, window, 2, 1.0) == grid.lattice(0.001, 0.1)


def test_a_grid_study_trains_every_point_on_the_selection_seeds(tmp_path) -> None:
    storage = open_storage(str(tmp_path / "optuna.journal"))
    experiments = [_grid("constant", (0.1, 1.0)), _grid("cosine", (0.1, 1.0))]
    studies = run_sweep(
        storage, MOONS, experiments, load_splits(MOONS, 0), trials=0, pruner="none", population=8
    )
    for study, experiment in zip(studies, experiments):
        assert study.study_name == f"moons-sgd-{experiment.family}-grid"
        points = {(t.params["lr"], t.params[SELECTION_SEED]) for t in study.trials}
        wanted = stored.wanted_lrs(study, experiment)
        assert points == {(lr, k) for lr in wanted for k in range(2)} and len(study.trials) == len(points)
        assert {t.user_attrs["seed"] for t in study.trials} == {selection_seed(0, 0), selection_seed(0, 1)}
        assert stored.chosen_lr(study, experiment) in wanted
    # The same selection seed and LR train the same run in every family with no knobs to differ.
    constant = {(t.params["lr"], t.params[SELECTION_SEED]): t.value for t in studies[0].trials}
    again = run_sweep(
        open_storage(str(tmp_path / "again.journal")), MOONS, experiments[:1], load_splits(MOONS, 0),
        trials=0, pruner="none", population=3,
    )  # fmt: skip
    assert {(t.params["lr"], t.params[SELECTION_SEED]): t.value for t in again[0].trials} == constant


def test_an_interrupted_point_is_redone_once_and_the_grid_ends_whole(tmp_path, monkeypatch) -> None:
    """GridSampler counts an interrupted (failed) trial's point as visited and would never hand it
    out again: the sweep enqueues it, and the resumed grid equals an uninterrupted one."""
    from study.sweep import population

    experiment, data = _grid("constant", (0.1, 1.0)), load_splits(MOONS, 0)
    whole = run_sweep(open_storage(str(tmp_path / "whole.journal")), MOONS, [experiment], data, trials=0,
                      pruner="none", population=4)[0]  # fmt: skip
    calls, real = [], population.run_trials

    def stopped_on_the_second_population(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    storage = open_storage(str(tmp_path / "optuna.journal"))
    monkeypatch.setattr(population, "run_trials", stopped_on_the_second_population)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(storage, MOONS, [experiment], data, trials=0, pruner="none", population=4)
    monkeypatch.undo()
    study = run_sweep(storage, MOONS, [experiment], data, trials=0, pruner="none", population=4)[0]
    assert sum(t.user_attrs.get("interrupted", False) for t in study.trials) == 4
    point = lambda t: (t.params["lr"], t.params[SELECTION_SEED])
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert sorted(map(point, complete)) == sorted(map(point, whole.trials))  # each point once
    assert {point(t): t.value for t in complete} == {point(t): t.value for t in whole.trials}


def test_grid_sampler_marks_its_trials_as_the_sweep_assumes(tmp_path) -> None:
    """Optuna 5: GridSampler's trials carry ``grid_id``; an enqueued one carries ``fixed_params``
    and no ``grid_id``. The sweep tells which points the sampler has yet to hand out by them."""
    experiment = _grid("constant", (0.1, 1.0))
    study = optuna.create_study(sampler=sweep_grid.grid_sampler(experiment))
    trial = study.ask()
    trial.suggest_float("lr", 0.01, 10.0, log=True)
    trial.suggest_int(SELECTION_SEED, 0, 1)
    assert sweep_grid.GRID_ID in study.trials[0].system_attrs
    study.enqueue_trial({"lr": 0.1, SELECTION_SEED: 0})
    queued = study.ask()
    assert (
        "fixed_params" in study.trials[1].system_attrs
        and sweep_grid.GRID_ID not in study.trials[1].system_attrs
    )
    assert queued.suggest_float("lr", 0.01, 10.0, log=True) == 0.1
    study.tell(queued, 0.5)  # no study.stop() from the sampler outside optimize()
    study.tell(trial, 0.5)


def test_a_peer_reading_a_point_half_drawn_counts_it_as_being_drawn(tmp_path) -> None:
    """A --jobs parent read a worker's trial between its two draws (lr, then the seed) and crashed."""
    storage = open_storage(str(tmp_path / "optuna.journal"))
    experiment = _grid("constant", (0.1, 1.0))
    study = run_sweep(
        storage, MOONS, [experiment], load_splits(MOONS, 0), trials=0, pruner="none", population=8
    )[0]
    half = study.ask()
    half.suggest_float("lr", *experiment.base_lr_bounds, log=True)
    assert sweep_grid.grid_target(study, experiment, enqueue=False) == finished_count(study)


@pytest.mark.slow
def test_the_report_opens_with_the_grids_answer_and_its_words_agree_with_its_tables(
    run_cli, tmp_path
) -> None:
    import pandas as pd

    out = tmp_path / "out"
    code, stdout, err = run_cli(
        "run", "--workload", "moons,digits", "--protocol", "both", "--epochs", "2", "--selection-seeds", "2",
        "--families", "constant,cosine,wsd", "--trials", "3", "--repeats", "2", "--seeds", "4", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    report = out / "report"
    page = (report / "index.html").read_text()
    assert (
        page.index("<h2>The answer</h2>")
        < page.index("the grid protocol</h2>")
        < page.index("The budgeted protocol")
    )
    placement = pd.read_csv(report / "placement.csv", comment="#")
    answer = stdout[stdout.index("Every family at its best base LR") :].splitlines()[0]
    for word in ("within the margin everywhere", "worse somewhere", "not placed"):
        families = list(placement.loc[placement["placement"] == word, "family"])  # in the table's order
        assert f"{', '.join(families) if families else 'none'}." in answer, (word, answer)
    for workload in ("moons", "digits"):
        verdicts = pd.read_csv(report / f"{workload}-sgd-grid-verdicts.csv", comment="#")
        assert verdicts["verdict"].iloc[0] == "reference" and len(verdicts) == 3
        assert set(verdicts["seeds"]) == {4}
        choices = pd.read_csv(report / f"{workload}-sgd-grid-choices.csv", comment="#")
        assert (choices["lr"] >= choices["tried_low"]).all() and (
            choices["lr"] <= choices["tried_high"]
        ).all()
    assert (report / "answer.png").stat().st_size > 5_000
    assert "At 3 trials of TPE per tuning run, the schedule explains" in page


def test_a_worse_verdict_shown_within_the_margin_too_is_counted_as_a_small_gap() -> None:
    """The fixed rule calls a detected gap worse however small; the page says how many of them
    are also shown within the margin (digits: 60 seeds detect gaps of 0.003 against a 0.0097 margin)."""
    from study.reporting.grid_render import trivial_gaps

    verdicts = pd.DataFrame({
        "family": ["ref", "small", "large", "same"],
        "verdict": ["reference", "worse", "worse", "equivalent"],
        "p_equivalent_holm": [np.nan, 0.001, 0.6, 0.002],
    })  # fmt: skip
    assert list(trivial_gaps(verdicts)["family"]) == ["small"]
