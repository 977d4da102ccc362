"""The report stage as the commands run it: re-evaluate the studies whose stored re-evaluation is
out of date (progress per seed), then write the page, the dashboard figures and the artifacts.
``study.run`` (after its sweep) and ``study.report`` both call ``reevaluate_and_publish``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the heavy modules are imported once the arguments are known to be good
    import optuna
    from tqdm import tqdm


@dataclass(frozen=True)
class ReportSettings:
    """What the report stage is asked to do, as a command's flags said it (``study.cli.report_settings``)."""

    out: Path
    command: str  # as typed, and when it started (``time.monotonic()``): the provenance line says both
    started: float
    margin: float | None = None  # None: each workload's own
    artifact_dir: Path | None = None
    seeds: int | None = None  # evaluation seeds for every study; None: as many as each has stored
    data_dir: Path | None = None
    device: str = "cpu"
    jobs: int = 1
    threads: int = 1


def reevaluate_and_publish(
    refreshed: Sequence[optuna.Study],
    every: Sequence[optuna.Study],
    settings: ReportSettings,
    seeds: Mapping[tuple[str, str], int] | None = None,
    *,
    notes: bool = True,
) -> tuple[Path, list[str]]:
    """Re-evaluate ``refreshed`` where needed, then publish the report of ``every`` study:
    ``seeds`` per (workload, protocol), else ``settings.seeds`` for every one, else (None) as many
    as each study's stored re-evaluation has."""
    refresh_reevaluations(
        refreshed, seeds=_seed_counts(seeds, settings.seeds), data_dir=settings.data_dir, device=settings.device,
        jobs=settings.jobs, threads=settings.threads,
    )  # fmt: skip
    from study.reporting.provenance import provenance_line

    made_by = provenance_line(settings.command, settings.started)  # once re-trained: its wall time so far
    return publish(
        refreshed, every, settings.out, settings.margin, settings.artifact_dir, made_by, notes=notes
    )


def publish(
    refreshed: Sequence[optuna.Study],
    every: Sequence[optuna.Study],
    out: Path,
    margin: float | None,
    artifact_dir: Path | None,
    made_by: str = "",
    *,
    notes: bool = True,
) -> tuple[Path, list[str]]:
    """The report's outputs: the dashboard figures of the studies just re-evaluated, the page
    from every study in the storage, each study's verdict in its dashboard note, and, with
    ``artifact_dir``, its files as the studies' artifacts. Returns the page and its headlines."""
    from objectives import stored
    from study.reporting.artifacts import upload_report_files
    from study.reporting.dashboard import publish_figures, save_grid_note, save_verdict_note
    from study.reporting.render import write_report

    for study in refreshed:
        publish_figures(study)
    page, answers, sections, grids = write_report(every, out, margin, made_by)
    by_group = {(s.workload, s.optimizer): s for s in sections} if notes else {}  # the budgeted protocol's
    by_grid = {(g.workload, g.optimizer): g for g in grids}
    for study in every:
        attrs = study.user_attrs  # a deep copy on every access: read it once
        group = (attrs.get(stored.WORKLOAD), attrs.get(stored.OPTIMIZER_LABEL))
        is_grid = stored.is_ours(attrs) and stored.stored_experiment(attrs).is_grid
        if notes and is_grid and group in by_grid:
            save_grid_note(study, by_grid[group], page.absolute())
        elif stored.is_ours(attrs) and group in by_group and not is_grid:
            save_verdict_note(
                study, by_group[group], page.absolute()
            )  # not resolved: report/ is a link to each new copy
    if artifact_dir is not None:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        upload_report_files(every, page.parent, artifact_dir)
    return page, answers


def _seed_counts(
    per_workload: Mapping[tuple[str, str], int] | None, every: int | None
) -> Callable[[optuna.Study], int]:
    """A study's re-evaluation seed count: its (workload, protocol)'s, else ``every``'s, else its
    stored re-evaluation's (so a report rebuilt from a storage re-trains nothing), else the default."""
    from objectives.seeds import DEFAULT_SEEDS
    from objectives.stored import stored_experiment
    from study.reporting.reevaluate import stored_reevaluation

    def seeds(study: optuna.Study) -> int:
        experiment = stored_experiment(study.user_attrs)
        key = (experiment.workload, experiment.protocol)
        if per_workload and key in per_workload:
            return per_workload[key]
        stored = stored_reevaluation(study)
        return every or (len(stored["seeds"]) if stored else DEFAULT_SEEDS)

    return seeds


def refresh_reevaluations(
    studies: Sequence[optuna.Study], *, seeds: Callable[[optuna.Study], int], data_dir: Path | None,
    device: str = "cpu", jobs: int = 1, threads: int = 1,
) -> None:  # fmt: skip
    """Re-evaluate every study whose stored re-evaluation is missing or out of date (``seeds``:
    each study's seed count), those of one workload together (``reevaluate_together``, seeds
    shared among ``jobs`` processes), with progress per seed."""
    from tqdm import tqdm

    from study.reporting.reevaluate import chosen, is_current, reevaluate_together, same_training

    groups: dict[tuple, list[optuna.Study]] = {}
    for study in studies:
        wanted = seeds(study)  # reads the study's attributes: once
        if chosen(study) is not None and not is_current(study, wanted):
            groups.setdefault((*same_training(study), wanted), []).append(study)
    for (workload, *_, count), group in groups.items():
        what = f"re-evaluating {workload}: {len(group)} tuned configurations x {count} seeds"
        with tqdm(total=count, desc=what, unit="seed", disable=None) as bar:
            reevaluate_together(
                group, count, data_dir=data_dir, device=device, jobs=jobs, threads=threads,
                on_seed=_progress(bar, what),
            )  # fmt: skip


def _progress(bar: tqdm, what: str) -> Callable[[int, int], None]:
    """Advance the bar; without a terminal, print a plain line per seed instead."""

    def on_seed(done: int, total: int) -> None:
        bar.update(1)
        if bar.disable:
            print(f"{what}: seed {done} of {total} done", file=sys.stderr, flush=True)

    return on_seed
