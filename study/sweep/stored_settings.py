"""Whether a stored study was made with this sweep's settings, and by this project.

Read-only and light (no torch): ``study.run`` asks it of an existing journal before it loads
the data, so a sweep pointed at a storage made with other settings is refused at once.
"""

from __future__ import annotations

import optuna

from objectives.experiment import Experiment
from objectives.metrics import Metric
from objectives.stored import is_ours, study_attrs
from objectives.workloads.registry import Workload
from study.errors import UsageError


def check_stored_settings(
    storage: optuna.storages.BaseStorage, experiment: Experiment, workload: Workload
) -> None:
    """An existing study must have been made with the same settings; say which differ if not.

    Only settings already stored are compared: a peer worker may be writing them this instant.
    """
    try:
        study_id = storage.get_study_id_from_name(experiment.study_name)
    except KeyError:
        return  # not made yet
    _check_ours(storage, study_id, experiment, workload.metric)
    stored = storage.get_study_user_attrs(study_id)
    wanted = study_attrs(experiment, workload)
    if differences := [
        f"{k}={stored[k]!r} (now {v!r})" for k, v in wanted.items() if k in stored and stored[k] != v
    ]:
        raise UsageError(
            f"study {experiment.study_name!r} in this storage was made with {', '.join(differences)}; "
            "rerun with the stored settings or use another --out/--storage"
        )


def _check_ours(
    storage: optuna.storages.BaseStorage, study_id: int, experiment: Experiment, metric: Metric
) -> None:
    """Refuse a study of the same name that this project did not make: one whose direction is
    not the workload's metric's, or that has trials but none of the settings every sweep writes
    before its first trial (a peer may be creating one this instant: no trials yet, no settings yet)."""
    name = experiment.study_name
    directions = storage.get_study_directions(study_id)
    if directions != [optuna.study.StudyDirection[metric.direction.upper()]]:
        found = ", ".join(d.name.lower() for d in directions)
        raise UsageError(
            f"study {name!r} in this storage is not one of this project's (it is to {found}, this sweep would "
            f"{metric.direction} validation {metric.label}); use another --out/--storage"
        )
    if not is_ours(storage.get_study_user_attrs(study_id)) and storage.get_n_trials(study_id) > 0:
        raise UsageError(
            f"study {name!r} in this storage was not made by lr-schedule-study (it has trials but no sweep "
            "settings); use another --out/--storage"
        )
