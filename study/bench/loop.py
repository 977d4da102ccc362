"""``python -m study.bench.loop``: the population engine against the loop people write, side by side.

Three ways to run the same sweep (same workload, family, trials, epochs, pruner), one after
another in one process, so their ratios are comparable on a noisy machine:

1. canonical: the optuna-examples ``pytorch_simple.py`` shape. A DataLoader and a model per
   trial, ``torch.optim`` with a ``torch.optim.lr_scheduler`` stepped per update, SQLite storage,
   report and prune every epoch, ``study.optimize``;
2. this project, one trial at a time (``--population 1``, journal storage);
3. this project with the population engine (``--population K``).

It prints trials per minute and the ratios, wall and CPU seconds of each way, and the engine's
achieved FLOP/s (``study.bench.counting``: FLOPs counted by ``torch.utils.flop_counter.FlopCounterMode``
on the training path itself) as a share of this machine's fp32 matrix-product rate, measured in
the same run on the same thread count: over the whole sweep, over its training epochs, and for
the matrix products alone (profiled), which bounds what the training could reach.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import optuna
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from objectives.experiment import Experiment
from objectives.objective import member_from_params, train_members
from objectives.optim.optimizers import get_optimizer
from objectives.stored import BASE_LR, stored_curve
from objectives.workloads.registry import Splits, Workload, load_splits
from study.bench.counting import count, matmul_flops_per_second
from study.cli import (
    ArgumentParser,
    add_population_argument,
    add_threads_argument,
    add_workload_argument,
    positive_int,
    run_main,
)
from study.storage.backends import open_storage
from study.sweep.top_up import run_sweep


def canonical(
    workload: Workload, experiment: Experiment, data: Splits, trials: int, storage: str, pruner: str
) -> tuple[float, optuna.Study]:
    """The optuna-examples loop (pruning with Optuna's MedianPruner, or none); returns seconds for
    ``trials`` trials, and the study."""
    low, high = get_optimizer(experiment.optimizer).lr_range

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float(BASE_LR, low, high, log=True)
        final_fraction = trial.suggest_float("final_fraction", 1e-4, 0.3, log=True)
        model = workload.make_model()
        optimizer = get_optimizer(experiment.optimizer).make(model.parameters(), lr)
        loader = DataLoader(
            TensorDataset(data.x_train, data.y_train), batch_size=experiment.batch_size, shuffle=True
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=experiment.epochs * len(loader), eta_min=lr * final_fraction
        )
        for epoch in range(experiment.epochs):
            model.train()
            for x, y in loader:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
                scheduler.step()
            model.eval()
            with torch.no_grad():
                accuracy = (model(data.x_val).argmax(1) == data.y_val).float().mean().item()
            trial.report(accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return accuracy

    study = optuna.create_study(
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
        pruner=optuna.pruners.MedianPruner() if pruner == "median" else optuna.pruners.NopPruner(),
    )
    with timed() as seconds:
        study.optimize(objective, n_trials=trials)
    return *seconds, study


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """Wall and CPU seconds (this process, every thread) of the block, filled in when it ends:
    on a shared machine the CPU time says what the wall time lost to other work."""
    seconds: list[float] = []
    wall, cpu = time.perf_counter(), time.process_time()
    yield seconds
    seconds += [time.perf_counter() - wall, time.process_time() - cpu]


def project(
    workload: Workload,
    experiment: Experiment,
    data: Splits,
    trials: int,
    population: int,
    journal: Path,
    pruner: str,
) -> tuple[float, float, optuna.Study]:
    """This project's sweep of one family; returns wall and CPU seconds for ``trials`` trials,
    and the study."""
    storage = open_storage(str(journal))
    with timed() as seconds:
        [study] = run_sweep(
            storage,
            workload,
            [experiment],
            data,
            trials=trials,
            pruner=pruner,
            population=population,
            device="cpu",
        )
    return *seconds, study


def one_population_epoch(
    workload: Workload, experiment: Experiment, data: Splits, population: int
) -> Callable[[], object]:
    """One epoch of ``population`` members on the path the sweep times (training and
    validation), to count: ``counting.count`` runs it under the FLOP counter and the profiler."""
    one_epoch = dataclasses.replace(experiment, epochs=1)
    members = [
        member_from_params(one_epoch, {BASE_LR: 0.01, "final_fraction": 0.01}, seed)
        for seed in range(population)
    ]
    return lambda: train_members(workload, one_epoch, data, members)


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.bench.loop", description=__doc__)
    add_workload_argument(parser)
    parser.add_argument("--trials", type=positive_int, default=64, help="trials per way (default 64)")
    add_population_argument(parser)
    add_threads_argument(parser)
    parser.add_argument(
        "--pruner", choices=["median", "none"], default="median", help="every way alike (default median)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    workload = args.workload
    experiment = Experiment(workload.name, "sgd", "cosine", workload.epochs, workload.batch_size, None, 0)
    data = load_splits(workload, 0, None)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        runs = {
            "canonical (DataLoader, torch scheduler, SQLite)": canonical(workload, experiment, data, args.trials, f"sqlite:///{scratch / 'canonical.db'}", args.pruner),
            "this project, one trial at a time": project(workload, experiment, data, args.trials, 1, scratch / "one.journal", args.pruner),
            f"this project, population {args.population}": project(workload, experiment, data, args.trials, args.population, scratch / "population.journal", args.pruner),
        }  # fmt: skip
        summary = [
            {"way": way, "seconds": seconds, "cpu_seconds": cpu, "pruned": pruned_share(study),
             "epochs_per_trial": epochs_trained(study) / args.trials, "outside_training": outside_training(study, seconds)}
            for way, (seconds, cpu, study) in runs.items()
        ]  # fmt: skip
    table = pd.DataFrame(summary)
    table["trials_per_minute"] = 60 * args.trials / table["seconds"]
    table["speedup"] = table["trials_per_minute"] / table["trials_per_minute"].iloc[0]
    print(
        f"{workload.name}, cosine family, {args.trials} trials of {workload.epochs} epochs, pruner {args.pruner}, {args.threads} thread(s)"
    )
    print(
        table.round(
            {
                "seconds": 1,
                "cpu_seconds": 1,
                "pruned": 2,
                "epochs_per_trial": 1,
                "outside_training": 2,
                "trials_per_minute": 1,
                "speedup": 2,
            }
        ).to_string(index=False, na_rep="-")
    )
    population = table.iloc[-1]
    counted = count(one_population_epoch(workload, experiment, data, args.population))
    peak = matmul_flops_per_second()
    work = population["epochs_per_trial"] * args.trials * counted.total_flops / args.population
    training = population["seconds"] * (1 - population["outside_training"])
    print(
        f"population engine: {counted.total_flops / args.population / 1e6:.1f} MFLOP per member-epoch (FlopCounterMode); "
        f"a 2048x2048 fp32 matmul here: {peak / 1e9:.1f} GFLOP/s. Of it the sweep reached "
        f"{work / population['seconds'] / peak:.1%} by wall time ({work / population['cpu_seconds'] / peak:.1%} by CPU time), "
        f"its training epochs {work / training / peak:.1%}; the matrix products took {counted.product_share:.0%} of an epoch "
        f"and ran at {counted.product_rate / peak:.1%} (profiled: with all else taking no time, training could reach no more)"
    )


def epochs_trained(study: optuna.Study) -> int:
    """Epochs the study's trials trained, all together (one report per epoch)."""
    return sum(len(trial.intermediate_values) for trial in study.trials)


def outside_training(study: optuna.Study, seconds: float) -> float | None:
    """Share of the sweep's seconds spent outside training: sampling, storage, pruning. Each
    trial's curve holds the training seconds charged to it; the canonical loop records none."""
    curves = (stored_curve(trial.user_attrs) for trial in study.trials)
    charged = [curve["seconds"][-1] for curve in curves if curve]
    return 1 - sum(charged) / seconds if charged else None


def pruned_share(study: optuna.Study) -> float:
    return sum(trial.state == optuna.trial.TrialState.PRUNED for trial in study.trials) / len(study.trials)


if __name__ == "__main__":
    run_main(main)
