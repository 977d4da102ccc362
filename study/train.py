"""``python -m study.train``: train one configuration and print its per-epoch curve.

Either name the configuration (``--family exponential --lr 0.1 --param gamma=0.9``) or re-train
a stored trial (``--from-study digits-sgd-cosine --trial 12``), which reproduces its curve.
Parameter names are the ones the dashboard shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from objectives import stored
from objectives.schedules import FAMILIES, get_family
from objectives.workloads.registry import Workload, get_workload, load_splits
from study.cli import (
    ArgumentParser,
    add_experiment_arguments,
    add_output_arguments,
    check_device,
    check_precision,
    experiment_from_args,
    positive_float,
    run_main,
    storage_spec,
)
from study.errors import UsageError

if TYPE_CHECKING:  # the heavy modules are imported once the arguments are known to be good
    from objectives.engine.training import MemberConfig
    from objectives.experiment import Experiment


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
        if name == stored.BASE_LR:
            raise UsageError(f"give the base LR with --lr, not --param {name}=...")
        params[name] = _parse_value(value)
    return params


def _stored_trial(args: Any) -> tuple[Workload, Experiment, dict[str, Any], int]:
    import optuna

    from study.storage.backends import open_storage

    storage = open_storage(storage_spec(args.storage, args.out), create=False, read_only=True)
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
    if stored.SEED not in trial.user_attrs:
        raise UsageError(
            f"trial {args.trial} of {args.from_study!r} is {trial.state.name} and stored no run; choose a complete or pruned trial"
        )
    print(f"stored: state {trial.state.name}, value {trial.value}")
    experiment = stored.stored_experiment(study.user_attrs)
    try:
        workload = get_workload(experiment.workload)
    except ValueError as error:  # an own workload that can no longer be imported
        raise UsageError(str(error)) from None
    return workload, experiment, trial.params, trial.user_attrs[stored.SEED]


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
    add_output_arguments(stored, help_out="where the stored sweep is (default results)")
    return parser


COLUMNS = {
    "epoch": "epoch",
    "train_loss": "train_loss",
    "val_loss": "val_loss",
    "val_acc": "val_acc",
    "lr": "lr_at_epoch_end",
    "momentum": "momentum_at_epoch_end",
    "seconds": "seconds_cumulative",
}
"""The curve's quantities as the table names them: what the LR, momentum and seconds shown are."""


def _check_names(family: str, params: dict[str, Any]) -> None:
    """Typed parameters name exactly the family's knobs, said in the command line's words."""
    known = [stored.BASE_LR, *get_family(family).param_names]
    if unknown := sorted(set(params) - set(known)):
        raise UsageError(
            f"unknown parameter(s) {', '.join(unknown)} for {family}; it takes: {', '.join(known)}"
        )
    if missing := [name for name in known if name not in params]:
        raise UsageError(f"{family} needs {', '.join(f'--param {n}=...' for n in missing)}")


def _configuration(args: Any) -> tuple[Workload, Experiment, dict[str, Any], int]:
    """What to train: a stored trial's experiment, parameters and seed, or the flags'."""
    if args.from_study is not None:
        if args.trial is None:
            raise UsageError("--from-study needs --trial N")
        return _stored_trial(args)
    if args.lr is None:
        raise UsageError("give --lr (or --from-study NAME --trial N)")
    experiment, params = (
        experiment_from_args(args, args.family),
        {**parse_params(args.param), stored.BASE_LR: args.lr},
    )
    _check_names(args.family, params)
    return args.workload, experiment, params, args.seed


def _member(experiment: Experiment, params: dict[str, Any], seed: int) -> MemberConfig:
    """The member to train; a value it cannot take is one line (``UsageError``)."""
    from objectives.objective import member_from_params

    try:
        return member_from_params(experiment, params, seed)
    except ValueError as error:
        raise UsageError(str(error)) from None


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_device(args.device)
    check_precision(args.precision, args.device)
    workload, experiment, params, seed = _configuration(args)
    data = load_splits(workload, experiment.seed, args.data_dir)  # said before torch loads
    member = _member(experiment, params, seed)
    import pandas as pd
    import torch

    from objectives.objective import train_members

    torch.set_num_threads(args.threads)
    [result] = train_members(
        workload,
        experiment,
        data,
        [member],
        evaluate_test=True,  # reported at the end; nothing is decided on it
        device=args.device,
    )
    metric = workload.metric
    curve = pd.DataFrame(result.curve.as_dict())
    if metric.validation_name == "val_acc":  # the metric is the accuracy: shown once
        curve = curve.drop(columns="val_metric")
    curve = curve.rename(columns=COLUMNS | {"val_metric": metric.validation_name})
    print(curve.to_string(index=False))
    reached = result.curve.first_reaching(workload.target, metric)
    print(
        f"final {metric.validation_name} {result.final_metric:.4f}; target {workload.target} "
        + (f"reached at epoch {result.curve.epoch[reached]}" if reached is not None else "not reached")
        + (f"; stopped: {result.stop_reason}" if result.stop_reason else "")
    )
    diverged = result.stop_reason == "diverged"
    print(
        f"test {metric.label}: - (diverged)" if diverged else f"test {metric.label}: {result.test_metric:.4f}"
    )


if __name__ == "__main__":
    run_main(main)
