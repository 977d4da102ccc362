"""Every schedule family against PyTorch's scheduler, step by step, and the registry's contract."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from torch.optim import lr_scheduler

from objectives.schedules import (
    EXPONENTIAL_WARMUP_START,
    FAMILIES,
    Plateau,
    Run,
    cosine,
    exponential,
    get_family,
    multistep,
    polynomial,
    step,
    steps_from_fraction,
    suggest_space,
    with_warmup,
)

LR = 0.37
RUNS = [Run(total_steps=340, steps_per_epoch=34), Run(total_steps=97, steps_per_epoch=10)]


def _torch_step(opt: torch.optim.Optimizer, run: Run, k: dict[str, Any]) -> lr_scheduler.LRScheduler:
    return lr_scheduler.StepLR(
        opt, step_size=steps_from_fraction(k["step_fraction"], run.total_steps), gamma=k["gamma"]
    )


def _torch_multistep(opt: torch.optim.Optimizer, run: Run, k: dict[str, Any]) -> lr_scheduler.LRScheduler:
    milestones = [steps_from_fraction(m, run.total_steps) for m in k["milestones"]]
    return lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=k["gamma"])


def _torch_cyclic(mode: str) -> Callable[..., lr_scheduler.LRScheduler]:
    def build(
        opt: torch.optim.Optimizer, run: Run, k: dict[str, Any], cycle_momentum: bool = False
    ) -> lr_scheduler.LRScheduler:
        return lr_scheduler.CyclicLR(
            opt,
            base_lr=LR,
            max_lr=LR * k["max_ratio"],
            step_size_up=steps_from_fraction(k["cycle_fraction"] / 2, run.total_steps),
            mode=mode,
            gamma=k.get("gamma", 1.0) ** (1 / run.steps_per_epoch),
            cycle_momentum=cycle_momentum,
        )

    return build


def _torch_warmup_then(
    decay: Callable[[torch.optim.Optimizer, int, float], lr_scheduler.LRScheduler],
) -> Callable[..., lr_scheduler.LRScheduler]:
    def build(opt: torch.optim.Optimizer, run: Run, k: dict[str, Any]) -> lr_scheduler.LRScheduler:
        warmup = round(k["warmup_fraction"] * run.total_steps)
        rest = run.total_steps - warmup
        final = k.get("final_fraction", 0.0)
        if warmup == 0:
            return decay(opt, rest, final)
        ramp = lr_scheduler.LinearLR(opt, start_factor=1 / (warmup + 1), end_factor=1.0, total_iters=warmup)
        return lr_scheduler.SequentialLR(opt, [ramp, decay(opt, rest, final)], milestones=[warmup])

    return build


TORCH_EQUIVALENT: dict[
    str, Callable[[torch.optim.Optimizer, Run, dict[str, Any]], lr_scheduler.LRScheduler]
] = {
    "constant": lambda opt, run, k: lr_scheduler.ConstantLR(opt, factor=1.0),
    "step": _torch_step,
    "multistep": _torch_multistep,
    "exponential": lambda opt, run, k: lr_scheduler.ExponentialLR(
        opt, gamma=k["gamma"] ** (1 / run.steps_per_epoch)
    ),
    "polynomial": lambda opt, run, k: lr_scheduler.PolynomialLR(
        opt, total_iters=run.total_steps, power=k["power"]
    ),
    "cosine": lambda opt, run, k: lr_scheduler.CosineAnnealingLR(
        opt, T_max=run.total_steps, eta_min=LR * k["final_fraction"]
    ),
    "cosine_restarts": lambda opt, run, k: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=steps_from_fraction(k["cycle_fraction"], run.total_steps), T_mult=k["cycle_mult"]
    ),
    "cyclic_triangular": _torch_cyclic("triangular"),
    "cyclic_triangular2": _torch_cyclic("triangular2"),
    "cyclic_exp_range": _torch_cyclic("exp_range"),
    "one_cycle": lambda opt, run, k, cycle_momentum=False: lr_scheduler.OneCycleLR(
        opt,
        max_lr=LR,
        total_steps=run.total_steps,
        pct_start=k["pct_start"],
        anneal_strategy=k["anneal"],
        div_factor=k["div_factor"],
        final_div_factor=k["final_div_factor"],
        cycle_momentum=cycle_momentum,
    ),
    "warmup_cosine": _torch_warmup_then(
        lambda opt, rest, final: lr_scheduler.CosineAnnealingLR(opt, T_max=rest, eta_min=LR * final)
    ),
    "warmup_linear": _torch_warmup_then(
        lambda opt, rest, final: lr_scheduler.LinearLR(
            opt, start_factor=1.0, end_factor=final, total_iters=rest
        )
    ),
}


def _sampled_settings(name: str, count: int = 6) -> list[dict[str, Any]]:
    """Hyperparameters drawn from the family's own search space (seeded), so the test covers it."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=len(name)))
    family = FAMILIES[name]
    return [family.kwargs(suggest_space(study.ask(), family.space)) for _ in range(count)]


def _torch_lrs(name: str, run: Run, kwargs: dict[str, Any]) -> np.ndarray:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    scheduler = TORCH_EQUIVALENT[name](optimizer, run, kwargs)
    lrs = []
    for _ in range(run.total_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


def _transformers_wsd(t: int, run: Run, k: dict[str, Any]) -> float:
    """``transformers``' ``_get_wsd_scheduler_lambda`` (linear warmup, min_lr_ratio 0), written out."""
    warmup = round(k["warmup_fraction"] * run.total_steps)
    decay = min(max(1, round(k["cooldown_fraction"] * run.total_steps)), run.total_steps - warmup)
    stable = run.total_steps - warmup - decay
    if t < warmup:
        return t / max(1, warmup)
    if t < warmup + stable:
        return 1.0
    progress = (t - warmup - stable) / max(1, decay)
    shape = k["cooldown_shape"]
    if shape == "linear":
        return max(0.0, 1.0 - progress)
    if shape == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
    return max(0.0, 1.0 - math.sqrt(progress))


def _transformers_inverse_sqrt(t: int, run: Run, k: dict[str, Any]) -> float:
    """``transformers``' ``_get_inverse_sqrt_schedule_lr_lambda``, written out."""
    warmup = round(k["warmup_fraction"] * run.total_steps)
    timescale = max(1, round(k["timescale_fraction"] * run.total_steps))
    if t < warmup:
        return t / max(1, warmup)
    shift = timescale - warmup
    return 1.0 / math.sqrt((t + shift) / timescale)


def _rex_paper(t: int, run: Run, k: dict[str, Any]) -> float:
    """REX (Chen et al. 2022, eq. for the profile): (1 - z) / (0.5 + 0.5 (1 - z)), after our warmup."""
    warmup = round(k["warmup_fraction"] * run.total_steps)
    if t < warmup:
        return (t + 1) / (warmup + 1)
    z = (t - warmup) / max(1, run.total_steps - warmup)
    return (1 - z) / (0.5 + 0.5 * (1 - z))


def _schedulefree_warmup(t: int, run: Run, k: dict[str, Any]) -> float:
    """The ``schedulefree`` optimizers' ``sched``: (k + 1) / warmup_steps during the warmup, else 1."""
    warmup = round(k["warmup_fraction"] * run.total_steps)
    return (t + 1) / warmup if t < warmup else 1.0


PUBLISHED_FORMULA: dict[str, Callable[[int, Run, dict[str, Any]], float]] = {
    "wsd": _transformers_wsd,
    "inverse_sqrt": _transformers_inverse_sqrt,
    "rex": _rex_paper,
    "schedule_free": _schedulefree_warmup,
}


def test_every_stateless_family_has_an_independent_reference() -> None:
    stateless = {name for name, family in FAMILIES.items() if not family.reacts_to_val_loss}
    assert stateless == set(TORCH_EQUIVALENT) | set(PUBLISHED_FORMULA)
    assert not set(TORCH_EQUIVALENT) & set(PUBLISHED_FORMULA)


@pytest.mark.parametrize("run", RUNS, ids=str)
@pytest.mark.parametrize("name", sorted(PUBLISHED_FORMULA))
def test_matches_the_published_formula_at_every_step(name: str, run: Run) -> None:
    settings = _sampled_settings(name, count=12)
    if name == "wsd":  # every cooldown shape, whatever the sample drew
        settings += [{**settings[0], "cooldown_shape": shape} for shape in ("linear", "cosine", "1-sqrt")]
    for kwargs in settings:
        ours = FAMILIES[name].build(run, **kwargs)(np.arange(run.total_steps))
        reference = [PUBLISHED_FORMULA[name](t, run, kwargs) for t in range(run.total_steps)]
        np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12, err_msg=str(kwargs))


MOMENTUM_CYCLING = {name: family for name, family in FAMILIES.items() if family.momentum is not None}


def test_the_families_pytorch_cycles_momentum_for_cycle_it_here() -> None:
    assert set(MOMENTUM_CYCLING) == {
        "one_cycle",
        "cyclic_triangular",
        "cyclic_triangular2",
        "cyclic_exp_range",
    }


@pytest.mark.parametrize("torch_optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("run", RUNS, ids=str)
@pytest.mark.parametrize("name", sorted(MOMENTUM_CYCLING))
def test_momentum_matches_torch_scheduler_at_every_step(name: str, run: Run, torch_optimizer: str) -> None:
    """PyTorch's scheduler with its default ``cycle_momentum=True``: SGD's momentum, Adam's beta1."""
    for kwargs in _sampled_settings(name):
        parameter = torch.nn.Parameter(torch.zeros(1))
        optimizer = (
            torch.optim.SGD([parameter], lr=LR, momentum=0.9)
            if torch_optimizer == "sgd"
            else torch.optim.Adam([parameter], lr=LR)
        )
        scheduler = TORCH_EQUIVALENT[name](optimizer, run, kwargs, cycle_momentum=True)
        expected = []
        for _ in range(run.total_steps):
            group = optimizer.param_groups[0]
            expected.append(group["momentum"] if torch_optimizer == "sgd" else group["betas"][0])
            optimizer.step()
            scheduler.step()
        ours = MOMENTUM_CYCLING[name].momentum(run, **kwargs)(np.arange(run.total_steps))
        np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=0, err_msg=str(kwargs))


@pytest.mark.parametrize("run", RUNS, ids=str)
@pytest.mark.parametrize("name", sorted(TORCH_EQUIVALENT))
def test_matches_torch_scheduler_at_every_step(name: str, run: Run) -> None:
    for kwargs in _sampled_settings(name):
        if "warmup_shape" in kwargs:
            kwargs["warmup_shape"] = "linear"  # PyTorch has no exponential warmup
        ours = LR * FAMILIES[name].build(run, **kwargs)(np.arange(run.total_steps))
        np.testing.assert_allclose(
            ours, _torch_lrs(name, run, kwargs), rtol=1e-6, atol=0, err_msg=str(kwargs)
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gamma": 0.5, "cycle_fraction": 0.3, "max_ratio": 10.0},  # cycles that do not divide the run
        {"gamma": 0.9, "cycle_fraction": 1.0, "max_ratio": 2.0},
    ],
)
def test_cyclic_exp_range_edges_match_torch(kwargs: dict[str, Any]) -> None:
    run = RUNS[1]
    ours = LR * FAMILIES["cyclic_exp_range"].build(run, **kwargs)(np.arange(run.total_steps))
    np.testing.assert_allclose(ours, _torch_lrs("cyclic_exp_range", run, kwargs), rtol=1e-6)


@pytest.mark.parametrize("factor,patience", [(0.1, 0), (0.5, 2), (0.3, 5)])
def test_plateau_matches_reduce_lr_on_plateau(factor: float, patience: int) -> None:
    rng = np.random.default_rng(patience)
    # A loss that improves, stalls for a while, improves a little (below threshold), and jumps.
    losses = np.concatenate(
        [np.linspace(2.0, 1.0, 8), np.full(6, 1.0), 1.0 - 1e-6 * np.arange(4), rng.uniform(0.5, 3, 30)]
    )
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=LR)
    reference = lr_scheduler.ReduceLROnPlateau(optimizer, factor=factor, patience=patience)
    ours = Plateau(factor=factor, patience=patience)
    for loss in losses:
        torch_lr = optimizer.param_groups[0]["lr"]
        if torch_lr * (1 - factor) <= reference.eps:
            break  # PyTorch stops reducing below an absolute 1e-8 step; we do not (see Plateau)
        assert LR * ours(np.arange(3))[0] == pytest.approx(torch_lr, rel=1e-6)
        ours.observe(float(loss))
        reference.step(float(loss))
    assert ours.current <= factor**2, "the test sequence must trigger at least two reductions"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_contract(name: str) -> None:
    """Finite, non-negative multipliers for anything the search space suggests, on any run."""
    family = FAMILIES[name]
    for run in [*RUNS, Run(total_steps=1, steps_per_epoch=1), Run(total_steps=5, steps_per_epoch=5)]:
        for kwargs in _sampled_settings(name, count=20):
            schedule = family.build(run, **kwargs)
            for epoch in range(0, run.total_steps, run.steps_per_epoch):
                multipliers = schedule(np.arange(epoch, min(epoch + run.steps_per_epoch, run.total_steps)))
                assert multipliers.shape == (min(run.steps_per_epoch, run.total_steps - epoch),)
                assert np.all(np.isfinite(multipliers)) and np.all(multipliers >= 0), (kwargs, multipliers)
                if family.reacts_to_val_loss:
                    schedule.observe(1.0)
            assert family.description


DECAYS = {
    "step": (step, {"gamma": 0.5, "step_fraction": 0.25}),
    "multistep": (multistep, {"gamma": 0.1, "milestones": (0.5, 0.75)}),
    "exponential": (exponential, {"gamma": 0.8}),
    "polynomial": (polynomial, {"power": 2.0}),
    "cosine": (cosine, {"final_fraction": 0.01}),
}


@pytest.mark.parametrize("shape", ["linear", "exponential"])
@pytest.mark.parametrize("decay_name", sorted(DECAYS))
def test_warmup_composes_with_any_decay(decay_name: str, shape: str) -> None:
    decay, kwargs = DECAYS[decay_name]
    run = Run(total_steps=200, steps_per_epoch=20)
    warmup = 40
    warmed = with_warmup(decay)(run, warmup_fraction=warmup / run.total_steps, warmup_shape=shape, **kwargs)(
        np.arange(200)
    )
    ramp, rest = warmed[:warmup], warmed[warmup:]
    assert np.all(np.diff(ramp) > 0) and ramp[-1] < 1.0
    first = 1 / (warmup + 1) if shape == "linear" else EXPONENTIAL_WARMUP_START ** (warmup / (warmup + 1))
    assert ramp[0] == pytest.approx(first)
    np.testing.assert_allclose(rest, decay(Run(160, 20), **kwargs)(np.arange(160)))
    no_warmup = with_warmup(decay)(run, warmup_fraction=0.0, **kwargs)(np.arange(200))
    np.testing.assert_allclose(no_warmup, decay(run, **kwargs)(np.arange(200)))


@pytest.mark.parametrize(
    "name,kwargs,message",
    [
        ("step", {"gamma": 1.5, "step_fraction": 0.2}, "gamma=1.5"),
        ("multistep", {"gamma": 0.5, "milestones": (0.5, 1.2)}, "milestones="),
        ("exponential", {"gamma": 0.0}, "gamma=0.0"),
        ("polynomial", {"power": -1.0}, "power=-1.0"),
        ("cosine_restarts", {"cycle_fraction": 0.2, "cycle_mult": 1.5}, "cycle_mult=1.5"),
        ("cyclic_triangular", {"max_ratio": 0.5, "cycle_fraction": 0.2}, "max_ratio=0.5"),
        (
            "one_cycle",
            {"pct_start": 1.0, "div_factor": 25, "final_div_factor": 1e4, "anneal": "cos"},
            "pct_start=1.0",
        ),
        ("warmup_cosine", {"warmup_fraction": 1.0}, "warmup_fraction=1.0"),
        ("plateau", {"factor": 1.0, "patience": 2}, "factor=1.0"),
    ],
)
def test_out_of_range_hyperparameters_raise_with_the_value(
    name: str, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("(", r"\(")):
        get_family(name).build(RUNS[0], **kwargs)


def test_unknown_family_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown schedule 'cosin'; choose one of: constant, step"):
        get_family("cosin")


def test_the_families_that_follow_the_validation_loss_are_those_whose_schedule_observes_it() -> None:
    run = RUNS[0]
    observing = {
        name
        for name, family in FAMILIES.items()
        for params in _sampled_settings(name, 3)
        if isinstance(family.build(run, **params), Plateau)
    }
    assert (
        observing == {name for name, family in FAMILIES.items() if family.reacts_to_val_loss} == {"plateau"}
    )
