"""``python -m study.report``: the comparison report of a sweep, as one HTML page.

Re-evaluates each family's best configuration over seeds on the test split (only where the
stored re-evaluation is out of date), then writes ``<out>/report/``: ``index.html`` (self-
contained: figures embedded), ``summary.md``, and every table as CSV and figure as PNG. Each
(workload, optimizer) pair in the storage gets its own section. The report is written into a
fresh directory and switched into place by one rename: a reader sees the previous report or the
new one, never a mix. The data is ``study/sections.py``, the rendering ``study/render.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from study.cli import (
    ArgumentParser,
    add_data_dir_argument,
    add_device_arguments,
    add_jobs_argument,
    add_output_arguments,
    check_device,
    out_directory,
    positive_float,
    positive_int,
    run_main,
    storage_spec,
)
from study.errors import UsageError

if TYPE_CHECKING:  # the heavy modules are imported once the arguments are known to be good
    import optuna
    from tqdm import tqdm

DEFAULT_SEEDS = 20


def add_margin_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--margin",
        type=positive_float,
        help="report: a difference from the reference within +-MARGIN counts as equivalent (two one-sided "
        "tests); default the workload's (0.005 accuracy, 0.01 bits per character for shakespeare)",
    )


def add_artifact_argument(parser: ArgumentParser) -> None:
    parser.add_argument(
        "--artifact-dir",
        type=out_directory,
        help="also store the report's figures and tables in DIR as Optuna artifacts of every study: "
        "optuna-dashboard STORAGE --artifact-dir DIR shows them on each study's page",
    )


def reevaluate_and_publish(
    refreshed: Sequence[optuna.Study], every: Sequence[optuna.Study], args: argparse.Namespace
) -> tuple[Path, list[str]]:
    """Re-evaluate ``refreshed`` where needed, then publish the report of ``every`` study, as the
    command line (``run`` or ``report``) asks."""
    refresh_reevaluations(
        refreshed, seeds=args.seeds, data_dir=args.data_dir, device=args.device, jobs=args.jobs,
        threads=args.threads,
    )  # fmt: skip
    return publish(refreshed, every, args.out, args.margin, args.artifact_dir)


def publish(
    refreshed: Sequence[optuna.Study],
    every: Sequence[optuna.Study],
    out: Path,
    margin: float | None,
    artifact_dir: Path | None,
) -> tuple[Path, list[str]]:
    """The report's outputs: the dashboard figures of the studies just re-evaluated, the page
    from every study in the storage, and, with ``artifact_dir``, its files as the studies'
    artifacts. Returns the page and its headlines."""
    from study.artifacts import upload_report_files
    from study.dashboard import publish_figures
    from study.render import write_report

    for study in refreshed:
        publish_figures(study)
    page, answers = write_report(every, out, margin)
    if artifact_dir is not None:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        upload_report_files(every, page.parent, artifact_dir)
    return page, answers


def refresh_reevaluations(
    studies: Sequence[optuna.Study], *, seeds: int, data_dir: Path | None, device: str = "cpu",
    jobs: int = 1, threads: int = 1,
) -> None:  # fmt: skip
    """Re-evaluate every study whose stored re-evaluation is missing or out of date, those of one
    workload together (``reevaluate_together``, seeds shared among ``jobs`` processes), with
    progress per seed."""
    from tqdm import tqdm

    from study.reevaluate import is_current, reevaluate_together, same_training

    groups: dict[tuple, list[optuna.Study]] = {}
    for study in studies:
        if study.best_trials and not is_current(study, seeds):
            groups.setdefault(same_training(study), []).append(study)
    for (workload, *_), group in groups.items():
        what = f"re-evaluating {workload}: {len(group)} families x {seeds} seeds"
        with tqdm(total=seeds, desc=what, unit="seed", disable=None) as bar:
            reevaluate_together(
                group, seeds, data_dir=data_dir, device=device, jobs=jobs, threads=threads,
                on_seed=_progress(bar, what),
            )  # fmt: skip


def _progress(bar: tqdm, what: str) -> Callable[[int, int], None]:
    """Advance the bar; without a terminal, print a plain line per seed instead."""

    def on_seed(done: int, total: int) -> None:
        bar.update(1)
        if bar.disable:
            print(f"{what}: seed {done} of {total} done", file=sys.stderr, flush=True)

    return on_seed


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.report", description=__doc__)
    add_output_arguments(parser, help_out="where report/ goes, and the default storage")
    parser.add_argument(
        "--seeds",
        type=positive_int,
        default=DEFAULT_SEEDS,
        help=f"re-evaluation seeds per family, each also drawing the data split (default {DEFAULT_SEEDS})",
    )
    add_data_dir_argument(parser)
    add_margin_argument(parser)
    add_artifact_argument(parser)
    add_jobs_argument(parser, "processes re-training the seeds side by side")
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    spec = storage_spec(args.storage, args.out)
    if args.storage is None and not Path(spec).is_file():  # said before the heavy imports
        raise UsageError(
            f"no sweep in {args.out}: {spec} does not exist; run python -m study.run first or give --storage"
        )
    from study.storage import probe_storage

    probe_storage(spec)  # a bad database is said at once, not after the data and torch have loaded
    import torch

    from study import analysis
    from study.output import check_report_place
    from study.sections import group_studies
    from study.storage import prepare_out_dir

    check_device(args.device)
    prepare_out_dir(args.out)
    check_report_place(args.out)  # before the seeds are re-trained, not after
    studies = list(analysis.load_studies(spec).values())
    if not group_studies(studies):
        raise UsageError(f"storage {spec} holds no sweep studies")
    torch.set_num_threads(args.threads)
    page, answers = reevaluate_and_publish(studies, studies, args)
    print("\n".join(answers))
    print(f"report: {page}")


if __name__ == "__main__":
    run_main(main)
