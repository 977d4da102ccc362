"""``python -m study.replicate NAME``: a published claim about LR schedules, tested at this scale.

Claims that train (cooldown, decay-to-zero, warmup) run each arm on the grid protocol: every grid
point on the selection seeds, each arm at its own best LR, then re-trained on evaluation seeds
that every arm shares. Claims that read (annealing-robustness, convex-bound, curve-prediction)
take the standard suite's grids from ``--storage`` and train nothing. Each says *reproduced*,
*contradicted* or *inconclusive* by its rule (``study.reporting.replication``) and writes
``NAME.md``, ``NAME-runs.csv`` (one row per trained run) and ``NAME.png`` into OUT (default
results/replications/NAME). Resumable: run the same command again.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.experiment import Experiment, make_experiment
from objectives.workloads.registry import Splits, Workload, load_splits
from study.cli import (
    DEFAULT_POPULATION,
    ArgumentParser,
    add_data_arguments,
    add_device_arguments,
    add_jobs_argument,
    add_workload_argument,
    check_device,
    one_of,
    out_directory,
    positive_int,
    run_main,
    storage_argument,
    storage_spec,
    workload_list,
)
from study.errors import UsageError
from study.replications import REPLICATIONS, Arm, Replication

if TYPE_CHECKING:
    import optuna

SUITE_STORAGE = Path("results", "standard", "optuna.journal.xz")
"""The published suite's storage, which the reading claims take by default (read-only)."""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m study.replicate", description=__doc__)
    parser.add_argument(
        "replication", type=one_of(REPLICATIONS, "replication"), help=f"one of: {', '.join(REPLICATIONS)}"
    )
    add_workload_argument(
        parser, several=True, default=None,
        help_text="the claim on other workloads (comma list; a claim that trains takes one): default the claim's",
    )  # fmt: skip
    parser.add_argument(
        "--selection-seeds", type=positive_int, help="seeds per grid point (default: the claim's)"
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        help="evaluation seeds per arm, shared by the arms (default: the claim's)",
    )
    parser.add_argument(
        "--epochs", type=_lengths, help="run lengths in epochs, a comma list (default: the claim's)"
    )
    parser.add_argument(
        "--storage", type=storage_argument,
        help=f"claims that read: the suite's storage (default {SUITE_STORAGE}); claims that train: their own "
        "(default OUT/optuna.journal)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=out_directory, help="output directory (default results/replications/NAME)"
    )
    add_data_arguments(parser)
    add_jobs_argument(parser, "worker processes, each training whole studies, then evaluation seeds")
    add_device_arguments(parser)
    return parser


def _lengths(text: str) -> tuple[int, ...]:
    return tuple(positive_int(part) for part in text.split(","))


def settled(args: argparse.Namespace) -> Replication:
    """The claim as asked: its own workloads and budget, with the flags' overrides."""
    replication: Replication = args.replication
    workloads = tuple(w.name for w in args.workload) if args.workload else None
    if workloads and replication.trains and len(workloads) > 1:
        raise UsageError(f"{replication.name} trains on one workload; --workload names {len(workloads)}")
    not_loss = [w.name for w in args.workload or () if not w.metric.from_loss]
    if replication.test == "curves" and not_loss:
        raise UsageError(f"{replication.name} fits a loss curve; {', '.join(not_loss)} is judged by accuracy")
    overrides = {
        "selection_seeds": args.selection_seeds, "seeds": args.seeds, "epochs": args.epochs, "workloads": workloads,
    }  # fmt: skip
    return dataclasses.replace(replication, **{k: v for k, v in overrides.items() if v})


def arm_experiment(arm: Arm, workload: Workload, epochs: int, seed: int, selection_seeds: int) -> Experiment:
    """One arm's grid study: the family on the grid (its default knobs, its window or the arm's),
    the arm's knobs in place of the defaults they change."""
    base = dataclasses.replace(
        make_experiment(workload, arm.family, epochs=epochs, seed=seed), lr_range=arm.lr_range
    )
    on_grid = base.on_grid(selection_seeds)
    return dataclasses.replace(on_grid, fixed=tuple({**dict(on_grid.fixed), **dict(arm.fixed)}.items()))


def storage_of(args: argparse.Namespace, replication: Replication, epochs: int) -> str:
    """One journal per run length where there are several (a study's name does not say its
    epochs): ``optuna-16ep.journal``; else ``--storage`` or ``OUT/optuna.journal``."""
    if len(replication.epochs) > 1:
        return str(args.out / f"optuna-{epochs}ep.journal")
    return args.storage or storage_spec(None, args.out)


def _train(args: argparse.Namespace, replication: Replication) -> list[optuna.Study]:
    """The claim's grids swept, one run length after another, and their chosen LRs re-trained
    on the evaluation seeds."""
    from study.storage.backends import open_storage, prepare_out_dir
    from study.sweep.jobs import SweepSettings, sweep

    workload = args.workload[0] if args.workload else workload_list(replication.workloads[0])[0]
    data: Splits = load_splits(workload, args.seed, args.data_dir)  # a missing file is said first
    prepare_out_dir(args.out)
    studies = []
    for epochs in replication.epochs or (workload.epochs,):
        spec = storage_of(args, replication, epochs)
        settings = SweepSettings(spec, None, 0, "none", DEFAULT_POPULATION, args.device, args.threads)
        arms = [
            arm_experiment(arm, workload, epochs, args.seed, replication.selection_seeds)
            for arm in replication.arms
        ]
        studies += sweep(
            open_storage(spec), workload, arms, data, settings, jobs=args.jobs, run_command=run_main
        )
    if replication.seeds:
        from study.evaluation.stage import refresh_reevaluations

        refresh_reevaluations(
            studies, seeds=lambda study: replication.seeds, data_dir=args.data_dir, device=args.device,
            jobs=args.jobs, threads=args.threads,
        )  # fmt: skip
    return studies


def _read(args: argparse.Namespace, replication: Replication) -> list[optuna.Study]:
    """The suite's grid studies of the claim's workloads, from its storage (read-only)."""
    from objectives import stored
    from objectives.stored import stored_reevaluation
    from study.reporting.analysis import load_studies

    spec = args.storage or str(SUITE_STORAGE)
    if args.storage is None and not SUITE_STORAGE.exists():
        raise UsageError(f"{replication.name} reads the standard suite's grids, and {SUITE_STORAGE} is missing: "
                         "run from the project's folder, or give --storage")  # fmt: skip
    studies = [
        study
        for study in load_studies(spec).values()
        if stored.is_ours(study.user_attrs)
        and (experiment := stored.stored_experiment(study.user_attrs)).is_grid
        and experiment.workload in replication.workloads
        and stored_reevaluation(study) is not None
    ]
    if not studies:
        raise UsageError(
            f"{spec} has no evaluated grid study of {', '.join(replication.workloads)}: run "
            "`python -m study.run --protocol grid` on them first"
        )
    return studies


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_device(args.device)
    replication = settled(args)
    if args.out is None:  # the default's parent is the project's own folder: made if missing
        args.out = Path("results", "replications", replication.name)
        args.out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    from study.reporting.replication_report import write_replication

    torch.set_num_threads(args.threads)
    studies = _train(args, replication) if replication.trains else _read(args, replication)
    summary = write_replication(replication, studies, args.out, args.command, args.started)
    print(summary.read_text(), end="")
    print(f"\nWritten: {summary} and its -runs.csv and .png beside it", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
