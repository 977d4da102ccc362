"""Learning-rate schedule families: pure multiplier functions in one registry.

What a step is: **one optimizer update** (one mini-batch). Every schedule maps the 0-based
step index to a multiplier of the base LR, so the LR in force during update ``t`` is
``lr * multiplier(t)`` for ``t = 0 .. total_steps - 1``. Multipliers are evaluated on a
numpy array of steps (one epoch at a time in the training loop).

Lengths (step size, milestones, cycle length, warmup) are fractions of the run, so one search
space stays valid for any workload and epoch budget. Every ``gamma`` of an exponential decay
is a factor **per epoch**, applied smoothly per step (``gamma ** (t / steps_per_epoch)``), because
per-step factors such as 0.9995 mean nothing to a reader. ``step`` and ``multistep`` multiply by
``gamma`` at each drop, as in PyTorch.

``plateau`` is the one stateful family: its multiplier is constant within an epoch and drops
when ``observe(val_loss)``, called once per epoch, sees no improvement. Nothing else is stateful.

Each family's search space (``suggest(trial) -> kwargs``) sits next to its function. The base LR
is not a family knob: the objective suggests it from the optimizer's range (for ``one_cycle`` it
is the peak LR, as in PyTorch's ``OneCycleLR.max_lr``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import optuna

Multiplier = Callable[[np.ndarray], np.ndarray]
"""A pure schedule: array of step indices -> array of LR multipliers."""


@dataclass(frozen=True)
class Run:
    """The length of a training run, which every schedule is defined against."""

    total_steps: int
    steps_per_epoch: int

    def __post_init__(self) -> None:
        if self.total_steps < 1 or self.steps_per_epoch < 1:
            raise ValueError(f"a run needs at least one step, but got {self}")


def steps_from_fraction(fraction: float, total_steps: int) -> int:
    """A length given as a fraction of the run, in whole steps (at least 1)."""
    return max(1, round(fraction * total_steps))


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _per_step_gamma(gamma: float, run: Run) -> float:
    return gamma ** (1.0 / run.steps_per_epoch)


# --- pure families --------------------------------------------------------------------------


def constant(run: Run) -> Multiplier:
    """The base LR throughout."""
    return lambda t: np.ones(np.shape(t))


def step(run: Run, *, gamma: float, step_fraction: float) -> Multiplier:
    """StepLR: multiply by ``gamma`` every ``step_fraction`` of the run."""
    _check(0 < gamma <= 1, f"step needs 0 < gamma <= 1, but got {gamma=}")
    _check(0 < step_fraction <= 1, f"step needs 0 < step_fraction <= 1, but got {step_fraction=}")
    step_size = steps_from_fraction(step_fraction, run.total_steps)
    return lambda t: gamma ** (np.asarray(t) // step_size)


def multistep(run: Run, *, gamma: float, milestones: Sequence[float]) -> Multiplier:
    """MultiStepLR: multiply by ``gamma`` at each milestone (fractions of the run)."""
    _check(0 < gamma <= 1, f"multistep needs 0 < gamma <= 1, but got {gamma=}")
    _check(
        len(milestones) > 0 and all(0 < m < 1 for m in milestones),
        f"multistep needs milestones strictly between 0 and 1, but got {milestones=}",
    )
    at = sorted(steps_from_fraction(m, run.total_steps) for m in milestones)
    return lambda t: gamma ** np.searchsorted(at, np.asarray(t), side="right")


def exponential(run: Run, *, gamma: float) -> Multiplier:
    """ExponentialLR: decay by ``gamma`` per epoch, applied smoothly per step."""
    _check(0 < gamma <= 1, f"exponential needs 0 < gamma <= 1, but got {gamma=}")
    per_step = _per_step_gamma(gamma, run)
    return lambda t: per_step ** np.asarray(t, dtype=float)


def polynomial(run: Run, *, power: float) -> Multiplier:
    """PolynomialLR: ``(1 - t / T) ** power``, reaching 0 at the end; power 1 is linear."""
    _check(power > 0, f"polynomial needs power > 0, but got {power=}")
    total = run.total_steps
    return lambda t: (1.0 - np.minimum(np.asarray(t), total) / total) ** power


def cosine(run: Run, *, final_fraction: float = 0.0) -> Multiplier:
    """CosineAnnealingLR: half a cosine from 1 down to ``final_fraction`` over the run."""
    _check(0 <= final_fraction < 1, f"cosine needs 0 <= final_fraction < 1, but got {final_fraction=}")
    total = run.total_steps
    return lambda t: final_fraction + (1 - final_fraction) * (1 + np.cos(np.pi * np.asarray(t) / total)) / 2


def cosine_restarts(run: Run, *, cycle_fraction: float, cycle_mult: int) -> Multiplier:
    """CosineAnnealingWarmRestarts (SGDR): cosine cycles, each ``cycle_mult`` times longer."""
    _check(
        0 < cycle_fraction <= 1, f"cosine_restarts needs 0 < cycle_fraction <= 1, but got {cycle_fraction=}"
    )
    _check(
        cycle_mult >= 1 and int(cycle_mult) == cycle_mult,
        f"cosine_restarts needs an integer cycle_mult >= 1, but got {cycle_mult=}",
    )
    # Position inside the current cycle and that cycle's length, for every step of the run.
    first = steps_from_fraction(cycle_fraction, run.total_steps)
    into_cycle = np.empty(run.total_steps)
    cycle_length = np.empty(run.total_steps)
    start, length = 0, first
    while start < run.total_steps:
        end = min(start + length, run.total_steps)
        into_cycle[start:end] = np.arange(end - start)
        cycle_length[start:end] = length
        start, length = start + length, length * int(cycle_mult)

    def multiplier(t: np.ndarray) -> np.ndarray:
        t = np.minimum(np.asarray(t), run.total_steps - 1)
        return (1 + np.cos(np.pi * into_cycle[t] / cycle_length[t])) / 2

    return multiplier


CyclicMode = Literal["triangular", "triangular2", "exp_range"]


def cyclic(
    run: Run, *, mode: CyclicMode, max_ratio: float, cycle_fraction: float, gamma: float = 1.0
) -> Multiplier:
    """CyclicLR (Smith's CLR): triangles between the base LR and ``max_ratio`` times it.

    ``triangular2`` halves the amplitude every cycle; ``exp_range`` scales it by ``gamma`` per
    epoch. The cycle is symmetric (up and down each half of ``cycle_fraction`` of the run).
    """
    _check(max_ratio >= 1, f"cyclic needs max_ratio >= 1, but got {max_ratio=}")
    _check(0 < cycle_fraction <= 1, f"cyclic needs 0 < cycle_fraction <= 1, but got {cycle_fraction=}")
    _check(0 < gamma <= 1, f"cyclic needs 0 < gamma <= 1, but got {gamma=}")
    _check(mode in ("triangular", "triangular2", "exp_range"), f"unknown cyclic {mode=}")
    half = steps_from_fraction(cycle_fraction / 2, run.total_steps)
    per_step = _per_step_gamma(gamma, run)

    def multiplier(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        cycle = np.floor(1 + t / (2 * half))
        height = 1 - np.abs(t / half - 2 * cycle + 1)  # 0 -> 1 -> 0 over one cycle
        if mode == "triangular2":
            height = height / 2 ** (cycle - 1)
        elif mode == "exp_range":
            height = height * per_step**t
        return 1 + (max_ratio - 1) * height

    return multiplier


def one_cycle(
    run: Run,
    *,
    pct_start: float,
    div_factor: float,
    final_div_factor: float,
    anneal: Literal["cos", "linear"],
) -> Multiplier:
    """OneCycleLR: ramp from ``1 / div_factor`` to 1, then anneal far below the start.

    Multipliers are relative to the peak LR. Phase boundaries follow PyTorch exactly.
    """
    _check(0 < pct_start < 1, f"one_cycle needs 0 < pct_start < 1, but got {pct_start=}")
    _check(div_factor >= 1, f"one_cycle needs div_factor >= 1, but got {div_factor=}")
    _check(final_div_factor >= 1, f"one_cycle needs final_div_factor >= 1, but got {final_div_factor=}")
    _check(anneal in ("cos", "linear"), f"one_cycle needs anneal 'cos' or 'linear', but got {anneal=}")
    start = 1 / div_factor
    final = start / final_div_factor
    peak_step = pct_start * run.total_steps - 1  # a float, as in PyTorch
    last_step = run.total_steps - 1

    def interpolate(begin: float, end: float, pct: np.ndarray) -> np.ndarray:
        if anneal == "cos":
            return end + (begin - end) / 2 * (np.cos(np.pi * pct) + 1)
        return begin + (end - begin) * pct

    def multiplier(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        # 1. warm up from the initial LR to the peak; 2. anneal from the peak to the final LR.
        warming = interpolate(start, 1.0, t / peak_step) if peak_step > 0 else np.ones_like(t)
        annealing = interpolate(1.0, final, (t - peak_step) / (last_step - peak_step))
        return np.where(t <= peak_step, warming, annealing)

    return multiplier


WarmupShape = Literal["linear", "exponential"]
EXPONENTIAL_WARMUP_START = 1e-3
"""Where an exponential warmup starts, as a multiplier of the base LR."""


def with_warmup(decay: Callable[..., Multiplier]) -> Callable[..., Multiplier]:
    """Prepend a warmup to any decaying family; ``warmup_fraction=0`` means none.

    During the first ``W`` steps the multiplier ramps to 1 (linearly from ``1 / (W + 1)``, the
    same as PyTorch's ``LinearLR(start_factor=1 / (W + 1), total_iters=W)``, or geometrically from
    ``EXPONENTIAL_WARMUP_START``); then ``decay`` runs over the remaining steps as a run of its own.
    """

    def warmed(
        run: Run, *, warmup_fraction: float, warmup_shape: WarmupShape = "linear", **decay_kwargs: Any
    ) -> Multiplier:
        _check(0 <= warmup_fraction < 1, f"warmup needs 0 <= warmup_fraction < 1, but got {warmup_fraction=}")
        _check(warmup_shape in ("linear", "exponential"), f"unknown {warmup_shape=}")
        warmup = round(warmup_fraction * run.total_steps)
        decaying = decay(Run(max(1, run.total_steps - warmup), run.steps_per_epoch), **decay_kwargs)
        if warmup == 0:
            return decaying

        def multiplier(t: np.ndarray) -> np.ndarray:
            t = np.asarray(t)
            progress = np.minimum(t + 1, warmup + 1) / (warmup + 1)  # capped: no overflow past W
            ramp = progress if warmup_shape == "linear" else EXPONENTIAL_WARMUP_START ** (1 - progress)
            return np.where(t < warmup, ramp, decaying(np.maximum(t - warmup, 0)))

        return multiplier

    return warmed


# --- the stateful family --------------------------------------------------------------------


class Plateau:
    """ReduceLROnPlateau on the validation loss (mode 'min', relative threshold, no cooldown).

    One difference from PyTorch: it skips reductions smaller than an absolute ``eps=1e-8`` of LR,
    which needs the base LR; a multiplier does not know it, so this keeps reducing below that.
    """

    def __init__(self, *, factor: float, patience: int, threshold: float = 1e-4) -> None:
        _check(0 < factor < 1, f"plateau needs 0 < factor < 1, but got {factor=}")
        _check(
            patience >= 0 and int(patience) == patience,
            f"plateau needs an integer patience >= 0, but got {patience=}",
        )
        self.factor, self.patience, self.threshold = factor, int(patience), threshold
        self.current = 1.0
        self._best = math.inf
        self._bad_epochs = 0

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return np.full(np.shape(t), self.current)

    def observe(self, val_loss: float) -> None:
        """Record one epoch's validation loss; cut the LR after ``patience`` epochs without progress."""
        if val_loss < self._best * (1 - self.threshold):
            self._best, self._bad_epochs = val_loss, 0
        else:
            self._bad_epochs += 1
        if self._bad_epochs > self.patience:
            self.current *= self.factor
            self._bad_epochs = 0


def plateau(run: Run, *, factor: float, patience: int) -> Plateau:
    """ReduceLROnPlateau: the one family that reacts to the validation loss."""
    return Plateau(factor=factor, patience=patience)


# --- search spaces and the registry ---------------------------------------------------------


def _suggest_gamma(trial: optuna.Trial, low: float = 0.1, high: float = 0.9) -> dict[str, float]:
    return {"gamma": trial.suggest_float("gamma", low, high)}


def _suggest_step(trial: optuna.Trial) -> dict[str, Any]:
    return {**_suggest_gamma(trial), "step_fraction": trial.suggest_float("step_fraction", 0.1, 0.5)}


def _suggest_multistep(trial: optuna.Trial) -> dict[str, Any]:
    first = trial.suggest_float("first_milestone", 0.2, 0.6)
    second = trial.suggest_float("second_milestone", 0.6, 0.95)
    return {**_suggest_gamma(trial), "milestones": (first, second)}


def _suggest_cosine_restarts(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "cycle_fraction": trial.suggest_float("cycle_fraction", 0.05, 0.5),
        "cycle_mult": trial.suggest_int("cycle_mult", 1, 3),
    }


def _suggest_cyclic(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "max_ratio": trial.suggest_float("max_ratio", 2.0, 100.0, log=True),
        "cycle_fraction": trial.suggest_float("cycle_fraction", 0.05, 0.5),
    }


def _suggest_one_cycle(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "pct_start": trial.suggest_float("pct_start", 0.1, 0.5),
        "div_factor": trial.suggest_float("div_factor", 5.0, 100.0, log=True),
        "final_div_factor": trial.suggest_float("final_div_factor", 10.0, 1e4, log=True),
        "anneal": trial.suggest_categorical("anneal", ["cos", "linear"]),
    }


def _suggest_warmup(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "warmup_fraction": trial.suggest_float("warmup_fraction", 0.0, 0.3),
        "warmup_shape": trial.suggest_categorical("warmup_shape", ["linear", "exponential"]),
    }


def _suggest_plateau(trial: optuna.Trial) -> dict[str, Any]:
    return {
        "factor": trial.suggest_float("factor", 0.1, 0.7),
        "patience": trial.suggest_int("patience", 0, 5),
    }


@dataclass(frozen=True)
class Family:
    """A schedule family: how to build it for a run, and what the sweep searches."""

    name: str
    build: Callable[..., Multiplier]  # (run, **kwargs) -> multiplier
    suggest: Callable[[optuna.Trial], dict[str, Any]]  # trial -> kwargs for build
    description: str
    reacts_to_val_loss: bool = False  # build returns a Plateau, fed observe(val_loss) per epoch


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in [
        Family("constant", constant, lambda trial: {}, "the base LR throughout"),
        Family("step", step, _suggest_step, "StepLR: x gamma every step_fraction of the run"),
        Family("multistep", multistep, _suggest_multistep, "MultiStepLR: x gamma at two milestones"),
        Family(
            "exponential",
            exponential,
            partial(_suggest_gamma, low=0.5, high=0.99),
            "ExponentialLR: x gamma per epoch",
        ),
        Family(
            "polynomial",
            polynomial,
            lambda trial: {"power": trial.suggest_float("power", 0.3, 3.0, log=True)},
            "PolynomialLR: (1 - t/T)^power",
        ),
        Family(
            "cosine",
            cosine,
            lambda trial: {"final_fraction": trial.suggest_float("final_fraction", 1e-4, 0.3, log=True)},
            "CosineAnnealingLR down to final_fraction",
        ),
        Family(
            "cosine_restarts", cosine_restarts, _suggest_cosine_restarts, "CosineAnnealingWarmRestarts (SGDR)"
        ),
        Family(
            "cyclic_triangular", partial(cyclic, mode="triangular"), _suggest_cyclic, "CyclicLR triangular"
        ),
        Family(
            "cyclic_triangular2",
            partial(cyclic, mode="triangular2"),
            _suggest_cyclic,
            "CyclicLR triangular2: amplitude halves each cycle",
        ),
        Family(
            "cyclic_exp_range",
            partial(cyclic, mode="exp_range"),
            lambda trial: {**_suggest_cyclic(trial), **_suggest_gamma(trial, 0.5, 1.0)},
            "CyclicLR exp_range: amplitude x gamma per epoch",
        ),
        Family("one_cycle", one_cycle, _suggest_one_cycle, "OneCycleLR; lr is the peak"),
        Family(
            "warmup_cosine",
            with_warmup(cosine),
            _suggest_warmup,
            "linear or exponential warmup, then cosine to 0",
        ),
        Family(
            "warmup_linear",
            with_warmup(partial(polynomial, power=1.0)),
            _suggest_warmup,
            "linear or exponential warmup, then linear to 0",
        ),
        Family(
            "plateau",
            plateau,
            _suggest_plateau,
            "ReduceLROnPlateau on the validation loss",
            reacts_to_val_loss=True,
        ),
    ]
}


def get_family(name: str) -> Family:
    """Look a family up by name; unknown names raise with the valid choices."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(FAMILIES)}") from None
