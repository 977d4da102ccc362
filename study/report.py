"""``python -m study.report``: the comparison report of a sweep, as one HTML page.

Re-evaluates each family's best configuration over seeds on the test split (only where the
stored re-evaluation is out of date), then writes ``<out>/report/``: ``index.html`` (self-
contained: figures embedded), ``summary.md``, and every table as CSV and figure as PNG. Each
(workload, optimizer) pair in the storage gets its own section. Files are written under a
temporary name and renamed, so a report killed half-way never leaves a half-written file.
"""

from __future__ import annotations

import base64
import html
import io
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pandas as pd
import torch
from matplotlib.figure import Figure
from tqdm import tqdm

from objectives.objective import Experiment
from objectives.workloads import get_workload, load_splits
from study import analysis, figures
from study.cli import (
    ArgumentParser,
    add_device_arguments,
    add_output_arguments,
    check_device,
    positive_int,
    run_main,
)
from study.errors import UsageError
from study.reevaluate import is_current, reevaluate, stored_reevaluation
from study.storage import prepare_out_dir, storage_spec

DEFAULT_SEEDS = 5


# --- data ------------------------------------------------------------------------------------------


def refresh_reevaluations(
    studies: Sequence[optuna.Study], *, seeds: int, data_dir: Path | None, device: str = "cpu"
) -> None:
    """Re-evaluate every study whose stored re-evaluation is missing or out of date."""
    stale = [study for study in studies if not is_current(study, seeds) and study.best_trials]
    for study in tqdm(stale, desc="re-evaluating best configurations", unit="family", disable=None):
        experiment = Experiment.from_attrs(study.user_attrs)
        reevaluate(study, load_splits(experiment.workload, experiment.seed, data_dir), seeds, device=device)


@dataclass
class Section:
    """Everything the report shows for one (workload, optimizer): frames first, figures from them."""

    workload: str
    optimizer: str
    experiment: Experiment
    trials: pd.DataFrame
    reevaluation: pd.DataFrame
    curves: pd.DataFrame
    shapes: pd.DataFrame
    expected_best: pd.DataFrame
    importance: pd.DataFrame
    ranking: pd.DataFrame
    pairwise: pd.DataFrame
    trials_per_family: int
    figures: dict[str, tuple[Figure, str]] = field(default_factory=dict)  # name -> (figure, how to read it)

    @property
    def name(self) -> str:
        return f"{self.workload}-{self.optimizer}"

    @property
    def order(self) -> list[str]:
        """Families, most accurate first; families without a re-evaluation last."""
        ranked = list(self.ranking["family"]) if len(self.ranking) else []
        return ranked + sorted(set(self.trials["family"]) - set(ranked))


def build_section(studies: Sequence[optuna.Study]) -> Section:
    """The frames of one (workload, optimizer) group of studies (reads stored re-evaluations)."""
    first = Experiment.from_attrs(studies[0].user_attrs)
    trials = analysis.trials_frame(studies)
    reevaluation = analysis.reevaluation_frame(studies)
    hyperparameters = {
        study.user_attrs["family"]: record["params"]
        for study in studies
        if (record := stored_reevaluation(study))
    }
    return Section(
        workload=first.workload,
        optimizer=first.optimizer_label,
        experiment=first,
        trials=trials,
        reevaluation=reevaluation,
        curves=analysis.curves_frame(studies),
        shapes=analysis.schedule_shapes_frame(studies),
        expected_best=analysis.expected_best_frame(trials),
        importance=analysis.importance_frame(studies),
        ranking=analysis.ranking_table(reevaluation, trials, hyperparameters),
        pairwise=analysis.pairwise_table(reevaluation),
        trials_per_family=int(trials.groupby("family").size().max()) if len(trials) else 0,
    )


def group_studies(studies: Sequence[optuna.Study]) -> dict[tuple[str, str], list[optuna.Study]]:
    """Studies by (workload, optimizer), in a stable order."""
    groups: dict[tuple[str, str], list[optuna.Study]] = {}
    for study in sorted(studies, key=lambda s: s.study_name):
        if "workload" in study.user_attrs:
            key = (study.user_attrs["workload"], analysis.optimizer_label(study.user_attrs))
            groups.setdefault(key, []).append(study)
    return groups


def draw_section(section: Section) -> None:
    """Fill ``section.figures``; each comes with one sentence on how to read it."""
    order, target = section.order, section.experiment.target
    ranked = [family for family in order if family in set(section.reevaluation["family"])]
    add = section.figures.__setitem__
    if ranked:
        add(
            "convergence",
            (
                figures.convergence(section.curves, ranked),
                "Validation accuracy and loss per epoch of each family's re-evaluated best configuration, mean over seeds with a 95% band: the curve that rises first converges fastest.",
            ),
        )
        add(
            "schedules",
            (
                figures.schedule_shapes(section.shapes, ranked),
                "The learning rate each family's tuned configuration uses during the run, per optimizer step.",
            ),
        )
        add(
            "epochs_to_target",
            (
                figures.epochs_to_target(section.ranking, target),
                f"Epochs until validation accuracy first reaches {target}: bar = median over seeds (a seed that never reaches it counts as never), whiskers = fastest and slowest seed.",
            ),
        )
    add(
        "distribution",
        (
            figures.accuracy_distribution(section.trials, order),
            "Every tuning trial's final validation accuracy (pruned trials where they stopped): a narrow box high up means the family is forgiving to tune.",
        ),
    )
    add(
        "sensitivity",
        (
            figures.sensitivity(section.trials, order),
            "Final validation accuracy against the base learning rate: a wide plateau means the family tolerates a poorly chosen LR.",
        ),
    )
    add(
        "tuning_budget",
        (
            figures.tuning_budget(section.expected_best, order),
            "Expected best validation accuracy if you ran only n trials (Dodge et al. 2019): how many trials a family needs before it is competitive.",
        ),
    )
    if len(section.importance):
        add("importance", (figures.importance(section.importance, [f for f in order if f in set(section.importance["family"])]), "How much of the spread of results each searched hyperparameter explains (fANOVA): tune the long bars first."))  # fmt: skip


# --- writing ---------------------------------------------------------------------------------------


STAGING_PREFIX = ".report-"
"""Where a report is written before it is switched into place (a hidden sibling of report/)."""


def _write(path: Path, content: str | bytes) -> None:
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def _staging_directory(out: Path) -> Path:
    """A fresh hidden directory for the next report, with the permissions the umask gives."""
    staging = Path(tempfile.mkdtemp(dir=out, prefix=STAGING_PREFIX))
    umask = os.umask(0)
    os.umask(umask)
    staging.chmod(0o777 & ~umask)
    return staging


def _publish(staging: Path, report: Path) -> None:
    """Switch ``report`` to the freshly written ``staging`` in one rename, so a reader sees the
    previous report or the new one, never a mix: ``report`` is a symbolic link to the current
    directory. Reports killed before their switch, and the previous one, are removed after it."""
    link = staging.with_name(staging.name + ".link")
    link.symlink_to(staging.name)
    if report.is_dir() and not report.is_symlink():  # a report/ written by an older version
        shutil.rmtree(report)
    os.replace(link, report)
    for leftover in report.parent.glob(STAGING_PREFIX + "*"):
        if leftover == staging:
            continue
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def headline(section: Section) -> list[str]:
    """The answer first: fastest family, most accurate family, and whether the lead is real."""
    target, ranking, pairwise = section.experiment.target, section.ranking, section.pairwise
    if not len(ranking):
        return ["No family has a complete trial yet, so there is nothing to compare."]
    lines = []
    reached = ranking.dropna(subset=["epochs_to_target"])
    if len(reached):
        # Ties on epochs are broken by the area under the validation curve, not by wall-clock
        # seconds, so the same command always names the same family.
        ordered = reached.sort_values(["epochs_to_target", "auc", "family"], ascending=[True, False, True])
        fastest = ordered.iloc[0]
        tied = ordered[ordered["epochs_to_target"] == fastest["epochs_to_target"]]["family"].tolist()[1:]
        lines.append(
            f"Fastest to converge: {fastest['family']}, which reaches validation accuracy {target} in a median "
            f"{fastest['epochs_to_target']:g} epochs ({fastest['seconds_to_target']:.2f} s; "
            f"{fastest['reached_target'].replace('/', ' of ')} seeds reached it)"
            + (f"; tied on epochs with {', '.join(tied)}, ahead on area under the curve." if tied else ".")
        )
    else:
        lines.append(
            f"No family's best configuration reaches validation accuracy {target} with most seeds "
            f"within {section.experiment.epochs} epochs."
        )
    best = ranking.iloc[0]
    lines.append(
        f"Most accurate: {best['family']}, test accuracy {best['test_acc']:.4f} "
        f"(95% CI {best['test_acc_ci_low']:.4f} to {best['test_acc_ci_high']:.4f}, {best['seeds']} seeds)."
    )
    if len(pairwise):
        tied = pairwise[pairwise["verdict"] == "not distinguishable"]["family"].tolist()
        runner_up = pairwise.iloc[0]
        if tied:
            lines.append(
                f"The lead is not significant: {len(tied)} of {len(pairwise)} other families are statistically "
                f"indistinguishable from it (paired t-test over seeds, Holm-corrected, 5% level), including the "
                f"runner-up {runner_up['family']} ({runner_up['difference']:+.4f}, adjusted p = {runner_up['p_holm']:.2g})."
            )
        else:
            lines.append(
                f"The lead is significant: every other family is worse (paired t-test over seeds, Holm-corrected, "
                f"5% level); the runner-up {runner_up['family']} by {runner_up['difference']:.4f}."
            )
    return lines


def _methods(section: Section) -> list[str]:
    e, workload = section.experiment, get_workload(section.workload)
    seeds = int(section.ranking["seeds"].max()) if len(section.ranking) else 0
    return [
        f"Workload: {section.workload} ({workload.description}); optimizer {e.optimizer_label}; {e.epochs} epochs of batch size {e.batch_size}"
        + (f", early stopping after {e.early_stopping} flat epochs" if e.early_stopping else "") + ".",
        f"Tuning: up to {section.trials_per_family} Optuna trials per family (TPE sampler, seed {e.seed}), each scored by its final validation accuracy.",
        f"Final comparison: each family's best trial re-trained with {seeds} fresh seeds (shared across families) and scored on the test split, which tuning never saw.",
        "Splits: fixed, stratified train / validation / test, determined by the seed; a step is one optimizer update.",
        f"Converged means validation accuracy >= {e.target}. AUC is the area under the validation-accuracy curve over the run, normalized to [0, 1].",
    ]  # fmt: skip


RANKING_COLUMNS = {
    "family": "family", "test_acc": "test acc.", "test_acc_ci_low": "95% CI low", "test_acc_ci_high": "95% CI high",
    "epochs_to_target": "epochs to target (median)", "epochs_to_target_min": "min", "epochs_to_target_max": "max",
    "reached_target": "seeds reaching", "seconds_to_target": "seconds to target (median)", "auc": "AUC",
    "hyperparameters": "tuned hyperparameters", "complete": "complete", "pruned": "pruned", "failed": "failed",
    "diverged": "diverged",
}  # fmt: skip


def _display(table: pd.DataFrame, columns: dict[str, str] | None = None) -> pd.DataFrame:
    shown = table[list(columns)].rename(columns=columns) if columns else table
    return shown.round(4)


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
    parts = [f"<h2>{html.escape(section.workload)} with {html.escape(section.optimizer)}</h2>"]
    parts.append(
        '<div class="headline">'
        + "".join(f"<p>{html.escape(line)}</p>" for line in headline(section))
        + "</div>"
    )
    if len(section.ranking):
        parts.append(
            "<h3>Ranking (re-evaluated on the test split)</h3>"
            + _display(section.ranking, RANKING_COLUMNS).to_html(index=False, na_rep="-")
        )
    if len(section.pairwise):
        parts.append(
            "<h3>Against the most accurate family</h3>"
            + _display(section.pairwise).to_html(index=False, na_rep="-")
        )
    for name, (_, caption) in section.figures.items():
        data = base64.b64encode(images[name]).decode()
        parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{name}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        )
    parts.append(
        "<h3>How these numbers were made</h3><ul>"
        + "".join(f"<li>{html.escape(m)}</li>" for m in _methods(section))
        + "</ul>"
    )
    return "\n".join(parts)


def _markdown_section(section: Section) -> str:
    lines = [f"## {section.workload} with {section.optimizer}", "", *headline(section), ""]
    if len(section.ranking):
        lines += [_display(section.ranking, RANKING_COLUMNS).to_markdown(index=False), ""]
    if len(section.pairwise):
        lines += [_display(section.pairwise).to_markdown(index=False), ""]
    return "\n".join(lines + [f"- {m}" for m in _methods(section)] + [""])


def write_report(studies: Sequence[optuna.Study], out: Path) -> Path:
    """Write ``out/report/`` from the stored studies (and their stored re-evaluations)."""
    report = _staging_directory(out)
    sections = [build_section(group) for group in group_studies(studies).values()]
    html_parts, markdown_parts = [], []
    for section in sections:
        draw_section(section)
        images = {name: _png(figure) for name, (figure, _) in section.figures.items()}
        for name, image in images.items():
            _write(report / f"{section.name}-{name}.png", image)
        for name in ("ranking", "pairwise", "trials", "reevaluation"):
            table = getattr(section, name)
            _write(report / f"{section.name}-{name}.csv", table.to_csv(index=False))
        html_parts.append(_html_section(section, images))
        markdown_parts.append(_markdown_section(section))
    html_parts += _performance_profiles(sections, report)
    title = "Which learning-rate schedule? " + ", ".join(f"{s.workload} / {s.optimizer}" for s in sections)
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        '<p class="muted">Every schedule family tuned by Optuna with the same budget, then its best configuration '
        "re-trained over several seeds and scored on a test split that tuning never saw.</p>"
        + "\n".join(html_parts) + "</body></html>"
    )  # fmt: skip
    _write(report / "index.html", page)
    _write(report / "summary.md", f"# {title}\n\n" + "\n".join(markdown_parts))
    _publish(report, out / "report")
    return out / "report" / "index.html"


def _performance_profiles(sections: Sequence[Section], report: Path) -> list[str]:
    """With several workloads per optimizer: AlgoPerf's performance profile across them."""
    parts = []
    for optimizer in sorted({s.optimizer for s in sections}):
        same = [s for s in sections if s.optimizer == optimizer and len(s.reevaluation)]
        if len(same) < 2:
            continue
        profile = analysis.performance_profile_frame(pd.concat([s.reevaluation for s in same]))
        order = profile.groupby("family")["share"].mean().sort_values(ascending=False).index.tolist()
        image = _png(figures.performance_profile(profile, order))
        _write(report / f"{optimizer}-performance_profile.png", image)
        parts.append(
            f'<h2>Across workloads ({html.escape(optimizer)})</h2><figure><img src="data:image/png;base64,'
            f'{base64.b64encode(image).decode()}" alt="performance profile"><figcaption>Share of the '
            f"{len(same)} workloads on which each family reaches its target within tau times the fastest family's "
            "time (AlgoPerf's performance profile): higher and further left is better.</figcaption></figure>"
        )
    return parts


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.report", description=__doc__)
    add_output_arguments(parser, help_out="where report/ goes, and the default storage")
    parser.add_argument(
        "--seeds", type=positive_int, default=DEFAULT_SEEDS, help="re-evaluation seeds per family (default 5)"
    )
    parser.add_argument("--data-dir", type=Path, help="the benchmark data files, as for study.run")
    add_device_arguments(parser)
    args = parser.parse_args(argv)
    check_device(args.device)
    spec = storage_spec(args.storage, args.out)
    if args.storage is None and not Path(spec).is_file():
        raise UsageError(
            f"no sweep in {args.out}: {spec} does not exist; run python -m study.run first or give --storage"
        )
    prepare_out_dir(args.out)
    studies = list(analysis.load_studies(spec).values())
    if not group_studies(studies):
        raise UsageError(f"storage {spec} holds no sweep studies")
    torch.set_num_threads(args.threads)
    refresh_reevaluations(studies, seeds=args.seeds, data_dir=args.data_dir, device=args.device)
    print(f"report: {write_report(studies, args.out)}")


if __name__ == "__main__":
    run_main(main)
