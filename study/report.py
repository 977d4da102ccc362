"""``python -m study.report``: the comparison report of a sweep, as one HTML page.

Re-evaluates each family's best configuration over seeds on the test split (only where the
stored re-evaluation is out of date), then writes ``<out>/report/``: ``index.html`` (self-
contained: figures embedded), ``summary.md``, and every table as CSV and figure as PNG. Each
(workload, optimizer) pair in the storage gets its own section. The report is written into a
fresh directory and switched into place by one rename: a reader sees the previous report or the
new one, never a mix. The data is ``study/reporting/sections.py``, the rendering ``study/reporting/render.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from objectives.seeds import DEFAULT_SEEDS
from study.cli import (
    ArgumentParser,
    add_artifact_argument,
    add_data_dir_argument,
    add_device_arguments,
    add_jobs_argument,
    add_margin_argument,
    add_output_arguments,
    check_device,
    evaluate_and_report,
    positive_int,
    run_main,
    storage_spec,
)
from study.errors import UsageError
from study.places import is_archive, regular_file_problem


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.report", description=__doc__)
    add_output_arguments(parser, help_out="where report/ goes, and the default storage")
    parser.add_argument(
        "--seeds",
        type=positive_int,
        help="re-evaluation seeds per family, each also drawing the data split (default: as many as "
        f"each study's stored re-evaluation has, so nothing is re-trained; {DEFAULT_SEEDS} for one without)",
    )
    add_data_dir_argument(parser)
    add_margin_argument(parser)
    add_artifact_argument(parser)
    add_jobs_argument(parser, "processes re-training the seeds side by side")
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    spec = storage_spec(args.storage, args.out)
    if args.storage is None and not Path(spec).is_file():  # said before the heavy imports
        if problem := regular_file_problem(Path(spec)):
            raise UsageError(f"journal storage {spec} {problem}")
        raise UsageError(
            f"no sweep in {args.out}: {spec} does not exist; run python -m study.run first or give --storage"
        )
    if is_archive(spec) and (args.seeds is not None or args.artifact_dir is not None):
        raise UsageError(
            f"{spec} is an archive, read as stored: drop --seeds and --artifact-dir, or decompress it (xz -dk)"
        )
    _report(args, spec, archived=is_archive(spec))


def _report(args: argparse.Namespace, spec: str, *, archived: bool) -> None:
    """The report of the sweep in ``spec``; from an archive (read only), as stored: nothing
    re-trained, no study's note or figure written."""
    from study.storage.backends import probe_storage

    probe_storage(spec)  # a bad database is said at once, not after the data and torch have loaded
    import torch

    from study.reporting import analysis
    from study.reporting.output import check_report_place
    from study.reporting.sections import group_studies
    from study.storage.backends import prepare_out_dir

    check_device(args.device)
    prepare_out_dir(args.out)
    check_report_place(args.out)  # before the seeds are re-trained, not after
    studies = list(analysis.load_studies(spec).values())
    if not group_studies(studies):
        raise UsageError(f"storage {spec} holds no sweep studies")
    if not any(analysis.finished_trials(study) for study in studies):
        raise UsageError(
            f"no trial in {spec} has finished yet: resume the sweep (the same python -m study.run command), then report"
        )
    torch.set_num_threads(args.threads)

    page, answers = evaluate_and_report([] if archived else studies, studies, args, notes=not archived)
    print("\n".join(answers))
    print(f"report: {page}")


if __name__ == "__main__":
    run_main(main)
