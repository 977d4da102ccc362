"""The training loop: members in, per-epoch curves out. It knows nothing about Optuna.

A *member* is one configuration to train (optimizer, base LR, schedule family and its knobs,
seed). ``train`` takes a list of members and returns one result per member, in order; today it
trains them one after another. Each member owns its initialization (``torch.manual_seed(seed)``)
and its data order (a generator seeded with ``seed``), so its curve does not depend on the others.

Per epoch it records the mean train loss, validation loss and accuracy, the LR of the epoch's
last update, and the wall seconds since the member started. A non-finite train or validation
loss stops the member as diverged; its score is ``DIVERGED_SCORE``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from objectives.optimizers import get_optimizer
from objectives.schedules import Run, get_family
from objectives.workloads import Splits, Workload

DIVERGED_SCORE = 0.0
"""The validation accuracy a diverged member is scored with: the worst possible, so samplers avoid it."""

StopReason = Literal["diverged", "early_stopping", "stopped"]


@dataclass(frozen=True)
class MemberConfig:
    """One configuration to train."""

    optimizer: str
    lr: float
    family: str
    schedule_kwargs: dict[str, Any]
    seed: int

    def __post_init__(self) -> None:
        """Reject bad configurations before any training starts, with the offending value."""
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"the base LR must be a positive number, but got lr={self.lr}")
        get_optimizer(self.optimizer)
        # The knobs are valid or not whatever the run length, so any run checks them.
        get_family(self.family).build(Run(total_steps=100, steps_per_epoch=10), **self.schedule_kwargs)


@dataclass
class Curve:
    """Per-epoch records, one list per quantity (the shape stored in each Optuna trial)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[Any]]:
        return asdict(self)

    def first_reaching(self, target: float) -> int | None:
        """Index of the first epoch whose validation accuracy reaches ``target``."""
        return next((i for i, acc in enumerate(self.val_acc) if acc >= target), None)


@dataclass
class MemberResult:
    config: MemberConfig
    curve: Curve
    final_val_acc: float  # after restoring the best weights when early stopping is on
    stop_reason: StopReason | None  # None: trained for every epoch
    test_acc: float | None = None  # only when asked for: tuning never looks at the test split


EpochCallback = Callable[[int, Curve], bool]
"""Called after each finished epoch with (member index, its curve so far); True stops the member."""


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = F.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).sum().item() / len(y)  # exact, not float32
    return loss, accuracy


def _train_member(
    workload: Workload,
    data: Splits,
    config: MemberConfig,
    *,
    epochs: int,
    batch_size: int,
    early_stopping: int | None,
    should_stop: Callable[[Curve], bool],
    evaluate_test: bool,
) -> MemberResult:
    torch.manual_seed(config.seed)
    model = workload.make_model()
    optimizer = get_optimizer(config.optimizer).make(model.parameters(), config.lr)
    family = get_family(config.family)
    n = len(data.y_train)
    steps_per_epoch = math.ceil(n / batch_size)
    schedule = family.build(Run(epochs * steps_per_epoch, steps_per_epoch), **config.schedule_kwargs)
    order_generator = torch.Generator().manual_seed(config.seed)

    curve = Curve()
    best_acc, best_state, stale_epochs = -math.inf, None, 0
    stop_reason: StopReason | None = None
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        steps = np.arange((epoch - 1) * steps_per_epoch, epoch * steps_per_epoch)
        lrs = (config.lr * schedule(steps)).tolist()
        order = torch.randperm(n, generator=order_generator)
        x_epoch, y_epoch = data.x_train[order], data.y_train[order]
        loss_sum = torch.zeros(())
        model.train()
        for i, lr in enumerate(lrs):
            x, y = (
                x_epoch[i * batch_size : (i + 1) * batch_size],
                y_epoch[i * batch_size : (i + 1) * batch_size],
            )
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.step()
            loss_sum += loss.detach() * len(y)
        train_loss = loss_sum.item() / n
        val_loss, val_acc = _evaluate(model, data.x_val, data.y_val)
        diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
        curve.epoch.append(epoch)
        curve.train_loss.append(train_loss)
        curve.val_loss.append(val_loss)
        curve.val_acc.append(math.nan if diverged else val_acc)
        curve.lr.append(lrs[-1])
        curve.seconds.append(time.perf_counter() - start)
        if diverged:
            stop_reason = "diverged"
            break
        if family.reacts_to_val_loss:
            schedule.observe(val_loss)
        if val_acc > best_acc:
            best_acc, stale_epochs = val_acc, 0
            if early_stopping is not None:
                best_state = copy.deepcopy(model.state_dict())
        else:
            stale_epochs += 1
        if should_stop(curve):
            stop_reason = "stopped"
            break
        if early_stopping is not None and stale_epochs >= early_stopping:
            stop_reason = "early_stopping"
            break

    if stop_reason == "diverged":
        final = DIVERGED_SCORE
    elif best_state is not None:
        model.load_state_dict(best_state)  # restore the best weights; their accuracy is best_acc
        final = best_acc
    else:
        final = curve.val_acc[-1]
    test_acc = None
    if evaluate_test:
        test_acc = (
            DIVERGED_SCORE if stop_reason == "diverged" else _evaluate(model, data.x_test, data.y_test)[1]
        )
    return MemberResult(
        config=config, curve=curve, final_val_acc=final, stop_reason=stop_reason, test_acc=test_acc
    )


def train(
    workload: Workload,
    data: Splits,
    members: Sequence[MemberConfig],
    *,
    epochs: int,
    batch_size: int,
    early_stopping: int | None = None,
    on_epoch: EpochCallback | None = None,
    evaluate_test: bool = False,
) -> list[MemberResult]:
    """Train every member for up to ``epochs`` epochs; one result per member, in order.

    Args:
        early_stopping: stop a member after this many epochs without a better validation
            accuracy, and restore its best weights. None trains every epoch.
        on_epoch: see ``EpochCallback``; used by the sweep to report and prune.
        evaluate_test: also measure the final model's test accuracy (the final comparison only).
    """
    callback = on_epoch or (lambda index, curve: False)
    return [
        _train_member(
            workload,
            data,
            config,
            epochs=epochs,
            batch_size=batch_size,
            early_stopping=early_stopping,
            should_stop=lambda curve, index=index: callback(index, curve),
            evaluate_test=evaluate_test,
        )
        for index, config in enumerate(members)
    ]
