"""The fair final comparison: each family's best configuration, re-trained over fresh seeds.

Tuning picks a family's best trial on the validation split, which flatters it. So that
configuration is trained again with ``seeds`` seeds it was never tuned on, and scored on the
test split, which tuning never saw. Each re-evaluation seed is also the data seed: it draws the
workload's split (``Workload.load``), so where the test split is drawn from the seed (``digits``,
``moons``) the intervals include test-set sampling too; where the test set is fixed (MNIST-style
official test sets, MNIST-1D, Shakespeare) they do not, and the report says which.

All families of one workload are re-trained together: for each seed, one population of every
family's configuration on that seed's split (the engine splits it by optimizer). The runs are
stored in each study's user attribute ``reevaluation`` (``objectives.stored.REEVALUATION``), so a report reuses them; they are redone
only when the best trial or the seeds change.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from objectives.engine.training import MemberResult, fork_is_safe
from objectives.experiment import Experiment
from objectives.objective import member_from_params, train_members
from objectives.seeds import reevaluation_seeds
from objectives.stored import (
    BASE_LR,
    REEVALUATION,
    chosen_lr,
    reevaluation_record,
    stored_experiment,
    stored_reevaluation,
)
from objectives.workloads.datasets import DataError
from objectives.workloads.registry import Workload, get_workload, load_splits

SPLITS = "drawn per seed"
"""Recorded with every re-evaluation: its runs' data splits come from their own seeds."""


def chosen(study: optuna.Study) -> tuple[int | None, dict[str, Any]] | None:
    """The configuration a study has chosen, as (its trial's number, its parameters): the best
    trial's (budgeted), or the grid's LR with the family's fixed knobs (grid, no one trial: the
    LR's mean over its selection seeds chose it). None while there is none: no complete trial,
    or a grid not yet complete (an extension may still come)."""
    experiment = stored_experiment(study.user_attrs)
    if experiment.is_grid:
        lr = chosen_lr(study, experiment)
        return None if lr is None else (None, {BASE_LR: lr, **dict(experiment.fixed)})
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    best = study.best_trial
    return best.number, best.params


def is_current(study: optuna.Study, seeds: int) -> bool:
    """Whether the stored re-evaluation is of today's chosen configuration with these many seeds."""
    stored, choice = stored_reevaluation(study), chosen(study)
    if stored is None or choice is None:
        return False
    if stored.splits != SPLITS:  # not how today's re-evaluation draws its data: redo it
        return False
    experiment = stored_experiment(study.user_attrs)
    trial, params = choice
    same = stored.trial == trial and (trial is not None or stored.params == params)
    return same and stored.seeds == reevaluation_seeds(experiment.seed, seeds)


def reevaluate_together(
    studies: Sequence[optuna.Study],
    seeds: int,
    *,
    data_dir: Path | None,
    device: str = "cpu",
    jobs: int = 1,
    threads: int = 1,
    on_seed: Callable[[int, int], None] = lambda done, total: None,
) -> None:
    """Re-train every study's best trial over ``seeds`` seeds and store the runs with each study.

    The studies must share their workload, sweep seed, epochs, batch size and early stopping
    (``same_training``). Seeds are independent, so ``jobs`` worker processes (``threads`` torch
    threads each) train them side by side, with the same results as one; ``on_seed`` hears of
    each seed trained, in order."""
    experiments = [stored_experiment(study.user_attrs) for study in studies]
    workload = _stored_workload(experiments[0].workload)
    choices = [chosen(study) for study in studies]  # each a scan of the study's trials: once
    params = [params for _, params in choices]
    seed_list = reevaluation_seeds(experiments[0].seed, seeds)
    runs: list[list[MemberResult]] = [[] for _ in studies]
    work = [(workload, experiments, params, seed, data_dir, device) for seed in seed_list]
    for done, (results, steps_per_epoch) in enumerate(_train_seeds(work, jobs, threads, device), start=1):
        for study_runs, result in zip(runs, results):
            study_runs.append(result)
        on_seed(done, len(seed_list))
    for study, (trial, chosen_params), results in zip(studies, choices, runs):
        study.set_user_attr(
            REEVALUATION,
            reevaluation_record(trial, chosen_params, study.user_attrs, results, steps_per_epoch, SPLITS),
        )


def _stored_workload(name: str) -> Workload:
    """The workload a stored study names; one that can no longer be imported is a ``DataError``."""
    try:
        return get_workload(name)
    except ValueError as error:
        raise DataError(str(error)) from None


SeedWork = tuple[Workload, list[Experiment], list[dict[str, Any]], int, "Path | None", str]
"""What one seed's training needs (the workload, the experiments, their best parameters, the
seed, the data directory, the device): what a worker process can take."""


def _train_seeds(
    work: list[SeedWork], jobs: int, threads: int, device: str
) -> Iterator[tuple[list[MemberResult], int]]:
    """Each seed's results and steps per epoch, in order: here, or in ``jobs`` worker processes.

    Workers are forked where that is safe (``fork_is_safe``: CPU, one thread), and start at
    once; otherwise spawned afresh, each importing torch (about 3.5 s). Ctrl-C is the parent's
    alone: it ends the workers at once, however many times it is pressed."""
    if jobs <= 1 or len(work) < 2:
        yield from map(_train_seed, work)
        return
    context = multiprocessing.get_context("fork" if fork_is_safe(threads, device) else "spawn")
    pool = context.Pool(min(jobs, len(work)), initializer=_start_worker, initargs=(threads,))
    try:
        yield from pool.imap(_train_seed, work)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()


def _start_worker(threads: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent ends the pool on Ctrl-C
    torch.set_num_threads(threads)


def _train_seed(work: SeedWork) -> tuple[list[MemberResult], int]:
    """One population of every family's best configuration on ``seed``'s own split."""
    workload, experiments, params, seed, data_dir, device = work
    first = experiments[0]
    data = load_splits(workload, seed, data_dir)
    members = [member_from_params(e, p, seed) for e, p in zip(experiments, params)]
    results = train_members(workload, first, data, members, evaluate_test=True, device=device)
    return results, workload.epoch_steps(data, first.batch_size)


def same_training(study: optuna.Study) -> tuple:
    """What studies re-evaluated together must share: the workload and how it is trained."""
    e = stored_experiment(study.user_attrs)
    return e.workload, e.seed, e.epochs, e.batch_size, e.early_stopping
