"""The report's rendering: headline prose, tables for display, the HTML page and summary.md,
written aside and switched into place whole (``write_report``)."""

from __future__ import annotations

import base64
import html
import io
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import PIL.Image
import PIL.PngImagePlugin
from matplotlib.figure import Figure

from objectives.metrics import CHANCE_MARGIN
from study.reporting import figures, grid_render, output, tuning
from study.reporting.grid import GridSection, build_grid_section, placement_frame
from study.reporting.sections import (
    Section,
    build_section,
    compared_sections,
    cross_workload_frame,
    group_studies,
    performance_profiles,
    recommendation,
)


def file_stem(name: str) -> str:
    """A section's name as the start of a file name safe on every OS: an own workload's
    ``my_workload:WORKLOAD`` becomes ``my_workload_WORKLOAD`` (a colon is not allowed on Windows)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def png_bytes(figure: Figure, made_by: str) -> bytes:
    """The figure as it is laid out (constrained layout fits every label and legend already; a
    "tight" bounding box drew each figure twice, a third of the report's drawing time), in 256
    colours (a quarter of the bytes, no visible change: a published report stays a few MB), with
    where it came from in the PNG's Description text."""
    drawn = io.BytesIO()
    figure.savefig(drawn, format="png", dpi=110)
    image = PIL.Image.open(drawn).convert("RGB").quantize(colors=256, method=PIL.Image.Quantize.FASTOCTREE)
    info = PIL.PngImagePlugin.PngInfo()
    info.add_text("Description", made_by)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, pnginfo=info)
    return buffer.getvalue()


def _highlighted(families: int, rest: str = "means") -> str:
    """Which families a figure draws in colour (``figures.HIGHLIGHTED``), counted."""
    if families <= figures.HIGHLIGHTED:
        return "each family" if families > 1 else "the family"
    return f"the {figures.HIGHLIGHTED} best-ranked families, the other {families - figures.HIGHLIGHTED} as grey {rest}"


def figure_captions(section: Section) -> dict[str, str]:
    """How to read each of the section's figures (``figures.draw_section``), one sentence each."""
    metric, target = section.metric, section.target
    measured = f"validation {metric.label}"
    ranked = len(set(section.reevaluation["family"]))
    return {
        "convergence": f"{measured.capitalize()} and loss per epoch of each family's re-evaluated best configuration, mean over seeds with a 95% band (mean ± 1.96 standard errors) for {_highlighted(ranked)}: the curve that {'rises' if metric.sign > 0 else 'falls'} first converges fastest.",
        "schedules": "The learning rate each family's tuned configuration uses during the run, per optimizer step.",
        "epochs_to_target": f"Epochs until the {measured} first reaches {metric.comparison} {target}, fastest family first: bar = median over seeds (a seed that never reaches it counts as never), whiskers = fastest and slowest seed; an arrow at the end of the run marks a seed that never reaches it.",
        "distribution": f"Every tuning trial's final {measured} (pruned trials where they stopped; the box spans complete trials only): a narrow box at the good end ({'right' if metric.sign > 0 else 'left'}) means the family is forgiving to tune. Trials beyond the dotted line learned next to nothing (at chance: {metric.label} {metric.chance_line(section.classes):.3g}).",
        "sensitivity": f"Final {measured} against the base learning rate, every panel on the same scale: a wide plateau means the family tolerates a poorly chosen LR. Shaded: the LRs whose complete trials end within ±{section.margin:g} of the tuning run's best, one shade per tuning run (the ranking's LR band).",
        "tuning_budget": f"Expected best {measured} if you ran only n trials (Dodge et al. 2019), with ± 1 sd for {_highlighted(len(set(section.expected_best['family'])), 'lines')}: how many trials a family needs before it is competitive. These treat the stored trials as independent draws, which TPE's adaptive trials are not, and count a pruned trial at the value where it stopped.",
        "importance": "How much of the spread of results each searched hyperparameter explains (fANOVA): tune the long bars first.",
    }  # fmt: skip


def headline(section: Section) -> list[str]:
    """The answer first: fastest family, the reference family, and how the others compare with it."""
    ranking, pairwise, metric = section.ranking, section.pairwise, section.metric
    if not len(ranking):
        return ["No family has a complete trial yet, so there is nothing to compare."]
    worse = set(pairwise["family"][pairwise["verdict"] == "worse"]) if len(pairwise) else set()
    reached = ranking[~ranking["family"].isin(worse)].dropna(subset=["epochs_to_target"])
    lines = [_speed_line(section, reached, len(worse))]
    reference = section.reference
    best = ranking.set_index("family").loc[reference]
    low, high = best["test_metric_ci_low"], best["test_metric_ci_high"]
    shown = lambda v: rounded(v, (high - low) / 2)
    lines.append(
        f"Reference (chosen by validation {metric.label}, never the test split): {reference}, test {metric.label} "
        f"{shown(best['test_metric'])}, 95% CI {shown(low)} to {shown(high)} over {_samples(section)}. "
        f"The intervals cover {_interval_covers(section)}."
    )
    if len(pairwise):
        lines.append(_verdicts(section))
    if len(section.tuning_luck):
        lines.insert(0, tuning_luck_line(section))
    return lines + _tuning_lines(section)


def tuning_luck_line(section: Section) -> str:
    """How much of a tuned result is the schedule and how much the luck of the tuning run."""
    luck = section.tuning_luck.set_index("component")

    def share(component: str) -> str:
        row = luck.loc[component]
        return f"{row['share']:.0%} (95% CI {row['share_ci_low']:.0%} to {row['share_ci_high']:.0%})"

    first = luck.iloc[0]
    return (
        f"At {section.trials_per_family} trials of TPE per tuning run, the schedule explains {share('schedule')} of the "
        f"spread of tuned results (test {section.metric.label} of one run on one seed), the tuning run within a "
        f"schedule {share('tuning run')}, the evaluation seed {share('seed')} and the rest {share('residual')} "
        f"({int(first['families'])} families x {int(first['runs'])} tuning runs x {int(first['seeds'])} seeds; "
        "intervals by parametric bootstrap)."
    )


def _tuning_lines(section: Section) -> list[str]:
    """What tuning says beyond the verdicts: how forgiving, at a range edge, how many trials."""
    lines, metric, margin = [], section.metric, section.margin
    ranking = (
        section.ranking.dropna(subset=["lr_band_decades"]) if "lr_band_decades" in section.ranking else []
    )
    if len(ranking) > 1:
        ordered = ranking.sort_values(["lr_band_decades", "family"], ascending=[False, True])
        widest, narrowest = ordered.iloc[0], ordered.iloc[-1]
        lines.append(
            f"Most forgiving: {widest['family']}, whose trials end within ±{margin:g} of its best over "
            f"{_band(widest, section.repeats)} of base LR; least: {narrowest['family']}, "
            f"{_band(narrowest, section.repeats)} (a lower bound where TPE tried few LRs far from the best)."
        )
    flagged = section.ranking[section.ranking["range_edge"] != ""] if "range_edge" in section.ranking else []
    if len(flagged):
        lines.append(
            "At the edge of its search range, so perhaps under-tuned: "
            + "; ".join(f"{row['family']} ({row['range_edge']})" for _, row in flagged.iterrows())
            + "."
        )
    budget = section.budget
    if len(budget) and (budget["trials"] == BUDGET_SAID).any():
        close = tuning.within_margin_at(budget, section.reference, BUDGET_SAID, metric, margin)
        others = budget["family"].nunique() - 1
        lines.append(
            f"With {BUDGET_SAID} trials per family, {len(close)} of the {others} other families reach an expected best "
            f"validation {metric.label} within ±{margin:g} of the reference's after as many"
            + (f": {', '.join(close)}." if 0 < len(close) <= 6 else ".")
        )
    return lines


BUDGET_SAID = 10
"""The small tuning budget the headline speaks of (the table has more)."""


def _speed_line(section: Section, reached: pd.DataFrame, worse: int) -> str:
    """Which family reaches the target first among the reference and the families not worse
    than it, in a sentence that reads right however many those are (one family, none worse, all
    worse, some worse)."""
    metric, others, reference = section.metric, len(section.pairwise), section.reference
    goal = f"validation {metric.label} {metric.comparison} {section.target}"
    kept = others - worse
    if not len(reached):
        within = f"with most seeds within {_count(section.experiment.epochs, 'epoch')}"
        if not others:
            return f"{reference} does not reach {goal} {within}."
        if not worse:
            return f"No family reaches {goal} {within}."
        if not kept:
            return f"The reference, {reference}, does not reach {goal} {within}, and every other family is worse than it."
        verb = "reaches" if kept == 1 else "reach"
        return f"Neither the reference nor the {_count(kept, 'family', 'families')} not worse than it {verb} {goal} {within}."
    # Ties on epochs are broken by the area under the validation curve, not by wall-clock
    # seconds, so the same command always names the same family.
    ordered = reached.sort_values(["epochs_to_target", "auc", "family"], ascending=[True, False, True])
    fastest = ordered.iloc[0]
    tied = ordered[ordered["epochs_to_target"] == fastest["epochs_to_target"]]["family"].tolist()[1:]
    how = (
        f"reaches {goal} in a median {fastest['epochs_to_target']:g} epochs ({fastest['steps_to_target']:g} "
        f"optimizer steps; {fastest['reached_target'].replace('/', ' of ')} seeds reached it)"
        + (f"; tied on epochs with {', '.join(tied)}, ahead on area under the curve" if tied else "")
    )
    if others and not kept:
        return f"The reference, {reference}, {how}; every other family is worse than it."
    among = (
        f" among the reference and the {_count(kept, 'family', 'families')} not worse than it"
        if worse
        else ""
    )
    return f"Fastest to converge{among}: {fastest['family']}, which {how}."


def _band(row: pd.Series, repeats: int) -> str:
    width = f"{row['lr_band_decades']:.2f} decades"
    if repeats > 1 and np.isfinite(row["lr_band_ci_low"]):
        return (
            f"{width} (95% CI {row['lr_band_ci_low']:.2f} to {row['lr_band_ci_high']:.2f} over tuning runs)"
        )
    return width


def rounded(value: float, half_width: float, *, signed: bool = False) -> str:
    """``value`` to the precision its interval supports: two significant digits of the half-width."""
    places = (
        4
        if not np.isfinite(half_width) or half_width <= 0
        else int(np.clip(1 - np.floor(np.log10(half_width)), 0, 6))
    )
    text = f"{value:+.{places}f}" if signed else f"{value:.{places}f}"
    return f"{0:.{places}f}" if float(text) == 0 else text  # a gap that rounds to zero has no sign


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _tuning_variance_line(section: Section) -> str:
    """How far the tuned results of independent tuning studies spread, in one sentence."""
    table = section.tuning_variance
    widest = table.loc[table["spread"].idxmax()]
    return (
        f"Each family was tuned {section.repeats} times with its own sampler seeds and the same budget, and each "
        f"tuned configuration re-evaluated; the verdicts above take each tuning run as one sample. The widest spread "
        f"of the re-evaluated mean test {section.metric.label} across tuning runs is {widest['family']}'s, "
        f"{widest['spread']:.4f}; top_in counts the runs in which a family had the best mean."
    )


def _samples(section: Section) -> str:
    """What an interval is taken over: seeds, or tuning runs each re-evaluated on seeds."""
    if section.repeats > 1:
        return f"{section.repeats} tuning runs (each re-evaluated on the same {section.seeds} seeds)"
    return f"{section.seeds} seeds"


def _interval_covers(section: Section) -> str:
    """What varies between the samples of an interval, and what does not, for this workload."""
    across = section.repeats > 1
    tuning = "the tuning run and, within it, " if across else ""
    if section.test_drawn_from_seed:
        split = "initialization, data order and the train/validation/test split"
        return tuning + split + ("" if across else ", not the tuning run")
    fixed = (
        "initialization and data order (and the validation split where the seed carves it); the test "
        "set is fixed, so test-set sampling is not covered"
    )
    return tuning + fixed + ("" if across else ", nor is the tuning run")


VERDICTS = ("worse", "better", "equivalent", "inconclusive")


def _verdicts(section: Section) -> str:
    """How many families get each verdict, and the largest and smallest gaps with their intervals."""
    pairwise, metric, margin = section.pairwise, section.metric, section.margin
    counts = pairwise["verdict"].value_counts()
    parts = [f"{counts[v]} {v}" for v in VERDICTS if counts.get(v, 0)]

    def gap(row: pd.Series) -> str:
        shown = lambda v: rounded(v, (row["ci_high"] - row["ci_low"]) / 2, signed=True)
        return (
            f"{row['family']} {shown(row['difference'])} ({shown(row['ci_low'])} to {shown(row['ci_high'])})"
        )

    ordered = pairwise.assign(size=pairwise["difference"].abs()).sort_values("size")
    sizes = f"largest gap {gap(ordered.iloc[-1])}" + (
        f", smallest {gap(ordered.iloc[0])}" if len(ordered) > 1 else ""
    )
    return (
        f"Against it, of {_count(len(pairwise), 'other family', 'other families')}: {', '.join(parts)}; {sizes} "
        f"(family minus reference in test {metric.label}, 95% intervals {_tests(section)}; every test "
        f"Holm-corrected over the families, 5%; equivalent: within ±{margin:g} by two one-sided tests; "
        "inconclusive: neither shown)."
    )


def _tests(section: Section) -> str:
    """How two families are compared: by tuning run, or paired over seeds."""
    if section.repeats > 1:
        return "over tuning runs (Welch's t; runs of two families are independent)"
    return "paired over seeds (paired t)"


def _methods(section: Section) -> list[str]:
    e = section.experiment
    return [
        f"Workload: {section.workload} ({section.description}); optimizer {e.optimizer_label}; {e.epochs} epochs of batch size {e.batch_size}"
        + (f", early stopping after {e.early_stopping} flat epochs" if e.early_stopping else "") + ".",
        f"Tuning: up to {section.trials_per_family} Optuna trials per family (TPE sampler, seed {e.seed}), each scored by its final validation {section.metric.label}. "
        + (f"Each family was tuned {section.repeats} times (see Tuning variance)." if section.repeats > 1 else "Tuning was run once per family, so tuning variance is not covered (--repeats R measures it)."),
        f"Final comparison: each family's best trial re-trained with {section.seeds} fresh seeds (shared across families) and scored on the test split, which tuning never saw.",
        "Splits: train / validation / test, drawn from the seed (stratified for classifiers; contiguous blocks of text, the same for every seed, for language models); tuning uses the sweep seed's split, each re-evaluation run its own seed's. A step is one optimizer update.",
        f"Every interval is a 95% t-interval over {_samples(section)}; it covers {_interval_covers(section)}.",
        f"Converged means validation {section.metric.label} {section.metric.comparison} {section.target}. AUC is the area under the validation-{section.metric.label} curve over the run, divided by its length.",
        f"Diverged trials hit a non-finite loss; trials at chance did not, but ended short of {_chance_line(section)}: they are also counted under their state (complete or pruned).",
    ]  # fmt: skip


def _chance_line(section: Section) -> str:
    """Where ``Metric.at_chance`` draws its line for this section's workload, in words."""
    metric, classes = section.metric, section.classes
    line, chance = metric.chance_line(classes), metric.chance(classes)
    return f"{metric.label} {line:.3g} ({CHANCE_MARGIN:.0%} of the way from a uniform guess, {chance:.3g}, to perfect)"


RANKING_COLUMNS = {
    "family": "family", "verdict": "verdict", "test_metric": "test {metric}", "test_metric_ci_low": "95% CI low", "test_metric_ci_high": "95% CI high",
    "epochs_to_target": "epochs to target (median)", "epochs_to_target_min": "min", "epochs_to_target_max": "max",
    "reached_target": "seeds reaching", "steps_to_target": "optimizer steps to target (median)", "auc": "AUC",
}  # fmt: skip
TUNING_COLUMNS = {
    "family": "family", "hyperparameters": "tuned hyperparameters", "range_edge": "at a search-range edge",
    "lr_band_decades": "LR band within the margin (decades)", "lr_band_ci_low": "95% CI low", "lr_band_ci_high": "95% CI high",
    "complete": "complete", "pruned": "pruned", "failed": "failed", "diverged": "diverged", "at_chance": "at chance",
}  # fmt: skip
"""The ranking's columns in two tables, so that each fits the page: how the tuned families did,
and what tuning found and how its trials ended (in the ranking's order)."""


def _ranking_tables(section: Section) -> list[tuple[str, pd.DataFrame]]:
    """(title, table as shown) for the ranking's two tables; none without a re-evaluation."""
    if not len(section.ranking):
        return []
    labels = {
        name: label.format(metric=section.metric.label)
        for name, label in RANKING_COLUMNS.items()
        if name in section.ranking
    }
    tuning = {name: label for name, label in TUNING_COLUMNS.items() if name in section.ranking}
    ranking = _display(section.ranking, labels)
    for name in (name for name in labels if "to_target" in name):
        # Missing there means a seed (the slowest; most, for the median) never reached the target.
        decimals = 0 if name.startswith("steps") else 1
        ranking[labels[name]] = [
            "never" if v == "-" or pd.isna(v) else v if isinstance(v, str) else f"{v:.{decimals}f}"
            for v in ranking[labels[name]]
        ]
    return [
        ("Ranking (re-evaluated on the test split)", _without_constant_columns(ranking)),
        (
            "What tuning found, and how its trials ended",
            _without_constant_columns(_display(section.ranking, tuning)),
        ),
    ]


def _without_constant_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A shown table without the columns that say the same on every row (the slowest seed's
    epochs, "never" for every family, say): the CSV keeps them."""
    if len(table) < 2:
        return table
    constant = [name for name in table.columns[1:] if table[name].astype(str).nunique() == 1]
    return table.drop(columns=constant)


def _display(table: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """The table as shown: 4 decimals, p-values to 2 significant digits, counts as whole numbers
    (not 8.0), "-" for missing ones; ``columns`` picks and names the columns (the CSV keeps the
    machine names)."""
    chosen = table[list(columns)] if columns else table
    shown = chosen.round(4)
    for name in shown.columns:
        values = shown[name]
        if pd.api.types.is_float_dtype(values):
            shown[name] = values = values + 0.0  # -0.0 (a small negative rounded) shows as 0.0000
        if name.startswith("p_"):
            shown[name] = ["-" if pd.isna(v) else f"{v:.2g}" for v in chosen[name]]
        elif pd.api.types.is_float_dtype(values) and values.dropna().apply(float.is_integer).all():
            shown[name] = ["-" if pd.isna(v) else str(int(v)) for v in values]
    return shown.rename(columns=columns) if columns else shown


PAIRWISE_COLUMNS = {
    "family": "family", "difference": "difference", "ci_low": "95% CI low",
    "ci_high": "95% CI high", "p_value": "p (t-test)", "p_holm": "p (Holm)",
    "p_equivalent": "p (equivalence, two one-sided)", "p_equivalent_holm": "p (equivalence, Holm)", "verdict": "verdict",
    "n_for_power": "tuning runs (one run: seeds) for 80% power", "vs_constant": "vs constant",
    "vs_constant_ci_low": "vs constant, 95% CI low", "vs_constant_ci_high": "vs constant, 95% CI high",
}  # fmt: skip
"""The comparison table's headers as a reader sees them (the reference, the same on every row,
is named in its title)."""


def _pairwise_shown(section: Section) -> pd.DataFrame:
    return _display(section.pairwise, {k: v for k, v in PAIRWISE_COLUMNS.items() if k in section.pairwise})


def _budget_shown(section: Section) -> tuple[str, pd.DataFrame]:
    """(title, table) of the expected best after k trials: a family a row, a budget a column."""
    budget, metric = section.budget, section.metric
    covers = " (95% CI over tuning runs)" if section.repeats > 1 else ""

    def cell(row: pd.Series) -> str:
        value = f"{row['expected_best']:.4f}"
        return (
            f"{value} ({row['ci_low']:.4f} to {row['ci_high']:.4f})" if np.isfinite(row["ci_low"]) else value
        )

    cells = budget.assign(cell=budget.apply(cell, axis=1)).pivot(
        index="family", columns="trials", values="cell"
    )
    cells = cells.reindex([f for f in section.order if f in cells.index])
    cells.columns = [f"{k} trials" for k in cells.columns]
    title = (
        f"How many trials each family needs: expected best validation {metric.label} after k trials{covers}"
    )
    return title, cells.reset_index()


STYLE = """
body { font-family: -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.headline { background: #f3f7fb; border-left: 4px solid #2b6cb0; padding: 0.8em 1.2em; font-size: 1.08em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; display: inline-block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; } th { background: #f5f5f5; }
td:first-child, th:first-child { text-align: left; } figure { margin: 1.5em 0; } figcaption { color: #555; margin-top: 0.4em; }
img { max-width: 100%; } .muted { color: #666; font-size: 0.9em; }
"""


def _html_section(section: Section, images: dict[str, bytes]) -> str:
    captions = figure_captions(section)
    parts = [f"<h2>{html.escape(section.workload)} with {html.escape(section.optimizer)}</h2>"]
    parts.append(
        '<div class="headline">'
        + "".join(f"<p>{html.escape(line)}</p>" for line in headline(section))
        + "</div>"
    )
    for title, table in _ranking_tables(section):
        parts.append(f"<h3>{html.escape(title)}</h3>" + table.to_html(index=False, na_rep="-"))
    if len(section.tuning_variance):
        parts.append(
            f"<h3>Tuning variance: {section.repeats} independent tuning studies per family</h3>"
            f"<p>{html.escape(_tuning_variance_line(section))}</p>"
            + _display(section.tuning_variance).to_html(index=False, na_rep="-")
        )
    if len(section.pairwise):
        parts.append(
            f"<h3>Against the reference, {html.escape(str(section.pairwise['reference'].iloc[0]))} "
            f"(best validation {html.escape(section.metric.label)}; difference = family minus reference; the intervals "
            "are unadjusted 95%, the verdicts Holm-corrected, so an interval that misses 0 may still be inconclusive)</h3>"
            + _pairwise_shown(section).to_html(index=False, na_rep="-")
        )
    if len(section.budget):
        title, table = _budget_shown(section)
        parts.append(f"<h3>{html.escape(title)}</h3>" + table.to_html(index=False, na_rep="-"))
    for name, image in images.items():
        data = base64.b64encode(image).decode()
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{html.escape(captions[name])}</figcaption></figure>'
        )
    parts.append(
        "<h3>How these numbers were made</h3><ul>"
        + "".join(f"<li>{html.escape(m)}</li>" for m in _methods(section))
        + "</ul>"
    )
    return "\n".join(parts)


def _markdown_section(section: Section) -> str:
    lines = [f"## {section.workload} with {section.optimizer}", "", *headline(section), ""]
    for title, table in _ranking_tables(section):
        lines += [f"### {title}", "", table.to_markdown(index=False, missingval="-"), ""]
    if len(section.pairwise):
        lines += [_pairwise_shown(section).to_markdown(index=False, missingval="-"), ""]
    if len(section.budget):
        title, table = _budget_shown(section)
        lines += [f"### {title}", "", table.to_markdown(index=False, missingval="-"), ""]
    return "\n".join(lines + [f"- {m}" for m in _methods(section)] + [""])


def write_report(
    studies: Sequence[optuna.Study], out: Path, margin: float | None = None, made_by: str = ""
) -> tuple[Path, list[str], list[Section], list[GridSection]]:
    """Write ``out/report/`` from the stored studies (and their stored re-evaluations); return
    the page, its headlines (which the terminal shows too: one answer, not two) and its
    sections, budgeted and grid. Every file
    states ``made_by`` (``provenance.provenance_line``): the page and summary in a line, each
    CSV in a first ``#`` line (``pandas.read_csv(..., comment="#")``), each PNG in its
    Description."""
    with output.staged_report(out) as report:
        sections, grids, across, grid_answer = _write_pages(studies, report, margin, made_by)
    answers = [f"{s.workload} with {s.optimizer}: " + " ".join(headline(s)) for s in sections]
    if across is not None:
        answers.insert(0, f"Across workloads: {across[1]}")
    return out / "report" / "index.html", grid_answer + answers, sections, grids


def _csv(table: pd.DataFrame, made_by: str) -> str:
    return f"# {made_by}\n{table.to_csv(index=False)}" if made_by else table.to_csv(index=False)


def _write_pages(
    studies: Sequence[optuna.Study], report: Path, margin: float | None, made_by: str
) -> tuple[list[Section], list[GridSection], tuple[pd.DataFrame, str] | None, list[str]]:
    """Every section's figures, tables, page and summary, written into ``report``: the grid
    protocol's first (the answer), then the budgeted protocol's. Returns the budgeted sections,
    the grid sections, the budgeted cross-workload table and words, and the grid's answer lines."""
    groups = group_studies(studies)
    sections = [build_section(group, margin) for key, group in groups.items() if key[2] == "budgeted"]
    grids = [build_grid_section(group, margin) for key, group in groups.items() if key[2] == "grid"]
    html_parts, markdown_parts, grid_answer = _write_grid_pages(grids, report, made_by)
    if grids and sections:
        html_parts.append(f"<h2>The budgeted protocol: what {BUDGETED_WHAT}</h2>")
        markdown_parts.append(f"## The budgeted protocol: what {BUDGETED_WHAT}\n")
    html_start, markdown_start = len(html_parts), len(markdown_parts)  # where its across-workloads part goes
    for done, section in enumerate(sections, start=1):
        # Drawing a section takes seconds (tens under load): say which, terminal or not.
        print(f"drawing the report: {section.name} ({done} of {len(sections)})", file=sys.stderr, flush=True)
        images = {name: png_bytes(figure, made_by) for name, figure in figures.draw_section(section).items()}
        for name, image in images.items():
            output.write_file(report / f"{file_stem(section.name)}-{name}.png", image)
        for name in ("ranking", "pairwise", "trials", "reevaluation", "tuning_luck"):
            table = getattr(section, name)
            if len(table.columns):  # tuning luck: only with several tuning runs
                output.write_file(report / f"{file_stem(section.name)}-{name}.csv", _csv(table, made_by))
        html_parts.append(_html_section(section, images))
        markdown_parts.append(_markdown_section(section))
    html_parts += _performance_profiles(sections, report, made_by)
    across = across_workloads(sections)
    if across is not None:
        table, verdict = across
        output.write_file(report / "across_workloads.csv", _csv(table, made_by))
        html_parts.insert(
            html_start,
            f'<h2>Across workloads (budgeted)</h2><div class="headline"><p>{html.escape(verdict)}</p></div>'
            + _cross_workload_shown(table).to_html(index=False, na_rep="-"),
        )
        markdown_parts.insert(
            markdown_start,
            f"## Across workloads (budgeted)\n\n{verdict}\n\n"
            f"{_cross_workload_shown(table).to_markdown(index=False)}\n",
        )
    shown = dict.fromkeys(f"{s.workload} / {s.optimizer}" for s in [*grids, *sections])
    title = "Which learning-rate schedule? " + ", ".join(shown)
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        f'<p class="muted">{html.escape(_protocols(grids, sections))}</p>'
        + (f'<p class="muted">{html.escape(made_by)}</p>' if made_by else "")
        + "\n".join(html_parts) + "</body></html>"
    )  # fmt: skip
    output.write_file(report / "index.html", page)
    made = f"{made_by}\n\n" if made_by else ""
    output.write_file(report / "summary.md", f"# {title}\n\n{made}" + "\n".join(markdown_parts))
    return sections, grids, across, grid_answer


BUDGETED_WHAT = "k trials of TPE buy, and how much of a tuned result is tuning luck"


def _protocols(grids: Sequence[GridSection], sections: Sequence[Section]) -> str:
    """The page's one-line account of how its numbers were made."""
    said = []
    if grids:
        said.append(
            "Grid protocol (the answer): every schedule family at its best base LR on one shared grid, its other knobs "
            "at published defaults, then re-trained on the same fresh seeds and scored on a test split that "
            "selection never saw."
        )
    if sections:
        said.append(
            "Budgeted protocol: every family tuned by Optuna's TPE with the same budget"
            + (", several times" if any(s.repeats > 1 for s in sections) else "")
            + ", its best configuration re-trained over fresh seeds and scored on the test split."
        )
    return " ".join(said)


def _write_grid_pages(
    grids: Sequence[GridSection], report: Path, made_by: str
) -> tuple[list[str], list[str], list[str]]:
    """The grid protocol's part of the page and summary, first: the answer across workloads
    (with its figure and table), then each workload's section; returns (html parts, markdown
    parts, the answer's lines)."""
    html_parts, markdown_parts, answer = [], [], []
    placement = placement_frame(grids)
    if placement is not None:
        answer = grid_render.answer(grids, placement)
        image = png_bytes(
            figures.grid_answer(
                {s.workload: (s.verdicts, s.margin, s.metric) for s in grids if len(s.verdicts)}
            ),
            made_by,
        )
        output.write_file(report / "answer.png", image)
        output.write_file(report / "placement.csv", _csv(placement, made_by))
        shown = grid_render.placement_shown(placement)
        html_parts.append(
            '<h2>The answer</h2><div class="headline">' + "".join(f"<p>{html.escape(a)}</p>" for a in answer) + "</div>"
            + f'<figure><img src="data:image/png;base64,{base64.b64encode(image).decode()}" alt="answer"><figcaption>'
            + html.escape(ANSWER_CAPTION) + "</figcaption></figure>" + shown.to_html(index=False, na_rep="-")
        )  # fmt: skip
        markdown_parts.append(
            "## The answer\n\n" + "\n\n".join(answer) + "\n\n" + shown.to_markdown(index=False) + "\n"
        )
    for done, section in enumerate(grids, start=1):
        print(f"drawing the report: {section.name} ({done} of {len(grids)})", file=sys.stderr, flush=True)
        images = {}
        if len(section.sensitivity):
            order = section.order or sorted(set(section.sensitivity["family"]))
            figure = figures.grid_sensitivity(
                section.points, section.choices, order, section.metric, section.margin
            )
            images["sensitivity"] = png_bytes(figure, made_by)
        for name, image in images.items():
            output.write_file(report / f"{file_stem(section.name)}-{name}.png", image)
        for name in ("verdicts", "choices", "sensitivity", "evaluation"):
            output.write_file(
                report / f"{file_stem(section.name)}-{name}.csv", _csv(getattr(section, name), made_by)
            )
        encoded = {name: base64.b64encode(image).decode() for name, image in images.items()}
        html_parts.append(grid_render.html_section(section, encoded))
        markdown_parts.append(grid_render.markdown_section(section))
        answer += [
            f"{section.workload} with {section.optimizer} (grid): " + " ".join(grid_render.headline(section))
        ]
    return html_parts, markdown_parts, answer


ANSWER_CAPTION = (
    "Each family's difference from each workload's best family (its reference) in the test metric, at both families' "
    "grid LRs, signed so that right is better: the dot the mean over the shared evaluation seeds, the line its unadjusted "
    "95% interval, the colour its Holm-corrected verdict; shaded: the margin of equivalence."
)


def across_workloads(sections: Sequence[Section]) -> tuple[pd.DataFrame, str] | None:
    """With two or more compared sections: the cross-workload table (``cross_workload_frame``)
    and the answer, in words: the rule's pick, how often resampled tuning runs agree, and the
    safest and fastest families."""
    picked = recommendation(sections)  # the bootstrap runs once, for the table and the words
    table = None if picked is None else cross_workload_frame(sections, picked)
    if table is None:
        return None
    compared = compared_sections(sections)
    margins = ", ".join(f"{s.margin:g} on {s.workload}" for s in compared)
    rule = (
        f"the rule “of the families never worse than a workload's reference by more than its margin ({margins}; "
        "mean test metric), the most forgiving to a mistuned LR (widest LR band, averaged over the workloads)”"
    )
    if picked.family is None:
        answer = f"No family is within the margin of the reference on all {len(compared)} workloads, so {rule} picks none."
    else:
        others = len(picked.eligible) - 1
        answer = (
            f"Recommended: {picked.family} (LR band {picked.forgiveness[picked.family]:.2f} decades), by {rule}; "
            f"{others} other famil{'y' if others == 1 else 'ies'} also stay within the margins."
        )
    shown = picked.shares[picked.shares >= 0.005]
    shares = ", ".join(f"{family} {share:.0%}" for family, share in shown.items())
    robust, fastest = table.iloc[0], table.loc[table["profile_score"].idxmax()]
    speed = (
        f"Fewest steps to target across the workloads: {fastest['family']} (AlgoPerf profile score "
        f"{fastest['profile_score']:.2f} of 1, r_max = 4)."
        if fastest["profile_score"] > 0
        else "No family reaches the target on any workload within 4 times the fastest's steps."
    )
    verdict = (
        f"{answer} With each family's tuning runs resampled ({picked.draws:,} bootstrap draws), the rule picks {shares}. "
        f"Smallest worst gap: {robust['family']}, {robust['worst_gap_pct']:+.2f}% of the reference's test metric. "
        f"{speed} Gaps are point estimates: see each workload's section for their intervals. The rule compares "
        "them with each workload's best on the same runs, which leans to none even for identical families; "
        "with a grid, its placement (tested, Holm over the families) is the answer across workloads."
    )
    return table, verdict


CROSS_WORKLOAD_COLUMNS = {
    "worst_gap_pct": "worst gap %", "lr_band_decades": "LR band (decades)",
    "picked_share": "picked by the rule (bootstrap share)", "profile_score": "profile score (steps to target)",
}  # fmt: skip
"""The cross-workload table's own headers as a reader sees them; per-workload columns are named
already ("<workload> verdict", "<workload> gap %")."""


def _cross_workload_shown(table: pd.DataFrame) -> pd.DataFrame:
    """Gaps, bands and scores to 2 decimals, the rule's share in whole percent."""
    shown = table.assign(picked_share=[f"{share:.0%}" for share in table["picked_share"]])
    return _display(shown.round(2)).rename(columns=CROSS_WORKLOAD_COLUMNS)


def _performance_profiles(sections: Sequence[Section], report: Path, made_by: str) -> list[str]:
    """Each optimizer's performance profile across its workloads, drawn, written and shown."""
    parts = []
    for optimizer, (profile, order, workloads) in performance_profiles(sections).items():
        image = png_bytes(figures.performance_profile(profile, order), made_by)
        output.write_file(report / f"{optimizer}-performance_profile.png", image)
        parts.append(
            f'<h2>Across workloads ({html.escape(optimizer)})</h2><figure><img src="data:image/png;base64,'
            f'{base64.b64encode(image).decode()}" alt="performance profile"><figcaption>Share of the '
            f"{workloads} workloads on which each family reaches its target within tau times the fewest optimizer steps "
            "any family needs (AlgoPerf's performance profile): higher and further left is better.</figcaption></figure>"
        )
    return parts
