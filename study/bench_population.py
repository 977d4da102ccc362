"""``python -m study.bench_population``: seconds per member-epoch at several population sizes.

For one workload, trains populations of 1, 8, 32, ... members (its default optimizer, constant
schedule, LRs spread over a decade, seeds 0..P-1) for ``--epochs`` epochs each, one size after
another in one process, so the ratios are comparable on a noisy machine. An epoch includes its
validation, as in a sweep. The gain is population 1's seconds per member-epoch over each size's.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from objectives.engine.training import MemberConfig, train
from objectives.workloads.registry import Workload, load_splits
from study.cli import ArgumentParser, add_data_arguments, one_workload, positive_int, run_main


def seconds_per_member_epoch(
    workload: Workload, seed: int, data_dir: Path | None, population: int, epochs: int
) -> float:
    """Wall seconds of training ``population`` members for ``epochs`` epochs, per member-epoch."""
    data = load_splits(workload, seed, data_dir)
    low = {"sgd": 0.01}.get(workload.optimizer, 1e-3)
    members = [
        MemberConfig(workload.optimizer, float(lr), "constant", {}, seed)
        for seed, lr in enumerate(np.geomspace(low, 10 * low, population), start=seed)
    ]
    start = time.perf_counter()
    train(workload, data, members, epochs=epochs, batch_size=workload.batch_size)
    return (time.perf_counter() - start) / (population * epochs)


def _sizes(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(",")]


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.bench_population", description=__doc__)
    parser.add_argument("--workload", type=one_workload, default="digits")
    parser.add_argument("--populations", type=_sizes, default=[1, 8, 32], help="comma list (default 1,8,32)")
    parser.add_argument("--epochs", type=positive_int, default=2, help="epochs per population (default 2)")
    parser.add_argument("--threads", type=positive_int, default=1)
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    measure = lambda size, epochs: seconds_per_member_epoch(
        args.workload, args.seed, args.data_dir, size, epochs
    )
    measure(1, 1)  # warm up: data loaded, kernels ready
    rows = [
        {"population": size, "seconds_per_member_epoch": measure(size, args.epochs)}
        for size in args.populations
    ]  # fmt: skip
    table = pd.DataFrame(rows)
    table["gain_over_one"] = table["seconds_per_member_epoch"].iloc[0] / table["seconds_per_member_epoch"]
    print(f"{args.workload.name}: {args.epochs} epoch(s) per population, {args.threads} thread(s)")
    print(table.round({"seconds_per_member_epoch": 4, "gain_over_one": 2}).to_string(index=False))


if __name__ == "__main__":
    run_main(main)
