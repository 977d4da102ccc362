"""Three published claims about LR schedules, each as arms to tune and a budget
(``python -m study.replicate NAME``; README, Published results at this scale).

An arm is a schedule family with some of its knobs fixed (the rest, and the base LR, are tuned
as in any sweep). Each arm is tuned ``repeats`` times independently at each run length, every
study on the same workload, budget and seeds, so a difference between two arms has an interval
over tuning runs (``study.reporting.replication``). Budgets are sized so that all three finish
in about an hour of wall time on a 2-core CPU machine with ``--jobs 2``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class Arm:
    """One schedule to tune: a family, with ``fixed`` knobs held at their values."""

    label: str  # how tables and figures name it
    family: str
    fixed: tuple[tuple[str, Any], ...] = ()
    lr_range: tuple[float, float] | None = None  # None: the optimizer's


@dataclass(frozen=True)
class Budget:
    """One workload of a replication and what it spends there."""

    workload: str
    epochs: int  # the shortest run length ("1x"); the others are multiples of it
    trials: int  # finished trials per arm, run length and tuning run
    seeds: int  # re-evaluation seeds per tuning run (0: none; the claim is about tuning trials)


@dataclass(frozen=True)
class Replication:
    name: str
    paper: str
    claim: str
    arms: tuple[Arm, ...]
    budgets: tuple[Budget, ...]
    test: Literal["lead_grows", "matches_reference", "band_reaches_higher"]  # study.reporting.replication's
    lengths: tuple[int, ...] = (1,)  # run lengths, as multiples of a budget's epochs
    claimed: tuple[str, ...] = ()  # matches_reference: the arms claimed to match the first
    repeats: int = 3  # independent tuning runs per arm and run length


COSINE_TO_10 = Arm("cosine to 10%", "warmup_cosine", (("final_fraction", 0.1),))
LINEAR_TO_0 = Arm("linear to 0", "warmup_linear", (("final_fraction", 0.0),))
COOLDOWNS = (0.05, 0.1, 0.2)
WARMUP_LR_RANGE = (1e-4, 0.3)
"""AdamW's default range ends at 3e-2; the warmup claim is about where high LRs stop training, so
the range reaches an order of magnitude past it for both arms."""

REPLICATIONS = {
    replication.name: replication
    for replication in (
        Replication(
            "decay-to-zero",
            "Bergsma et al. 2025, Straight to Zero (arXiv 2502.15938)",
            "linear decay to zero is at least as good as cosine decay to 10% of the peak LR, and its lead "
            "grows as training gets longer",
            arms=(COSINE_TO_10, LINEAR_TO_0),
            budgets=(
                Budget("mnist1d", epochs=10, trials=40, seeds=10),
                Budget("shakespeare", epochs=5, trials=6, seeds=2),
            ),
            test="lead_grows",
            lengths=(1, 2, 4),
        ),
        Replication(
            "cooldown",
            "Hägele et al. 2024, Scaling Laws and Compute-Optimal Training beyond Fixed Training Durations "
            "(arXiv 2405.18392)",
            "warmup-stable-decay with a 1-sqrt cooldown over 10-20% of the run matches a tuned cosine schedule",
            arms=(
                Arm("cosine", "warmup_cosine"),
                *(
                    Arm(
                        f"wsd {shape} {fraction:.0%}",
                        "wsd",
                        (("cooldown_fraction", fraction), ("cooldown_shape", shape)),
                    )
                    for shape in ("1-sqrt", "linear")
                    for fraction in COOLDOWNS
                ),
            ),
            budgets=(Budget("shakespeare", epochs=10, trials=6, seeds=2),),
            test="matches_reference",
            claimed=("wsd 1-sqrt 10%", "wsd 1-sqrt 20%"),
        ),
        Replication(
            "warmup",
            "Kalra & Barkeshli 2024, Why Warmup the Learning Rate? (arXiv 2406.09405)",
            "warmup widens the band of base LRs that train well, toward higher LRs",
            arms=(
                Arm("warmup tuned", "warmup_cosine", lr_range=WARMUP_LR_RANGE),
                Arm(
                    "no warmup",
                    "warmup_cosine",
                    (("warmup_fraction", 0.0), ("warmup_shape", "linear")),
                    WARMUP_LR_RANGE,
                ),
            ),
            budgets=(Budget("shakespeare", epochs=10, trials=16, seeds=0),),
            test="band_reaches_higher",
        ),
    )
}


def replication_name(text: str) -> Replication:
    """An argparse type: a replication by name."""
    if text not in REPLICATIONS:
        raise argparse.ArgumentTypeError(
            f"unknown replication {text!r}; choose from: {', '.join(REPLICATIONS)}"
        )
    return REPLICATIONS[text]
