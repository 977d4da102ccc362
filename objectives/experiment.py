"""What stays fixed within one study (``Experiment``), apart from the Optuna side of a trial
(``objectives/objective.py``) and how it is stored (``objectives/stored.py``): settings only,
names rather than objects, so commands check them without importing torch."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from optuna.distributions import CategoricalDistribution

from objectives.grid import default_knobs, extension_bounds, lattice
from objectives.optim.optimizers import OptimizerSettings, get_optimizer
from objectives.schedules import Space, get_family

if TYPE_CHECKING:
    from objectives.workloads.registry import Workload


@dataclass(frozen=True)
class Experiment:
    """What stays fixed within one study: everything but the searched hyperparameters."""

    workload: str
    optimizer: str
    family: str
    epochs: int
    batch_size: int
    early_stopping: int | None  # patience in epochs; None trains every epoch
    seed: int  # fixes the data split; each trial's own seed derives from it
    lr_range: tuple[float, float] | None = None  # base-LR search bounds; None: the optimizer's default
    momentum: float | None = None  # SGD's momentum (0: plain SGD); None: the default, or no such setting
    nesterov: bool = False  # SGD only
    weight_decay: float | None = None  # None: the optimizer's default
    repeat: int = 0  # which of --repeats independent tuning studies of the family this is
    fixed: tuple[tuple[str, Any], ...] = ()  # (knob, value) pairs held fixed, not searched
    precision: str = "fp32"  # or "bf16": autocast products (objectives.engine.training.Precision)
    protocol: str = "budgeted"  # or "grid": the base LR on a shared grid, knobs fixed (objectives.grid)
    selection_seeds: int = 0  # grid: the seeds every grid point trains with

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose from: {', '.join(PROTOCOLS)}")
        if self.is_grid and not (self.selection_seeds >= 1 and self.lr_range):
            raise ValueError("a grid experiment needs its LR window (lr_range) and selection_seeds >= 1")
        if not self.fixed:
            return
        space = get_family(self.family).space
        if unknown := [name for name, _ in self.fixed if name not in space]:
            raise ValueError(
                f"{self.family} has no knob {', '.join(unknown)} to fix; it takes: {', '.join(space)}"
            )

    @property
    def space(self) -> Space:
        """The knobs the sweep searches: the family's, each fixed one a single choice (so its
        value is stored with every trial, and a stored trial rebuilds as trained)."""
        return {**get_family(self.family).space, **{k: CategoricalDistribution((v,)) for k, v in self.fixed}}

    @property
    def is_grid(self) -> bool:
        return self.protocol == "grid"

    def on_grid(self, selection_seeds: int) -> Experiment:
        """This experiment in the grid protocol: its window the lattice points within its LR range
        (the optimizer's by default), its knobs the family's published defaults, one study."""
        points = lattice(*(self.lr_range or default_lr_range(self.optimizer, self.family)))
        return dataclasses.replace(
            self, protocol="grid", selection_seeds=selection_seeds, lr_range=(points[0], points[-1]),
            fixed=default_knobs(self.family, self.epochs), repeat=0,
        )  # fmt: skip

    @property
    def base_lr_bounds(self) -> tuple[float, float]:
        """The searched base-LR range: the experiment's own (a grid's window, widened by as far as
        the grid may be extended), else the optimizer's (``default_lr_range``)."""
        if self.is_grid:
            return extension_bounds(self.lr_range)
        return self.lr_range or default_lr_range(self.optimizer, self.family)

    @property
    def optimizer_settings(self) -> OptimizerSettings:
        return OptimizerSettings(
            momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.weight_decay
        )

    @property
    def optimizer_label(self) -> str:
        """The optimizer and any setting that differs from its default, e.g. ``sgd_momentum0_wd0.0001``,
        then ``_bf16`` when trained so: a bf16 sweep names its own studies and report section."""
        label = optimizer_label(self.optimizer, self.optimizer_settings)
        return label if self.precision == "fp32" else f"{label}_{self.precision}"

    @property
    def study_name(self) -> str:
        """``<workload>-<optimizer>-<family>``, then the fixed knobs (``-[cooldown_fraction=0.1]``),
        then ``-repeat<k>`` for a repeat other than the first (its own name gives it its own
        sampler seeds); a grid study, ``-grid``, after its knobs where they are not the defaults."""
        name = f"{self.workload}-{self.optimizer_label}-{self.family}"
        if self.is_grid:  # knobs at the protocol's defaults (objectives.grid) are not in its name
            changed = dict(self.fixed) != dict(default_knobs(self.family, self.epochs))
            return f"{name}-[{fixed_label(self.fixed)}]-grid" if changed else f"{name}-grid"
        if self.fixed:
            name += f"-[{fixed_label(self.fixed)}]"
        return f"{name}-repeat{self.repeat}" if self.repeat else name


def make_experiment(
    workload: Workload, family: str, *, optimizer: str | None = None, settings: OptimizerSettings | None = None,
    epochs: int | None = None, batch_size: int | None = None, early_stopping: int | None = None, seed: int = 0,
    precision: str = "fp32",
) -> Experiment:  # fmt: skip
    """The experiment of ``family`` on ``workload``, each setting not given the workload's default.
    The optimizer's settings are stored as the values in force, so a default given explicitly
    names the same study. Raises ValueError for settings the optimizer does not take."""
    optimizer = optimizer or workload.optimizer
    spec, settings = get_optimizer(optimizer), settings or OptimizerSettings()
    spec.check(settings)
    return Experiment(
        workload=workload.name,
        optimizer=optimizer,
        family=family,
        epochs=epochs or workload.epochs,
        batch_size=batch_size or workload.batch_size,
        early_stopping=early_stopping,
        seed=seed,
        momentum=spec.momentum(settings) if spec.has_momentum_setting else None,
        nesterov=settings.nesterov,
        weight_decay=spec.weight_decay(settings),
        precision=precision,
    )


PROTOCOLS = ("budgeted", "grid")
"""How a study tunes: TPE over every knob within a trial budget, or the grid protocol."""


def default_lr_range(optimizer: str, family: str) -> tuple[float, float]:
    """The optimizer's base-LR range, its schedule-free variant's for the ``schedule_free`` family."""
    spec = get_optimizer(optimizer)
    if get_family(family).schedule_free and spec.schedule_free_lr_range:
        return spec.schedule_free_lr_range
    return spec.lr_range


def fixed_label(fixed: tuple[tuple[str, Any], ...]) -> str:
    """Fixed knobs in words: ``cooldown_fraction=0.1,cooldown_shape=1-sqrt``."""
    return ",".join(
        f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}" for name, value in fixed
    )


def optimizer_label(optimizer: str, settings: OptimizerSettings) -> str:
    """The optimizer's name, then each setting that differs from its default: sweeps with other
    settings get their own studies and report sections. Defaults add nothing."""
    spec, default = get_optimizer(optimizer), OptimizerSettings()
    parts = [optimizer]
    if spec.momentum(settings) != spec.momentum(default):
        parts.append(f"momentum{spec.momentum(settings):g}")
    if settings.nesterov:
        parts.append("nesterov")
    if spec.weight_decay(settings) != spec.weight_decay(default):
        parts.append(f"wd{spec.weight_decay(settings):g}")
    return "_".join(parts)
