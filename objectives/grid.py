"""The grid protocol's design: every family at its best base LR on one shared log grid, its other
knobs at published defaults, every grid point trained on the same selection seeds.

Tuning by a few trials of TPE mixes the schedule with tuning luck: the spread between tuning runs
was up to 6x the seed noise (results/METHODS.md). The grid protocol takes the luck out, as DeepOBS
and Naganuma et al. (2026) do: the base LR, the knob that dominates every schedule, is searched
exhaustively on a lattice of ``POINTS_PER_DECADE`` points per decade shared by all families, and
each family's other knobs are fixed at a published default (``DEFAULTS``, with its source). A
family's window on the lattice is its optimizer's LR range; where its best lies on the window's
edge, the grid is extended there a point at a time, up to ``EXTENSION_DECADES`` beyond it.

Light (no torch): commands check it before they import the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

POINTS_PER_DECADE = 4
"""Grid points per decade of base LR: a quarter of a decade (x1.78) between neighbours."""

EXTENSION_DECADES = 1.0
"""How far beyond its window a family's grid may be extended where its best LR is on the edge."""

SELECTION_SEED = "selection_seed"
"""The trial parameter that says which selection seed a grid point trains with (0, 1, ...)."""


def lattice_index(lr: float) -> int:
    """The lattice point nearest to ``lr``: its index k, the point being 10 ** (k / POINTS_PER_DECADE)."""
    return round(math.log10(lr) * POINTS_PER_DECADE)


def lattice_point(index: int) -> float:
    """The base LR at lattice index ``index``, rounded to 6 significant digits (as stored)."""
    return float(f"{10 ** (index / POINTS_PER_DECADE):.6g}")


def lattice(low: float, high: float) -> list[float]:
    """The lattice points from ``low`` to ``high`` (each snapped to its nearest point), ascending."""
    return [lattice_point(k) for k in range(lattice_index(low), lattice_index(high) + 1)]


def extension_bounds(window: tuple[float, float]) -> tuple[float, float]:
    """The widest a window may become: ``EXTENSION_DECADES`` beyond it on each side."""
    reach = round(EXTENSION_DECADES * POINTS_PER_DECADE)
    return lattice_point(lattice_index(window[0]) - reach), lattice_point(lattice_index(window[1]) + reach)


@dataclass(frozen=True)
class Default:
    """A family's knobs in the grid protocol, and where they come from."""

    knobs: Callable[[int], dict[str, Any]]  # epochs of the run -> knob values
    source: str


def _fixed(**knobs: Any) -> Callable[[int], dict[str, Any]]:
    return lambda epochs: dict(knobs)


def _to_one_percent(epochs: int) -> float:
    """A per-epoch factor that takes the LR to 1% of its peak by the end of the run."""
    return float(f"{0.01 ** (1 / epochs):.6g}")


WARMUP = 0.05
"""The warmup of every family that has one: 5% of the run, linear (Goyal et al. 2017 warm up for
5 of 90 epochs; Hägele et al. 2024 and Defazio et al. 2024 likewise a few percent)."""

DEFAULTS: dict[str, Default] = {
    "constant": Default(_fixed(), "no knobs"),
    "step": Default(
        _fixed(gamma=0.1, step_fraction=1 / 3),
        "x0.1 every third of the run: PyTorch's ImageNet example, StepLR(step_size=30, gamma=0.1) over 90 epochs",
    ),
    "multistep": Default(
        _fixed(gamma=0.1, first_milestone=0.5, second_milestone=0.75),
        "x0.1 at 50% and 75% of the run: He et al. 2016 (CIFAR-10, at 32k and 48k of 64k iterations)",
    ),
    "exponential": Default(
        lambda epochs: {"gamma": _to_one_percent(epochs)},
        "gamma = 0.01^(1/epochs): down to 1% of the peak at the end, where step and multistep end",
    ),
    "polynomial": Default(_fixed(power=1.0), "power 1, linear to 0: PyTorch PolynomialLR's default"),
    "cosine": Default(_fixed(final_fraction=0.0), "to 0: PyTorch CosineAnnealingLR's default eta_min=0"),
    "cosine_restarts": Default(
        _fixed(cycle_fraction=0.15, cycle_mult=2),
        "T_mult 2 (Loshchilov & Hutter 2017), the first cycle 15% of the run, so the third ends just after "
        "it, at about 2% of the peak (1/7, whose third cycle would end with the run, rounds to a restart in "
        "the last steps)",
    ),
    "cyclic_triangular": Default(
        _fixed(max_ratio=4.0, cycle_fraction=0.25),
        "peak 4x the base LR, 4 cycles per run: Smith 2017 (base = max/3 to max/4; stop at a cycle's end)",
    ),
    "cyclic_triangular2": Default(
        _fixed(max_ratio=4.0, cycle_fraction=0.25), "as cyclic_triangular (Smith 2017)"
    ),
    "cyclic_exp_range": Default(
        lambda epochs: {"max_ratio": 4.0, "cycle_fraction": 0.25, "gamma": _to_one_percent(epochs)},
        "as cyclic_triangular, the amplitude down to 1% by the end as exponential's LR",
    ),
    "one_cycle": Default(
        _fixed(pct_start=0.3, div_factor=25.0, final_div_factor=1e4, anneal="cos"),
        "PyTorch OneCycleLR's defaults (Smith & Topin 2019)",
    ),
    "warmup_cosine": Default(
        _fixed(warmup_fraction=WARMUP, warmup_shape="linear", final_fraction=0.0),
        "5% linear warmup (Goyal et al. 2017), cosine to 0",
    ),
    "warmup_linear": Default(
        _fixed(warmup_fraction=WARMUP, warmup_shape="linear", final_fraction=0.0),
        "5% linear warmup, linear to 0 (Bergsma et al. 2025)",
    ),
    "plateau": Default(
        _fixed(factor=0.2, patience=5),
        "factor 0.2, patience 5 epochs: the Keras ReduceLROnPlateau documentation's example",
    ),
    "wsd": Default(
        _fixed(warmup_fraction=WARMUP, cooldown_fraction=0.2, cooldown_shape="1-sqrt"),
        "20% 1-sqrt cooldown (Hägele et al. 2024), 5% warmup",
    ),
    "inverse_sqrt": Default(
        _fixed(warmup_fraction=WARMUP, timescale_fraction=WARMUP),
        "5% warmup, timescale = the warmup (transformers' get_inverse_sqrt_schedule default)",
    ),
    "rex": Default(_fixed(warmup_fraction=0.0), "no warmup, as the REX paper (Chen et al. 2022)"),
    "schedule_free": Default(_fixed(warmup_fraction=WARMUP), "5% warmup (Defazio et al. 2024)"),
}


def default_knobs(family: str, epochs: int) -> tuple[tuple[str, Any], ...]:
    """A family's fixed knobs for a run of ``epochs`` epochs, as ``Experiment.fixed`` takes them."""
    return tuple(DEFAULTS[family].knobs(epochs).items())


def mean_by_lr(points: list[tuple[float, int, float]], seeds: int) -> dict[float, float]:
    """Each base LR's mean value over its selection seeds, from (lr, selection seed, value) of
    finished grid points; only LRs whose every seed has finished (a mean is over all of them)."""
    values: dict[float, dict[int, float]] = {}
    for lr, seed, value in points:
        values.setdefault(lr, {})[seed] = value
    return {
        lr: math.fsum(by_seed.values()) / seeds for lr, by_seed in values.items() if len(by_seed) == seeds
    }


TIE = 1e-6
"""Means closer than this, relative, are tied: stored values carry 6 significant digits, so closer
means cannot be told apart (two families with the same 21,078 of 21,600 right differed by 6.7e-8
once, by rounding alone), and no real difference of a metric is that small."""


def tied_best(values: dict, sign: float) -> list:
    """The keys whose value is the best (``sign``: +1 where higher is better), ties within ``TIE``."""
    best = max(sign * v for v in values.values())
    return [key for key, v in values.items() if sign * v >= best - TIE * max(abs(best), 1e-300)]


def best_lr(means: dict[float, float], sign: float) -> float:
    """The LR with the best mean; a tie (``tied_best``) goes to the smaller LR, the safer to train with."""
    return min(tied_best(means, sign))


def extension(means: dict[float, float], sign: float, bounds: tuple[float, float]) -> float | None:
    """The next lattice point beyond the evaluated LRs where the best is on their edge and the
    grid may still grow there (within ``bounds``, ``extension_bounds``); None when it is not."""
    best, low, high = best_lr(means, sign), min(means), max(means)
    if best == high and lattice_index(high) < lattice_index(bounds[1]):
        return lattice_point(lattice_index(high) + 1)
    if best == low and lattice_index(low) > lattice_index(bounds[0]):
        return lattice_point(lattice_index(low) - 1)
    return None


def wanted_lrs(
    points: list[tuple[float, int, float]], window: tuple[float, float], seeds: int, sign: float
) -> list[float]:
    """The LRs a family's grid is to have, from its finished points (lr, selection seed, value):
    the window's lattice, then one ``extension`` after another while every wanted LR has finished
    on every seed and the best of them is on an edge it may grow past. Ascending."""
    means, lrs = mean_by_lr(points, seeds), lattice(*window)
    while all(lr in means for lr in lrs):
        beyond = extension({lr: means[lr] for lr in lrs}, sign, extension_bounds(window))
        if beyond is None:
            break
        lrs.append(beyond)
    return sorted(lrs)


def chosen_lr(
    points: list[tuple[float, int, float]], window: tuple[float, float], seeds: int, sign: float
) -> float | None:
    """The family's LR: the best mean over the selection seeds of the wanted LRs, once every
    wanted point has finished (None before: an extension may still come)."""
    means = mean_by_lr(points, seeds)
    lrs = wanted_lrs(points, window, seeds, sign)
    if not all(lr in means for lr in lrs):
        return None
    return best_lr({lr: means[lr] for lr in lrs}, sign)
