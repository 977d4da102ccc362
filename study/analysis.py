"""Tidy tables from stored studies: data first, drawing elsewhere (Optuna's visualization split)."""

from __future__ import annotations

from collections.abc import Iterable

import optuna
import pandas as pd
from optuna.trial import TrialState

from study.storage import counts_as_finished, open_storage


def load_studies(storage: str) -> dict[str, optuna.Study]:
    """Every study in a storage (a database URL or a .journal path), by name."""
    opened = open_storage(storage)
    return {
        name: optuna.load_study(study_name=name, storage=opened)
        for name in optuna.get_all_study_names(opened)
    }


TRIAL_COLUMNS = [
    "study",
    "family",
    "number",
    "state",
    "value",
    "diverged",
    "epochs_to_target",
    "seconds_to_target",
]


def trials_frame(studies: Iterable[optuna.Study]) -> pd.DataFrame:
    """One row per finished trial: ``TRIAL_COLUMNS`` plus one ``param_<name>`` column per knob."""
    rows = []
    for study in studies:
        for trial in study.get_trials(deepcopy=False):
            if not counts_as_finished(trial):
                continue
            attrs = trial.user_attrs
            rows.append(
                {
                    "study": study.study_name,
                    "family": study.user_attrs.get("family"),
                    "number": trial.number,
                    "state": trial.state.name,
                    "value": trial.value,
                    "diverged": bool(attrs.get("diverged", False)),
                    "epochs_to_target": attrs.get("epochs_to_target"),
                    "seconds_to_target": attrs.get("seconds_to_target"),
                    **{f"param_{name}": value for name, value in trial.params.items()},
                }
            )
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS if not rows else None)


def summary_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per family: best validation accuracy, median epochs to target, and how trials ended.

    ``trials`` is a ``trials_frame``. Sorted best first.
    """
    groups = trials.groupby("family", sort=False)
    state = trials["state"]
    table = pd.DataFrame(
        {
            "best_val_acc": groups["value"].max(),
            "median_epochs_to_target": groups["epochs_to_target"].median(),
            "reached_target": groups["epochs_to_target"].count(),
            "complete": (state == TrialState.COMPLETE.name).groupby(trials["family"], sort=False).sum(),
            "pruned": (state == TrialState.PRUNED.name).groupby(trials["family"], sort=False).sum(),
            "failed": (state == TrialState.FAIL.name).groupby(trials["family"], sort=False).sum(),
            "diverged": groups["diverged"].sum(),
        }
    )
    return table.sort_values("best_val_acc", ascending=False).reset_index()
