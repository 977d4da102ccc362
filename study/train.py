"""``python -m study.train``: train one configuration and print its per-epoch curve.

Either name the configuration (``--family exponential --lr 0.1 --param gamma=0.9``) or re-train
a stored trial (``--from-study digits-sgd-cosine --trial 12``), which reproduces its curve.
Parameter names are the ones the dashboard shows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch

from objectives.objective import Experiment, member_from_trial, train_members
from objectives.schedules import FAMILIES
from objectives.training import MemberConfig
from objectives.workloads import load_splits
from study.cli import (
    ArgumentParser,
    UsageError,
    add_experiment_arguments,
    experiment_from_args,
    positive_float,
    run_main,
)
from study.storage import open_storage, storage_spec


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs into a dict; numbers become numbers."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--param expects NAME=VALUE, got {pair!r}")
        if name == "lr":
            raise UsageError("give the base LR with --lr, not --param lr=...")
        params[name] = _parse_value(value)
    return params


def _family_param_names(family: str) -> list[str]:
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
    FAMILIES[family].suggest(trial)
    return list(trial.params)


def member_from_params(experiment: Experiment, params: dict[str, Any], seed: int) -> MemberConfig:
    """The member that a trial with these stored (or typed) parameters would train."""
    known = ["lr", *_family_param_names(experiment.family)]
    if unknown := sorted(set(params) - set(known)):
        raise UsageError(
            f"unknown parameter(s) {', '.join(unknown)} for {experiment.family}; it takes: {', '.join(known)}"
        )
    if missing := [name for name in known if name not in params]:
        raise UsageError(f"{experiment.family} needs {', '.join(f'--param {n}=...' for n in missing)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # values outside the search range are allowed here
        try:
            return member_from_trial(optuna.trial.FixedTrial(params), experiment, seed)
        except ValueError as error:
            raise UsageError(str(error)) from None


def _stored_trial(args: Any) -> tuple[Experiment, dict[str, Any], int]:
    storage = open_storage(storage_spec(args.storage, args.out))
    names = optuna.get_all_study_names(storage)
    if args.from_study not in names:
        raise UsageError(
            f"no study {args.from_study!r} in that storage; it has: {', '.join(names) or 'none'}"
        )
    study = optuna.load_study(study_name=args.from_study, storage=storage)
    trials = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
    if args.trial not in trials:
        raise UsageError(
            f"study {args.from_study!r} has no trial {args.trial}; it has trials 0 to {len(trials) - 1}"
        )
    trial = trials[args.trial]
    print(f"stored: state {trial.state.name}, value {trial.value}")
    return Experiment.from_attrs(study.user_attrs), trial.params, trial.user_attrs["seed"]


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m study.train", description=__doc__)
    add_experiment_arguments(parser)
    parser.add_argument("--family", choices=list(FAMILIES), default="constant")
    parser.add_argument("--lr", type=positive_float, help="base LR (the peak LR for one_cycle)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a family knob; repeat"
    )
    stored = parser.add_argument_group("re-train a stored trial (other settings come from the study)")
    stored.add_argument("--from-study", metavar="NAME")
    stored.add_argument("--trial", type=int, metavar="N")
    stored.add_argument("--out", type=Path, default=Path("results"))
    stored.add_argument("--storage")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.from_study is not None:
        if args.trial is None:
            raise UsageError("--from-study needs --trial N")
        experiment, params, seed = _stored_trial(args)
    else:
        if args.lr is None:
            raise UsageError("give --lr (or --from-study NAME --trial N)")
        experiment = experiment_from_args(args, args.family)
        params, seed = {**parse_params(args.param), "lr": args.lr}, args.seed
    member = member_from_params(experiment, params, seed)
    torch.set_num_threads(args.threads)

    [result] = train_members(
        experiment,
        load_splits(experiment.workload, experiment.seed, args.data_dir),
        [member],
        device=args.device,
    )
    print(pd.DataFrame(result.curve.as_dict()).to_string(index=False))
    reached = result.curve.first_reaching(experiment.target)
    print(
        f"final val_acc {result.final_val_acc:.4f}; target {experiment.target} "
        + (f"reached at epoch {result.curve.epoch[reached]}" if reached is not None else "not reached")
        + (f"; stopped: {result.stop_reason}" if result.stop_reason else "")
    )


if __name__ == "__main__":
    run_main(main)
