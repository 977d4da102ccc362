"""The report's data: each (workload, optimizer) group of studies as one ``Section`` of frames,
and the figures drawn from them. Nothing here writes files or prose (``study/reporting/render.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
import pandas as pd
from matplotlib.figure import Figure

from objectives.experiment import Experiment, stored_workload_facts
from objectives.metrics import Metric
from study.reporting import analysis, figures
from study.reporting.reevaluate import stored_reevaluation


@dataclass
class Section:
    """Everything the report shows for one (workload, optimizer): frames first, figures from them."""

    workload: str
    optimizer: str
    experiment: Experiment
    metric: Metric
    margin: float  # of equivalence, in the metric's units
    target: float  # the validation value that counts as converged
    classes: int  # what chance level is
    test_drawn_from_seed: bool  # whether each re-evaluation seed draws its own test split
    description: str  # the workload in words
    trials: pd.DataFrame
    reevaluation: pd.DataFrame
    curves: pd.DataFrame
    shapes: pd.DataFrame
    expected_best: pd.DataFrame
    importance: pd.DataFrame
    ranking: pd.DataFrame
    pairwise: pd.DataFrame
    trials_per_family: int
    tuning_variance: pd.DataFrame = field(default_factory=pd.DataFrame)  # with --repeats > 1
    repeats: int = 1
    figures: dict[str, tuple[Figure, str]] = field(default_factory=dict)  # name -> (figure, how to read it)

    @property
    def name(self) -> str:
        return f"{self.workload}-{self.optimizer}"

    @property
    def order(self) -> list[str]:
        """Families as the ranking has them (the reference first, then by verdict and gap);
        families without a re-evaluation last."""
        ranked = list(self.ranking["family"]) if len(self.ranking) else []
        return ranked + sorted(set(self.trials["family"]) - set(ranked))


def build_section(studies: Sequence[optuna.Study], margin: float | None = None) -> Section:
    """The frames of one (workload, optimizer) group of studies (reads stored re-evaluations);
    ``margin`` of equivalence, by default the workload's. The first tuning repeat of each family
    makes the main tables; all repeats make ``tuning_variance``."""
    every = studies
    studies = [study for study in every if not study.user_attrs.get("repeat")]
    first, metric = Experiment.from_attrs(studies[0].user_attrs), analysis.study_metric(studies[0])
    facts = stored_workload_facts(studies[0].user_attrs)
    margin = facts["margin"] if margin is None else margin
    repeats = analysis.reevaluation_frame(every)
    several = repeats["repeat"].nunique() > 1 if len(repeats) else False
    trials = analysis.trials_frame(studies)
    reevaluation = analysis.reevaluation_frame(studies)
    pairwise = analysis.pairwise_table(reevaluation, metric, margin)
    hyperparameters = {
        study.user_attrs["family"]: record["params"]
        for study in studies
        if (record := stored_reevaluation(study))
    }
    return Section(
        workload=first.workload,
        optimizer=first.optimizer_label,
        experiment=first,
        metric=metric,
        margin=margin,
        target=facts["target"],
        classes=facts["classes"],
        test_drawn_from_seed=facts["test_drawn_from_seed"],
        description=facts["description"],
        trials=trials,
        reevaluation=reevaluation,
        curves=analysis.curves_frame(studies),
        shapes=analysis.schedule_shapes_frame(studies),
        expected_best=analysis.expected_best_frame(trials, metric),
        importance=analysis.importance_frame(studies),
        ranking=analysis.by_verdict(
            analysis.ranking_table(reevaluation, trials, hyperparameters, metric), pairwise, metric
        ),
        pairwise=pairwise,
        trials_per_family=int(trials.groupby("family").size().max()) if len(trials) else 0,
        tuning_variance=analysis.tuning_variance_table(repeats, metric) if several else pd.DataFrame(),
        repeats=int(repeats["repeat"].nunique()) if len(repeats) else 1,
    )


def group_studies(studies: Sequence[optuna.Study]) -> dict[tuple[str, str], list[optuna.Study]]:
    """Studies by (workload, optimizer), in a stable order."""
    groups: dict[tuple[str, str], list[optuna.Study]] = {}
    for study in sorted(studies, key=lambda s: s.study_name):
        if "workload" in study.user_attrs:
            key = (study.user_attrs["workload"], analysis.stored_optimizer_label(study.user_attrs))
            groups.setdefault(key, []).append(study)
    return groups


def _highlighted(families: int) -> str:
    """Which families the convergence figure draws in colour, counted."""
    if families <= figures.HIGHLIGHTED:
        return "each family" if families > 1 else "the family"
    return f"the {figures.HIGHLIGHTED} best-ranked families, the other {families - figures.HIGHLIGHTED} as grey means"


def draw_section(section: Section) -> None:
    """Fill ``section.figures``; each comes with one sentence on how to read it."""
    order, target, metric = section.order, section.target, section.metric
    measured = f"validation {metric.label}"
    chance_line = metric.chance_line(section.classes)
    ranked = [family for family in order if family in set(section.reevaluation["family"])]
    add = section.figures.__setitem__
    if ranked:
        add(
            "convergence",
            (
                figures.convergence(section.curves, ranked, metric),
                f"{measured.capitalize()} and loss per epoch of each family's re-evaluated best configuration, mean over seeds with a 95% band (mean ± 1.96 standard errors) for {_highlighted(len(ranked))}: the curve that {'rises' if metric.sign > 0 else 'falls'} first converges fastest.",
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
                figures.epochs_to_target(section.ranking, target, metric, budget=section.experiment.epochs),
                f"Epochs until the {measured} first reaches {metric.comparison} {target}, fastest family first: bar = median over seeds (a seed that never reaches it counts as never), whiskers = fastest and slowest seed; an arrow at the end of the run marks a seed that never reaches it.",
            ),
        )
    add(
        "distribution",
        (
            figures.metric_distribution(section.trials, order, metric, chance_line),
            f"Every tuning trial's final {measured} (pruned trials where they stopped; the box spans complete trials only): a narrow box at the good end ({'right' if metric.sign > 0 else 'left'}) means the family is forgiving to tune. Trials beyond the dotted line learned next to nothing (at chance: {metric.label} {chance_line:.3g}).",
        ),
    )
    add(
        "sensitivity",
        (
            figures.sensitivity(section.trials, order, metric),
            f"Final {measured} against the base learning rate, every panel on the same scale: a wide plateau means the family tolerates a poorly chosen LR.",
        ),
    )
    add(
        "tuning_budget",
        (
            figures.tuning_budget(section.expected_best, order, metric),
            f"Expected best {measured} if you ran only n trials (Dodge et al. 2019): how many trials a family needs before it is competitive. These treat the stored trials as independent draws, which TPE's adaptive trials are not, and count a pruned trial at the value where it stopped.",
        ),
    )
    if len(section.importance):
        add("importance", (figures.importance(section.importance, [f for f in order if f in set(section.importance["family"])]), "How much of the spread of results each searched hyperparameter explains (fANOVA): tune the long bars first."))  # fmt: skip
