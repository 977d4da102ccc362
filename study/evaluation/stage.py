"""The evaluation stage as the commands run it: every study whose stored evaluation over seeds is
missing or out of date is re-trained at its chosen configuration (``reevaluate``), those of one
workload together, with progress per seed."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the heavy modules are imported once the arguments are known to be good
    import optuna
    from tqdm import tqdm


def seed_counts(
    per_workload: Mapping[tuple[str, str], int] | None, every: int | None
) -> Callable[[optuna.Study], int]:
    """A study's re-evaluation seed count: its (workload, protocol)'s, else ``every``'s, else its
    stored re-evaluation's (so a report rebuilt from a storage re-trains nothing), else the default."""
    from objectives.seeds import DEFAULT_SEEDS
    from objectives.stored import stored_experiment, stored_reevaluation

    def seeds(study: optuna.Study) -> int:
        experiment = stored_experiment(study.user_attrs)
        key = (experiment.workload, experiment.protocol)
        if per_workload and key in per_workload:
            return per_workload[key]
        stored = stored_reevaluation(study)
        return every or (len(stored.seeds) if stored else DEFAULT_SEEDS)

    return seeds


def refresh_reevaluations(
    studies: Sequence[optuna.Study], *, seeds: Callable[[optuna.Study], int], data_dir: Path | None,
    device: str = "cpu", jobs: int = 1, threads: int = 1,
) -> None:  # fmt: skip
    """Re-evaluate every study whose stored re-evaluation is missing or out of date (``seeds``:
    each study's seed count), those of one workload together (``reevaluate_together``, seeds
    shared among ``jobs`` processes), with progress per seed."""
    from tqdm import tqdm

    from study.evaluation.reevaluate import chosen, is_current, reevaluate_together, same_training

    groups: dict[tuple, list[optuna.Study]] = {}
    for study in studies:
        wanted = seeds(study)  # reads the study's attributes: once
        if chosen(study) is not None and not is_current(study, wanted):
            groups.setdefault((*same_training(study), wanted), []).append(study)
    for (workload, *_, count), group in groups.items():
        what = f"re-evaluating {workload}: {len(group)} tuned configurations x {count} seeds"
        with tqdm(total=count, desc=what, unit="seed", disable=None) as bar:
            reevaluate_together(
                group, count, data_dir=data_dir, device=device, jobs=jobs, threads=threads,
                on_seed=_progress(bar, what),
            )  # fmt: skip


def _progress(bar: tqdm, what: str) -> Callable[[int, int], None]:
    """Advance the bar; without a terminal, print a plain line per seed instead."""

    def on_seed(done: int, total: int) -> None:
        bar.update(1)
        if bar.disable:
            print(f"{what}: seed {done} of {total} done", file=sys.stderr, flush=True)

    return on_seed
