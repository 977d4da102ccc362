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

Each family declares its search space as data (knob name -> Optuna distribution) in the
registry: sampling a trial, rebuilding a stored trial from its parameters, checking a user's
``--param`` and listing a family's knobs all read that one declaration. The base LR is not a
family knob: the objective suggests it from the optimizer's range (for ``one_cycle`` it is the
peak LR, as in PyTorch's ``OneCycleLR.max_lr``).

Two families change more than the LR. ``one_cycle`` and ``cyclic_*`` also cycle the momentum
(SGD's momentum, Adam's beta1) against the LR, as PyTorch's schedulers do by default
(``Family.momentum``). ``schedule_free`` trains with the optimizer's schedule-free variant
(``Family.schedule_free``): its only schedule is a warmup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

BASE_LR = "lr"
"""The parameter every family takes beside its knobs: the base LR its multiplier scales (stored as
a trial parameter under this name; ``objectives.stored`` names it too)."""

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


def linear(run: Run, *, final_fraction: float = 0.0) -> Multiplier:
    """LinearLR(1, final_fraction): a straight line from 1 down to ``final_fraction`` over the run."""
    _check(0 <= final_fraction < 1, f"linear needs 0 <= final_fraction < 1, but got {final_fraction=}")
    total = run.total_steps
    return lambda t: 1 - (1 - final_fraction) * np.minimum(np.asarray(t), total) / total


def rex(run: Run) -> Multiplier:
    """REX (Chen et al., MLSys 2022): ``(1 - z) / (1 - z / 2)`` with ``z = t / T``; reaches 0 at the end."""
    total = run.total_steps

    def multiplier(t: np.ndarray) -> np.ndarray:
        z = np.minimum(np.asarray(t, dtype=float), total) / total
        return (1 - z) / (1 - z / 2)

    return multiplier


CooldownShape = Literal["linear", "cosine", "1-sqrt"]


def wsd(
    run: Run, *, warmup_fraction: float, cooldown_fraction: float, cooldown_shape: CooldownShape
) -> Multiplier:
    """Warmup-stable-decay (Hägele et al. 2024; MiniCPM), as ``transformers.get_wsd_schedule``.

    1. a linear warmup from 0 over ``warmup_fraction`` of the run; 2. the base LR; 3. a cooldown
    to 0 over the last ``cooldown_fraction``, linear, cosine or 1-sqrt (the paper's best).
    """
    _check(0 <= warmup_fraction < 1, f"wsd needs 0 <= warmup_fraction < 1, but got {warmup_fraction=}")
    _check(0 < cooldown_fraction <= 1, f"wsd needs 0 < cooldown_fraction <= 1, but got {cooldown_fraction=}")
    _check(
        warmup_fraction + cooldown_fraction <= 1,
        f"wsd needs warmup_fraction + cooldown_fraction <= 1, but got {warmup_fraction=}, {cooldown_fraction=}",
    )
    _check(cooldown_shape in ("linear", "cosine", "1-sqrt"), f"unknown wsd {cooldown_shape=}")
    warmup = round(warmup_fraction * run.total_steps)
    cooldown = min(steps_from_fraction(cooldown_fraction, run.total_steps), run.total_steps - warmup)
    stable_end = run.total_steps - cooldown

    def multiplier(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        progress = np.clip((t - stable_end) / max(1, cooldown), 0.0, 1.0)
        if cooldown_shape == "linear":
            cooling = 1 - progress
        elif cooldown_shape == "cosine":
            cooling = (1 + np.cos(np.pi * progress)) / 2
        else:
            cooling = 1 - np.sqrt(progress)
        return np.where(t < warmup, t / max(1, warmup), cooling)

    return multiplier


def inverse_sqrt(run: Run, *, warmup_fraction: float, timescale_fraction: float) -> Multiplier:
    """The Transformer's inverse square root, as ``transformers.get_inverse_sqrt_schedule``.

    A linear warmup from 0 over ``warmup_fraction`` of the run, then ``sqrt(tau / (t - W + tau))``
    with the timescale ``tau`` a fraction of the run. It needs no planned end: the run's length
    only sets the units.
    """
    _check(
        0 <= warmup_fraction < 1, f"inverse_sqrt needs 0 <= warmup_fraction < 1, but got {warmup_fraction=}"
    )
    _check(
        timescale_fraction > 0, f"inverse_sqrt needs timescale_fraction > 0, but got {timescale_fraction=}"
    )
    warmup = round(warmup_fraction * run.total_steps)
    timescale = steps_from_fraction(timescale_fraction, run.total_steps)

    def multiplier(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        decaying = np.sqrt(timescale / (np.maximum(t, warmup) - warmup + timescale))
        return np.where(t < warmup, t / max(1, warmup), decaying)

    return multiplier


def schedule_free_warmup(run: Run, *, warmup_fraction: float) -> Multiplier:
    """The only schedule of schedule-free training: the ``schedulefree`` package's warmup.

    ``(t + 1) / W`` for the first ``W`` steps, then the base LR for good; the optimizer averages
    its iterates instead of decaying the LR (``batched_optimizers.ScheduleFree``).
    """
    _check(
        0 <= warmup_fraction < 1, f"schedule_free needs 0 <= warmup_fraction < 1, but got {warmup_fraction=}"
    )
    warmup = round(warmup_fraction * run.total_steps)
    return lambda t: np.minimum(1.0, (np.asarray(t, dtype=float) + 1) / max(1, warmup))


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

CYCLIC_MOMENTUM = (0.8, 0.9)
"""PyTorch's ``CyclicLR`` momentum (base, max): the momentum falls as the LR rises."""


def _cyclic_height(run: Run, mode: CyclicMode, cycle_fraction: float, gamma: float) -> Multiplier:
    """Where the cycle stands, 0 (base) to 1 (peak), after the mode's amplitude scaling."""
    _check(0 < cycle_fraction <= 1, f"cyclic needs 0 < cycle_fraction <= 1, but got {cycle_fraction=}")
    _check(0 < gamma <= 1, f"cyclic needs 0 < gamma <= 1, but got {gamma=}")
    _check(mode in ("triangular", "triangular2", "exp_range"), f"unknown cyclic {mode=}")
    half = steps_from_fraction(cycle_fraction / 2, run.total_steps)
    per_step = _per_step_gamma(gamma, run)

    def height(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        cycle = np.floor(1 + t / (2 * half))
        rising_falling = 1 - np.abs(t / half - 2 * cycle + 1)  # 0 -> 1 -> 0 over one cycle
        if mode == "triangular2":
            return rising_falling / 2 ** (cycle - 1)
        if mode == "exp_range":
            return rising_falling * per_step**t
        return rising_falling

    return height


def cyclic(
    run: Run, *, mode: CyclicMode, max_ratio: float, cycle_fraction: float, gamma: float = 1.0
) -> Multiplier:
    """CyclicLR (Smith's CLR): triangles between the base LR and ``max_ratio`` times it.

    ``triangular2`` halves the amplitude every cycle; ``exp_range`` scales it by ``gamma`` per
    epoch. The cycle is symmetric (up and down each half of ``cycle_fraction`` of the run).
    """
    _check(max_ratio >= 1, f"cyclic needs max_ratio >= 1, but got {max_ratio=}")
    height = _cyclic_height(run, mode, cycle_fraction, gamma)
    return lambda t: 1 + (max_ratio - 1) * height(t)


def cyclic_momentum(
    run: Run, *, mode: CyclicMode, max_ratio: float, cycle_fraction: float, gamma: float = 1.0
) -> Multiplier:
    """CyclicLR's momentum (``cycle_momentum=True``): from 0.9 down to 0.8 as the LR peaks."""
    low, high = CYCLIC_MOMENTUM
    height = _cyclic_height(run, mode, cycle_fraction, gamma)
    return lambda t: high - (high - low) * height(t)


ONE_CYCLE_MOMENTUM = (0.85, 0.95)
"""PyTorch's ``OneCycleLR`` momentum (base, max): max at the start and end, base at the peak LR."""


def _one_cycle_phases(
    run: Run, pct_start: float, anneal: Literal["cos", "linear"]
) -> Callable[[np.ndarray, float, float, float], np.ndarray]:
    """OneCycleLR's two phases, from ``start`` to ``peak`` then to ``end``; boundaries as PyTorch's."""
    _check(0 < pct_start < 1, f"one_cycle needs 0 < pct_start < 1, but got {pct_start=}")
    _check(anneal in ("cos", "linear"), f"one_cycle needs anneal 'cos' or 'linear', but got {anneal=}")
    peak_step = pct_start * run.total_steps - 1  # a float, as in PyTorch
    last_step = run.total_steps - 1

    def interpolate(begin: float, end: float, pct: np.ndarray) -> np.ndarray:
        if anneal == "cos":
            return end + (begin - end) / 2 * (np.cos(np.pi * pct) + 1)
        return begin + (end - begin) * pct

    def phases(t: np.ndarray, start: float, peak: float, end: float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        # 1. from the start value to the peak; 2. from the peak to the end value.
        rising = interpolate(start, peak, t / peak_step) if peak_step > 0 else np.full_like(t, peak)
        falling = interpolate(peak, end, (t - peak_step) / (last_step - peak_step))
        return np.where(t <= peak_step, rising, falling)

    return phases


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
    _check(div_factor >= 1, f"one_cycle needs div_factor >= 1, but got {div_factor=}")
    _check(final_div_factor >= 1, f"one_cycle needs final_div_factor >= 1, but got {final_div_factor=}")
    phases = _one_cycle_phases(run, pct_start, anneal)
    start = 1 / div_factor
    return lambda t: phases(t, start, 1.0, start / final_div_factor)


def one_cycle_momentum(
    run: Run, *, pct_start: float, anneal: Literal["cos", "linear"], **lr_only: float
) -> Multiplier:
    """OneCycleLR's momentum (``cycle_momentum=True``): 0.95 down to 0.85 at the peak LR, and back.

    Takes the family's knobs; ``div_factor`` and ``final_div_factor`` shape the LR alone."""
    low, high = ONE_CYCLE_MOMENTUM
    phases = _one_cycle_phases(run, pct_start, anneal)
    return lambda t: phases(t, high, low, high)


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

Space = dict[str, BaseDistribution]
"""A family's knobs as data: parameter name -> the Optuna distribution it is searched over."""


def suggest_space(trial: optuna.Trial, space: Space) -> dict[str, Any]:
    """Ask ``trial`` for every knob of ``space`` through Optuna's public ``suggest_*`` calls."""
    params: dict[str, Any] = {}
    for name, distribution in space.items():
        if isinstance(distribution, FloatDistribution):
            low, high, log, step_ = distribution.low, distribution.high, distribution.log, distribution.step
            params[name] = trial.suggest_float(name, low, high, log=log, step=step_)
        elif isinstance(distribution, IntDistribution):
            low, high, log, step_ = distribution.low, distribution.high, distribution.log, distribution.step
            params[name] = trial.suggest_int(name, low, high, log=log, step=step_)
        elif isinstance(distribution, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, distribution.choices)
        else:
            raise TypeError(f"search space knob {name!r} has an unsupported distribution {distribution!r}")
    return params


def _check_value(family: str, name: str, value: Any, distribution: BaseDistribution) -> None:
    """A value of the knob's kind: a choice of a categorical, a whole number of an integer knob.
    Numbers outside the searched range are allowed (the family's own checks bound them)."""
    if isinstance(distribution, CategoricalDistribution):
        _check(
            value in distribution.choices,
            f"{family} needs {name} in {list(distribution.choices)}, but got {value!r}",
        )
    elif isinstance(distribution, IntDistribution):
        whole = isinstance(value, (int, np.integer)) or (isinstance(value, float) and value.is_integer())
        _check(
            whole and not isinstance(value, bool),
            f"{family} needs a whole number for {name}, but got {value!r}",
        )
    else:
        number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
        _check(
            number and math.isfinite(value), f"{family} needs a finite number for {name}, but got {value!r}"
        )


@dataclass(frozen=True)
class Family:
    """A schedule family: how to build it for a run, and the knobs the sweep searches."""

    name: str
    build: Callable[..., Multiplier]  # (run, **kwargs) -> multiplier
    space: Space  # the searched knobs; the base LR is searched by the objective, not here
    description: str
    to_kwargs: Callable[[dict[str, Any]], dict[str, Any]] = dict  # stored params -> build's kwargs
    momentum: Callable[..., Multiplier] | None = None  # (run, **kwargs) -> the momentum it cycles
    schedule_free: bool = False  # trained with the optimizer's schedule-free variant

    @property
    def param_names(self) -> list[str]:
        return list(self.space)

    @property
    def reacts_to_val_loss(self) -> bool:
        """Whether its LR follows the validation loss: its schedule is a ``Plateau``, which the
        engine feeds ``observe(val_loss)`` every epoch (the one answer to that question)."""
        return self.build is plateau

    def kwargs(self, params: dict[str, Any]) -> dict[str, Any]:
        """``build``'s keyword arguments from parameter values (a stored trial's, or typed ones).

        Raises ValueError naming what is unknown, missing or of the wrong kind."""
        values = {name: value for name, value in params.items() if name != BASE_LR}
        known = ", ".join(self.space) or "no knobs"
        if unknown := sorted(set(values) - set(self.space)):
            raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for {self.name}; it takes: {known}")
        if missing := [name for name in self.space if name not in values]:
            raise ValueError(f"{self.name} needs {', '.join(missing)}; it takes: {known}")
        for name, distribution in self.space.items():
            _check_value(self.name, name, values[name], distribution)
            if isinstance(distribution, IntDistribution):
                values[name] = int(values[name])
        return self.to_kwargs(values)


def _float(low: float, high: float, *, log: bool = False) -> FloatDistribution:
    return FloatDistribution(low, high, log=log)


def _choice(*choices: str) -> CategoricalDistribution:
    return CategoricalDistribution(choices)


WARMUP_SPACE: Space = {"warmup_fraction": _float(0.0, 0.3), "warmup_shape": _choice("linear", "exponential")}
FINAL_FRACTION_SPACE: Space = {"final_fraction": _float(1e-4, 0.3, log=True)}
CYCLIC_SPACE: Space = {"max_ratio": _float(2.0, 1000.0, log=True), "cycle_fraction": _float(0.05, 0.5)}


def _milestones(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "gamma": params["gamma"],
        "milestones": (params["first_milestone"], params["second_milestone"]),
    }


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in [
        Family("constant", constant, {}, "the base LR throughout"),
        Family(
            "step",
            step,
            {"gamma": _float(0.1, 0.99), "step_fraction": _float(0.05, 0.5)},
            "StepLR: x gamma every step_fraction of the run",
        ),
        Family(
            "multistep",
            multistep,
            {
                "first_milestone": _float(0.2, 0.9),
                "second_milestone": _float(0.6, 0.95),
                "gamma": _float(0.1, 0.9),
            },
            "MultiStepLR: x gamma at two milestones",
            to_kwargs=_milestones,
        ),
        Family("exponential", exponential, {"gamma": _float(0.5, 0.99)}, "ExponentialLR: x gamma per epoch"),
        Family(
            "polynomial", polynomial, {"power": _float(0.3, 3.0, log=True)}, "PolynomialLR: (1 - t/T)^power"
        ),
        Family("cosine", cosine, FINAL_FRACTION_SPACE, "CosineAnnealingLR down to final_fraction"),
        Family(
            "cosine_restarts",
            cosine_restarts,
            {"cycle_fraction": _float(0.05, 0.5), "cycle_mult": IntDistribution(1, 3)},
            "CosineAnnealingWarmRestarts (SGDR)",
        ),
        Family(
            "cyclic_triangular",
            partial(cyclic, mode="triangular"),
            CYCLIC_SPACE,
            "CyclicLR triangular, momentum cycled 0.9 to 0.8",
            momentum=partial(cyclic_momentum, mode="triangular"),
        ),
        Family(
            "cyclic_triangular2",
            partial(cyclic, mode="triangular2"),
            CYCLIC_SPACE,
            "CyclicLR triangular2: amplitude halves each cycle; momentum cycled 0.9 to 0.8",
            momentum=partial(cyclic_momentum, mode="triangular2"),
        ),
        Family(
            "cyclic_exp_range",
            partial(cyclic, mode="exp_range"),
            {**CYCLIC_SPACE, "gamma": _float(0.5, 1.0)},
            "CyclicLR exp_range: amplitude x gamma per epoch; momentum cycled 0.9 to 0.8",
            momentum=partial(cyclic_momentum, mode="exp_range"),
        ),
        Family(
            "one_cycle",
            one_cycle,
            {
                "pct_start": _float(0.1, 0.5),
                "div_factor": _float(5.0, 100.0, log=True),
                "final_div_factor": _float(10.0, 1e4, log=True),
                "anneal": _choice("cos", "linear"),
            },
            "OneCycleLR; lr is the peak; momentum cycled 0.95 to 0.85",
            momentum=one_cycle_momentum,
        ),
        Family(
            "warmup_cosine",
            with_warmup(cosine),
            {**WARMUP_SPACE, **FINAL_FRACTION_SPACE},
            "linear or exponential warmup, then cosine to final_fraction",
        ),
        Family(
            "warmup_linear",
            with_warmup(linear),
            {**WARMUP_SPACE, **FINAL_FRACTION_SPACE},
            "linear or exponential warmup, then linear to final_fraction",
        ),
        Family(
            "plateau",
            plateau,
            {"factor": _float(0.1, 0.7), "patience": IntDistribution(0, 10)},
            "ReduceLROnPlateau on the validation loss",
        ),
        Family(
            "wsd",
            wsd,
            {
                "warmup_fraction": _float(0.0, 0.3),
                "cooldown_fraction": _float(0.1, 0.5),
                "cooldown_shape": _choice("linear", "cosine", "1-sqrt"),
            },
            "warmup-stable-decay: warmup, constant, then a cooldown to 0 over the last part",
        ),
        Family(
            "inverse_sqrt",
            inverse_sqrt,
            {"warmup_fraction": _float(0.0, 0.3), "timescale_fraction": _float(0.01, 1.0, log=True)},
            "inverse square root after a linear warmup (the Transformer's)",
        ),
        Family(
            "rex",
            with_warmup(rex),
            {"warmup_fraction": _float(0.0, 0.3)},
            "REX: (1 - z) / (1 - z/2) to 0, after an optional linear warmup",
        ),
        Family(
            "schedule_free",
            schedule_free_warmup,
            {"warmup_fraction": _float(0.0, 0.3)},
            "schedule-free optimizer (Defazio et al. 2024): warmup, then iterate averaging, no decay",
            schedule_free=True,
        ),
    ]
}


def get_family(name: str) -> Family:
    """Look a family up by name; unknown names raise with the valid choices."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(FAMILIES)}") from None
