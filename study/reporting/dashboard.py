"""The family's own figures on its study's dashboard page (optuna-dashboard's Plotly objects).

Three small figures, stored in the study under fixed ids so that a later report replaces them
instead of adding more: the tuned configuration's LR over the run, the best trials' validation
curves against the target, and the re-evaluation's test metric per seed with its mean and 95%
interval. Written by the report, once the re-evaluation exists.
"""

from __future__ import annotations

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import TrialState
from optuna_dashboard import save_plotly_graph_object

from objectives.experiment import Experiment
from objectives.metrics import Metric
from objectives.stored import stored_curve, stored_experiment, stored_metric, stored_workload_facts
from study.reporting.analysis import schedule_shapes_frame, t_interval
from study.reporting.reevaluate import stored_reevaluation

BEST_CURVES = 5
"""Validation curves shown: the best complete trials."""


def publish_figures(study: optuna.Study) -> list[str]:
    """Save the study's family figures for the dashboard; return their ids (none without a
    re-evaluation to show)."""
    record = stored_reevaluation(study)
    if record is None:
        return []
    attrs = study.user_attrs
    experiment, metric = stored_experiment(attrs), stored_metric(attrs)
    figures = {
        "tuned-schedule": _tuned_schedule(study, experiment, record),
        "best-curves": _best_curves(study, metric),
        "reevaluation": _reevaluation(record, metric),
    }
    for graph_id, figure in figures.items():
        figure.update_layout(height=320, margin={"l": 60, "r": 20, "t": 50, "b": 50}, template="plotly_white")
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
    return list(figures)


def _tuned_schedule(study: optuna.Study, experiment: Experiment, record: dict) -> go.Figure:
    shape = schedule_shapes_frame([study])
    figure = go.Figure(go.Scatter(x=shape["epoch"].tolist(), y=shape["lr"].tolist(), mode="lines", name="LR"))
    return figure.update_layout(
        title=f"Tuned {experiment.family} schedule (trial {record['trial']})",
        xaxis_title="epoch (fractional: per optimizer step)",
        yaxis_title="learning rate",
    )


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
    target = stored_workload_facts(study.user_attrs)["target"]  # as stored: no workload definition read
    figure.add_hline(y=target, line_dash="dash", annotation_text=f"target {target}")
    return figure.update_layout(
        title=f"Best {len(best)} trials against the target",
        xaxis_title="epoch",
        yaxis_title=f"validation {metric.label}",
    )


def _reevaluation(record: dict, metric: Metric) -> go.Figure:
    values = np.array([run["test_metric"] for run in record["runs"]], dtype=float)
    mean = float(values.mean())
    seeds = list(range(1, len(values) + 1))  # plain lists: numpy arrays are stored as binary blobs
    figure = go.Figure(go.Scatter(x=seeds, y=values.tolist(), mode="markers", name="one seed"))
    figure.add_hline(y=mean, annotation_text=f"mean {mean:.4f}", annotation_position="top left")
    low, high = t_interval(values)
    if high > low:  # seeds that all score the same (every run diverged) have no band to draw
        figure.add_hrect(
            y0=low, y1=high, fillcolor="royalblue", opacity=0.2, line_width=0,
            annotation_text="95% CI of the mean", annotation_position="bottom right",
        )  # fmt: skip
    return figure.update_layout(
        title=f"Re-evaluation of trial {record['trial']}: test {metric.label} per seed",
        xaxis_title="re-evaluation seed",
        yaxis_title=f"test {metric.label}",
    )
