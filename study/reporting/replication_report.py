"""A replication's outputs (``python -m study.replicate``): ``NAME.md`` (the claim, each
workload's outcome in one sentence, the tables), ``NAME.csv`` (the comparisons) and ``NAME.png``
(``figures.replication``), each carrying its provenance line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import optuna
import pandas as pd

from objectives import stored
from study.replications import Replication
from study.reporting import figures, replication
from study.reporting.output import write_file
from study.reporting.provenance import provenance_line
from study.reporting.render import png_bytes

HOW_TO_READ = {
    "lead_grows": "a lead is the second arm's test {label} minus the first's, signed so that ahead is positive",
    "matches_reference": "a lead is the arm's test {label} minus the first arm's, signed so that ahead is positive",
    "band_reaches_higher": "the LR band is the base LRs whose tuning trials ended within {margin:g} of their run's best "
    "validation {label}; its top and width are in decades of base LR (log10), per tuning run",
}


READING = (
    "intervals are 95%, Welch's t over tuning runs (each run one sample); p-values in `_holm` columns are "
    "Holm-corrected over the claim's tests."
)


def _shown(table: pd.DataFrame) -> pd.DataFrame:
    """Numbers to four significant digits, for reading."""
    return table.map(lambda value: float(f"{value:.4g}") if isinstance(value, float) else value)


def _budget_line(studies: Sequence[optuna.Study], workload: str, runs: pd.DataFrame) -> str:
    experiments = [stored.stored_experiment(s.user_attrs) for s in studies]
    mine = [(e, s) for e, s in zip(experiments, studies) if e.workload == workload]
    trials = min(len(s.get_trials(deepcopy=False)) for _, s in mine)
    lengths = ", ".join(str(epochs) for epochs in sorted({e.epochs for e, _ in mine}))
    repeats = 1 + max(e.repeat for e, _ in mine)
    seeds = f"; each tuned configuration re-trained on {int(runs['seeds'].min())} seeds" if len(runs) else ""
    return f"{trials} trials per arm and tuning run, {repeats} tuning runs, {lengths} epochs{seeds}"


def write_replication(
    chosen: Replication,
    studies: Sequence[optuna.Study],
    workloads: Sequence[str],
    out: Path,
    command: str,
    started: float,
) -> Path:
    """Judge the claim on each workload, write the three files into ``out``; return the .md."""
    made_by = provenance_line(command, started)
    lines = [f"# {chosen.name}: {chosen.claim}", "", f"Claim from {chosen.paper}.", ""]
    panels, tables, scatter = [], [], None
    for workload in workloads:
        outcome = replication.judge(chosen, studies, workload)
        mine = [s for s in studies if stored.stored_experiment(s.user_attrs).workload == workload]
        attrs = mine[0].user_attrs
        metric, margin = stored.stored_metric(attrs), stored.stored_workload_facts(attrs)["margin"]
        runs = replication.runs_frame(mine, chosen.arms)
        how = HOW_TO_READ[chosen.test].format(label=metric.label, margin=margin)
        lines += [
            f"## {workload}: {outcome.verdict}", "", f"{outcome.reason[0].upper()}{outcome.reason[1:]}.", "",
            f"Budget: {_budget_line(studies, workload, runs)}. How to read: {how}; {READING}",
            "", _shown(outcome.table).to_markdown(index=False, missingval="-"), "",
        ]  # fmt: skip
        if len(runs):
            lines += [f"Test {metric.label} per arm (mean over tuning runs):", ""]
            lines += [_shown(replication.arm_summary(runs)).to_markdown(index=False, missingval="-"), ""]
        unit = "decades" if chosen.test == "band_reaches_higher" else metric.label
        panels.append(
            (workload, outcome.table, 0.0 if chosen.test == "band_reaches_higher" else margin, unit)
        )
        tables.append(outcome.table.assign(workload=workload, verdict=outcome.verdict))
        if chosen.test == "band_reaches_higher":
            trials = replication.tuning_trials_frame(mine, chosen.arms)
            scatter = trials[trials["state"] == "COMPLETE"].assign(label=f"final validation {metric.label}")
    lines += [made_by, ""]
    out.mkdir(parents=True, exist_ok=True)
    summary = out / f"{chosen.name}.md"
    write_file(summary, "\n".join(lines))
    write_file(out / f"{chosen.name}.csv", f"# {made_by}\n" + pd.concat(tables).to_csv(index=False))
    write_file(out / f"{chosen.name}.png", png_bytes(figures.replication(panels, scatter), made_by))
    return summary
