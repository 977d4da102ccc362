"""The report as the commands publish it: the page from every stored study, each study's
verdict in its dashboard note and its figures on its dashboard page, and, when asked, the files as
Optuna artifacts. It reads what is stored and trains nothing (the evaluation stage,
``study.evaluation``, runs before it)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the heavy modules are imported once the arguments are known to be good
    import optuna


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

    with stored.decoded_once():  # the report reads the studies' attributes, never writes them
        for study in refreshed:
            publish_figures(study)
        page, answers, sections, grids = write_report(every, out, margin, made_by)
        # the budgeted protocol's sections, by workload and optimizer
        by_group = {(s.workload, s.optimizer): s for s in sections} if notes else {}
        by_grid = {(g.workload, g.optimizer): g for g in grids}
        for study in every:
            attrs = stored.attrs_of(study)
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
