"""The grid protocol's words and tables: each workload's headline, its verdict and LR tables, the
figures' captions, and the answer across workloads. Every number a sentence quotes comes from the
frames beside it (``study.reporting.grid``); nothing here computes a result."""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from study.reporting import statistics
from study.reporting.grid import GridSection

VERDICTS = ("worse", "better", "equivalent", "inconclusive")


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def _signed(value: float) -> str:
    text = f"{value:+.4f}"
    return f"{0:.4f}" if float(text) == 0 else text


def verdict_counts(section: GridSection) -> dict[str, int]:
    counts = section.verdicts["verdict"].value_counts()
    return {word: int(counts.get(word, 0)) for word in VERDICTS}


def headline(section: GridSection) -> list[str]:
    """What the grid says on this workload: the reference, the verdicts against it, what would
    settle the inconclusive ones, and the grid's own flags (edges, the most forgiving family)."""
    if not len(section.verdicts):
        return [f"The grid of {section.workload} is not complete or not evaluated yet: nothing to compare."]
    metric, reference = section.metric, section.verdicts.iloc[0]
    lines = [
        (
            f"Reference: {section.reference} at base LR {reference['lr']:g} (the best mean validation {metric.label} "
            f"over the {section.selection_seeds} selection seeds; never chosen on the test split), test {metric.label} "
            f"{reference['test_metric']:.4f} (95% CI {reference['test_ci_low']:.4f} to {reference['test_ci_high']:.4f} "
            f"over {_count(section.seeds, 'evaluation seed')})."
        ),
        _verdict_line(section),
    ]
    if line := _power_line(section):
        lines.append(line)
    edges = section.choices[section.choices["edge"] != ""]
    if len(edges):
        lines.append(
            "Best at the edge of the LRs tried, the grid unable to grow further there: "
            + "; ".join(f"{r['family']} ({r['edge']}, {r['lr']:g})" for _, r in edges.iterrows())
            + "."
        )
    ordered = section.choices.sort_values(["band_decades", "family"], ascending=[False, True])
    if len(ordered) > 1:
        widest, narrowest = ordered.iloc[0], ordered.iloc[-1]
        lines.append(
            f"Most forgiving to its LR: {widest['family']}, within ±{section.margin:g} of its best over "
            f"{widest['band_decades']:.2f} decades of base LR; least: {narrowest['family']}, {narrowest['band_decades']:.2f}."
        )
    return lines


def _verdict_line(section: GridSection) -> str:
    counts = verdict_counts(section)
    others = len(section.verdicts) - 1
    parts = ", ".join(f"{n} {word}" for word, n in counts.items() if n)
    return (
        f"Against it, of {_count(others, 'other family', 'other families')}: {parts}{_trivial_gaps(section)} (family "
        f"minus reference in test {section.metric.label}, {statistics.PAIRED_SEEDS}, every test Holm-corrected over "
        f"the families at 5%; equivalent: within ±{section.margin:g} by two one-sided tests)."
    )


def trivial_gaps(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The *worse* and *better* rows whose gap is also shown within the margin: a difference the
    seeds detect but one smaller than a practitioner would change schedule for. The verdict rule,
    fixed before the study, calls them worse or better; this says how many are so small."""
    shown = verdicts["verdict"].isin(["worse", "better"])
    return verdicts[shown & (verdicts["p_equivalent_holm"] < statistics.SIGNIFICANCE)]


def _trivial_gaps(section: GridSection) -> str:
    small = trivial_gaps(section.verdicts)
    if not len(small):
        return ""
    return f"; of the {'worse and better' if 'better' in set(small['verdict']) else 'worse'}, {len(small)} by less than the margin (shown within it too)"


def _power_line(section: GridSection) -> str:
    """How many evaluation seeds would settle the inconclusive verdicts, and at what cost here."""
    open_ = section.verdicts[section.verdicts["verdict"] == "inconclusive"]
    needed = open_["seeds_needed"].dropna()
    if not len(open_):
        return ""
    line = f"{_count(len(open_), 'inconclusive verdict')}"
    if len(needed):
        minutes = open_["cpu_minutes_needed"].dropna()
        line += (
            f": {len(needed)} would be settled at 80% power by {_span(needed)} evaluation "
            f"seeds (now {section.seeds}; about {minutes.sum():.0f} CPU minutes here for all of them)"
        )
    unsettled = len(open_) - len(needed)
    if unsettled:
        line += f"{';' if len(needed) else ':'} {unsettled} no affordable number of seeds would settle (a difference at the margin's edge)"
    return line + "."


def _span(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return f"{low}" if low == high else f"{low} to {high}"


def captions(section: GridSection) -> dict[str, str]:
    metric = section.metric
    return {
        "sensitivity": (
            f"Each family's final validation {metric.label} against its base LR on the shared grid: grey dots each "
            f"selection seed's ({section.selection_seeds} a point), the blue line their mean, the chosen LR dashed, "
            f"and the band within ±{section.margin:g} of that LR's mean shaded green. A flat curve forgives a "
            "poorly chosen LR."
        ),
    }


VERDICT_COLUMNS = {
    "family": "family", "verdict": "verdict", "lr": "base LR", "test_metric": "test {metric}",
    "test_ci_low": "95% CI low", "test_ci_high": "95% CI high", "difference": "Δ vs reference",
    "ci_low": "Δ 95% CI low (unadjusted)", "ci_high": "Δ 95% CI high (unadjusted)",
    "p_holm": "p (Holm)", "p_equivalent_holm": "p equivalent (Holm)", "seeds_needed": "seeds for 80% power",
    "cpu_minutes_needed": "their CPU minutes",
}  # fmt: skip
CHOICE_COLUMNS = {
    "family": "family", "lr": "chosen base LR", "selection_mean": "mean val. {metric} (selection)",
    "tried_low": "lowest LR tried", "tried_high": "highest LR tried", "edge": "at an edge",
    "band_decades": "LR band (decades)", "band_ci_low": "95% CI low", "band_ci_high": "95% CI high",
}  # fmt: skip


def _shown(table: pd.DataFrame, columns: dict[str, str], metric_label: str) -> pd.DataFrame:
    """The table as a reader sees it: its named columns, numbers to 4 decimals (p to 2 digits,
    counts whole, LRs as they are), "-" where a value does not apply."""
    chosen = table[[c for c in columns if c in table]].copy()
    for name in chosen.columns:
        values = chosen[name]
        if name.startswith("p_"):
            chosen[name] = ["-" if pd.isna(v) else f"{v:.2g}" for v in values]
        elif name in ("lr", "tried_low", "tried_high"):
            chosen[name] = [f"{v:g}" for v in values]
        elif name in ("seeds_needed", "cpu_minutes_needed"):
            chosen[name] = ["-" if pd.isna(v) else f"{v:.0f}" for v in values]
        elif pd.api.types.is_float_dtype(values):
            chosen[name] = ["-" if pd.isna(v) else f"{v + 0.0:.4f}" for v in values]
        else:
            chosen[name] = ["-" if (isinstance(v, float) and np.isnan(v)) or v == "" else v for v in values]
    return chosen.rename(columns={k: v.format(metric=metric_label) for k, v in columns.items()})


def tables(section: GridSection) -> list[tuple[str, pd.DataFrame]]:
    """(title, table as shown): the verdicts, then the LRs the grid chose."""
    label = section.metric.label
    return [
        (
            (
                f"Every family at its grid LR against the reference, {section.reference} (Δ = family minus reference; "
                "the intervals are unadjusted 95%, the verdicts Holm-corrected, so an interval that misses 0 may "
                "still be inconclusive)"
            ),
            _shown(section.verdicts, VERDICT_COLUMNS, label),
        ),
        ("The LR the grid chose for each family", _shown(section.choices, CHOICE_COLUMNS, label)),
    ]


def methods(section: GridSection) -> list[str]:
    e = section.experiment
    return [
        f"Workload: {section.workload} ({section.description}); optimizer {e.optimizer_label}; {e.epochs} epochs of batch size {e.batch_size}.",
        (f"Grid protocol: every family's base LR on one shared log grid, 4 points a decade, its window the optimizer's LR range, "
        f"extended a point at a time (up to a decade) where its best lay on an edge; its other knobs at published defaults "
        f"(results/METHODS.md). Each grid point trained on the same {section.selection_seeds} selection seeds (initialization and "
        f"data order) on the sweep seed's split; the family's LR is the one with the best mean validation {section.metric.label}."),
        (f"Evaluation: each family's chosen configuration re-trained on the same {section.seeds} fresh evaluation seeds, each "
        "drawing its own split where the workload draws one, and scored on the test split."),
        ("Intervals are 95%: over the evaluation seeds for test metrics and differences (paired), over the selection seeds "
        "for the sensitivity curves, and bootstrap over the selection seeds for LR bands."),
    ]  # fmt: skip


def html_section(section: GridSection, images: dict[str, str]) -> str:
    """A workload's grid section as HTML; ``images`` are base64 PNGs by figure name."""
    parts = [
        f"<h2>{html.escape(section.workload)} with {html.escape(section.optimizer)}: the grid protocol</h2>"
    ]
    parts.append(
        '<div class="headline">'
        + "".join(f"<p>{html.escape(line)}</p>" for line in headline(section))
        + "</div>"
    )
    for title, table in tables(section):
        parts.append(f"<h3>{html.escape(title)}</h3>" + table.to_html(index=False, na_rep="-"))
    notes = captions(section)
    for name, data in images.items():
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{html.escape(notes[name])}</figcaption></figure>'
        )
    parts.append(
        "<h3>How these numbers were made</h3><ul>"
        + "".join(f"<li>{html.escape(m)}</li>" for m in methods(section))
        + "</ul>"
    )
    return "\n".join(parts)


def markdown_section(section: GridSection) -> str:
    lines = [f"## {section.workload} with {section.optimizer}: the grid protocol", "", *headline(section), ""]
    for title, table in tables(section):
        lines += [f"### {title}", "", table.to_markdown(index=False), ""]
    return "\n".join(lines + [f"- {m}" for m in methods(section)] + [""])


def answer(sections: Sequence[GridSection], placement: pd.DataFrame) -> list[str]:
    """The answer across workloads, first on every page: which families the data show within the
    margin of the best everywhere, which worse somewhere, which they cannot place, and how much
    the schedule matters."""
    evaluated = [s for s in sections if len(s.verdicts)]
    groups = {word: list(placement.loc[placement["placement"] == word, "family"]) for word in
              ("within the margin everywhere", "worse somewhere", "not placed")}  # fmt: skip
    margins = ", ".join(f"{s.margin:g} on {s.workload}" for s in evaluated)
    named = lambda families: ", ".join(families) if families else "none"
    counts = pd.Series(
        [v for s in evaluated for v in s.verdicts["verdict"] if v != "reference"]
    ).value_counts()
    total = int(counts.sum())
    conclusive = total - int(counts.get("inconclusive", 0))
    worst = _worst_gap(evaluated)
    return [
        (
            f"Every family at its best base LR on a shared grid, re-trained on the same fresh seeds, on {len(evaluated)} workloads: "
            f"shown within the margin of each workload's best family on all of them: {named(groups['within the margin everywhere'])}. "
            f"Shown worse than the best on at least one: {named(groups['worse somewhere'])}. "
            f"Not placed by the data: {named(groups['not placed'])}."
        ),
        (
            f"How sure: each family is tested across the workloads at once (within the margins {margins}: every workload's "
            "one-sided test must pass; worse somewhere: the smallest one-sided p times the workloads), Holm-corrected over "
            f"the families at 5%. Per workload, {conclusive} of {total} verdicts are conclusive "
            f"({', '.join(f'{int(counts.get(w, 0))} {w}' for w in VERDICTS)})."
        ),
        f"How much it matters: the largest gap behind a workload's best is {worst}.",
    ]


def _worst_gap(sections: Sequence[GridSection]) -> str:
    rows = [
        (s.metric.sign * row["difference"], row["family"], s, row)
        for s in sections
        for _, row in s.verdicts.iterrows()
        if row["verdict"] != "reference"
    ]
    lead, family, section, row = min(rows, key=lambda r: r[0])
    low, high = sorted((section.metric.sign * row["ci_low"], section.metric.sign * row["ci_high"]))
    return (
        f"{family}'s on {section.workload}, {_signed(lead)} test {section.metric.label} "
        f"(95% CI {_signed(low)} to {_signed(high)}; {row['verdict']})"
    )


PLACEMENT_COLUMNS = {
    "family": "family",
    "placement": "placed",
    "p_safe_holm": "p within (Holm)",
    "p_worse_holm": "p worse (Holm)",
}


def placement_shown(placement: pd.DataFrame) -> pd.DataFrame:
    shown = placement.copy()
    for name in ("p_safe_holm", "p_worse_holm"):
        shown[name] = [f"{v:.2g}" for v in shown[name]]
    for name in [c for c in shown.columns if c.endswith(" gap")]:
        shown[name] = [_signed(v) for v in shown[name]]
    return shown.rename(columns=PLACEMENT_COLUMNS)
