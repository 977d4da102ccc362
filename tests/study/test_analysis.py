"""The summary table, from hand-made trials."""

from __future__ import annotations

import optuna
import pandas as pd
from optuna.trial import TrialState

from study.analysis import summary_table, trials_frame


def _study(family: str, trials: list[tuple[TrialState, float | None, int | None, bool]]) -> optuna.Study:
    study = optuna.create_study(study_name=family, direction="maximize")
    study.set_user_attr("family", family)
    for state, value, epochs_to_target, diverged in trials:
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)})
        trial.set_user_attr("epochs_to_target", epochs_to_target)
        trial.set_user_attr("diverged", diverged)
        if state == TrialState.FAIL:
            trial.set_user_attr("error", "RuntimeError: boom")  # a real failure, which counts
        study.tell(trial, value, state=state)
    return study


def test_summary_counts_outcomes_and_ranks_by_best_accuracy() -> None:
    C, P, F = TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL
    cosine = _study(
        "cosine", [(C, 0.9, 4, False), (C, 0.95, 2, False), (P, None, None, False), (C, 0.0, None, True)]
    )
    step = _study("step", [(C, 0.97, 6, False), (F, None, None, False)])
    interrupted = step.ask()
    interrupted.set_user_attr("interrupted", True)
    step.tell(interrupted, state=F)

    frame = trials_frame([cosine, step])
    assert len(frame) == 6 and "param_lr" in frame.columns
    table = summary_table(frame).set_index("family")

    assert list(table.index) == ["step", "cosine"]
    assert table.loc["cosine", "best_val_acc"] == 0.95
    assert table.loc["cosine", "median_epochs_to_target"] == 3
    assert table.loc["cosine", ["reached_target", "complete", "pruned", "failed", "diverged"]].tolist() == [
        2,
        3,
        1,
        0,
        1,
    ]
    assert table.loc["step", ["reached_target", "complete", "pruned", "failed", "diverged"]].tolist() == [
        1,
        1,
        0,
        1,
        0,
    ]


def test_empty_study_gives_an_empty_frame() -> None:
    frame = trials_frame([optuna.create_study()])
    assert isinstance(frame, pd.DataFrame) and frame.empty and "value" in frame.columns
    table = summary_table(frame)
    assert table.empty and {"family", "best_val_acc", "complete"} <= set(table.columns)
