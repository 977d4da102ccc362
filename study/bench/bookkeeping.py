"""``python -m study.bench.bookkeeping``: where a sweep's time goes besides training.

Runs one sweep in this process (``study.run``'s arguments, ``--jobs 1`` and ``--no-report``
implied) with a timer around each part of the work: training epochs, TPE's own sampling, the
rest of asking and configuring a trial, reporting each epoch, judging the pruning, trial
attributes, telling, and building populations. It prints each part's seconds and share of the
sweep's wall time. The timers wrap functions for this process only (TPE's methods on its class,
since the sweep makes a sampler per ask); calls nested in another timed part are counted in both.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import optuna

from objectives import pruners
from objectives.engine import training
from study.cli import run_main
from study.sweep import jobs, population

SWEEP, TRAINING = "the sweep", "training epochs (train + validate)"
TIMED: list[tuple[str, Any, str]] = [
    (SWEEP, jobs, "sweep"),  # what study.run calls, importing it at the call: the wrapper is seen
    (TRAINING, training, "_train_epoch"),
    ("asking and configuring trials", population.Population, "fill"),
    ("  of which TPE's own sampling", optuna.samplers.TPESampler, "sample_relative"),
    ("  of which TPE's own sampling", optuna.samplers.TPESampler, "sample_independent"),
    ("  of which TPE's own sampling", optuna.samplers.TPESampler, "infer_relative_search_space"),
    ("  of which making the seeded sampler", population, "sampler"),
    ("reporting each epoch (trial.report)", optuna.trial.Trial, "report"),
    ("judging the pruning", pruners.PopulationMedianPruner, "prune_population"),
    ("trial attributes (set_user_attr)", optuna.trial.Trial, "set_user_attr"),
    ("telling (study.tell)", optuna.Study, "tell"),
    ("building populations (models, stacking)", training, "_build_population"),
]
"""(label, owner, function): the parts timed; parts sharing a label add up."""


@contextlib.contextmanager
def timed(parts: Sequence[tuple[str, Any, str]]) -> Iterator[Counter[str]]:
    """Seconds spent in each part while the block runs; the functions are restored after."""
    spent: Counter[str] = Counter()
    originals = [(owner, name, getattr(owner, name)) for _, owner, name in parts]
    for (label, owner, name), (_, _, function) in zip(parts, originals):
        setattr(owner, name, _timer(function, label, spent))
    try:
        yield spent
    finally:
        for owner, name, function in originals:
            setattr(owner, name, function)


def _timer(function: Callable, label: str, spent: Counter[str]) -> Callable:
    @functools.wraps(function)
    def timed_call(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] += time.perf_counter() - start

    return timed_call


def main(argv: Sequence[str] | None = None) -> None:
    from study import run

    with timed(TIMED) as spent:
        try:
            run_main(run.main, [*(argv or []), "--jobs", "1", "--no-report"])
        except SystemExit as done:
            if done.code:
                raise  # the run said why it stopped
    total = spent[SWEEP]
    if not total:
        return  # --help, or every study already full: nothing was timed
    training_share = spent[TRAINING] / total
    print(f"\nbookkeeping (the sweep less its training epochs): {1 - training_share:.1%} of {total:.1f} s")
    for label in dict.fromkeys(label for label, _, _ in TIMED):
        print(f"{label:45s} {spent[label]:7.2f} s {spent[label] / total:7.1%}")


if __name__ == "__main__":
    main(sys.argv[1:])
