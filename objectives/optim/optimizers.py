"""Optimizers the sweep compares schedules on: their settings, base-LR ranges and batched rules.

Each optimizer is PyTorch's (``make``) and the same rule on stacked members (``batched``), with
the settings a study fixes (``OptimizerSettings``: SGD's momentum and Nesterov, every optimizer's
weight decay). ``sgd`` and ``adamw`` also have a schedule-free variant (the ``schedulefree``
package's ``SGDScheduleFree`` and ``AdamWScheduleFree``), used by the ``schedule_free`` family.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: naming optimizers (every --help) needs no torch
    import torch
    from torch import nn

    from objectives.optim import batched

DEFAULT_MOMENTUM = 0.9
"""SGD's momentum unless ``--momentum`` says otherwise (0 is plain SGD)."""

ADAM_BETAS = (0.9, 0.999)
"""Adam's and AdamW's betas, PyTorch's defaults (given to the batched rule too)."""


@dataclass(frozen=True)
class OptimizerSettings:
    """An optimizer's settings besides the LR; None means the optimizer's default."""

    momentum: float | None = None  # SGD only; default DEFAULT_MOMENTUM, 0 is plain SGD
    nesterov: bool = False  # SGD only; needs momentum > 0
    weight_decay: float | None = None  # default: the optimizer's (0.01 for adamw, else 0)


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer: PyTorch's class, its batched twin, and what the sweep searches."""

    name: str
    torch_class: str  # its name in torch.optim
    batched_rule: Callable[
        [ModuleType, float, float, bool], batched.BatchedOptimizer
    ]  # (module, momentum, decay, nesterov)
    lr_range: tuple[float, float]  # searched on a log scale
    default_weight_decay: float = 0.0
    has_momentum_setting: bool = False  # SGD: --momentum and --nesterov apply
    has_beta1: bool = False  # Adam-style: one_cycle and cyclic_* cycle beta1
    schedule_free: Callable[[ModuleType, float, float], batched.BatchedOptimizer] | None = (
        None  # (module, beta, decay)
    )
    schedule_free_lr_range: tuple[float, float] | None = None  # the variant's own base-LR range

    def check(self, settings: OptimizerSettings) -> None:
        """Raise ValueError, naming the value, for settings this optimizer does not take."""
        if not self.has_momentum_setting and (settings.momentum is not None or settings.nesterov):
            raise ValueError(f"--momentum and --nesterov are SGD settings; {self.name} has none")
        momentum = self.momentum(settings)
        if not (0 <= momentum < 1):
            raise ValueError(f"momentum must be in [0, 1), but got momentum={momentum}")
        if settings.nesterov and momentum == 0:
            raise ValueError("--nesterov needs momentum > 0, but got momentum=0")
        decay = self.weight_decay(settings)
        if not (math.isfinite(decay) and decay >= 0):
            raise ValueError(f"weight decay must be a number >= 0, but got weight_decay={decay}")

    def momentum(self, settings: OptimizerSettings) -> float:
        """SGD's momentum (0 for the other optimizers, whose beta1 is fixed at 0.9)."""
        if not self.has_momentum_setting:
            return 0.0
        return DEFAULT_MOMENTUM if settings.momentum is None else settings.momentum

    def base_momentum(self, settings: OptimizerSettings) -> float:
        """The momentum one_cycle and cyclic_* would cycle: SGD's momentum or Adam's beta1; 0: none.

        PyTorch's schedulers would also switch momentum on for plain SGD and RMSprop; here an
        optimizer without momentum stays without it, and only its LR is scheduled."""
        return ADAM_BETAS[0] if self.has_beta1 else self.momentum(settings)

    def weight_decay(self, settings: OptimizerSettings) -> float:
        return self.default_weight_decay if settings.weight_decay is None else settings.weight_decay

    def make(
        self, params: Iterable[nn.Parameter], lr: float, settings: OptimizerSettings = OptimizerSettings()
    ) -> torch.optim.Optimizer:
        """PyTorch's optimizer for one model."""
        options: dict[str, float | bool] = {"lr": lr, "weight_decay": self.weight_decay(settings)}
        if self.has_momentum_setting:
            options |= {"momentum": self.momentum(settings), "nesterov": settings.nesterov}
        import torch

        return getattr(torch.optim, self.torch_class)(params, **options)

    def batched(self, settings: OptimizerSettings = OptimizerSettings()) -> batched.BatchedOptimizer:
        """The same rule for stacked members."""
        from objectives.optim import batched as batched_optimizers

        return self.batched_rule(
            batched_optimizers, self.momentum(settings), self.weight_decay(settings), settings.nesterov
        )

    def schedule_free_batched(self, settings: OptimizerSettings) -> batched.BatchedOptimizer:
        """The schedule-free variant for stacked members; ValueError where there is none."""
        self.check_schedule_free(settings)
        from objectives.optim import batched as batched_optimizers

        return self.schedule_free(
            batched_optimizers, self.base_momentum(settings), self.weight_decay(settings)
        )

    def check_schedule_free(self, settings: OptimizerSettings) -> None:
        """Raise ValueError, saying why, where these settings have no schedule-free variant."""
        if self.schedule_free is None:
            supported = ", ".join(name for name, spec in OPTIMIZERS.items() if spec.schedule_free)
            raise ValueError(
                f"schedule_free needs an optimizer with a schedule-free variant ({supported}), but got {self.name}"
            )
        if settings.nesterov:
            raise ValueError("schedule_free has no Nesterov variant; leave out --nesterov")
        if self.base_momentum(settings) == 0:
            raise ValueError(
                "schedule-free SGD needs momentum > 0 (its averaging weight), but got momentum=0"
            )


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in [
        OptimizerSpec(
            "sgd",
            "SGD",
            lambda b, momentum, decay, nesterov: b.SGD(momentum, decay, nesterov),
            (1e-3, 1.0),
            has_momentum_setting=True,
            schedule_free=lambda b, beta, decay: b.ScheduleFree(beta, decay, normalize=False),
            # Its z-step is plain SGD: no 1 / (1 - momentum) = 10x amplification, so 10x the range.
            schedule_free_lr_range=(1e-2, 10.0),
        ),
        OptimizerSpec(
            "adam",
            "Adam",
            lambda b, momentum, decay, nesterov: b.Adam(decay, decoupled=False, betas=ADAM_BETAS),
            (1e-4, 3e-2),
            has_beta1=True,
        ),
        OptimizerSpec(
            "adamw",
            "AdamW",
            lambda b, momentum, decay, nesterov: b.Adam(decay, decoupled=True, betas=ADAM_BETAS),
            (1e-4, 3e-2),
            default_weight_decay=0.01,
            has_beta1=True,
            schedule_free=lambda b, beta, decay: b.ScheduleFree(beta, decay, normalize=True),
        ),
        OptimizerSpec(
            "rmsprop",
            "RMSprop",
            lambda b, momentum, decay, nesterov: b.RMSprop(weight_decay=decay),
            (1e-5, 1e-2),
        ),
        OptimizerSpec(
            "adagrad",
            "Adagrad",
            lambda b, momentum, decay, nesterov: b.Adagrad(weight_decay=decay),
            (1e-3, 1.0),
        ),
    ]
}


def get_optimizer(name: str) -> OptimizerSpec:
    """Look an optimizer up by name; unknown names raise with the valid choices."""
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}") from None
