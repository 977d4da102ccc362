"""Six published claims about LR schedules, each as what to train (or which grid to read) and the
rule that judges it (``python -m study.replicate NAME``; results/METHODS.md, Published claims).

Every claim is tested on the grid protocol (``objectives.grid``): each arm at its own best base LR
on the shared lattice (chosen on the selection seeds' validation metric), then re-trained on
evaluation seeds that every arm shares, so arms are compared by paired differences over seeds.
An arm is a family with the grid's default knobs, some of them changed (``fixed``). Three claims
train arms of their own; three read the grids the standard suite already trained
(``results/standard``), so they cost no training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Test = Literal[
    "matches_reference", "lead_grows", "band_reaches_higher", "robustness", "convex_bound", "curves"
]


@dataclass(frozen=True)
class Arm:
    """One schedule: a family at the grid's default knobs, ``fixed`` ones changed."""

    label: str  # how tables and figures name it
    family: str
    fixed: tuple[tuple[str, Any], ...] = ()
    lr_range: tuple[float, float] | None = None  # the grid's window; None: the optimizer's


@dataclass(frozen=True)
class Replication:
    name: str
    paper: str
    claim: str
    setting: str  # what is run here, and where it differs from the paper
    test: Test  # study.reporting.replication's rule of that name
    workloads: tuple[str, ...]
    arms: tuple[Arm, ...] = ()  # () : the suite's 18 families at their defaults (read, not trained)
    epochs: tuple[int, ...] = ()  # run lengths in epochs; (): the workload's default
    selection_seeds: int = 2  # per grid point
    seeds: int = 0  # evaluation seeds per arm and length, shared by the arms (0: none)
    claimed: tuple[str, ...] = ()  # matches_reference: the arms claimed to match the first

    @property
    def trains(self) -> bool:
        """Whether the claim trains arms of its own (else it reads the suite's grids)."""
        return bool(self.arms)


def _wsd(shape: str, fraction: float) -> Arm:
    return Arm(
        f"wsd {shape} {fraction:.0%}", "wsd", (("cooldown_fraction", fraction), ("cooldown_shape", shape))
    )


WARMUP_LR_RANGE = (1e-4, 0.3)
"""AdamW's window ends at 10^-1.5; the warmup claim is about where high LRs stop training, so the
window reaches an order of magnitude past it for both arms."""

COOLDOWN = Replication(
    "cooldown",
    "Hägele et al. 2024, Scaling Laws and Compute-Optimal Training beyond Fixed Training Durations "
    "(arXiv 2405.18392)",
    "warmup-stable-decay with a 1-sqrt cooldown over 10-20% of the run matches cosine",
    "shakespeare (2-block char transformer, 10 epochs, AdamW), 5% linear warmup in every arm, cosine to 10% "
    "of the peak as the paper's baseline; the paper trains 33M-360M parameter LMs for up to 8B tokens",
    "matches_reference",
    ("shakespeare",),
    arms=(
        Arm("cosine to 10%", "warmup_cosine", (("final_fraction", 0.1),)),
        *(_wsd(shape, fraction) for shape in ("1-sqrt", "linear") for fraction in (0.1, 0.2)),
    ),
    selection_seeds=2,
    seeds=12,
    claimed=("wsd 1-sqrt 10%", "wsd 1-sqrt 20%"),
)

DECAY_TO_ZERO = Replication(
    "decay-to-zero",
    "Bergsma et al. 2025, Straight to Zero (arXiv 2502.15938)",
    "linear decay to zero is at least as good as cosine decay to 10% of the peak, and its lead grows "
    "with tokens per parameter",
    "shakespeare-small (a 1-block width-32 char transformer) at 8, 16 and 32 epochs, about 21, 43 and 86 "
    "tokens per parameter (counted in the page), AdamW, 5% linear warmup in both arms; the paper trains "
    "111M-1.7B parameter LMs, its largest gains at 80-200 tokens per parameter",
    "lead_grows",
    ("shakespeare-small",),
    arms=(
        Arm("cosine to 10%", "warmup_cosine", (("final_fraction", 0.1),)),
        Arm("linear to 0", "warmup_linear", (("final_fraction", 0.0),)),
    ),
    epochs=(8, 16, 32),
    selection_seeds=2,
    seeds=12,
)

WARMUP = Replication(
    "warmup",
    "Kalra & Barkeshli 2024, Why Warmup the Learning Rate? (arXiv 2406.09405)",
    "warmup lets a network train at higher learning rates: the band of stable LRs reaches higher",
    "shakespeare (10 epochs, AdamW), warmup_cosine to 0 with a 5% linear warmup against none, LR window "
    f"{WARMUP_LR_RANGE[0]:g} to {WARMUP_LR_RANGE[1]:g}; the paper studies SGD and Adam on CIFAR-10 and "
    "small transformers",
    "band_reaches_higher",
    ("shakespeare",),
    arms=(
        Arm("5% warmup", "warmup_cosine", lr_range=WARMUP_LR_RANGE),
        Arm("no warmup", "warmup_cosine", (("warmup_fraction", 0.0),), WARMUP_LR_RANGE),
    ),
    selection_seeds=4,
)

SUITE = ("digits", "mnist1d", "mnist1d-cnn", "shakespeare")
"""The standard suite's workloads, whose grids the three reading claims use."""

ROBUSTNESS = Replication(
    "annealing-robustness",
    "Attia & Koren 2025, Learning-rate annealing improves tuning robustness (arXiv 2503.09277)",
    "with a base LR off by a factor rho, a decaying schedule loses less than a constant one",
    "the standard suite's grids (4 workloads, every family at the grid's lattice, 4 points a decade, so "
    "rho = 10^(k/4): 1.78, 3.16, 5.62 for k = 1..3), validation metric on the selection seeds",
    "robustness",
    SUITE,
)

CONVEX_BOUND = Replication(
    "convex-bound",
    "Schaipp et al. 2025, The surprising agreement between convex optimization theory and learning-rate "
    "scheduling for large model training (arXiv 2501.18965)",
    "the last-iterate bound of SGD on a convex Lipschitz problem, computed from the schedule alone, orders "
    "schedules as training does and predicts how their best LRs differ",
    "the bound of Defazio et al. 2023 (Theorem 10) as the paper uses it, at each family's grid-default "
    "schedule over the workload's steps, against the standard suite's grid results",
    "convex_bound",
    SUITE,
)

CURVES = Replication(
    "curve-prediction",
    "Tissue et al. 2024, Scaling law with learning rate annealing (arXiv 2408.11029)",
    "validation loss as L0 + A S1^-alpha - C S2 of the schedule's forward area S1 and annealing area S2, "
    "fitted on two schedules, predicts the loss under another",
    "fitted on the constant and cosine runs of the standard suite's shakespeare grid (validation bits per "
    "character per epoch, at each family's chosen LR), predicting every other family's final value",
    "curves",
    ("shakespeare",),
)

REPLICATIONS = {r.name: r for r in (COOLDOWN, DECAY_TO_ZERO, WARMUP, ROBUSTNESS, CONVEX_BOUND, CURVES)}
