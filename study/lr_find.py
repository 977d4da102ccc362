"""``python -m study.lr_find``: the LR range test for a workload and optimizer.

Saves the plot to ``<out>/lr_find/<workload>-<optimizer>.png`` and prints the suggested base-LR
search range; ``python -m study.run --lr-range auto`` uses the same test to set its bounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from objectives.optim.optimizers import OPTIMIZERS
from objectives.workloads.registry import load_splits
from study.cli import (
    ArgumentParser,
    add_data_arguments,
    add_threads_argument,
    add_workload_argument,
    out_directory,
    run_main,
)


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.lr_find", description=__doc__)
    add_workload_argument(parser)
    parser.add_argument(
        "--optimizer", choices=list(OPTIMIZERS), help="default: the workload's (sgd; adamw for shakespeare)"
    )
    parser.add_argument(
        "--out", type=out_directory, default=Path("results"), help="the plot goes to OUT/lr_find/"
    )
    add_data_arguments(parser)
    add_threads_argument(parser)
    args = parser.parse_args(argv)
    load_splits(args.workload, args.seed, args.data_dir)  # cached; a bad file is said before torch loads
    import torch

    from study.evaluation.lr_range import find_range, save_plot
    from study.storage.backends import prepare_out_dir

    prepare_out_dir(args.out)
    torch.set_num_threads(args.threads)
    optimizer = args.optimizer or args.workload.optimizer
    test = find_range(args.workload, optimizer, seed=args.seed, data_dir=args.data_dir)
    path = save_plot(test, args.workload.name, optimizer, args.out)
    low, high = test.suggested
    print(
        f"suggested base-LR search range for {args.workload.name} with {optimizer}: {low:.3g} to {high:.3g}"
    )
    print(f"plot: {path}")


if __name__ == "__main__":
    run_main(main)
