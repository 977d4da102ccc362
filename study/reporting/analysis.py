"""Tidy tables from stored studies: data first, drawing in ``study.reporting.figures`` (Optuna's split).

Every builder takes studies or other frames and returns a pandas DataFrame whose columns its
docstring lists; nothing here draws or writes files.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import optuna
import pandas as pd
from optuna.trial import TrialState

from objectives import stored
from objectives.grid import tied_best
from objectives.metrics import Metric
from objectives.schedules import Run, get_family
from objectives.stored import counts_as_finished, stored_reevaluation
from study.places import is_archive
from study.reporting import statistics
from study.storage.backends import allow_experimental, open_storage


def study_metric(study: optuna.Study) -> Metric:
    """The metric the study's trials are judged by, as stored with it."""
    return stored.stored_metric(stored.attrs_of(study))


def load_studies(storage: str | optuna.storages.BaseStorage) -> dict[str, optuna.Study]:
    """Every study in a storage (opened, or a database URL, .journal path, or a .journal.xz
    archive, read only), by name."""
    if isinstance(storage, str):
        opened = open_storage(storage, create=False, read_only=is_archive(storage))
    else:
        opened = storage
    return {
        name: optuna.load_study(study_name=name, storage=opened)
        for name in optuna.get_all_study_names(opened)
    }


# --- all trials ---------------------------------------------------------------------------------


def finished_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The trials that count as finished (complete, pruned, or failed for a reason of their own)."""
    return [trial for trial in study.get_trials(deepcopy=False) if counts_as_finished(trial)]


TRIAL_COLUMNS = [
    "workload", "optimizer", "family", "repeat", "number", "state", "value", "final_metric", "diverged",
    "at_chance", "epochs_to_target", "seconds_to_target",
]  # fmt: skip


VERDICT_ORDER = ("better", "equivalent", "inconclusive", "worse")


def by_verdict(ranking: pd.DataFrame, pairwise: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """The ranking as the answer reads: the reference first, then the other families by verdict
    (better, equivalent, inconclusive, worse) and, within one, by their gap to the reference
    (the closest to beating it first), each with its verdict. Without a comparison, as it is
    (best test metric first)."""
    if not len(pairwise) or not len(ranking):
        return ranking
    reference = pairwise["reference"].iloc[0]
    verdicts = dict(zip(pairwise["family"], pairwise["verdict"], strict=True))
    gaps = dict(zip(pairwise["family"], pairwise["difference"], strict=True))

    def place(family: str) -> tuple[bool, int, float]:
        verdict = VERDICT_ORDER.index(verdicts[family]) if family in verdicts else len(VERDICT_ORDER)
        return family != reference, verdict, -metric.sign * gaps.get(family, 0.0)

    order = sorted(ranking["family"], key=place)
    ordered = ranking.set_index("family").loc[order].reset_index()
    ordered.insert(1, "verdict", [verdicts.get(family, "reference") for family in order])
    return ordered


def trials_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """One row per finished trial: ``TRIAL_COLUMNS`` plus one ``param_<name>`` column per knob.

    ``final_metric`` is the objective (the validation metric) of complete trials and the last
    reported one of pruned trials (how far they got), NaN for failed ones. ``at_chance``: a trial
    that did not diverge but learned next to nothing (``Metric.at_chance``); False where the study
    """
    rows = []
    for study in studies:
        study_attrs = stored.attrs_of(study)
        experiment, metric = stored.stored_experiment(study_attrs), stored.stored_metric(study_attrs)
        classes = stored.stored_workload_facts(study_attrs)["classes"]
        for trial in finished_trials(study):
            attrs = trial.user_attrs
            reported = trial.intermediate_values
            final = (
                trial.value
                if trial.state == TrialState.COMPLETE
                else reported[max(reported)]
                if reported
                else np.nan
            )
            diverged = bool(attrs.get(stored.DIVERGED, False))  # a failed trial stored no run
            rows.append(
                {
                    "workload": experiment.workload,
                    "optimizer": study_attrs[stored.OPTIMIZER_LABEL],
                    "family": experiment.family,
                    "repeat": experiment.repeat,
                    "number": trial.number,
                    "state": trial.state.name,
                    "value": trial.value,
                    "final_metric": final,
                    "diverged": diverged,
                    "at_chance": bool(
                        not diverged and not np.isnan(final) and metric.at_chance(final, classes)
                    ),
                    "epochs_to_target": attrs.get(stored.EPOCHS_TO_TARGET),
                    "seconds_to_target": attrs.get(stored.SECONDS_TO_TARGET),
                    **{f"param_{name}": value for name, value in trial.params.items()},
                }
            )
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS if not rows else None)


def summary_table(trials: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Per family: best validation metric, median epochs to target, and how trials ended
    (diverged and at-chance trials are also counted under their state).

    ``trials`` is a ``trials_frame``. Sorted best first.
    """
    groups = trials.groupby("family", sort=False)
    state = trials["state"]
    table = pd.DataFrame(
        {
            "best_metric": groups["value"].agg(metric.best),
            "median_epochs_to_target": groups["epochs_to_target"].median(),
            "reached_target": groups["epochs_to_target"].count(),
            "complete": (state == TrialState.COMPLETE.name).groupby(trials["family"], sort=False).sum(),
            "pruned": (state == TrialState.PRUNED.name).groupby(trials["family"], sort=False).sum(),
            "failed": (state == TrialState.FAIL.name).groupby(trials["family"], sort=False).sum(),
            "diverged": groups["diverged"].sum(),
            "at_chance": groups["at_chance"].sum(),
        }
    )
    return table.sort_values("best_metric", ascending=metric.direction == "minimize").reset_index()


def expected_best_frame(trials: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Expected best validation metric after n trials, n = 1..N, per family (Dodge et al. 2019).

    The expectation of the best of n draws with replacement from a family's N finished trials
    (the bootstrap of "Show your work", computed exactly), with its standard deviation.
    Columns: family, trials (n), expected_best, sd.
    """
    rows = []
    for family, values in trials.groupby("family", sort=False)["final_metric"]:
        # Computed as a maximum of sign * value; a failed trial is worth the metric's worst.
        v = np.sort(metric.sign * values.fillna(metric.worst).to_numpy())
        total = len(v)
        ranks = np.arange(1, total + 1) / total
        for n in range(1, total + 1):
            weights = ranks**n - (ranks - 1 / total) ** n  # P(max of n draws is the i-th smallest)
            mean = float(weights @ v)
            rows.append(
                {
                    "family": family,
                    "trials": n,
                    "expected_best": metric.sign * mean,
                    "sd": float(np.sqrt(max(weights @ v**2 - mean**2, 0))),
                }
            )
    return pd.DataFrame(rows, columns=["family", "trials", "expected_best", "sd"])


def importance_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """Hyperparameter importance (fANOVA, seeded) per family. Columns: family, param, importance."""
    rows = []
    for study in studies:
        values = [t.value for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        if len(set(values)) < 2:  # nothing to explain (e.g. every trial diverged)
            continue
        with allow_experimental():
            importances = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
        family = stored.stored_experiment(stored.attrs_of(study)).family
        rows += [
            {"family": family, "param": name, "importance": value} for name, value in importances.items()
        ]
    return pd.DataFrame(rows, columns=["family", "param", "importance"])


# --- the re-evaluated best configurations ------------------------------------------------------


def full_budget_auc(values: np.ndarray, budget: int, metric: Metric, *, diverged: bool) -> float:
    """The area under the validation-metric curve over the whole epoch budget, divided by its
    length (trapezoids over epochs 1 to ``budget``; in [0, 1] for accuracy): a run that stopped
    early counts for every epoch it did not train, with the metric's worst once it diverged (its
    diverged epoch too), and with its best value, the weights early stopping keeps, once it was
    stopped early. ``values`` has NaN where an epoch diverged."""
    values = np.where(np.isnan(values), metric.worst, values)
    after = metric.worst if diverged or not len(values) else metric.best(values)
    full = np.concatenate([values, np.full(max(0, budget - len(values)), after)])[:budget]
    if len(full) == 1:
        return float(full[0])
    return float(np.trapezoid(full, np.arange(1, len(full) + 1)) / (len(full) - 1))


def reevaluation_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """One row per re-evaluation run: workload, optimizer, family, seed, test_metric, val_metric
    (of the model the run ends with: with early stopping the kept best epoch's), epochs_to_target,
    seconds_to_target, auc (``full_budget_auc``), diverged."""
    rows = []
    for study in studies:
        if (record := stored_reevaluation(study)) is None:
            continue
        attrs = stored.attrs_of(study)
        experiment, metric = stored.stored_experiment(attrs), stored.stored_metric(attrs)
        for run in record.runs:
            values = np.array(run.curve["val_metric"], dtype=float)  # stored None (diverged) is NaN
            diverged = run.diverged
            auc = full_budget_auc(values, experiment.epochs, metric, diverged=diverged)
            if diverged:
                kept = metric.worst
            else:
                kept = metric.best(values) if experiment.early_stopping else values[-1]
            rows.append(
                {
                    "workload": experiment.workload,
                    "optimizer": attrs[stored.OPTIMIZER_LABEL],
                    "family": experiment.family,
                    "repeat": experiment.repeat,
                    "seed": run.seed,
                    "test_metric": run.test_metric,
                    "val_metric": float(kept),
                    "epochs_to_target": run.epochs_to_target,
                    "steps_to_target": _steps(run.epochs_to_target, record.steps_per_epoch),
                    "seconds_to_target": run.seconds_to_target,
                    "auc": auc,
                    "diverged": diverged,
                }
            )
    columns = [
        "workload",
        "optimizer",
        "family",
        "repeat",
        "seed",
        "test_metric",
        "val_metric",
        "epochs_to_target",
        "steps_to_target",
        "seconds_to_target",
        "auc",
        "diverged",
    ]
    return pd.DataFrame(rows, columns=columns)


def _steps(epochs: int | None, steps_per_epoch: int) -> int | None:
    """Optimizer steps trained by the end of the epoch that first reached the target."""
    return None if epochs is None else epochs * steps_per_epoch


def curves_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """Per-epoch curves of the re-evaluation runs, long form: family, seed, epoch, train_loss,
    val_loss, val_acc, val_metric, lr."""
    rows = []
    for study in studies:
        if (record := stored_reevaluation(study)) is None:
            continue
        family = stored.stored_experiment(stored.attrs_of(study)).family
        for run in record.runs:
            curve = run.curve
            for i, epoch in enumerate(curve["epoch"]):
                rows.append(
                    {"family": family, "seed": run.seed, "epoch": epoch}
                    | {name: curve[name][i] for name in CURVE_QUANTITIES}
                )
    return pd.DataFrame(rows, columns=["family", "seed", "epoch", *CURVE_QUANTITIES]).astype(
        dict.fromkeys(CURVE_QUANTITIES, float)
    )


CURVE_QUANTITIES = ("train_loss", "val_loss", "val_acc", "val_metric", "lr")


MAX_SHAPE_POINTS = 1000


def schedule_shapes_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """The LR of each family's re-evaluated configuration at every step (at most
    ``MAX_SHAPE_POINTS`` evenly spaced steps per family). Columns: family, step, epoch, lr."""
    frames = []
    for study in studies:
        if (record := stored_reevaluation(study)) is None:
            continue
        experiment, params = stored.stored_experiment(stored.attrs_of(study)), dict(record.params)
        family, per_epoch = get_family(experiment.family), record.steps_per_epoch
        total = experiment.epochs * per_epoch
        steps = np.unique(np.linspace(0, total - 1, min(total, MAX_SHAPE_POINTS)).astype(int))
        if family.reacts_to_val_loss:  # its LR follows the losses: the first run's LR, per epoch
            per_epoch_lr = np.array(record.runs[0].curve["lr"], dtype=float)
            lr = per_epoch_lr[np.minimum(steps // per_epoch, len(per_epoch_lr) - 1)]
        else:
            kwargs = family.kwargs(params)
            lr = params[stored.BASE_LR] * family.build(Run(total, per_epoch), **kwargs)(steps)
        frames.append(
            pd.DataFrame({"family": experiment.family, "step": steps, "epoch": steps / per_epoch, "lr": lr})
        )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["family", "step", "epoch", "lr"])
    )


def ranking_table(
    reevaluation: pd.DataFrame, trials: pd.DataFrame, hyperparameters: dict[str, dict], metric: Metric
) -> pd.DataFrame:
    """Per family, best test metric first: its mean and 95% t-interval over seeds (over tuning
    runs' means, with several: ``several_tuning_runs``); epochs (with min and max), optimizer
    steps and seconds to target, medians over runs, where a run that never reached the target counts as infinitely
    slow (so the median is NaN, "never", when most runs miss); mean normalized AUC; the tuned
    hyperparameters; how the tuning trials ended."""
    rows = []
    outcomes = summary_table(trials, metric).set_index("family") if len(trials) else pd.DataFrame()
    by_repeat = several_tuning_runs(reevaluation)
    for family, runs in reevaluation.groupby("family", sort=False):
        spread = runs.groupby("repeat")["test_metric"].mean() if by_repeat else runs["test_metric"]
        low, high = statistics.t_interval(spread.to_numpy(dtype=float), metric.bounds)
        epochs, steps, seconds = (
            runs[column].astype(float).fillna(np.inf)
            for column in ("epochs_to_target", "steps_to_target", "seconds_to_target")
        )
        row = {
            "family": family,
            "tuning_runs": runs["repeat"].nunique(),
            "seeds": runs["seed"].nunique(),
            "test_metric": runs["test_metric"].mean(),
            "test_metric_ci_low": low,
            "test_metric_ci_high": high,
            "epochs_to_target": epochs.median(),
            "epochs_to_target_min": epochs.min(),
            "epochs_to_target_max": epochs.max(),
            "reached_target": f"{np.isfinite(epochs).sum()}/{len(runs)}",
            "steps_to_target": steps.median(),
            "seconds_to_target": seconds.median(),
            "seconds_to_target_min": seconds.min(),
            "seconds_to_target_max": seconds.max(),
            "auc": runs["auc"].mean(),
            "hyperparameters": ", ".join(
                f"{k}={_short(v)}" for k, v in hyperparameters.get(family, {}).items()
            ),
        }
        if family in outcomes.index:
            row |= outcomes.loc[family, ["complete", "pruned", "failed", "diverged", "at_chance"]].to_dict()
        rows.append(row)
    table = pd.DataFrame(rows).replace([np.inf, -np.inf], np.nan)  # never reached: shown as missing
    ascending = metric.direction == "minimize"
    return table.sort_values("test_metric", ascending=ascending, kind="stable").reset_index(drop=True)


def _short(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def reference_family(reevaluation: pd.DataFrame, metric: Metric) -> str:
    """The family every other is tested against, chosen without the test split: the best mean
    validation metric of the re-evaluation runs; means within ``objectives.grid.TIE`` are tied
    (stored values carry 6 significant digits), and a tie goes by name."""
    means = reevaluation.groupby("family")["val_metric"].agg(lambda v: math.fsum(v) / len(v))
    return str(min(tied_best(means.to_dict(), metric.sign)))


PAIRWISE_COLUMNS = [
    "family", "reference", "difference", "ci_low", "ci_high", "p_value", "p_holm", "p_equivalent",
    "p_equivalent_holm", "verdict", "n_for_power", "vs_constant", "vs_constant_ci_low", "vs_constant_ci_high",
]  # fmt: skip
"""``n_for_power``: for an inconclusive verdict, the tuning runs per family (with several) or
seeds (with one) at which it would be settled with 80% power (``statistics.units_for_power``)."""


def paired_differences(a: pd.Series, b: pd.Series) -> np.ndarray:
    """a minus b, seed by seed, over the seeds both have."""
    pair = pd.concat([a, b], axis=1).dropna()
    return (pair.iloc[:, 0] - pair.iloc[:, 1]).to_numpy(dtype=float)


def compare(
    runs: pd.DataFrame, family: str, other: str, margin: float, *, by_repeat: bool
) -> statistics.Difference:
    """``family`` minus ``other`` on the test metric: by tuning run (Welch's t on each run's mean
    over its seeds), or with one run each, paired over seeds (run k of every family has the same
    seed and split)."""
    if by_repeat:
        means = runs.groupby(["family", "repeat"])["test_metric"].mean()
        return statistics.welch([means[family].to_numpy(), means[other].to_numpy()], [1.0, -1.0], margin)
    by_seed = runs.pivot_table(index="seed", columns="family", values="test_metric")
    return statistics.paired_t(paired_differences(by_seed[family], by_seed[other]), margin)


def several_tuning_runs(reevaluation: pd.DataFrame) -> bool:
    """Whether every family was tuned (and re-evaluated) more than once."""
    return bool(len(reevaluation)) and bool((reevaluation.groupby("family")["repeat"].nunique() > 1).all())


def pairwise_table(reevaluation: pd.DataFrame, metric: Metric, margin: float) -> pd.DataFrame:
    """Every family against the reference (``reference_family``) on the test metric: the
    difference (family minus reference, in the metric's units) with its 95% interval, and one
    verdict, every test Holm-corrected over the families (family-wise error 5%):

    - **worse** / **better**: the test of no difference rejects it, and the difference is
      against / for the family;
    - **equivalent**: two one-sided tests put the difference within +-``margin``;
    - **inconclusive**: neither (not distinguishable, and not shown equivalent either).

    With several tuning runs per family (``several_tuning_runs``) the tuning run is the unit
    (``repeat_comparison``); with one, the seeds, paired (``paired_comparison``: run k of every
    family has the same seed and split). Also each family's difference from ``constant`` (the
    "no schedule" baseline) with its 95% interval, where there is one. Columns: ``PAIRWISE_COLUMNS``."""
    means = reevaluation.groupby("family", sort=False)["test_metric"].mean()
    if len(means) < 2:
        return pd.DataFrame(columns=PAIRWISE_COLUMNS)
    reference, by_repeat = reference_family(reevaluation, metric), several_tuning_runs(reevaluation)
    rows, differences = [], []
    for family in (metric.sign * means.drop(reference)).sort_values(ascending=False).index:
        d = compare(reevaluation, family, reference, margin, by_repeat=by_repeat)
        differences.append(d)
        row = {"family": family, "reference": reference, "difference": d.estimate, "ci_low": d.low,
               "ci_high": d.high, "p_value": d.p_value, "p_equivalent": d.p_equivalent}  # fmt: skip
        if "constant" in means and family != "constant":
            gap = compare(reevaluation, family, "constant", margin, by_repeat=by_repeat)
            row |= {
                "vs_constant": gap.estimate,
                "vs_constant_ci_low": gap.low,
                "vs_constant_ci_high": gap.high,
            }
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=PAIRWISE_COLUMNS)
    table["p_holm"], table["p_equivalent_holm"], table["verdict"] = statistics.verdicts(
        differences, metric.sign
    )
    table["n_for_power"] = [
        statistics.units_for_power(d.sd, d.estimate, margin, comparisons=len(differences), paired=not by_repeat)
        if word == "inconclusive" and not d.undefined else None
        for d, word in zip(differences, table["verdict"], strict=True)
    ]  # fmt: skip
    return table


def performance_profile_frame(
    reevaluation: pd.DataFrame, taus: Sequence[float] | None = None
) -> pd.DataFrame:
    """AlgoPerf-style profile over workloads: for each family and tau, the share of workloads on
    which its median optimizer steps to target is within tau times the fastest family's (steps,
    not seconds: a member's seconds are its share of a population's time, which no lone run
    sees). A seed that misses the target counts as infinitely slow, as AlgoPerf counts a run that
    misses it, so a family most of whose seeds miss has no finite median and is never within.
    Columns: family, tau, share."""
    taus = np.linspace(1, 4, 61) if taus is None else np.asarray(taus)
    steps = reevaluation.assign(steps=reevaluation["steps_to_target"].astype(float).fillna(np.inf))
    times = steps.groupby(["workload", "family"])["steps"].median().unstack("family")
    with np.errstate(invalid="ignore"):  # inf / inf where no family reaches a workload's target
        ratios = times.div(times.min(axis=1), axis=0).replace(np.nan, np.inf)
    rows = [
        {"family": family, "tau": float(tau), "share": float((ratios[family] <= tau).mean())}
        for family in ratios.columns
        for tau in taus
    ]
    return pd.DataFrame(rows, columns=["family", "tau", "share"])


def profile_score(profile: pd.DataFrame, r_max: float = 4.0) -> pd.Series:
    """AlgoPerf's integrated performance-profile score per family: the area under its profile
    from tau 1 to ``r_max``, divided by ``r_max`` - 1 (1: fastest everywhere; 0: never within
    ``r_max`` times the fastest). ``profile`` is a ``performance_profile_frame`` on taus up to r_max."""
    scores = {}
    for family, rows in profile.groupby("family", sort=False):
        rows = rows[rows["tau"] <= r_max].sort_values("tau")
        scores[family] = float(np.trapezoid(rows["share"], rows["tau"]) / (r_max - 1))
    return pd.Series(scores, name="profile_score")


def cross_workload_table(sections: dict[str, tuple[pd.DataFrame, float, Metric]]) -> pd.DataFrame:
    """Per family, its verdict and gap on every workload, and its worst gap: the robust choice is
    the family whose worst gap is smallest.

    ``sections`` maps a workload's name to (its ``pairwise_table``, the reference's mean test
    metric, the metric). A gap is the family's difference from that workload's reference in
    percent of the reference's value, signed so that negative is worse (so gaps of accuracy and
    of bits per character compare); the reference's own gap is 0. Only families re-evaluated on
    every workload are listed. Columns: family, ``<workload> verdict``, ``<workload> gap %`` per
    workload, worst_gap_pct; sorted best worst gap first."""
    per_workload = {}
    for workload, (pairwise, reference_value, metric) in sections.items():
        reference = str(pairwise["reference"].iloc[0])
        gaps = 100 * metric.sign * pairwise.set_index("family")["difference"] / abs(reference_value)
        verdicts = pairwise.set_index("family")["verdict"]
        per_workload[workload] = pd.DataFrame(
            {
                f"{workload} verdict": pd.concat([verdicts, pd.Series({reference: "reference"})]),
                f"{workload} gap %": pd.concat([gaps, pd.Series({reference: 0.0})]),
            }
        )
    table = pd.concat(per_workload.values(), axis=1, join="inner")
    table["worst_gap_pct"] = table[[f"{w} gap %" for w in per_workload]].min(axis=1)
    return table.sort_values("worst_gap_pct", ascending=False).rename_axis("family").reset_index()


def tuning_variance_table(reevaluation: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """With several tuning repeats per family: each repeat's re-evaluated mean test metric, their
    spread, and how often the family comes out on top (best mean among the families tuned in that
    repeat). ``reevaluation`` is a ``reevaluation_frame`` with a ``repeat`` column. Columns:
    family, repeats, mean_over_repeats, worst_repeat, best_repeat, spread, top_in (e.g. "2/3")."""
    means = reevaluation.groupby(["repeat", "family"])["test_metric"].mean().unstack("family")
    winners = (metric.sign * means).idxmax(axis=1)
    rows = [
        {
            "family": family,
            "repeats": int(values.notna().sum()),
            "mean_over_repeats": float(values.mean()),
            "worst_repeat": metric.poorest(values),
            "best_repeat": float(metric.best(values)),
            "spread": float(values.max() - values.min()),
            "top_in": f"{int((winners == family).sum())}/{len(means)}",
        }
        for family, values in means.items()
    ]
    table = pd.DataFrame(rows)
    return table.sort_values("mean_over_repeats", ascending=metric.direction == "minimize").reset_index(
        drop=True
    )


def tuning_luck_frame(reevaluation: pd.DataFrame) -> pd.DataFrame:
    """With several tuning runs: the spread of the re-evaluated test metric split into the
    schedule, the tuning run within it, the evaluation seed and the rest
    (``statistics.variance_components``), on the families with every run on every seed. Columns:
    component, variance, variance_ci_low, variance_ci_high, share, share_ci_low, share_ci_high,
    families, runs, seeds."""
    cube = reevaluation.pivot_table(index=["family", "repeat"], columns="seed", values="test_metric")
    cube = cube.dropna(axis=1, how="any").dropna(axis=0, how="any")
    runs = cube.groupby(level="family").size()
    families = runs[runs == runs.max()].index
    cube = cube.loc[families]
    shape = (len(families), int(runs.max()) if len(runs) else 0, cube.shape[1])
    if min(shape) < 2:
        return pd.DataFrame()
    result = statistics.variance_components(cube.to_numpy(dtype=float).reshape(shape))
    return pd.DataFrame({
        "component": statistics.COMPONENTS, "variance": result["variance"],
        "variance_ci_low": result["variance_ci"][:, 0], "variance_ci_high": result["variance_ci"][:, 1],
        "share": result["share"], "share_ci_low": result["share_ci"][:, 0], "share_ci_high": result["share_ci"][:, 1],
        "families": shape[0], "runs": shape[1], "seeds": shape[2],
    })  # fmt: skip
