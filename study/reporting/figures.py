"""Figures: each takes a frame from ``study.reporting.analysis`` and returns a matplotlib Figure;
``draw_section`` draws a report section's. The data of each is a frame of the ``Section``, tested
without drawing; the captions are ``study.reporting.render``'s.

Nothing here computes results, writes files or says anything in prose. Figures are built without pyplot, so drawing
needs no display and leaves no global state; styles apply inside ``_style`` only.
"""

from __future__ import annotations

import contextlib
import math
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from objectives.metrics import Metric

if TYPE_CHECKING:
    from study.reporting.sections import Section


@contextlib.contextmanager
def _style() -> Iterator[None]:
    """Seaborn's look, and its jitter (drawn from NumPy's global generator) seeded, so the same
    data draws the same picture; the caller's generator state is restored after."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
            yield
    finally:
        np.random.set_state(state)


def _palette(families: list[str]) -> dict[str, tuple]:
    """Ten distinct hues first (tab20's dark shades), then their light shades."""
    colors = sns.color_palette("tab20", 20)
    return dict(zip(families, colors[0::2] + colors[1::2]))


STATES = ["COMPLETE", "PRUNED", "FAIL"]
"""Trial states in a fixed order, each with its own colour in every figure (``STATE_COLOURS``)."""
STATE_COLOURS = dict(zip(STATES, sns.color_palette("deep", len(STATES)), strict=True))


def _states_in(trials: pd.DataFrame) -> list[str]:
    """The states that occur, in ``STATES``' order: a legend lists only what is drawn."""
    present = set(trials["state"])
    return [state for state in STATES if state in present]


def _grid(
    count: int, columns: int = 4, size: tuple[float, float] = (3.4, 2.4), *, share_y: bool = False
) -> tuple[Figure, list]:
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(size[0] * columns, size[1] * rows), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False, sharey=share_y).ravel().tolist()
    for unused in axes[count:]:
        unused.set_visible(False)
    return figure, axes[:count]


def _plain_log_labels(axis: Axis) -> None:
    """A log axis labelled 3 and 0.2, not 3 x 10^0 and 2 x 10^-1; the minor ticks get labels only
    when the axis spans less than two decades (else they crowd). Call it once the limits are set."""
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    low, high = sorted(axis.get_view_interval())
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(plain if high / low < 100 else NullFormatter())


def _metric_limits(ax: Axes, values: pd.Series, metric: Metric) -> None:
    """Zoom on where the runs are: the worst 5% of values (early epochs) are cut off."""
    if metric.sign > 0:
        ax.set_ylim(max(metric.worst, values.quantile(0.05) - 0.02), None)
    else:
        ax.set_ylim(None, min(metric.worst, values.quantile(0.95) + 0.02))


HIGHLIGHTED = 5
"""Families drawn in colour in the convergence figure (the best ranked); the others in grey."""


def convergence(curves: pd.DataFrame, order: list[str], metric: Metric) -> Figure:
    """Validation metric and loss per epoch of each family's re-evaluated best configuration:
    mean over seeds with a 95% band for the ``HIGHLIGHTED`` best-ranked families, thin grey
    means for the rest (eighteen coloured bands cannot be told apart). ``curves`` is a
    ``curves_frame``; ``order`` ranks families."""
    leading, rest = order[:HIGHLIGHTED], order[HIGHLIGHTED:]
    with _style():
        figure = Figure(figsize=(13, 4.6), layout="constrained")
        measured, loss = figure.subplots(1, 2)
        for ax, column, label in (
            (measured, "val_metric", f"validation {metric.label}"),
            (loss, "val_loss", "validation loss"),
        ):
            for family in rest:
                means = curves[curves["family"] == family].groupby("epoch")[column].mean()
                ax.plot(means.index, means.to_numpy(), color="0.75", linewidth=0.8, zorder=1)
            sns.lineplot(
                curves[curves["family"].isin(leading)],
                x="epoch",
                y=column,
                hue="family",
                hue_order=leading,
                palette=_palette(leading),
                errorbar=("se", 1.96),  # a normal 95% band: seaborn's bootstrap took 13 s here
                ax=ax,
                legend=ax is loss,
            )
            ax.set(xlabel="epoch", ylabel=label)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _metric_limits(measured, curves["val_metric"], metric)
        loss.set_yscale("log")
        _plain_log_labels(loss.yaxis)
        title = "family" + (f" (grey: the {len(rest)} others)" if rest else "")
        sns.move_legend(loss, "upper left", bbox_to_anchor=(1.02, 1), title=title, fontsize=8)
    return figure


def schedule_shapes(shapes: pd.DataFrame, order: list[str]) -> Figure:
    """The LR each family's tuned configuration uses, against the epoch (fractional: per step)."""
    families = [family for family in order if family in set(shapes["family"])]
    with _style():
        figure, axes = _grid(len(families))
        for ax, family in zip(axes, families):
            rows = shapes[shapes["family"] == family]
            ax.plot(rows["epoch"], rows["lr"], color="tab:blue", linewidth=1.2)
            ax.set(title=family, xlabel="epoch", ylabel="learning rate")
            ax.set_ylim(0, None)
    return figure


def metric_distribution(trials: pd.DataFrame, order: list[str], metric: Metric, chance_line: float) -> Figure:
    """Final validation metric of every tuning trial per family (pruned ones where they
    stopped): a narrow box near the good end means a forgiving family. A dotted line marks
    where trials count as at chance (``Metric.chance_line``)."""
    with _style():
        figure = Figure(figsize=(9, 0.42 * len(order) + 1.2), layout="constrained")
        ax = figure.subplots()
        complete = trials[trials["state"] == "COMPLETE"]  # the box: complete trials only
        sns.boxplot(complete, x="final_metric", y="family", order=order, color="0.85", fliersize=0, ax=ax)
        sns.stripplot(
            trials, x="final_metric", y="family", hue="state", hue_order=_states_in(trials),
            palette=STATE_COLOURS, order=order, size=2.5, alpha=0.6, ax=ax,
        )  # fmt: skip
        ax.axvline(chance_line, color="0.4", linestyle=":", linewidth=1)
        ax.annotate("at chance", (chance_line, 1.0), xycoords=("data", "axes fraction"), xytext=(3, 3),
                    textcoords="offset points", fontsize=8, color="0.4")  # fmt: skip
        ax.set(xlabel=f"final validation {metric.label} of each trial", ylabel="")
        ax.legend(title="trial", loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8)
    return figure


def sensitivity(
    trials: pd.DataFrame, order: list[str], metric: Metric, bands: pd.DataFrame | None = None
) -> Figure:
    """Final validation metric against the base LR (log axis), one panel per family, all on one
    y-axis so that how forgiving each family is can be compared; each tuning run's LR band
    (``tuning.lr_band_frame``) shaded, so that agreeing runs shade darker."""
    with _style():
        figure, axes = _grid(len(order), share_y=True)
        for ax, family in zip(axes, order):
            rows = trials[trials["family"] == family]
            if bands is not None:
                for _, band in bands[bands["family"] == family].iterrows():
                    ax.axvspan(band["low_lr"], band["high_lr"], color="tab:green", alpha=0.12, lw=0)
            sns.scatterplot(
                rows,
                x="param_lr",
                y="final_metric",
                hue="state",
                hue_order=_states_in(trials),
                palette=STATE_COLOURS,
                s=14,
                alpha=0.7,
                ax=ax,
                legend=ax is axes[0],
            )
            ax.set(xscale="log", title=family, xlabel="base LR", ylabel=f"final val. {metric.label}")
    return figure


def tuning_budget(expected: pd.DataFrame, order: list[str], metric: Metric) -> Figure:
    """Expected best validation metric after n trials (Dodge et al. 2019): mean +- 1 sd (an
    accuracy band is cut at 1) for the ``HIGHLIGHTED`` best-ranked families, thin grey means for
    the rest, as in ``convergence`` (eighteen pastel bands cannot be told apart)."""
    bounded = (lambda v: v.clip(0, 1)) if not metric.from_loss else (lambda v: v)
    drawn = [family for family in order if family in set(expected["family"])]
    leading, rest = drawn[:HIGHLIGHTED], drawn[HIGHLIGHTED:]
    with _style():
        figure = Figure(figsize=(10, 5), layout="constrained")
        ax = figure.subplots()
        for family in rest:
            rows = expected[expected["family"] == family]
            ax.plot(rows["trials"], rows["expected_best"], color="0.75", linewidth=0.8, zorder=1)
        palette = _palette(leading)
        for family in leading:
            rows = expected[expected["family"] == family]
            low, high = (bounded(rows["expected_best"] + sign * rows["sd"]) for sign in (-1, 1))
            ax.plot(rows["trials"], rows["expected_best"], label=family, color=palette[family], linewidth=2)
            ax.fill_between(rows["trials"], low, high, color=palette[family], alpha=0.12)
        ax.set(
            xscale="log",
            xlabel="tuning trials (n)",
            ylabel=f"expected best validation {metric.label} (+- 1 sd)",
        )
        if expected["trials"].max() > expected["trials"].min():  # one trial: matplotlib pads the axis itself
            ax.set_xlim(expected["trials"].min(), expected["trials"].max())
        _plain_log_labels(ax.xaxis)
        good_edge = bounded(expected["expected_best"] + metric.sign * expected["sd"])
        worst_mean = metric.poorest(expected["expected_best"])
        ax.set_ylim(
            sorted([worst_mean - metric.sign * 0.01, float(metric.best(good_edge)) + metric.sign * 0.005])
        )
        title = "family" + (f" (grey: the {len(rest)} others)" if rest else "")
        ax.legend(title=title, loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return figure


def epochs_to_target(
    ranking: pd.DataFrame, target: float, metric: Metric, *, budget: int | None = None
) -> Figure:
    """Median epochs to the target metric over seeds (a seed that never reaches it counts as
    never), with the fastest and slowest seed as whiskers, fastest family first. A slowest seed
    that never reaches the target draws its whisker to the end of the ``budget`` with an arrow.
    ``ranking`` is a ``ranking_table``."""
    ranking = ranking.sort_values(["epochs_to_target", "family"], na_position="last", kind="stable")
    families = ranking["family"].tolist()
    with _style():
        figure = Figure(figsize=(9, 0.42 * len(families) + 1.2), layout="constrained")
        ax = figure.subplots()
        positions = np.arange(len(families))
        median, fastest, slowest = (
            ranking[c].to_numpy(dtype=float)
            for c in ("epochs_to_target", "epochs_to_target_min", "epochs_to_target_max")
        )
        reached = ~np.isnan(median)
        end = float(budget) if budget else float(np.nanmax(np.concatenate([slowest, median, [1.0]])))
        never = reached & np.isnan(slowest)  # some seed never gets there: the whisker runs off the end
        slowest = np.where(never, end, slowest)
        ax.barh(positions[reached], median[reached], color="tab:blue", alpha=0.8)
        ax.errorbar(
            median[reached],
            positions[reached],
            xerr=[median[reached] - fastest[reached], slowest[reached] - median[reached]],
            fmt="none",
            color="black",
            capsize=3,
        )
        ax.plot(
            slowest[never],
            positions[never],
            ">",
            color="black",
            markersize=6,
            label="a seed never reaches it",
        )
        if never.any():
            ax.legend(loc="lower right", fontsize=8)
        _say_which_seeds_reach(ax, positions, median, slowest, ranking["reached_target"], end)
        ax.set(
            yticks=positions,
            yticklabels=families,
            xlabel=f"epochs to validation {metric.label} {metric.comparison} {target}",
            ylabel="",
        )
        ax.grid(axis="y", visible=False)  # a line through each bar's words
        ax.invert_yaxis()
    return figure


def _say_which_seeds_reach(
    ax: Axes, positions: np.ndarray, median: np.ndarray, slowest: np.ndarray, reached: pd.Series, end: float
) -> None:
    """In red, when not every seed reaches the target: past the whisker's end, never on it (the
    axis is widened to hold the words)."""
    said = False
    for position, family_median, family_slowest, seeds in zip(positions, median, slowest, reached):
        if np.isnan(family_median):
            text, x = f"most seeds never reach it ({seeds} do)", 0.02 * end
        elif not seeds.startswith(seeds.split("/")[1] + "/"):
            text, x = f"only {seeds} seeds reach it", family_slowest + 0.03 * end
        else:
            continue
        ax.text(x, position, text, va="center", fontsize=8, color="tab:red")
        said = True
    if said:
        ax.set_xlim(0, end * 1.45)


def importance(importances: pd.DataFrame, order: list[str]) -> Figure:
    """fANOVA importance of each hyperparameter a family searches, one small panel per family."""
    families = [family for family in order if family in set(importances["family"])]
    with _style():
        figure, axes = _grid(len(families), size=(3.4, 2.0))
        for ax, family in zip(axes, families):
            rows = importances[importances["family"] == family].sort_values("importance")
            ax.barh(rows["param"], rows["importance"], color="tab:blue", alpha=0.8)
            ax.set(title=family, xlim=(0, 1), xlabel="importance")
    return figure


def draw_section(section: Section) -> dict[str, Figure]:
    """A section's figures by name, each drawn from its frames: the re-evaluation's (convergence,
    schedules, epochs to target) where there is one, the tuning trials' always, importances
    where fANOVA found any."""
    order, metric = section.order, section.metric
    ranked = [family for family in order if family in set(section.reevaluation["family"])]
    drawn = {}
    if ranked:
        drawn["convergence"] = convergence(section.curves, ranked, metric)
        drawn["schedules"] = schedule_shapes(section.shapes, ranked)
        drawn["epochs_to_target"] = epochs_to_target(
            section.ranking, section.target, metric, budget=section.experiment.epochs
        )
    drawn["distribution"] = metric_distribution(
        section.trials, order, metric, metric.chance_line(section.classes)
    )
    drawn["sensitivity"] = sensitivity(section.trials, order, metric, section.lr_bands)
    drawn["tuning_budget"] = tuning_budget(section.expected_best, order, metric)
    if len(section.importance):
        explained = [family for family in order if family in set(section.importance["family"])]
        drawn["importance"] = importance(section.importance, explained)
    return drawn


def performance_profile(profile: pd.DataFrame, order: list[str]) -> Figure:
    """Share of workloads on which a family reaches the target within tau x the fastest's time."""
    with _style():
        figure = Figure(figsize=(9, 5), layout="constrained")
        ax = figure.subplots()
        palette = _palette(order)
        for family in order:
            rows = profile[profile["family"] == family]
            ax.step(rows["tau"], rows["share"], where="post", label=family, color=palette[family])
        ax.set(
            xlabel="tau (optimizer steps to target / the fewest any family needs)",
            ylabel="share of workloads",
            ylim=(-0.02, 1.02),
        )
        ax.legend(title="family", loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    return figure


def lr_range(test: pd.DataFrame, suggested: tuple[float, float], title: str) -> Figure:
    """The LR range test: training loss against the LR (log axis), raw and smoothed, with the
    suggested base-LR search range shaded. ``test`` has columns lr, loss, smoothed."""
    with _style():
        figure = Figure(figsize=(8, 4.5), layout="constrained")
        ax = figure.subplots()
        ax.plot(test["lr"], test["loss"], color="0.75", linewidth=0.8, label="loss per step")
        ax.plot(test["lr"], test["smoothed"], color="tab:blue", label="smoothed")
        ax.axvspan(
            *suggested,
            color="tab:green",
            alpha=0.15,
            label=f"suggested range {suggested[0]:.2g} to {suggested[1]:.2g}",
        )
        ax.set(xscale="log", xlabel="learning rate", ylabel="training loss", title=title)
        ax.set_ylim(0, min(test["smoothed"].max(), 4 * test["smoothed"].min()) * 1.1)
        ax.legend(loc="upper left", fontsize=8)
    return figure


def replication(
    leads: pd.DataFrame, margin: float, unit: str, title: str, points: pd.DataFrame | None = None
) -> Figure:
    """A published claim at this scale (``study.reporting.replication``): each comparison's lead
    (positive: ahead) with its 95% interval, the margin shaded; with ``points`` (x, y, series and
    the axes' names in ``points.attrs``: x_label, y_label, log_x), a second panel of the
    measurements behind them, a line per series (with ``identity``: points, and the diagonal)."""
    with _style():
        heights = [1.2 + 0.3 * len(leads)] + ([3.4] if points is not None else [])
        figure = Figure(figsize=(8.0, sum(heights)), layout="constrained")
        axes = figure.subplots(len(heights), 1, squeeze=False, height_ratios=heights).ravel()
        ax = axes[0]
        rows = np.arange(len(leads))[::-1]
        if margin:
            ax.axvspan(-margin, margin, color="0.9", zorder=0, label=f"within ±{margin:g}")
        ax.axvline(0, color="0.4", linewidth=0.8)
        defined = leads["ci_low"].notna()
        ax.errorbar(leads["lead"][defined], rows[defined.to_numpy()],
                    xerr=[(leads["lead"] - leads["ci_low"])[defined], (leads["ci_high"] - leads["lead"])[defined]],
                    fmt="o", color="C0", capsize=3)  # fmt: skip
        ax.plot(leads["lead"][~defined], rows[~defined.to_numpy()], "o", color="0.6")  # no interval: grey
        ax.set_yticks(rows, [textwrap.fill(text, 30) for text in leads["comparison"]])
        ax.set_xlabel(unit)
        if margin:
            ax.legend(loc="best", fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.set_title(title)
        ax.grid(axis="y", visible=False)
        if points is not None:
            ax = axes[1]
            if points.attrs.get("identity"):  # predicted against measured: on the diagonal is right
                sns.scatterplot(points, x="x", y="y", hue="series", ax=ax, s=40)
                ends = [min(points["x"].min(), points["y"].min()), max(points["x"].max(), points["y"].max())]
                ax.plot(ends, ends, color="0.4", linewidth=0.8, label="predicted = measured")
            else:
                sns.lineplot(points, x="x", y="y", hue="series", marker="o", ax=ax, errorbar=None)
            if points.attrs.get("log_x"):
                ax.set_xscale("log")
                _plain_log_labels(ax.xaxis)
            ax.set_xlabel(points.attrs["x_label"])
            ax.set_ylabel(textwrap.fill(points.attrs["y_label"], 34))
            handles, labels = ax.get_legend_handles_labels()
            ax.get_legend().remove()  # below the figure, where constrained layout makes room for it
            figure.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False)
    return figure


VERDICT_COLOURS = {
    "reference": "black", "better": "tab:blue", "equivalent": "tab:green", "inconclusive": "0.55", "worse": "tab:red",
}  # fmt: skip


def grid_sensitivity(
    points: pd.DataFrame, choices: pd.DataFrame, order: list[str], metric: Metric, margin: float
) -> Figure:
    """Each family's LR-sensitivity curve (grid protocol): every selection seed's final validation
    metric at every grid LR (dots) and their mean (the line), the chosen LR dashed and the band
    within ``margin`` of its mean shaded; every panel on one y-axis, zoomed on the good runs. Dots,
    not a t-interval: with two or three seeds an interval spans the whole panel and hides the curve."""
    chosen = choices.set_index("family")
    means = points.groupby(["family", "lr"], sort=False)["val_metric"].mean().reset_index()
    with _style():
        figure, axes = _grid(len(order), share_y=True)
        for ax, family in zip(axes, order):
            rows = means[means["family"] == family].sort_values("lr")
            seeds = points[points["family"] == family]
            ax.scatter(seeds["lr"], seeds["val_metric"], color="0.55", s=6, zorder=2, lw=0)
            ax.plot(
                rows["lr"],
                rows["val_metric"],
                color="tab:blue",
                marker="o",
                markersize=3,
                linewidth=1.2,
                zorder=3,
            )
            if family in chosen.index:
                best = chosen.loc[family]
                ax.axhspan(best["selection_mean"] - margin, best["selection_mean"] + margin, color="tab:green",
                           alpha=0.12, lw=0)  # fmt: skip
                ax.axvline(best["lr"], color="black", linewidth=0.8, linestyle="--")
            ax.set(xscale="log", title=family, xlabel="base LR", ylabel=f"val. {metric.label}")
        values = means["val_metric"]
        if metric.sign > 0:
            axes[0].set_ylim(max(metric.worst, values.quantile(0.25) - 0.05), min(1.0, values.max() + 0.02))
        else:
            axes[0].set_ylim(max(0.0, values.min() - 0.05), values.quantile(0.75) + 0.1)
    return figure


def grid_answer(verdicts: dict[str, tuple[pd.DataFrame, float, Metric]]) -> Figure:
    """The answer at a glance (grid protocol): per workload, each family's paired difference from
    that workload's reference in the test metric (signed so that right is better) with its 95%
    interval, coloured by its verdict, the margin of equivalence shaded. ``verdicts`` maps a
    workload to (its verdict frame, its margin, its metric)."""
    with _style():
        families = sorted({f for table, _, _ in verdicts.values() for f in table["family"]})
        figure = Figure(figsize=(3.3 * len(verdicts) + 1.5, 0.28 * len(families) + 1.6), layout="constrained")
        axes = figure.subplots(1, len(verdicts), sharey=True, squeeze=False).ravel()
        for ax, (workload, (table, margin, metric)) in zip(axes, verdicts.items()):
            rows = table.set_index("family").reindex(families)
            positions = np.arange(len(families))
            ax.axvspan(-margin, margin, color="tab:green", alpha=0.12, lw=0)
            ax.axvline(0, color="black", linewidth=0.8)
            for y, (family, row) in zip(positions, rows.iterrows()):
                if pd.isna(row["verdict"]):
                    continue
                colour = VERDICT_COLOURS[row["verdict"]]
                lead = 0.0 if row["verdict"] == "reference" else metric.sign * row["difference"]
                if row["verdict"] != "reference" and np.isfinite(row["ci_low"]):
                    ends = sorted((metric.sign * row["ci_low"], metric.sign * row["ci_high"]))
                    ax.plot(ends, [y, y], color=colour, linewidth=1.5)
                ax.plot(
                    [lead],
                    [y],
                    marker="D" if row["verdict"] == "reference" else "o",
                    color=colour,
                    markersize=5,
                )
            ax.set(title=workload, xlabel=f"{'' if metric.sign > 0 else '- '}Δ test {metric.label}")
            ax.set_yticks(positions, families)
        axes[0].invert_yaxis()
        handles = [
            axes[0].plot([], [], marker="o", linestyle="", color=c, label=v)[0]
            for v, c in VERDICT_COLOURS.items()
        ]
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8)
    return figure
