"""``python -m study.noise``: where the seed-to-seed spread of one configuration comes from.

One configuration (a family at its grid defaults and a base LR) is trained ``--runs`` times in
each of four ways, every run scored on the test split: only the initialization varies (the data
order fixed), only the data order varies, both vary, and both vary with the seed drawing the
split too (as an evaluation seed does). The spread each leaves, an SD with its 95% chi-square
interval, says which source dominates; beside them the evaluation sample's own share, the binomial
SD sqrt(p (1 - p) / n) of an accuracy on a test split of n examples (a fixed model's score on a
finite sample). Where that share is most of the spread, a larger evaluation set shrinks it more
cheaply than more seeds (issue 34; results/METHODS.md, Noise). Writes ``OUT/noise/<workload>.csv``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from study.cli import ArgumentParser, add_experiment_arguments, experiment_from_args, positive_int, run_main

WAYS = ("initialization", "data order", "both", "both and the split")
"""What varies between the runs of each set."""


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m study.noise", description=__doc__)
    add_experiment_arguments(parser)
    parser.add_argument(
        "--family", default="cosine", help="the schedule family, at its grid defaults (default cosine)"
    )
    parser.add_argument("--lr", type=float, required=True, help="the base LR (e.g. the grid's chosen one)")
    parser.add_argument("--runs", type=positive_int, default=20, help="runs per way of varying (default 20)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="where noise/<workload>.csv goes")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    import pandas as pd
    import torch

    from objectives.objective import member_from_params, train_members
    from objectives.seeds import derive_seed
    from objectives.stored import BASE_LR
    from objectives.workloads.registry import load_splits

    torch.set_num_threads(args.threads)
    workload = args.workload
    experiment = experiment_from_args(args, args.family).on_grid(1)
    params = {BASE_LR: args.lr, **dict(experiment.fixed)}
    seeds = [derive_seed(args.seed, 3_000_000 + k) for k in range(args.runs)]  # none a sweep's own
    fixed = seeds[0]
    started, rows = time.process_time(), []
    for way in WAYS:
        members = [
            member_from_params(experiment, params, seed if way != "data order" else fixed) for seed in seeds
        ]
        if way in ("initialization", "data order"):
            members = [
                dataclasses.replace(m, order_seed=fixed if way == "initialization" else seed)
                for m, seed in zip(members, seeds, strict=True)
            ]
        # One population per split: the runs of a way that keeps the split train together.
        splits = seeds if way == "both and the split" else [args.seed]
        for split in splits:
            data = load_splits(workload, split, args.data_dir)
            chosen = [m for m, seed in zip(members, seeds, strict=True) if len(splits) == 1 or seed == split]
            results = train_members(
                workload, experiment, data, chosen, evaluate_test=True, device=args.device
            )
            rows += [
                {"way": way, "seed": r.config.data_order_seed if way == "data order" else r.config.seed,
                 "test_metric": r.test_metric, "test_examples": len(data.y_test)}
                for r in results
            ]  # fmt: skip
        print(f"{workload.name}: {way} done", file=sys.stderr, flush=True)
    runs = pd.DataFrame(rows)
    table = spread_table(runs, workload.metric.label == "accuracy")
    out = args.out / "noise"
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / f"{workload.name}.csv", index=False)
    runs.to_csv(out / f"{workload.name}-runs.csv", index=False)
    print(
        f"{workload.name}, {args.family} at LR {args.lr:g}, {args.runs} runs a way ({time.process_time() - started:.0f} s CPU):"
    )
    print(table.round(4).to_string(index=False))


def spread_table(runs, accuracy: bool):
    """Per way of varying: the SD of the test metric over its runs with a 95% chi-square interval,
    and, for an accuracy, the binomial SD of the evaluation sample at the runs' mean."""
    import pandas as pd
    from scipy import stats

    rows = []
    for way, group in runs.groupby("way", sort=False):
        values, n = group["test_metric"].to_numpy(dtype=float), len(group)
        sd = float(values.std(ddof=1))
        low = sd * math.sqrt((n - 1) / stats.chi2.ppf(0.975, n - 1))
        high = sd * math.sqrt((n - 1) / stats.chi2.ppf(0.025, n - 1))
        p, examples = float(values.mean()), float(group["test_examples"].mean())
        sample = math.sqrt(p * (1 - p) / examples) if accuracy else math.nan
        rows.append({"varies": way, "runs": n, "mean": p, "sd": sd, "sd_ci_low": low, "sd_ci_high": high,
                     "evaluation_sample_sd": sample, "test_examples": int(examples)})  # fmt: skip
    return pd.DataFrame(rows)


if __name__ == "__main__":
    run_main(main)
