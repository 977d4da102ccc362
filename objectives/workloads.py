"""Workloads: data, model, loss, metric, step budget and the accuracy that counts as converged.

A plain dict maps names to workloads (AlgoPerf's ``spec.py``, trimmed). Data is loaded once per
process into tensors (``load_splits`` is cached); training never touches a DataLoader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import numpy as np
import torch
from sklearn.datasets import load_digits, make_moons
from sklearn.model_selection import train_test_split
from torch import nn


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors. Tuning sees train and validation only."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass(frozen=True)
class Workload:
    """What to train and how long; the loss is cross-entropy and the metric accuracy for all."""

    name: str
    description: str
    load: Callable[[int], Splits]  # seed -> splits
    make_model: Callable[[], nn.Module]
    epochs: int  # default epoch budget
    batch_size: int
    target: float  # validation accuracy that counts as "converged"


def stratified_splits(
    x: np.ndarray, y: np.ndarray, *, seed: int, val: float = 0.2, test: float = 0.2
) -> Splits:
    """A fixed stratified train / validation / test split, determined by ``seed``."""
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, stratify=y, random_state=seed)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val / (1 - test), stratify=y_rest, random_state=seed
    )
    as_x, as_y = partial(torch.as_tensor, dtype=torch.float32), partial(torch.as_tensor, dtype=torch.long)
    return Splits(as_x(x_train), as_y(y_train), as_x(x_val), as_y(y_val), as_x(x_test), as_y(y_test))


def _digits(seed: int) -> Splits:
    digits = load_digits()  # 1,797 real 8x8 scans, shipped with scikit-learn
    return stratified_splits(digits.data / 16.0, digits.target, seed=seed)


def _digits_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def _moons(seed: int) -> Splits:
    x, y = make_moons(n_samples=1000, noise=0.25, random_state=0)  # the same points for every seed
    return stratified_splits(x, y, seed=seed)


def _moons_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))


WORKLOADS: dict[str, Workload] = {
    workload.name: workload
    for workload in [
        Workload(
            name="digits",
            description="scikit-learn 8x8 handwritten digits, MLP 64-128-10",
            load=_digits,
            make_model=_digits_mlp,
            epochs=20,
            batch_size=32,
            target=0.97,
        ),
        Workload(
            name="moons",
            description="two noisy half circles, tanh MLP 2-16-16-2 (the tiny one for quick tests)",
            load=_moons,
            make_model=_moons_mlp,
            epochs=10,
            batch_size=32,
            target=0.93,
        ),
    ]
}


def get_workload(name: str) -> Workload:
    """Look a workload up by name; unknown names raise with the valid choices."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose one of: {', '.join(WORKLOADS)}") from None


@lru_cache(maxsize=8)
def load_splits(name: str, seed: int) -> Splits:
    """The workload's splits for ``seed``, loaded once per process."""
    return get_workload(name).load(seed)
