"""A replication's outputs (``python -m study.replicate``): ``NAME.md`` (the claim, each
workload's outcome in one sentence, the tables), ``NAME.csv`` (the comparisons) and ``NAME.png``
(``figures.replication``), each carrying its provenance line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import optuna
import pandas as pd

from objectives import stored
from objectives.experiment import Experiment
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


def _budget_line(
    experiments: Sequence[Experiment], studies: Sequence[optuna.Study], runs: pd.DataFrame
) -> str:
    trials = min(len(s.get_trials(deepcopy=False)) for s in studies)
    lengths = ", ".join(str(epochs) for epochs in sorted({e.epochs for e in experiments}))
    repeats = 1 + max(e.repeat for e in experiments)
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
    experiments = [stored.stored_experiment(s.user_attrs) for s in studies]  # each a deep copy: once
    lines = [f"# {chosen.name}: {chosen.claim}", "", f"Claim from {chosen.paper}.", ""]
    panels, tables, scatter = [], [], None
    for workload in workloads:
        mine = [(e, s) for e, s in zip(experiments, studies) if e.workload == workload]
        outcome = replication.judge(chosen, [s for _, s in mine])
        metric, runs = outcome.metric, outcome.runs
        how = HOW_TO_READ[chosen.test].format(label=metric.label, margin=outcome.margin)
        budget = _budget_line([e for e, _ in mine], [s for _, s in mine], runs)
        lines += [
            f"## {workload}: {outcome.verdict}", "", f"{outcome.reason[0].upper()}{outcome.reason[1:]}.", "",
            f"Budget: {budget}. How to read: {how}; {READING}",
            "", _shown(outcome.table).to_markdown(index=False, missingval="-"), "",
        ]  # fmt: skip
        if len(runs):
            lines += [f"Test {metric.label} per arm (mean over tuning runs):", ""]
            lines += [_shown(replication.arm_summary(runs)).to_markdown(index=False, missingval="-"), ""]
        if outcome.trials is None:
            panels.append((workload, outcome.table, outcome.margin, metric.label))
        else:  # the claim is about LR bands, in decades: no margin of the metric applies
            panels.append((workload, outcome.table, 0.0, "decades"))
            trials = outcome.trials
            scatter = trials[trials["state"] == "COMPLETE"].assign(label=f"final validation {metric.label}")
        tables.append(outcome.table.assign(workload=workload, verdict=outcome.verdict))
    lines += [made_by, ""]
    out.mkdir(parents=True, exist_ok=True)
    summary = out / f"{chosen.name}.md"
    write_file(summary, "\n".join(lines))
    write_file(out / f"{chosen.name}.csv", f"# {made_by}\n" + pd.concat(tables).to_csv(index=False))
    write_file(out / f"{chosen.name}.png", png_bytes(figures.replication(panels, scatter), made_by))
    return summary
