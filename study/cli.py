"""What every command line of the project shares: one-line errors and exit codes.

Bad input raises ``UsageError``; ``run_main`` prints it as one line on stderr and exits with
code 2, never a traceback. Ctrl-C exits with 130 and says how to resume.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from objectives.experiment import Experiment, make_experiment
from objectives.optim.optimizers import OPTIMIZERS, OptimizerSettings
from objectives.workloads.datasets import DataError
from objectives.workloads.registry import WORKLOADS, Workload, get_workload
from study.errors import RunStopped, UsageError
from study.places import JOURNAL_SUFFIX, out_dir_problem, storage_problem

if TYPE_CHECKING:
    import optuna


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad argument is a ``UsageError`` (one line) instead of usage + message, and
    a command's docstring reads as plain text in ``--help``."""

    def __init__(self, *args: Any, description: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, description=plain_text(description), **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """The arguments, with the command line as typed (``command``) and when it started
        (``started``, ``time.monotonic()``): what a report says it was made by."""
        parsed = super().parse_args(args, namespace)
        typed = sys.argv[1:] if args is None else list(args)
        parsed.command, parsed.started = f"{self.prog} {shlex.join(typed)}".strip(), time.monotonic()
        return parsed


def plain_text(docstring: str | None) -> str | None:
    """A docstring for ``--help``: no reStructuredText literals, hyphenated words kept whole."""
    if docstring is None:
        return None
    return re.sub(r"-\n\s*", "-", docstring).replace("``", "")


def positive_int(text: str) -> int:
    """An argparse type for counts that must be at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    """An argparse type for rates that must be above 0 (and finite)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def workload_list(text: str) -> list[Workload]:
    """An argparse type: workloads by name (``package.module:NAME`` for your own), comma-separated,
    resolved here, once, for everything below the command line."""
    names = list(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    if not names:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r}")
    for name in names:
        if name not in WORKLOADS and ":" not in name:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {name!r} (choose from {', '.join(WORKLOADS)}, or package.module:NAME)"
            )
    try:
        return [get_workload(name) for name in names]
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def one_workload(text: str) -> Workload:
    """An argparse type: one workload (``package.module:NAME`` for your own)."""
    workloads = workload_list(text)
    if len(workloads) != 1:
        raise argparse.ArgumentTypeError(f"takes one workload here, got {len(workloads)}: {text!r}")
    return workloads[0]


T = TypeVar("T")


def one_of(registry: Mapping[str, T], what: str) -> Callable[[str], T]:
    """An argparse type: one of ``registry``'s entries by name (a suite, a replication)."""

    def named(text: str) -> T:
        if text not in registry:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from: {', '.join(registry)}")
        return registry[text]

    return named


MAX_SEED = 2**32 - 1
"""Seeds feed numpy's and scikit-learn's generators, which take 0 to 2**32 - 1."""


def seed(text: str) -> int:
    """An argparse type for ``--seed``: a whole number from 0 to ``MAX_SEED``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_SEED}, got {value}")
    return value


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def thread_count(text: str) -> int:
    """An argparse type for ``--threads``: 1 up to the cores this process may use (more crashes
    OpenMP's thread pool)."""
    value = positive_int(text)
    if value > (cores := usable_cores()):
        raise argparse.ArgumentTypeError(
            f"{value} threads, but this machine lets this process use {cores} cores"
        )
    return value


def out_directory(text: str) -> Path:
    """An argparse type for ``--out``: a usable directory path (``out_dir_problem``), not an empty
    string (which would mean here). Checked while parsing, so a bad one answers at once."""
    if not text.strip():
        raise argparse.ArgumentTypeError("needs a directory, got an empty string")
    if problem := out_dir_problem(Path(text)):
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def storage_spec(storage: str | None, out: Path) -> str:
    """The storage to use: ``--storage`` if given, else the journal file in ``--out``."""
    return storage if storage is not None else str(out / f"optuna{JOURNAL_SUFFIX}")


def storage_argument(text: str) -> str:
    """An argparse type for ``--storage``, checked while parsing (``storage_problem``)."""
    if problem := storage_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def add_output_arguments(parser: argparse.ArgumentParser, *, help_out: str) -> None:
    """``--out`` and ``--storage``, as every command that reads or writes a sweep takes them."""
    parser.add_argument("--out", type=out_directory, default=Path("results"), help=help_out)
    parser.add_argument(
        "--storage",
        type=storage_argument,
        help="Optuna database URL or .journal path (default OUT/optuna.journal)",
    )


JOBS_ENV = "LR_STUDY_JOBS"


def default_jobs() -> int:
    """``$LR_STUDY_JOBS`` when set, else every core this process may use."""
    if not os.environ.get(JOBS_ENV):
        return usable_cores()
    try:
        return positive_int(os.environ[JOBS_ENV])
    except argparse.ArgumentTypeError as error:
        raise UsageError(f"${JOBS_ENV}: {error}") from None


def add_jobs_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--jobs``: processes working side by side; results are the same for any count."""
    parser.add_argument(
        "--jobs",
        type=positive_int,
        default=default_jobs(),
        help=f"{what} (default: ${JOBS_ENV}, else the usable cores, here {usable_cores()}); "
        "the results are the same for any count",
    )


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """``--seed`` and ``--data-dir``, as every command that loads a workload's data takes them."""
    parser.add_argument(
        "--seed", type=seed, default=0, help="fixes the data split and the training seeds (default 0)"
    )
    add_data_dir_argument(parser)


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=data_directory,
        help="read the canonical data files from DIR instead of downloading to the cache",
    )


def data_directory(text: str) -> Path:
    """An argparse type for ``--data-dir``: an existing directory (checked while parsing)."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is not an existing directory")
    return Path(text)


DEFAULT_POPULATION = 32
"""Trials trained together in one batched pass, unless ``--population`` says otherwise (measured
in results/PERFORMANCE.md)."""


def add_device_arguments(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--threads``, as every command that trains takes them."""
    parser.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        default="auto",
        help="where to train (default auto: a CUDA GPU if there is one, else the CPU)",
    )
    add_threads_argument(parser)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=1,
        help="PyTorch threads (default 1; numbers are identical only for the same count)",
    )


def add_population_argument(parser: argparse.ArgumentParser, help_text: str | None = None) -> None:
    parser.add_argument(
        "--population",
        type=positive_int,
        default=DEFAULT_POPULATION,
        help=help_text
        or f"trials trained together in one batched pass (default {DEFAULT_POPULATION}; 1 = one at a time)",
    )


def add_workload_argument(
    parser: argparse.ArgumentParser,
    *,
    several: bool = False,
    default: str | None = "digits",
    help_text: str = "",
) -> None:
    """``--workload``: one (``one_workload``) or a comma list (``workload_list``), by name."""
    parser.add_argument(
        "--workload",
        type=workload_list if several else one_workload,
        default=default,  # a string: argparse passes it through the type
        help=help_text
        or f"data + model (default {default}): {', '.join(WORKLOADS)}, or package.module:NAME for your own"
        + ("; a comma list sweeps each in turn into one storage" if several else ""),
    )


def check_device(name: str) -> str:
    """``--device`` as given, once it is known to exist here (one line, exit 2, if not)."""
    if name != "cuda":  # cpu and auto work everywhere; only asking for a GPU needs torch to check
        return name
    from objectives.engine.training import resolve_device

    try:
        resolve_device(name)
    except ValueError as error:
        raise UsageError(str(error)) from None
    return name


def check_precision(precision: str, device: str) -> None:
    """``--precision`` as given, once the hardware is known to run it natively (one line, exit 2,
    if not); fp32 needs no check."""
    if precision == "fp32":
        return
    from objectives.engine import training

    try:
        training.check_precision(precision, training.resolve_device(device))
    except ValueError as error:
        raise UsageError(str(error)) from None


def add_experiment_arguments(parser: argparse.ArgumentParser, *, several_workloads: bool = False) -> None:
    """The settings shared by every command that trains: what, how long, which seed."""
    add_workload_argument(parser, several=several_workloads)
    parser.add_argument(
        "--optimizer",
        choices=list(OPTIMIZERS),
        help="default: the workload's (sgd with momentum 0.9; adamw for shakespeare)",
    )
    parser.add_argument(
        "--momentum", type=float, help="SGD's momentum (default 0.9; 0 is plain SGD); stored with the study"
    )
    parser.add_argument("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    parser.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="fp32 (default), or bf16 autocast where the hardware computes bfloat16 natively (avx512_bf16 or AMX "
        "CPUs, CUDA GPUs); a bf16 sweep names its own studies",
    )
    parser.add_argument(
        "--weight-decay",
        type=float,
        metavar="DECAY",
        help="weight decay, any optimizer (default 0.01 for adamw, decoupled; 0 otherwise)",
    )
    parser.add_argument("--epochs", type=positive_int, help="epochs per trial (default: the workload's)")
    parser.add_argument("--batch-size", type=positive_int, help="mini-batch size (default: the workload's)")
    parser.add_argument(
        "--early-stopping",
        type=positive_int,
        metavar="PATIENCE",
        help="stop after PATIENCE epochs without a better validation accuracy, keeping the best weights",
    )
    add_data_arguments(parser)
    add_device_arguments(parser)


def experiment_from_args(
    args: argparse.Namespace, family: str, chosen_workload: Workload | None = None
) -> Experiment:
    """The experiment that ``add_experiment_arguments``' flags describe (``make_experiment``);
    ``chosen_workload`` picks one of several."""
    settings = OptimizerSettings(
        momentum=args.momentum, nesterov=args.nesterov, weight_decay=args.weight_decay
    )
    try:
        return make_experiment(
            chosen_workload or args.workload, family, optimizer=args.optimizer, settings=settings,
            epochs=args.epochs, batch_size=args.batch_size, early_stopping=args.early_stopping, seed=args.seed,
            precision=args.precision,
        )  # fmt: skip
    except ValueError as error:
        raise UsageError(str(error)) from None


def evaluate_and_report(
    refreshed: Sequence[optuna.Study],
    every: Sequence[optuna.Study],
    args: argparse.Namespace,
    seeds: Mapping[tuple[str, str], int] | None = None,
    *,
    notes: bool = True,
) -> tuple[Path, list[str]]:
    """The stages after the sweep, as ``study.run`` and ``study.report`` run them: evaluate
    ``refreshed`` where its stored evaluation is out of date (``seeds`` per (workload, protocol),
    else ``--seeds`` for every one, else as many as each has stored), then publish the report of
    ``every`` study. Returns the page and its headlines."""
    from study.evaluation.stage import refresh_reevaluations, seed_counts
    from study.reporting.provenance import provenance_line
    from study.reporting.publish import publish

    refresh_reevaluations(
        refreshed, seeds=seed_counts(seeds, args.seeds), data_dir=args.data_dir, device=args.device,
        jobs=args.jobs, threads=args.threads,
    )  # fmt: skip
    made_by = provenance_line(args.command, args.started)  # once re-trained: its wall time so far
    return publish(refreshed, every, args.out, args.margin, args.artifact_dir, made_by, notes=notes)


REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG)
"""A file the command may not use: permissions, a read-only file system, a name over the limit."""


def _os_error_exit(error: OSError) -> int | None:
    """A file the command may not use (permissions, a read-only file system) is bad input:
    one line, exit 2. A full disk: one line, exit 1 (finished work is kept). Anything else is
    a fault to see whole (None)."""
    place = " and ".join(str(name) for name in (error.filename, error.filename2) if name is not None)
    if error.errno in REFUSED:
        print(f"error: cannot use {place or 'a file'}: {error.strerror}", file=sys.stderr)
        return 2
    if error.errno == errno.ENOSPC:
        where = f" writing {place}" if place else ""
        print(
            f"error: no space left on the device{where}; free some and run the same command again",
            file=sys.stderr,
        )
        return 1
    return None


def run_main(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> NoReturn:
    """Run a command's ``main`` and turn its outcome into an exit code."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # per-trial INFO lines drown the output
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show ± gets \xb1, not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    code = _outcome(main, argv)
    # The command has ended. What is left is Python's teardown (about 2 s after a report, freeing
    # torch and the tables), during which CPython has put back the default action of SIGINT: a
    # Ctrl-C then would kill the process with no message and an exit code that says it failed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _outcome(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None) -> int:
    """Run ``main``: its exit code, with the one line that explains a failure printed."""
    try:
        main(argv)
    except (UsageError, DataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RunStopped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into head or less, which closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except OSError as error:  # after BrokenPipeError, which is one
        if (code := _os_error_exit(error)) is None:
            raise
        return code
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the exit
        print(
            "interrupted; finished trials are stored, run the same command again to resume", file=sys.stderr
        )
        return 130
    return 0


def add_margin_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--margin",
        type=positive_float,
        help="report: a difference from the reference within +-MARGIN counts as equivalent (two one-sided "
        "tests); default the workload's: 1%% of its target (0.0097 accuracy on digits, 0.032 bits on shakespeare)",
    )


def add_artifact_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--artifact-dir",
        type=out_directory,
        help="also store the report's figures and tables in DIR as Optuna artifacts of every study: "
        "optuna-dashboard STORAGE --artifact-dir DIR shows them on each study's page",
    )
