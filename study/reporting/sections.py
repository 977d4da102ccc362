"""The report's data: each (workload, optimizer) group of studies as one ``Section`` of frames
and numbers. Nothing here draws (``study/reporting/figures.py``: ``draw_section``), writes files
or prose (``study/reporting/render.py``: every caption and sentence)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import optuna
import pandas as pd
from optuna.trial import TrialState

from objectives import stored
from objectives.experiment import Experiment
from objectives.metrics import Metric
from objectives.stored import stored_reevaluation
from study.errors import UsageError
from study.reporting import analysis, recommend, tuning


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
    edges: pd.DataFrame = field(default_factory=pd.DataFrame)  # tuned values at a search-range edge
    lr_bands: pd.DataFrame = field(
        default_factory=pd.DataFrame
    )  # per tuning run: the LR band within the margin
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)  # expected best after k trials
    tuning_luck: pd.DataFrame = field(
        default_factory=pd.DataFrame
    )  # the spread split by source (repeats > 1)

    @property
    def name(self) -> str:
        return f"{self.workload}-{self.optimizer}"

    @property
    def seeds(self) -> int:
        """Re-evaluation seeds per tuning run (0 before any re-evaluation)."""
        return int(self.ranking["seeds"].max()) if len(self.ranking) else 0

    @property
    def reference(self) -> str:
        """The family the others are tested against: the pairwise table's, or the only one."""
        return (
            str(self.pairwise["reference"].iloc[0])
            if len(self.pairwise)
            else str(self.ranking["family"].iloc[0])
        )

    @property
    def order(self) -> list[str]:
        """Families as the ranking has them (the reference first, then by verdict and gap);
        families without a re-evaluation last."""
        ranked = list(self.ranking["family"]) if len(self.ranking) else []
        return ranked + sorted(set(self.trials["family"]) - set(ranked))


def build_section(studies: Sequence[optuna.Study], margin: float | None = None) -> Section:
    """The frames of one (workload, optimizer) group of studies (reads stored re-evaluations);
    ``margin`` of equivalence, by default the workload's. Every tuning run (``--repeats``) of
    every family makes the tables and verdicts; the first run's configuration, its curves."""
    every = studies
    studies = [study for study in every if not stored.stored_experiment(stored.attrs_of(study)).repeat]
    attrs = stored.attrs_of(studies[0])
    first, metric, facts = (
        stored.stored_experiment(attrs),
        stored.stored_metric(attrs),
        stored.stored_workload_facts(attrs),
    )
    margin = facts["margin"] if margin is None else margin
    reevaluation = analysis.reevaluation_frame(every)
    several = analysis.several_tuning_runs(reevaluation)
    trials = analysis.trials_frame(every)
    pairwise = analysis.pairwise_table(reevaluation, metric, margin)
    hyperparameters = {
        stored.stored_experiment(stored.attrs_of(study)).family: record.params
        for study in studies
        if (record := stored_reevaluation(study))
    }
    repeats = int(reevaluation["repeat"].nunique()) if len(reevaluation) else 1
    edges, lr_bands = tuning.range_edges_frame(every), tuning.lr_band_frame(trials, metric, margin)
    ranking = analysis.ranking_table(reevaluation, trials, hyperparameters, metric)
    ranking = _with_tuning_columns(
        ranking, tuning.forgiveness_table(lr_bands), tuning.edge_notes(edges, repeats)
    )
    return Section(
        workload=first.workload,
        optimizer=attrs[stored.OPTIMIZER_LABEL],
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
        ranking=analysis.by_verdict(ranking, pairwise, metric),
        pairwise=pairwise,
        trials_per_family=int(trials.groupby(["family", "repeat"]).size().max()) if len(trials) else 0,
        tuning_variance=analysis.tuning_variance_table(reevaluation, metric) if several else pd.DataFrame(),
        repeats=repeats,
        edges=edges,
        lr_bands=lr_bands,
        budget=tuning.budget_table(trials, metric) if len(trials) else pd.DataFrame(),
        tuning_luck=analysis.tuning_luck_frame(reevaluation) if several else pd.DataFrame(),
    )


def _with_tuning_columns(
    ranking: pd.DataFrame, forgiveness: pd.DataFrame, edges: dict[str, str]
) -> pd.DataFrame:
    """The ranking with how forgiving each family is (its LR band, with an interval over tuning
    runs) and where its tuned values sit at a search-range edge."""
    if not len(ranking):
        return ranking
    ranking = ranking.merge(forgiveness, on="family", how="left")
    ranking["range_edge"] = [edges.get(family, "") for family in ranking["family"]]  # no float NaN to fill
    return ranking


def group_studies(studies: Sequence[optuna.Study]) -> dict[tuple[str, str, str], list[optuna.Study]]:
    """This project's studies by (workload, optimizer, protocol), in a stable order; other
    writers' studies are left out. One stored by an earlier version of the project is a ``UsageError``."""
    groups: dict[tuple[str, str, str], list[optuna.Study]] = {}
    for study in sorted(studies, key=lambda s: s.study_name):
        attrs = stored.attrs_of(study)
        if not stored.is_ours(attrs):
            continue
        if missing := stored.missing_attrs(attrs):
            raise UsageError(
                f"study {study.study_name!r} was stored by an earlier version of lr-schedule-study (it lacks "
                f"{', '.join(missing)}); sweep again into a new --out/--storage to report on it"
            )
        if problem := damaged_trial(study, attrs):
            raise UsageError(
                f"study {study.study_name!r} holds a trial this project did not write: {problem}"
            )
        protocol = stored.stored_experiment(attrs).protocol
        groups.setdefault((attrs[stored.WORKLOAD], attrs[stored.OPTIMIZER_LABEL], protocol), []).append(study)
    return groups


def compared_sections(sections: Sequence[Section]) -> list[Section]:
    """The sections with a pairwise comparison: the ones the cross-workload answer spans."""
    return [s for s in sections if len(s.pairwise)]


def recommendation(sections: Sequence[Section]) -> recommend.Recommendation | None:
    """With two or more compared sections: the recommended family by the rule of
    ``study/reporting/recommend.py``, with its bootstrap shares over tuning runs; None with fewer."""
    compared = compared_sections(sections)
    if len(compared) < 2:
        return None
    return recommend.recommend(
        [
            recommend.WorkloadRuns.from_frames(
                s.name, s.reference, s.metric.sign, s.margin, s.reevaluation, s.lr_bands
            )
            for s in compared
        ]
    )


def cross_workload_frame(
    sections: Sequence[Section], picked: recommend.Recommendation
) -> pd.DataFrame | None:
    """With two or more compared sections: every family's verdict and gap on each, its worst gap,
    how forgiving it is (LR band decades, averaged over workloads), how often the recommendation
    rule (``picked``, the sections' ``recommendation``) picks it, and its AlgoPerf profile score
    over steps to target (taus 1 to 4, r_max); None with fewer."""
    compared = compared_sections(sections)
    if len(compared) < 2:
        return None
    table = analysis.cross_workload_table(
        {
            s.name: (s.pairwise, s.ranking.set_index("family").loc[s.reference, "test_metric"], s.metric)
            for s in compared
        }
    )  # fmt: skip
    if not len(table):
        return None
    table["lr_band_decades"] = table["family"].map(picked.forgiveness)
    table["picked_share"] = table["family"].map(picked.shares).fillna(0.0)
    runs = pd.concat([s.reevaluation.assign(workload=s.name) for s in compared])
    scores = analysis.profile_score(analysis.performance_profile_frame(runs))
    table["profile_score"] = table["family"].map(scores)
    return table


def performance_profiles(sections: Sequence[Section]) -> dict[str, tuple[pd.DataFrame, list[str], int]]:
    """Per optimizer with two or more re-evaluated workloads: AlgoPerf's performance profile
    across them (``performance_profile_frame``), its families best first, and the workload count."""
    profiles = {}
    for optimizer in sorted({s.optimizer for s in sections}):
        same = [s for s in sections if s.optimizer == optimizer and len(s.reevaluation)]
        if len(same) < 2:
            continue
        profile = analysis.performance_profile_frame(pd.concat([s.reevaluation for s in same]))
        order = profile.groupby("family")["share"].mean().sort_values(ascending=False).index.tolist()
        profiles[optimizer] = (profile, order, len(same))
    return profiles


def damaged_trial(study: optuna.Study, attrs: dict) -> str | None:
    """What is wrong with the first finished trial that no sweep of this project could have
    stored (another writer's, or a damaged journal's), or None: one value per objective, and
    parameters that train a member of the study's family (F8: such a trial crashed the report)."""
    from objectives.objective import member_from_params

    experiment = stored.stored_experiment(attrs)
    for trial in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)
    ):  # a failed one may hold what failed it
        if trial.values is not None and len(trial.values) != len(study.directions):
            return f"trial {trial.number} has {len(trial.values)} values for {len(study.directions)} objective(s)"
        try:
            member_from_params(experiment, trial.params, seed=0)
        except ValueError as error:
            return f"trial {trial.number}: {error}"
    return None
