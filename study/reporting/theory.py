"""What schedule theory predicts from a schedule alone, for ``study.replicate``'s reading claims:
the convex last-iterate bound (Schaipp et al. 2025) and the loss curve of Tissue et al. 2024.
Pure numpy on per-step LR multipliers; nothing here reads storage or trains.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from objectives.schedules import Run, get_family


def multipliers(family: str, knobs: dict, total_steps: int, steps_per_epoch: int) -> np.ndarray:
    """The family's LR multiplier at every step of a run (``objectives.schedules``)."""
    spec = get_family(family)
    schedule = spec.build(Run(total_steps, steps_per_epoch), **spec.kwargs(knobs))
    return np.asarray(schedule(np.arange(total_steps)), dtype=float)


@dataclass(frozen=True)
class ConvexBound:
    """Defazio et al. 2023, Theorem 10 (the bound Schaipp et al. 2025 compute), for SGD with step
    ``gamma * s_t`` on a convex G-Lipschitz problem at distance D: ``first / gamma + gamma * second``."""

    first: float  # D^2 / (2 sum s)
    second: float  # G^2 sum s^2 / (2 sum s) + the last-iterate term

    @property
    def best_gamma(self) -> float:
        """The base LR that minimizes the bound."""
        return float(np.sqrt(self.first / self.second))

    @property
    def best(self) -> float:
        """The bound at its best base LR."""
        return float(2 * np.sqrt(self.first * self.second))

    def at(self, gamma: float) -> float:
        return self.first / gamma + gamma * self.second


def convex_bound(s: np.ndarray, d: float = 1.0, g: float = 1.0) -> ConvexBound:
    """The bound's two parts for the schedule ``s`` (one multiplier per step, T = len(s)):

    D^2/(2 sum_t s_t) + G^2 sum_t s_t^2/(2 sum_t s_t)
    + (1/2) sum_{k=1}^{T-1} s_k / (sum_{t=k+1}^T s_t) * G^2 (sum_{t=k}^T s_t^2) / (sum_{t=k}^T s_t).

    A step whose remaining sum is zero (a schedule that ends at 0) adds nothing where its own
    multiplier is zero too; ``s`` must not end with a positive step followed only by zeros."""
    s = np.asarray(s, dtype=float)
    total = s.sum()
    after = total - np.cumsum(s)  # sum_{t=k+1}^T s_t
    from_here = after + s  # sum_{t=k}^T s_t
    squares_from_here = np.cumsum((s**2)[::-1])[::-1]  # sum_{t=k}^T s_t^2
    head = slice(0, len(s) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(s[head] > 0, s[head] / after[head] * squares_from_here[head] / from_here[head], 0.0)
    if not np.all(np.isfinite(terms)):
        raise ValueError("the schedule takes a step with nothing after it but zeros: the bound is infinite")
    last_iterate = 0.5 * g**2 * float(terms.sum())
    return ConvexBound(d**2 / (2 * total), g**2 * float((s**2).sum()) / (2 * total) + last_iterate)


ANNEALING_DECAY = 0.999
"""Tissue et al. 2024's momentum factor lambda of the annealing area (their default)."""


def loss_areas(lrs: np.ndarray, decay: float = ANNEALING_DECAY) -> tuple[np.ndarray, np.ndarray]:
    """Tissue et al.'s forward area S1 (the LRs' running sum) and annealing area S2 after every
    step: S2_i = sum_{k<=i} m_k, with m_k = lambda m_{k-1} + (eta_{k-1} - eta_k). As in the paper,
    annealing counts from the peak: a warmup's rise is no negative annealing."""
    lrs = np.asarray(lrs, dtype=float)
    drops = -np.diff(lrs, prepend=lrs[0])
    drops[: int(np.argmax(lrs)) + 1] = 0.0
    momentum = np.empty_like(lrs)
    carried = 0.0
    for k, drop in enumerate(drops):
        carried = decay * carried + drop
        momentum[k] = carried
    return np.cumsum(lrs), np.cumsum(momentum)


def loss_law(areas: tuple[np.ndarray, np.ndarray], l0: float, a: float, alpha: float, c: float) -> np.ndarray:
    """L = L0 + A S1^-alpha - C S2 (Tissue et al. 2024, eq. 1)."""
    s1, s2 = areas
    return l0 + a * np.power(s1, -alpha) - c * s2


def fit_loss_law(curves: list[tuple[tuple[np.ndarray, np.ndarray], np.ndarray]]) -> np.ndarray:
    """(L0, A, alpha, C) by least squares over every point of ``curves`` ((S1, S2) at each
    observed step, the loss there), all non-negative, alpha below 3."""
    from scipy.optimize import least_squares

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.concatenate([loss_law(areas, *p) - loss for areas, loss in curves])

    losses = np.concatenate([loss for _, loss in curves])
    start = np.array([max(losses.min() * 0.9, 0.0), max(losses.max() - losses.min(), 1e-3), 0.5, 0.0])
    fit = least_squares(residuals, start, bounds=([0, 0, 0, 0], [np.inf, np.inf, 3, np.inf]))
    return fit.x
