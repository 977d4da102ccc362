"""``study.reporting.theory``: the convex bound against its closed forms, the loss law's areas
by hand, and its fit recovering the parameters it was drawn from."""

from __future__ import annotations

import numpy as np
import pytest

from study.reporting import theory


def _harmonic(n: int) -> float:
    return float(np.sum(1.0 / np.arange(1, n + 1)))


@pytest.mark.parametrize("steps", [1, 2, 10, 500])
def test_the_bound_of_a_constant_schedule_is_its_closed_form(steps: int) -> None:
    """Constant s_t = 1: D^2/(2 gamma T) + gamma G^2 (1 + H_{T-1}) / 2 (Defazio et al. 2023; the
    log T / sqrt T rate Schaipp et al. 2025 start from)."""
    d, g, gamma = 3.0, 0.5, 0.2
    bound = theory.convex_bound(np.ones(steps), d, g)
    expected = d**2 / (2 * gamma * steps) + gamma * g**2 * (1 + _harmonic(steps - 1)) / 2
    assert bound.at(gamma) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("steps", [2, 10, 500])
def test_the_bound_of_linear_decay_is_its_closed_form(steps: int) -> None:
    """s_t = T + 1 - t: the sums are triangular and square-pyramidal numbers, and the last-iterate
    term is G^2 (2 (T - 1) + 3 H_{T-1}) / 3."""
    s = np.arange(steps, 0, -1, dtype=float)
    total, squares = steps * (steps + 1) / 2, steps * (steps + 1) * (2 * steps + 1) / 6
    bound = theory.convex_bound(s, 1.0, 1.0)
    assert bound.first == pytest.approx(1 / (2 * total), rel=1e-12)
    last_iterate = (2 * (steps - 1) + 3 * _harmonic(steps - 1)) / 3
    assert bound.second == pytest.approx(squares / (2 * total) + last_iterate, rel=1e-12)


def test_the_best_base_lr_minimizes_the_bound_and_the_order_is_scale_free() -> None:
    cosine = 0.5 * (1 + np.cos(np.pi * np.arange(200) / 200))
    bound = theory.convex_bound(cosine, 2.0, 3.0)
    grid = np.geomspace(bound.best_gamma / 10, bound.best_gamma * 10, 2001)
    assert min(bound.at(g) for g in grid) == pytest.approx(bound.best, rel=1e-6)
    constant = theory.convex_bound(np.ones(200), 2.0, 3.0)
    unit = [theory.convex_bound(s).best for s in (cosine, np.ones(200))]
    assert (bound.best < constant.best) == (unit[0] < unit[1])  # D and G scale every schedule alike
    assert bound.best / constant.best == pytest.approx(unit[0] / unit[1], rel=1e-12)


def test_a_schedule_that_stops_early_has_no_finite_bound() -> None:
    with pytest.raises(ValueError, match="infinite"):
        theory.convex_bound(np.array([1.0, 1.0, 0.0, 0.0]))


def test_the_areas_of_a_constant_and_a_single_drop_by_hand() -> None:
    s1, s2 = theory.loss_areas(np.full(5, 0.1))
    assert np.allclose(s1, [0.1, 0.2, 0.3, 0.4, 0.5]) and np.allclose(s2, 0)
    lrs = np.array([1.0, 1.0, 0.5, 0.5, 0.5])
    _, s2 = theory.loss_areas(lrs, decay=0.9)
    momentum = [0, 0, 0.5, 0.45, 0.405]  # the drop, then lambda times the last
    assert np.allclose(s2, np.cumsum(momentum))
    warm = np.array([0.25, 0.5, 1.0, 0.5])  # a warmup's rise is not annealing
    assert np.allclose(theory.loss_areas(warm, decay=0.0)[1], [0, 0, 0, 0.5])


def test_the_fit_recovers_the_law_it_was_drawn_from() -> None:
    steps = np.arange(1, 1001)
    constant = np.full(1000, 1e-2)
    cosine = 1e-2 * 0.5 * (1 + np.cos(np.pi * steps / 1000))
    truth = (2.0, 1.5, 0.4, 0.1)  # C S2 ends near 0.4 on the cosine run
    rng = np.random.default_rng(0)
    curves = []
    for lrs in (constant, cosine):
        areas = theory.loss_areas(lrs)
        every_100 = slice(99, None, 100)
        observed = (areas[0][every_100], areas[1][every_100])
        curves.append((observed, theory.loss_law(observed, *truth) + rng.normal(0, 1e-4, 10)))
    fitted = theory.fit_loss_law(curves)
    assert fitted == pytest.approx(truth, rel=0.05)
