"""A claim's outputs (``python -m study.replicate``): ``NAME.md`` (the claim, the setting, the
outcome in one sentence, the rule it was judged by, the tables), ``NAME.csv`` (the comparisons),
``NAME-runs.csv`` (one row per trained run, for re-analysis) and ``NAME.png``, each carrying its
provenance line."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd

from objectives import stored
from study.replications import Replication
from study.reporting import claims, figures, replication
from study.reporting.output import write_file
from study.reporting.provenance import provenance_line
from study.reporting.render import png_bytes


@dataclass(frozen=True)
class Measured:
    """What a claim's page shows: its outcome, the runs behind it, more tables, the figure's data."""

    outcome: replication.Outcome
    runs: pd.DataFrame  # one row per trained run (or per seed of a reading), for NAME-runs.csv
    unit: str  # the leads' unit, for the figure
    margin: float  # shaded in the figure; 0: none applies
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    points: pd.DataFrame | None = None  # the figure's second panel (figures.replication)
    leads: pd.DataFrame | None = None  # the figure's first panel, where not the outcome's whole table


def _by_workload(studies: Sequence[optuna.Study]) -> dict[str, list[optuna.Study]]:
    groups: dict[str, list[optuna.Study]] = {}
    for study in studies:
        groups.setdefault(stored.attrs_of(study)[stored.WORKLOAD], []).append(study)
    return groups


def _sensitivity_points(runs: pd.DataFrame, label: str) -> pd.DataFrame:
    """Each arm's mean over its selection seeds at every grid LR (and run length, where several)."""
    selection = runs[runs["stage"] == "selection"]
    several = selection["epochs"].nunique() > 1
    series = selection["arm"] + (", " + selection["epochs"].astype(str) + " epochs" if several else "")
    points = selection.assign(series=series).groupby(["series", "lr"], as_index=False)["val_metric"].mean()
    points = points.rename(columns={"lr": "x", "val_metric": "y"})
    points.attrs.update(
        x_label="base LR (grid)", y_label=f"validation {label}\n(mean of selection seeds)", log_x=True
    )
    return points


def _trained(chosen: Replication, studies: Sequence[optuna.Study]) -> Measured:
    metric, margin = claims.metric_of(studies)
    runs = claims.runs_frame(studies, chosen.arms)
    points = _sensitivity_points(runs, metric.label)
    if chosen.test == "band_reaches_higher":
        selection = runs[runs["stage"] == "selection"].rename(columns={"val_metric": "value"})
        arms = (chosen.arms[0].label, chosen.arms[1].label)
        outcome = replication.band_reaches_higher(selection, arms, metric.sign, margin)
        return Measured(outcome, runs, "decades of base LR (> 0: higher with warmup)", 0.0, points=points)
    outcome = replication.judge_leads(chosen, runs[runs["stage"] == "evaluation"], metric, margin)
    tables = [
        (f"Each arm at its grid LR (test {metric.label}, evaluation seeds)", claims.arm_table(runs, metric))
    ]
    if chosen.test == "lead_grows":
        tables.append(("Tokens per parameter", _tokens_per_parameter(chosen, studies)))
    return Measured(
        outcome,
        runs,
        f"lead in test {metric.label} (> 0: ahead of {chosen.arms[0].label})",
        margin,
        tables,
        points,
    )


def _tokens_per_parameter(chosen: Replication, studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """Training tokens over the model's parameters at each run length (counted on the model)."""
    from objectives.workloads.registry import get_workload

    workload = get_workload(chosen.workloads[0])
    parameters = sum(p.numel() for p in workload.make_model().parameters())
    tokens = workload.steps_per_epoch * workload.batch_size * workload.input_shape[0]
    return pd.DataFrame([{"epochs": e, "tokens": e * tokens, "parameters": parameters,
                          "tokens_per_parameter": round(e * tokens / parameters, 1)} for e in chosen.epochs])  # fmt: skip


def _robustness(chosen: Replication, studies: Sequence[optuna.Study]) -> Measured:
    lost = pd.concat([claims.robustness_frame(group) for group in _by_workload(studies).values()])
    contrasts = claims.robustness_contrasts(lost)
    outcome = replication.robustness(contrasts)
    per_family = lost.groupby(["workload", "family", "decays", "rho", "direction"], as_index=False)[
        "lost"
    ].mean()
    points = lost.groupby(["decays", "direction", "rho"], as_index=False)["lost"].median()
    points = points.assign(series=points["decays"].map({True: "decaying", False: "not decaying"}) + ", LR "
                           + points["direction"]).rename(columns={"rho": "x", "lost": "y"})  # fmt: skip
    points.attrs.update(x_label="rho (the LR off its best by this factor)",
                        y_label="validation metric lost\n(median of families)", log_x=False)  # fmt: skip
    tables = [("Per family: metric lost at the LR off by rho (mean over selection seeds)", per_family)]
    return Measured(
        outcome,
        lost,
        "constant's loss minus decaying families' (> 0: decaying loses less)",
        0.0,
        tables,
        points,
    )


def _convex_bound(chosen: Replication, studies: Sequence[optuna.Study]) -> Measured:
    groups = _by_workload(studies)
    frame = pd.concat([claims.bound_frame(group) for group in groups.values()])
    signs = {workload: claims.metric_of(group)[0].sign for workload, group in groups.items()}
    outcome = replication.bound_ordering(frame, signs)
    per_family = frame.groupby(["workload", "family"], as_index=False).agg(
        bound=("bound", "first"),
        bound_lr=("bound_lr", "first"),
        lr=("lr", "first"),
        test_metric=("test_metric", "mean"),
    )
    return Measured(outcome, frame, "Spearman correlation of bound and measurement (> 0: as the bound orders)", 0.0,
                    [("Per family", per_family)])  # fmt: skip


def _curves(chosen: Replication, studies: Sequence[optuna.Study]) -> Measured:
    curves = claims.curve_frame(studies)
    outcome = replication.curve_prediction(curves)
    families = outcome.table.dropna(subset=["error"])
    points = pd.DataFrame(
        {"x": families["measured"], "y": families["predicted"], "series": "predicted families"}
    )
    points.attrs.update(
        x_label="measured final validation metric", y_label="predicted by the law", identity=True
    )
    skill = outcome.table.dropna(subset=["lead"])
    return Measured(
        outcome, curves, "skill (> 0: the law beats the fitted runs' mean)", 0.0, [], points, skill
    )


MEASURE: dict[str, Callable[[Replication, Sequence[optuna.Study]], Measured]] = {
    "robustness": _robustness, "convex_bound": _convex_bound, "curves": _curves,
}  # fmt: skip
RULE: dict[str, Callable] = {
    "matches_reference": replication.matches_reference, "lead_grows": replication.lead_grows,
    "band_reaches_higher": replication.band_reaches_higher, "robustness": replication.robustness,
    "convex_bound": replication.bound_ordering, "curves": replication.curve_prediction,
}  # fmt: skip


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers to four significant digits, for reading."""
    return table.map(lambda value: float(f"{value:.4g}") if isinstance(value, float) else value)


def _rule(test: str) -> str:
    """The rule's own words: the docstring of the function that applies it, as one paragraph."""
    return " ".join(inspect.getdoc(RULE[test]).split())


def write_replication(
    chosen: Replication, studies: Sequence[optuna.Study], out: Path, command: str, started: float
) -> Path:
    """Judge the claim, write its four files into ``out``; return the .md."""
    made_by = provenance_line(command, started)
    with stored.decoded_once():
        measured = (_trained if chosen.trains else MEASURE[chosen.test])(chosen, studies)
    outcome = measured.outcome
    lines = [
        f"# {chosen.name}: {outcome.verdict}", "", f"**Claim** ({chosen.paper}): {chosen.claim}.", "",
        f"**Setting here**: {chosen.setting}.", "", f"**Outcome**: {outcome.verdict}: {outcome.reason}."
        + (f" To settle it: {settle}." if (settle := outcome.settle()) else ""), "",
        f"**Rule, fixed before the run**: {_rule(chosen.test)}", "",
        _shown(outcome.table).to_markdown(index=False, missingval="-"), "",
    ]  # fmt: skip
    for title, table in measured.tables:
        lines += [f"{title}:", "", _shown(table).to_markdown(index=False, missingval="-"), ""]
    lines += [f"Every run: `{chosen.name}-runs.csv`. {made_by}", ""]
    out.mkdir(parents=True, exist_ok=True)
    summary = out / f"{chosen.name}.md"
    write_file(summary, "\n".join(lines))
    write_file(out / f"{chosen.name}.csv", f"# {made_by}\n" + outcome.table.to_csv(index=False))
    write_file(out / f"{chosen.name}-runs.csv", f"# {made_by}\n" + measured.runs.to_csv(index=False))
    title = f"{chosen.name}: {outcome.verdict}"
    leads = outcome.table if measured.leads is None else measured.leads
    figure = figures.replication(leads, measured.margin, measured.unit, title, measured.points)
    write_file(out / f"{chosen.name}.png", png_bytes(figure, made_by))
    return summary
