"""Optimizers the sweep compares schedules on, each with a default base-LR search range."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from objectives import batched_optimizers as batched


@dataclass(frozen=True)
class OptimizerSpec:
    name: str
    make: Callable[[Iterable[nn.Parameter], float], torch.optim.Optimizer]  # (params, lr): one model
    batched: Callable[[], batched.BatchedOptimizer]  # the same rule for stacked members
    lr_range: tuple[float, float]  # searched on a log scale


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in [
        OptimizerSpec(
            "sgd", lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9), batched.SGD, (1e-3, 1.0)
        ),
        OptimizerSpec("adam", lambda params, lr: torch.optim.Adam(params, lr=lr), batched.Adam, (1e-4, 3e-2)),
        OptimizerSpec(
            "adamw",
            lambda params, lr: torch.optim.AdamW(params, lr=lr, weight_decay=0.01),
            lambda: batched.Adam(weight_decay=0.01),
            (1e-4, 3e-2),
        ),
        OptimizerSpec(
            "rmsprop", lambda params, lr: torch.optim.RMSprop(params, lr=lr), batched.RMSprop, (1e-5, 1e-2)
        ),
        OptimizerSpec(
            "adagrad", lambda params, lr: torch.optim.Adagrad(params, lr=lr), batched.Adagrad, (1e-3, 1.0)
        ),
    ]
}


def get_optimizer(name: str) -> OptimizerSpec:
    """Look an optimizer up by name; unknown names raise with the valid choices."""
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}") from None
