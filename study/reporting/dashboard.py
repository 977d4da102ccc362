"""What a report adds to each study's dashboard page: its verdict in the note, and three figures.

The note gains a section (``VERDICT_HEADING``) with the family's verdict from the report: the
reference, the difference with its interval, the verdict word, the LR band and the report's
path; a later report replaces that section and leaves the rest of the note as it was. The three
small figures (optuna-dashboard's Plotly objects) are stored under fixed ids, so a later report
replaces them too: the tuned configuration's LR over the run, the best trials' validation curves
against the target, and the re-evaluation's test metric per seed with its mean and 95% interval.
Titles and labels sit left, clear of Plotly's toolbar (set vertical, at the right).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from optuna_dashboard import get_note, save_note, save_plotly_graph_object

from objectives import stored
from objectives.experiment import Experiment
from objectives.metrics import Metric
from objectives.stored import (
    stored_curve,
    stored_experiment,
    stored_metric,
    stored_reevaluation,
    stored_workload_facts,
)
from study.reporting.analysis import schedule_shapes_frame
from study.reporting.grid import GridSection
from study.reporting.render import rounded
from study.reporting.sections import Section
from study.reporting.statistics import t_interval

VERDICT_HEADING = "## In the comparison report"
"""Where a study's note gains the report's verdict; everything from it on is the report's."""

BEST_CURVES = 5
"""Validation curves shown: the best complete trials."""


def publish_figures(study: optuna.Study) -> list[str]:
    """Save the study's family figures for the dashboard; return their ids (none without a
    re-evaluation to show)."""
    record = stored_reevaluation(study)
    if record is None:
        return []
    attrs = stored.attrs_of(study)
    experiment, metric = stored_experiment(attrs), stored_metric(attrs)
    figures = {
        "tuned-schedule": _tuned_schedule(study, experiment, record),
        "best-curves": _best_curves(study, metric),
        "reevaluation": _reevaluation(record, metric),
    }
    for graph_id, figure in figures.items():
        figure.update_layout(
            height=340, margin={"l": 60, "r": 50, "t": 50, "b": 50}, template="plotly_white",
            title_x=0.01, title_xanchor="left", modebar_orientation="v",
            legend={"orientation": "h", "x": 0, "y": -0.25, "yanchor": "top"},  # below: the toolbar is at the right
        )  # fmt: skip
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    return list(figures)


def _tuned_schedule(study: optuna.Study, experiment: Experiment, record: dict) -> go.Figure:
    shape = schedule_shapes_frame([study])
    figure = go.Figure(go.Scatter(x=shape["epoch"].tolist(), y=shape["lr"].tolist(), mode="lines", name="LR"))
    return figure.update_layout(
        title=f"Tuned {experiment.family} schedule ({_chosen(record)})",
        xaxis_title="epoch (fractional: per optimizer step)",
        yaxis_title="learning rate",
    )


def _chosen(record: dict) -> str:
    """Which configuration was re-evaluated: a tuning run's best trial, or the grid's LR."""
    return f"trial {record.trial}" if record.trial is not None else f"the grid's LR {record.base_lr:g}"


def _best_curves(study: optuna.Study, metric: Metric) -> go.Figure:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = sorted(complete, key=lambda t: -metric.sign * t.value)[:BEST_CURVES]
    figure = go.Figure()
    for trial in best:
        curve = stored_curve(trial.user_attrs)
        values = curve["val_metric"]
        figure.add_trace(
            go.Scatter(x=curve["epoch"], y=values, mode="lines+markers", name=f"trial {trial.number}")
        )
    target = stored_workload_facts(stored.attrs_of(study))["target"]  # as stored: no workload definition read
    figure.add_hline(
        y=target, line_dash="dash", annotation_text=f"target {target}", annotation_position="bottom left"
    )
    return figure.update_layout(
        title=f"Best {len(best)} trials against the target",
        xaxis_title="epoch",
        yaxis_title=f"validation {metric.label}",
    )


def _reevaluation(record: dict, metric: Metric) -> go.Figure:
    values = np.array([run.test_metric for run in record.runs], dtype=float)
    mean = float(values.mean())
    seeds = list(range(1, len(values) + 1))  # plain lists: numpy arrays are stored as binary blobs
    figure = go.Figure(go.Scatter(x=seeds, y=values.tolist(), mode="markers", name="one seed"))
    low, high = t_interval(values, metric.bounds)
    shown = rounded(mean, (high - low) / 2)  # to the precision the interval supports
    figure.add_hline(y=mean, annotation_text=f"mean {shown}", annotation_position="top left")
    if high > low:  # seeds that all score the same (every run diverged) have no band to draw
        figure.add_hrect(
            y0=low, y1=high, fillcolor="royalblue", opacity=0.2, line_width=0,
            annotation_text="95% CI of the mean", annotation_position="bottom left",
        )  # fmt: skip
    return figure.update_layout(
        title=f"Re-evaluation of {_chosen(record)}: test {metric.label} per seed",
        xaxis_title="re-evaluation seed",
        yaxis_title=f"test {metric.label}",
    )


def save_verdict_note(study: optuna.Study, section: Section, page: Path) -> None:
    """Put the family's verdict from ``section`` in the study's note, replacing the one an
    earlier report put there; the rest of the note is kept as it is."""
    kept = get_note(study).split(VERDICT_HEADING)[0].rstrip()
    experiment = stored_experiment(stored.attrs_of(study))
    lines = verdict_lines(section, experiment.family, experiment.repeat)
    save_note(study, f"{kept}\n\n{VERDICT_HEADING}\n\n{lines}\n- Report: `{page}`\n")


def verdict_lines(section: Section, family: str, repeat: int = 0) -> str:
    """The family's verdict as Markdown bullets, each number rounded to its interval, then this
    tuning run's own numbers (its re-evaluated mean, its LR band): a repeat's note speaks of itself."""
    metric, reference = section.metric, section.reference
    lines = [
        f"- Reference on {section.workload} with {section.optimizer}: **{reference}** (chosen on validation)."
    ]
    if family == reference:
        lines.append(f"- **{family} is the reference**: every other family is compared with it.")
    elif family in set(section.pairwise["family"]):
        row = section.pairwise.set_index("family").loc[family]
        shown = lambda value: rounded(value, (row["ci_high"] - row["ci_low"]) / 2, signed=True)
        lines.append(
            f"- Verdict: **{row['verdict']}**; test {metric.label} minus the reference's {shown(row['difference'])} "
            f"(unadjusted 95% CI {shown(row['ci_low'])} to {shown(row['ci_high'])}; equivalent means within "
            f"±{section.margin:g}; the verdict is Holm-corrected over the family's peers, so it can be inconclusive "
            "where this interval misses 0)."
        )
    ranked = section.ranking.set_index("family")
    if family in ranked.index and "lr_band_decades" in ranked:
        lines.append(f"- LR band within the margin of the best trial, mean over the family's tuning runs: "
                     f"{ranked.loc[family, 'lr_band_decades']:.2f} decades of base LR.")  # fmt: skip
        if edge := ranked.loc[family, "range_edge"]:
            lines.append(f"- At the edge of its search range, so perhaps under-tuned: {edge}.")
    return "\n".join(lines + _this_run(section, family, repeat))


def _this_run(section: Section, family: str, repeat: int) -> list[str]:
    """This tuning run's own numbers, where the family has several runs."""
    if section.repeats < 2:
        return []
    runs = section.reevaluation[
        (section.reevaluation["family"] == family) & (section.reevaluation["repeat"] == repeat)
    ]
    bands = section.lr_bands[(section.lr_bands["family"] == family) & (section.lr_bands["repeat"] == repeat)]
    lines = [f"- This tuning run (repeat {repeat} of {section.repeats}):"]
    if len(runs):
        lines.append(f"  its best configuration's test {section.metric.label} {runs['test_metric'].mean():.4f} "
                     f"(mean over {len(runs)} seeds);")  # fmt: skip
    if len(bands):
        lines.append(f"  its own LR band {float(bands['decades'].iloc[0]):.2f} decades of base LR.")
    return lines


def save_grid_note(study: optuna.Study, section: GridSection, page: Path) -> None:
    """Put the family's grid-protocol verdict in its grid study's note (as ``save_verdict_note``)."""
    kept = get_note(study).split(VERDICT_HEADING)[0].rstrip()
    family = stored_experiment(stored.attrs_of(study)).family
    save_note(
        study, f"{kept}\n\n{VERDICT_HEADING}\n\n{grid_verdict_lines(section, family)}\n- Report: `{page}`\n"
    )


def grid_verdict_lines(section: GridSection, family: str) -> str:
    """The family's place in the grid protocol as Markdown bullets: its LR, its verdict."""
    rows, metric = section.verdicts.set_index("family"), section.metric
    lines = [(f"- Grid protocol on {section.workload} with {section.optimizer}; reference: **{section.reference}** "
             f"(best on the selection seeds).")]  # fmt: skip
    if family not in rows.index:
        return "\n".join([*lines, "- Not evaluated yet (its grid is not complete)."])
    row = rows.loc[family]
    lines.append(
        f"- Chosen base LR: {row['lr']:g}; test {metric.label} {row['test_metric']:.4f} over {int(row['seeds'])} seeds."
    )
    if family == section.reference:
        lines.append(f"- **{family} is the reference**: every other family is compared with it.")
    else:
        shown = lambda value: rounded(value, (row["ci_high"] - row["ci_low"]) / 2, signed=True)
        lines.append(
            f"- Verdict: **{row['verdict']}**; minus the reference's {shown(row['difference'])} (95% CI "
            f"{shown(row['ci_low'])} to {shown(row['ci_high'])}, paired over seeds, unadjusted; equivalent means within "
            f"±{section.margin:g}; the verdict is Holm-corrected over the family's peers)."
        )
    return "\n".join(lines)
