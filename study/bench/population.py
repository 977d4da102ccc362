"""``python -m study.bench.population``: seconds per member-epoch at several population sizes,
and in each precision.

For one workload, trains populations of 1, 8, 32, ... members (its default optimizer, constant
schedule, LRs spread over a decade, seeds 0..P-1) for ``--epochs`` epochs each, one size and
precision after another in one process, so the ratios are comparable on a noisy machine; CPU
time beside wall time says what the wall time lost to other work. An epoch includes its
validation, as in a sweep. The gain is population 1's seconds per member-epoch over each size's
(in the same precision); ``bf16_speedup`` is fp32's seconds over bf16's at the same size.

What the machine counts (``study.bench.counting``), per size: FLOPs per member-epoch by PyTorch's
counter, the share of this machine's fp32 matrix-product rate (measured in the same run) that
training reached, and, from the fastest of three profiled epochs, the share of the time the
matrix products took and their own rate. ``gain_ceiling`` is population 1's seconds per
member-epoch over this size's products' seconds alone: the gain if everything but the products
took no time.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from objectives.engine.training import MemberConfig, Precision, train
from objectives.workloads.registry import Splits, Workload, load_splits
from study.bench.counting import count, matmul_flops_per_second
from study.bench.loop import timed
from study.cli import (
    ArgumentParser,
    add_data_arguments,
    add_threads_argument,
    add_workload_argument,
    check_device,
    check_precision,
    positive_int,
    run_main,
)


def population_training(
    workload: Workload, data: Splits, seed: int, population: int, epochs: int,
    precision: Precision = "fp32", device: str = "cpu",
) -> Callable[[], None]:  # fmt: skip
    """Training ``population`` members for ``epochs`` epochs (seeds from ``seed``, LRs over a decade)."""
    low = {"sgd": 0.01}.get(workload.optimizer, 1e-3)
    members = [
        MemberConfig(workload.optimizer, float(lr), "constant", {}, seed)
        for seed, lr in enumerate(np.geomspace(low, 10 * low, population), start=seed)
    ]

    def run() -> None:
        train(
            workload,
            data,
            members,
            epochs=epochs,
            batch_size=workload.batch_size,
            precision=precision,
            device=device,
        )
        if device == "cuda":
            torch.cuda.synchronize()

    return run


def seconds_per_member_epoch(run: Callable[[], None], population: int, epochs: int) -> tuple[float, float]:
    """Wall and CPU seconds of ``run`` per member-epoch."""
    with timed() as seconds:
        run()
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
    parser = ArgumentParser(prog="python -m study.bench.population", description=__doc__)
    add_workload_argument(parser)
    parser.add_argument("--populations", type=_sizes, default=[1, 8, 32], help="comma list (default 1,8,32)")
    parser.add_argument("--epochs", type=positive_int, default=2, help="epochs per population (default 2)")
    parser.add_argument(
        "--precision", type=_precisions, default=["fp32"], help="comma list of fp32, bf16 (default fp32)"
    )
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    add_threads_argument(parser)
    add_data_arguments(parser)
    args = parser.parse_args(argv)
    check_device(args.device)
    for precision in args.precision:
        check_precision(precision, args.device)
    torch.set_num_threads(args.threads)
    workload = args.workload

    data = load_splits(workload, args.seed, args.data_dir)
    for precision in args.precision:  # warm up: kernels ready
        population_training(workload, data, args.seed, 1, 1, precision, args.device)()
    rows = []
    for size in args.populations:  # precisions side by side at each size
        for precision in args.precision:
            run = population_training(workload, data, args.seed, size, args.epochs, precision, args.device)
            wall, cpu = seconds_per_member_epoch(run, size, args.epochs)
            rows.append({"population": size, "precision": precision, "wall_s": wall, "cpu_s": cpu,
                         **counted_columns(population_training(workload, data, args.seed, size, 1, precision, args.device), size, wall)})  # fmt: skip
    peak = matmul_flops_per_second()
    table = pd.DataFrame(rows)
    table["peak_pct"] = 100 * table.pop("flop_per_s") / peak
    table["products_peak_pct"] = 100 * table.pop("products_flop_per_s") / peak
    table["gain_over_one"] = table.groupby("precision")["wall_s"].transform("first") / table["wall_s"]
    table["gain_ceiling"] = table.groupby("precision")["wall_s"].transform("first") / table.pop("products_s")
    if {"fp32", "bf16"} <= set(args.precision):
        fp32 = table[table["precision"] == "fp32"].set_index("population")["wall_s"]
        table["bf16_speedup"] = np.where(
            table["precision"] == "bf16", table["population"].map(fp32) / table["wall_s"], np.nan
        )
    print(
        f"{workload.name} on {args.device}: {args.epochs} epoch(s) per population, {args.threads} thread(s); seconds per "
        f"member-epoch; % of a 2048x2048 fp32 matmul's rate here ({peak / 1e9:.1f} GFLOP/s, measured after the runs)"
    )
    print(table.round({"wall_s": 4, "cpu_s": 4, "gflop": 4, "products_share": 2, "peak_pct": 1, "products_peak_pct": 1,
                       "gain_over_one": 2, "gain_ceiling": 2, "bf16_speedup": 2}).to_string(index=False, na_rep="-"))  # fmt: skip


def counted_columns(
    one_epoch: Callable[[], None], population: int, wall_per_member_epoch: float
) -> dict[str, float]:
    """FLOPs per member-epoch and the rate reached, and the products' share, rate and seconds per
    member-epoch, counted on one more epoch of the same population (``counting.count``)."""
    counted = count(one_epoch)
    flops = counted.total_flops / population
    return {
        "gflop": flops / 1e9,
        "flop_per_s": flops / wall_per_member_epoch,
        "products_share": counted.product_share,
        "products_flop_per_s": counted.product_rate,
        "products_s": flops / counted.product_rate,
    }


if __name__ == "__main__":
    run_main(main)
