"""``python -m study.replicate NAME``: a published claim about LR schedules, tested at this scale.

Tunes each arm of the claim (``study/replications.py``) with its own Optuna studies, several
times independently and at each run length, re-trains every tuned configuration over seeds on
the test split, and says whether the claim is reproduced, not reproduced or inconclusive, with
intervals over tuning runs. Writes ``NAME.md``, ``NAME.csv`` and ``NAME.png`` into OUT (default
results/replications/NAME). Resumable: run the same command again.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.experiment import Experiment
from objectives.workloads.registry import Splits, Workload, load_splits
from study.cli import (
    ArgumentParser,
    add_data_arguments,
    add_device_arguments,
    add_jobs_argument,
    check_device,
    experiment_from_args,
    out_directory,
    positive_int,
    run_main,
    storage_spec,
    workload_list,
)
from study.errors import UsageError
from study.replications import REPLICATIONS, Budget, Replication, replication_name

if TYPE_CHECKING:
    import optuna

POPULATION = 32
"""Trials trained together, as ``study.run``'s default: a budget's trials all at once."""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m study.replicate", description=__doc__)
    parser.add_argument("replication", type=replication_name, help=f"one of: {', '.join(REPLICATIONS)}")
    parser.add_argument(
        "--workload", type=workload_list, help="only these of the replication's workloads (comma list)"
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        help="trials per arm, run length and tuning run (default: the replication's)",
    )
    parser.add_argument(
        "--repeats", type=positive_int, help="tuning runs per arm and run length (default: the replication's)"
    )
    parser.add_argument(
        "--seeds", type=positive_int, help="re-evaluation seeds per tuning run (default: the replication's)"
    )
    parser.add_argument(
        "--epochs", type=positive_int, help="epochs of the shortest run length (default: the replication's)"
    )
    parser.add_argument(
        "--out", type=out_directory, help="output directory (default results/replications/NAME)"
    )
    add_data_arguments(parser)
    add_jobs_argument(parser, "worker processes, each training whole studies, then re-evaluation seeds")
    add_device_arguments(parser)
    return parser


def budgets(args: argparse.Namespace) -> list[Budget]:
    """The replication's budgets, for the workloads asked, with the flags' overrides."""
    replication: Replication = args.replication
    chosen = replication.budgets
    if args.workload is not None:
        names = [workload.name for workload in args.workload]
        if unknown := [name for name in names if name not in {b.workload for b in chosen}]:
            offered = ", ".join(b.workload for b in chosen)
            raise UsageError(f"{replication.name} runs on {offered}, not {', '.join(unknown)}")
        chosen = tuple(b for b in chosen if b.workload in names)
    overrides = {name: getattr(args, name) for name in ("trials", "seeds", "epochs") if getattr(args, name)}
    return [dataclasses.replace(budget, **overrides) for budget in chosen]


def experiments(args: argparse.Namespace, workload: Workload, epochs: int, repeats: int) -> list[Experiment]:
    """The studies of one workload at one run length: each arm, ``repeats`` times."""
    defaults = argparse.Namespace(
        optimizer=None, momentum=None, nesterov=False, weight_decay=None, epochs=epochs,
        batch_size=None, early_stopping=None, seed=args.seed, precision="fp32",
    )  # fmt: skip
    return [
        dataclasses.replace(
            experiment_from_args(defaults, arm.family, workload),
            repeat=repeat,
            fixed=arm.fixed,
            lr_range=arm.lr_range,
        )
        for arm in args.replication.arms
        for repeat in range(repeats)
    ]


def storage_of(out: Path, replication: Replication, length: int) -> str:
    """One journal per run length (a study's name does not say its epochs, and a study is trained
    at one length): ``optuna-2x.journal``; ``optuna.journal`` where there is one length."""
    return (
        storage_spec(None, out) if len(replication.lengths) == 1 else str(out / f"optuna-{length}x.journal")
    )


def _sweep(
    args: argparse.Namespace, workload: Workload, data: Splits, budget: Budget, length: int, repeats: int
) -> list[optuna.Study]:
    """One workload's studies at one run length, topped up to the budget's trials."""
    from study.sweep.jobs import SweepSettings, sweep
    from study.sweep.storage import open_storage

    spec = storage_of(args.out, args.replication, length)
    settings = SweepSettings(spec, None, budget.trials, "none", POPULATION, args.device, args.threads)
    studies = experiments(args, workload, budget.epochs * length, repeats)
    return sweep(open_storage(spec), workload, studies, data, settings, jobs=args.jobs, run_command=run_main)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_device(args.device)
    replication: Replication = args.replication
    chosen, repeats = budgets(args), args.repeats or replication.repeats
    if args.out is None:  # the default's parent is the project's own folder: made if missing
        args.out = Path("results", "replications", replication.name)
        args.out.parent.mkdir(parents=True, exist_ok=True)
    workloads = [workload_list(budget.workload)[0] for budget in chosen]
    # Loaded once per workload, and before anything is written: a missing or damaged file is said first.
    data = [load_splits(workload, args.seed, args.data_dir) for workload in workloads]
    import torch

    from study.reporting.publish import refresh_reevaluations
    from study.reporting.replication_report import write_replication
    from study.sweep.storage import prepare_out_dir

    prepare_out_dir(args.out)
    torch.set_num_threads(args.threads)
    studies: list[optuna.Study] = []
    for budget, workload, splits in zip(chosen, workloads, data):
        swept = [
            s
            for length in replication.lengths
            for s in _sweep(args, workload, splits, budget, length, repeats)
        ]
        if budget.seeds:
            refresh_reevaluations(
                swept, seeds=lambda study, n=budget.seeds: n, data_dir=args.data_dir, device=args.device,
                jobs=args.jobs, threads=args.threads,
            )  # fmt: skip
        studies += swept
    summary = write_replication(
        replication, studies, [b.workload for b in chosen], args.out, args.command, args.started
    )
    print(summary.read_text(), end="")
    print(f"\nWritten: {summary} and its .csv and .png beside it", file=sys.stderr)


if __name__ == "__main__":
    run_main(main)
