"""``python -m study.run``: tune every LR schedule family with Optuna, resumably.

Run it again with the same arguments to resume; raise ``--trials`` to add trials.
"""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Sequence
from pathlib import Path

import torch

from objectives.objective import Experiment
from objectives.optimizers import OPTIMIZERS
from objectives.schedules import FAMILIES
from objectives.workloads import WORKLOADS, get_workload
from study.analysis import summary_table, trials_frame
from study.cli import ArgumentParser, positive_int, run_main
from study.storage import open_storage, prepare_out_dir, storage_spec
from study.sweep import PRUNERS, run_sweep


def family_list(text: str) -> list[str]:
    """``all`` or a comma-separated list of family names."""
    if text == "all":
        return list(FAMILIES)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAMILIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown schedule family {', '.join(map(repr, unknown)) or repr(text)}; choose from: all, {', '.join(FAMILIES)}"
        )
    return list(dict.fromkeys(names))


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m study.run", description=__doc__)
    parser.add_argument(
        "--trials", type=positive_int, default=100, help="finished trials per family (default 100)"
    )
    parser.add_argument(
        "--workload", choices=list(WORKLOADS), default="digits", help="data + model (default digits)"
    )
    parser.add_argument(
        "--families",
        type=family_list,
        default=list(FAMILIES),
        help="comma list of families, or all (default)",
    )
    parser.add_argument(
        "--optimizer", choices=list(OPTIMIZERS), default="sgd", help="default sgd (momentum 0.9)"
    )
    parser.add_argument("--epochs", type=positive_int, help="epochs per trial (default: the workload's)")
    parser.add_argument("--batch-size", type=positive_int, help="mini-batch size (default: the workload's)")
    parser.add_argument(
        "--early-stopping",
        type=positive_int,
        metavar="PATIENCE",
        help="stop a trial after PATIENCE epochs without improvement, keeping its best weights",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("results"), help="output directory (default results)"
    )
    parser.add_argument("--storage", help="Optuna database URL or .journal path (default OUT/optuna.journal)")
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="fixes the data split, the sampler and every trial's seed (default 0)",
    )
    parser.add_argument("--pruner", choices=PRUNERS, default="median", help="default median")
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=1,
        help="PyTorch threads (default 1; results are bit-identical only for the same count)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    workload = get_workload(args.workload)
    experiments = [
        Experiment(
            workload=workload.name,
            optimizer=args.optimizer,
            family=family,
            epochs=args.epochs or workload.epochs,
            batch_size=args.batch_size or workload.batch_size,
            early_stopping=args.early_stopping,
            seed=args.seed,
        )
        for family in args.families
    ]
    prepare_out_dir(args.out)
    spec = storage_spec(args.storage, args.out)
    storage = open_storage(spec)
    torch.set_num_threads(args.threads)

    studies = run_sweep(storage, experiments, trials=args.trials, pruner=args.pruner)

    table = summary_table(trials_frame(studies))
    print(
        f"\n{workload.name}, {args.optimizer}: {args.trials} trials per family, target val_acc {workload.target}"
    )
    print(table.round({"best_val_acc": 4, "median_epochs_to_target": 1}).to_string(index=False, na_rep="-"))
    print(f"\nSee the learning curves: optuna-dashboard {shlex.quote(spec)}")


if __name__ == "__main__":
    run_main(main)
