"""``python -m study.run``: tune every LR schedule family with Optuna, resumably.

Run it again with the same arguments to resume; raise ``--trials`` to add trials.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from objectives.experiment import PROTOCOLS
from objectives.optim.optimizers import get_optimizer
from objectives.pruners import PRUNERS
from objectives.schedules import FAMILIES, get_family
from objectives.seeds import DEFAULT_SEEDS
from objectives.workloads.registry import Splits, Workload, load_splits
from study.cli import (
    ArgumentParser,
    add_artifact_argument,
    add_experiment_arguments,
    add_jobs_argument,
    add_margin_argument,
    add_output_arguments,
    add_population_argument,
    check_device,
    check_precision,
    evaluate_and_report,
    experiment_from_args,
    one_of,
    positive_int,
    run_main,
    storage_spec,
    workload_list,
)
from study.errors import RunStopped, UsageError
from study.places import is_database_url
from study.suites import SUITES

if TYPE_CHECKING:  # the heavy modules are imported once the arguments are known to be good
    import optuna

    from objectives.experiment import Experiment

DEFAULT_TRIALS, DEFAULT_REPEATS = 40, 3
"""Three tuning runs of 40 trials per family, not one of 100: a verdict then covers the tuning
run, at 1.2x the trials. On the default sweep, 40 trials instead of 100 cost a family's expected
best validation accuracy a median 0.0009, at most 0.0027 (wsd): README, How a verdict is reached."""

SUITE_SETS = ("workload", "trials", "seeds", "epochs", "repeats", "selection_seeds")
"""What ``--suite`` fixes per workload; given beside it, one of them is a usage error."""

PROTOCOL_CHOICES = ("budgeted", "grid", "both")
DEFAULT_PROTOCOL = "both"
"""The grid's answer, and beside it what a tuning budget buys and how much of it is luck."""
DEFAULT_SELECTION_SEEDS = 3
"""Grid protocol: each grid point's mean over 3 seeds chooses the family's LR."""


def family_list(text: str) -> list[str]:
    """``all``, or a comma-separated list of family names (spaces around a name ignored; ``all``
    anywhere in it means every family). Unknown names are listed, the first few and a count."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if "all" in names:
        return list(FAMILIES)
    unknown = list(dict.fromkeys(name for name in names if name not in FAMILIES))
    if unknown or not names:
        shown = ", ".join(map(repr, unknown[:SHOWN_UNKNOWN])) or repr(text)
        more = f" and {len(unknown) - SHOWN_UNKNOWN} more" if len(unknown) > SHOWN_UNKNOWN else ""
        raise argparse.ArgumentTypeError(
            f"unknown schedule family {shown}{more}; choose from: all, {', '.join(FAMILIES)}"
        )
    return list(dict.fromkeys(names))


SHOWN_UNKNOWN = 5
"""Unknown names an error repeats: a list of thousands stays one short line."""


def usable_families(families: list[str] | None, experiment: Experiment) -> list[str]:
    """The families to sweep: all that the optimizer can train by default (saying which it
    leaves out, on stderr), or the ones named, each of which it must be able to train."""

    def trainable(family: str) -> str | None:  # why not, or None
        if not get_family(family).schedule_free:
            return None
        try:
            get_optimizer(experiment.optimizer).check_schedule_free(experiment.optimizer_settings)
        except ValueError as error:
            return str(error)
        return None

    if families is not None:
        if reasons := [reason for family in families if (reason := trainable(family))]:
            raise UsageError(reasons[0])
        return families
    usable = [family for family in FAMILIES if trainable(family) is None]
    for family in sorted(set(FAMILIES) - set(usable)):
        print(f"note: leaving out {family}: {trainable(family)}", file=sys.stderr)
    return usable


def _add_protocol_arguments(parser: ArgumentParser) -> None:
    """How each family is tuned: the protocol, and each protocol's own count."""
    parser.add_argument(
        "--protocol",
        choices=PROTOCOL_CHOICES,
        help="budgeted: each family tuned --repeats times by TPE within --trials (what tuning buys, luck "
        "included); grid: every family at its best base LR on a shared grid, other knobs at published defaults, "
        "--selection-seeds seeds per grid point (objectives/grid.py); both (the default, and the suites')",
    )
    parser.add_argument(
        "--selection-seeds",
        type=positive_int,
        help=f"grid protocol: the seeds every grid point trains with (default {DEFAULT_SELECTION_SEEDS})",
    )
    parser.add_argument(
        "--repeats",
        type=positive_int,
        help="independent tuning runs per family (their own sampler seeds, --trials each); each verdict "
        f"takes a run as one sample, so it covers the tuning run (default {DEFAULT_REPEATS}; 1: seeds only)",
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m study.run", description=__doc__)
    parser.add_argument(
        "--suite",
        type=one_of(SUITES, "suite"),
        help=f"run a named cross-workload study ({', '.join(SUITES)}): its workloads, each with its own trials, "
        "epochs and seeds, and its tuning runs, into OUT (default results/SUITE); study/suites.py",
    )
    parser.add_argument(
        "--trials",
        type=positive_int,
        help=f"finished trials per family and tuning run (default {DEFAULT_TRIALS})",
    )
    parser.add_argument(
        "--families",
        type=family_list,
        help=f"comma list, or all (default): {', '.join(FAMILIES)}",
    )
    add_experiment_arguments(parser, several_workloads=True)
    add_output_arguments(parser, help_out="output directory (default results)")
    parser.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="none",
        help="stop trials early (default none: the median pruner stopped 15%% of the unpruned sweeps' five best "
        "configurations per family, unevenly, and changed 2 of 17 mnist1d verdicts; README, How a verdict is reached)",
    )
    add_population_argument(parser)
    parser.add_argument(
        "--lr-range",
        choices=["default", "auto"],
        default="default",
        help="base-LR search bounds: the optimizer's default, or auto from an LR range test (study.lr_find)",
    )
    parser.add_argument(
        "--seeds",
        type=positive_int,
        help=f"report: re-evaluation seeds per family, each also drawing the data split (default {DEFAULT_SEEDS})",
    )
    add_margin_argument(parser)
    add_artifact_argument(parser)
    _add_protocol_arguments(parser)
    add_jobs_argument(parser, "worker processes, each training whole studies, then re-evaluation seeds")
    parser.add_argument(
        "--no-report", action="store_true", help="skip the re-evaluation and the report at the end"
    )
    parser.add_argument(
        "--heartbeat",
        type=positive_int,
        default=10,
        metavar="SECONDS",
        help="database storages: a running trial's heartbeat interval; one silent for 3x as long is redone (default 10)",
    )
    parser.set_defaults(workload=None, out=None)  # None: not given, so --suite may set it
    return parser


@dataclass(frozen=True)
class Plan:
    """One workload of the sweep: its budget and its studies (budgeted: one per family and tuning
    run; grid: one per family), and the re-evaluation seeds of each protocol."""

    workload: Workload
    trials: int
    seeds: dict[str, int]  # protocol -> evaluation seeds
    experiments: list[Experiment]


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments with every default filled in: a suite's, else the single sweep's."""
    args = build_parser().parse_args(argv)
    if args.suite is not None:
        given = [f"--{name}" for name in SUITE_SETS if getattr(args, name) is not None]
        if given:
            raise UsageError(
                f"--suite {args.suite.name} sets {', '.join(given)} for each workload; drop them"
            )
    args.workload = args.workload or workload_list("digits")
    args.trials, args.seeds = args.trials or DEFAULT_TRIALS, args.seeds or DEFAULT_SEEDS
    args.selection_seeds = args.selection_seeds or DEFAULT_SELECTION_SEEDS
    args.repeats = args.repeats or (args.suite.repeats if args.suite else DEFAULT_REPEATS)
    args.protocol = args.protocol or (args.suite.protocol if args.suite else DEFAULT_PROTOCOL)
    args.out = args.out or Path("results", args.suite.name if args.suite else "")
    return args


def sweep_plans(args: argparse.Namespace) -> list[Plan]:
    """The workloads to sweep, in order, each with its budget: the suite's, or the arguments'."""
    if args.suite is None:
        seeds = dict.fromkeys(PROTOCOLS, args.seeds)
        return [Plan(w, args.trials, seeds, _experiments(args, w)) for w in args.workload]
    plans = []
    for part in args.suite.parts:
        workload = workload_list(part.workload)[0]
        of_part = argparse.Namespace(
            **{**vars(args), "epochs": part.epochs, "selection_seeds": part.selection_seeds}
        )
        seeds = {"budgeted": part.seeds, "grid": part.grid_seeds}
        plans.append(Plan(workload, part.trials, seeds, _experiments(of_part, workload)))
    return plans


def _experiments(args: argparse.Namespace, workload: Workload) -> list[Experiment]:
    """Budgeted: every family, ``--repeats`` tuning runs each; grid: every family once."""
    families = usable_families(args.families, experiment_from_args(args, "constant", workload))
    budgeted = [
        dataclasses.replace(experiment_from_args(args, family, workload), repeat=repeat)
        for family in families
        for repeat in range(args.repeats)
    ]
    grid = [experiment_from_args(args, family, workload).on_grid(args.selection_seeds) for family in families]
    return {"budgeted": budgeted, "grid": grid, "both": grid + budgeted}[args.protocol]


def _checked_journal(spec: str, plans: list[Plan]) -> optuna.storages.BaseStorage | None:
    """An existing journal, opened, once every study it holds of this sweep proved made with the
    sweep's settings: said before the data and torch load. None for a new journal or a database
    (opening one creates its tables: that waits until the data has loaded)."""
    if is_database_url(spec) or not Path(spec).is_file():
        return None
    from study.storage.backends import open_storage
    from study.sweep.stored_settings import check_stored_settings

    storage = open_storage(spec, create=False)
    for plan in plans:
        for experiment in plan.experiments:
            check_stored_settings(storage, experiment, plan.workload)
    return storage


def _with_lr_range_test(
    args: argparse.Namespace, workload: Workload, experiments: list[Experiment]
) -> list[Experiment]:
    """``--lr-range auto``: every family searches the range the LR range test suggests."""
    from study.evaluation.lr_range import find_range, save_plot

    optimizer = experiments[0].optimizer
    test = find_range(workload, optimizer, seed=args.seed, data_dir=args.data_dir)
    low, high = test.suggested
    print(f"LR range test on {workload.name}: base LR searched in {low:.3g} to {high:.3g}", end="")
    print(f" (plot: {save_plot(test, workload.name, optimizer, args.out)})")
    return [dataclasses.replace(e, lr_range=test.suggested) for e in experiments]


def _print_summary(
    workload: Workload, experiments: list[Experiment], studies: list[optuna.Study], trials: int
) -> None:
    """Each protocol's tuning, in a table: the grid's chosen LRs, the budget's best trials."""
    grid = [(e, s) for e, s in zip(experiments, studies) if e.is_grid]
    budgeted = [(e, s) for e, s in zip(experiments, studies) if not e.is_grid]
    if grid:
        _print_grid_summary(workload, [s for _, s in grid], grid[0][0])
    if budgeted:
        _print_budgeted_summary(workload, [e for e, _ in budgeted], [s for _, s in budgeted], trials)


def _print_grid_summary(workload: Workload, studies: list[optuna.Study], first: Experiment) -> None:
    from study.reporting.grid import choices_frame, points_frame

    metric = workload.metric
    choices = choices_frame(studies, points_frame(studies), workload.margin)
    print(
        f"\n{first.workload}, {first.optimizer_label}, grid protocol: each family's base LR with the best mean "
        f"{metric.validation_name} over {first.selection_seeds} selection seeds (the report's answer is on the test split)"
    )
    table = choices.sort_values("selection_mean", ascending=metric.direction == "minimize")
    shown = table[["family", "lr", "selection_mean", "tried_low", "tried_high", "edge"]].rename(
        columns={"lr": "chosen_lr", "selection_mean": f"mean_{metric.validation_name}"}
    )
    print(shown.round({f"mean_{metric.validation_name}": 4}).to_string(index=False))


def _print_budgeted_summary(
    workload: Workload, experiments: list[Experiment], studies: list[optuna.Study], trials: int
) -> None:
    from study.reporting.analysis import summary_table, trials_frame

    first, metric = experiments[0], workload.metric
    best = f"best_{metric.validation_name}"
    print(
        f"\n{first.workload}, {first.optimizer_label}: {trials} trials per family and tuning run, target "
        f"{metric.validation_name} {workload.target} ({best}: the tuning trials' best; the report's answer is on the test split)"
    )
    table = summary_table(trials_frame(studies), metric).rename(columns={"best_metric": best})
    print(table.round({best: 4, "median_epochs_to_target": 1}).to_string(index=False, na_rep="-"))


def _disk_full(spec: str, wanted: int) -> str:
    """What to say when the disk fills mid-sweep: finished trials are kept, and about how much
    more space the rest needs (a journal's bytes per finished trial, times the trials left)."""
    from objectives.stored import counts_as_finished
    from study.reporting.analysis import load_studies

    message = f"no space left on the device holding {spec}; every finished trial is kept"
    path = Path(spec)
    if spec.endswith(".journal") and path.is_file():
        finished = sum(
            counts_as_finished(t)
            for study in load_studies(spec).values()
            for t in study.get_trials(deepcopy=False)
        )
        if 0 < finished < wanted:
            needed = path.stat().st_size / finished * (wanted - finished) / 1e6
            message += f"; the {wanted - finished} trial(s) left need about {needed:.1f} MB more"
    return message + ": free some and run the same command again to resume"


def _sweep_workload(
    args: argparse.Namespace, spec: str, storage: optuna.storages.BaseStorage, plan: Plan, data: Splits
) -> list[optuna.Study]:
    """One workload's studies topped up (in ``--jobs`` processes where there are several), then
    summed up on stdout."""
    from study.sweep.jobs import SweepSettings, sweep

    workload, experiments = plan.workload, plan.experiments
    if args.lr_range == "auto":
        experiments = _with_lr_range_test(args, workload, experiments)
    settings = SweepSettings(
        spec, args.heartbeat, plan.trials, args.pruner, args.population, args.device, args.threads
    )
    studies = sweep(storage, workload, experiments, data, settings, jobs=args.jobs, run_command=run_main)
    _print_summary(workload, experiments, studies, plan.trials)
    return studies


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    check_device(args.device)
    check_precision(args.precision, args.device)
    plans = sweep_plans(args)
    spec = storage_spec(args.storage, args.out)
    from study.storage.backends import probe_storage

    probe_storage(spec)  # a bad database is said at once, not after the data and torch have loaded
    journal = _checked_journal(spec, plans) if args.lr_range == "default" else None
    # Before anything is written; a missing or damaged file is said before torch loads.
    data = [load_splits(plan.workload, args.seed, args.data_dir) for plan in plans]
    import torch

    from study.reporting.output import check_report_place
    from study.storage.backends import open_storage, prepare_out_dir

    prepare_out_dir(args.out)
    if not args.no_report:
        check_report_place(args.out)  # before the sweep, not after it
    torch.set_num_threads(args.threads)
    storage = journal or open_storage(spec, heartbeat=args.heartbeat)
    swept: list[optuna.Study] = []
    try:
        for plan, splits in zip(plans, data):  # one workload after another, into one storage
            swept += _sweep_workload(args, spec, storage, plan, splits)
    except OSError as error:
        if error.errno != errno.ENOSPC:
            raise
        raise RunStopped(
            _disk_full(spec, sum(plan.trials * len(plan.experiments) for plan in plans))
        ) from None
    if not args.no_report:
        from study.reporting.analysis import load_studies

        seeds = {(plan.workload.name, protocol): n for plan in plans for protocol, n in plan.seeds.items()}
        page, answers = evaluate_and_report(swept, list(load_studies(storage).values()), args, seeds)
        print("\nThe report's answer (best configurations re-trained over seeds, on the test split):")
        print("\n".join(answers))
        print(f"\nReport: {page}")
    print(f"\nSee the learning curves: optuna-dashboard {shlex.quote(spec)}")


if __name__ == "__main__":
    run_main(main)
