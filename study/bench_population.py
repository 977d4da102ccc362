"""``python -m study.bench_population``: seconds per member-epoch at several population sizes,
and in each precision.

For one workload, trains populations of 1, 8, 32, ... members (its default optimizer, constant
schedule, LRs spread over a decade, seeds 0..P-1) for ``--epochs`` epochs each, one size and
precision after another in one process, so the ratios are comparable on a noisy machine; CPU
time beside wall time says what the wall time lost to other work. An epoch includes its
validation, as in a sweep. The gain is population 1's seconds per member-epoch over each size's
(in the same precision); ``bf16_speedup`` is fp32's seconds over bf16's at the same size.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from objectives.engine.training import MemberConfig, Precision, train
from objectives.workloads.registry import Workload, load_splits
from study.bench import timed
from study.cli import (
    ArgumentParser,
    add_data_arguments,
    check_device,
    check_precision,
    one_workload,
    positive_int,
    run_main,
)


def seconds_per_member_epoch(
    workload: Workload, seed: int, data_dir: Path | None, population: int, epochs: int,
    precision: Precision = "fp32", device: str = "cpu",
) -> tuple[float, float]:  # fmt: skip
    """Wall and CPU seconds of training ``population`` members for ``epochs`` epochs, per member-epoch."""
    data = load_splits(workload, seed, data_dir)
    low = {"sgd": 0.01}.get(workload.optimizer, 1e-3)
    members = [
        MemberConfig(workload.optimizer, float(lr), "constant", {}, seed)
        for seed, lr in enumerate(np.geomspace(low, 10 * low, population), start=seed)
    ]
    with timed() as seconds:
        train(workload, data, members, epochs=epochs, batch_size=workload.batch_size, precision=precision, device=device)
        if device == "cuda":
            torch.cuda.synchronize()
    wall, cpu = seconds
    return wall / (population * epochs), cpu / (population * epochs)


def _sizes(text: str) -> list[int]:
    return [positive_int(part) for part in text.split(",")]


def _precisions(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",")]
    if unknown := [p for p in chosen if p not in ("fp32", "bf16")]:
        raise argparse.ArgumentTypeError(f"unknown precision {unknown[0]!r}; choose from fp32, bf16")
    return chosen


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.bench_population", description=__doc__)
    parser.add_argument("--workload", type=one_workload, default="digits")
    parser.add_argument("--populations", type=_sizes, default=[1, 8, 32], help="comma list (default 1,8,32)")
    parser.add_argument("--epochs", type=positive_int, default=2, help="epochs per population (default 2)")
    parser.add_argument("--precision", type=_precisions, default=["fp32"], help="comma list of fp32, bf16 (default fp32)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=positive_int, default=1)
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    check_device(args.device)
    for precision in args.precision:
        check_precision(precision, args.device)
    torch.set_num_threads(args.threads)
    workload = args.workload

    def measure(size: int, epochs: int, precision: Precision) -> tuple[float, float]:
        return seconds_per_member_epoch(workload, args.seed, args.data_dir, size, epochs, precision, args.device)

    for precision in args.precision:
        measure(1, 1, precision)  # warm up: data loaded, kernels ready
    rows = []
    for size in args.populations:  # precisions side by side at each size
        for precision in args.precision:
            wall, cpu = measure(size, args.epochs, precision)
            rows.append({"population": size, "precision": precision, "wall_s": wall, "cpu_s": cpu})
    table = pd.DataFrame(rows)
    table["gain_over_one"] = table.groupby("precision")["wall_s"].transform("first") / table["wall_s"]
    if {"fp32", "bf16"} <= set(args.precision):
        fp32 = table[table["precision"] == "fp32"].set_index("population")["wall_s"]
        table["bf16_speedup"] = np.where(table["precision"] == "bf16", table["population"].map(fp32) / table["wall_s"], np.nan)
    print(f"{workload.name} on {args.device}: {args.epochs} epoch(s) per population, {args.threads} thread(s); seconds per member-epoch")
    print(table.round(4).to_string(index=False, na_rep="-"))


if __name__ == "__main__":
    run_main(main)
