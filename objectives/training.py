"""The population engine: many members trained at once, curves out. It knows nothing about Optuna.

A *member* is one configuration to train (optimizer, base LR, schedule family and its knobs,
seed). ``train`` takes a list of members and returns one result per member, in order. Members
that share an optimizer are trained together: their parameters are stacked along a leading
member dimension and every step is one batched forward and backward pass (``stacked_forward``),
followed by a batched optimizer step with each member's own learning rate. Tiny models leave a
CPU mostly idle one at a time; stacked, they keep it busy.

Each member still owns everything that makes its curve its own: its initialization
(``torch.manual_seed(seed)`` before building its model), its data order (a generator seeded with
``seed``), its schedule and its optimizer state. So a member's curve is the same, up to float
rounding, whether it trains alone or in a population. Members that are stopped (pruned,
diverged, early-stopped) leave the batch, which shrinks. Dropout draws its masks from one random
stream for the whole population, so with dropout only the distribution of a member's curve,
not its exact values, is independent of its companions.

Per epoch it records the mean train loss, validation loss and accuracy, the LR of the epoch's
last update, and the seconds of compute charged to the member so far (each epoch's wall time
split evenly over the members that trained in it). A non-finite train or validation loss stops
the member as diverged; its score is ``DIVERGED_SCORE``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import stack_module_state

from objectives.batched_optimizers import BatchedOptimizer
from objectives.optimizers import get_optimizer
from objectives.schedules import Run, get_family
from objectives.stacked_forward import Forward, stacked_forwards
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
    final_val_acc: float  # with early stopping: the best epoch's, whose weights are kept
    stop_reason: StopReason | None  # None: trained for every epoch
    test_acc: float | None = None  # only when asked for: tuning never looks at the test split


EpochCallback = Callable[[dict[int, Curve]], set[int]]
"""Called after each epoch with the curves so far of the members that trained in it and did not
diverge, by member index; returns the indices of the members to stop. All of a population's
members are seen at once, so a rule comparing them sees each one's latest epoch."""


EVAL_CHUNK = 2048
"""Validation and test examples per batched forward pass (bounds memory for big populations)."""


def resolve_device(device: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but PyTorch sees no CUDA GPU here; use --device cpu or auto")
    return torch.device(device)


@dataclass
class _Population:
    """The members still training: stacked parameters and everything per member, aligned."""

    indices: list[int]  # positions in the caller's list of members
    params: dict[str, torch.Tensor]  # name -> (members, ...), leaves that require grad
    buffers: dict[str, torch.Tensor]
    optimizer: BatchedOptimizer
    schedules: list[Any]
    generators: list[torch.Generator]

    def keep(self, positions: list[int]) -> None:
        """Keep only the members at ``positions`` (in this population's current order)."""
        index = torch.tensor(positions, dtype=torch.long, device=next(iter(self.params.values())).device)
        self.params = {name: p.detach()[index].requires_grad_() for name, p in self.params.items()}
        self.buffers = {name: b[index] for name, b in self.buffers.items()}
        self.optimizer.keep(index)
        for attribute in ("indices", "schedules", "generators"):
            setattr(self, attribute, [getattr(self, attribute)[i] for i in positions])


def _losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every (member, example): logits (members, n, classes), targets (members, n).

    The classes go to dimension 1, where PyTorch's CPU log-softmax over a few classes is about
    2.5x faster, forward and backward, than over the last dimension (measured on 32 x 32 x 10).
    """
    return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")


def _evaluate(
    forward: Forward,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-member loss and accuracy on (x, y), which all members share, in chunks."""
    members = len(next(iter(params.values())))
    losses = torch.zeros(members, dtype=torch.float64, device=x.device)
    correct = torch.zeros_like(losses)
    with torch.no_grad():
        for start in range(0, len(y), EVAL_CHUNK):
            xs, ys = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            logits = forward(params, buffers, xs)  # (members, n, classes)
            losses += _losses(logits, ys.expand(members, -1)).sum(1).double()
            correct += (logits.argmax(-1) == ys).sum(1).double()
    return (losses / len(y)).cpu().numpy(), (correct / len(y)).cpu().numpy()


def _build_population(
    workload: Workload, members: Sequence[MemberConfig], indices: list[int], run: Run, device: torch.device
) -> tuple[nn.Module, _Population]:
    models = []
    for index in indices:
        torch.manual_seed(members[index].seed)  # the member's own initialization
        models.append(workload.make_model().to(device))
    params, buffers = stack_module_state(models)
    template = models[0].to("meta")
    population = _Population(
        indices=list(indices),
        params={name: p.detach().requires_grad_() for name, p in params.items()},
        buffers=buffers,
        optimizer=get_optimizer(members[indices[0]].optimizer).batched(),
        schedules=[get_family(members[i].family).build(run, **members[i].schedule_kwargs) for i in indices],
        generators=[torch.Generator().manual_seed(members[i].seed) for i in indices],
    )
    return template, population


def _train_population(
    workload: Workload,
    data: Splits,
    members: Sequence[MemberConfig],
    indices: list[int],
    *,
    epochs: int,
    batch_size: int,
    early_stopping: int | None,
    callback: EpochCallback,
    evaluate_test: bool,
    device: torch.device,
) -> dict[int, MemberResult]:
    n = len(data.y_train)
    steps_per_epoch = math.ceil(n / batch_size)
    run = Run(epochs * steps_per_epoch, steps_per_epoch)
    template, population = _build_population(workload, members, indices, run, device)
    train_forward, evaluate_forward = stacked_forwards(template)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_val, y_val = data.x_val.to(device), data.y_val.to(device)
    x_test, y_test = (data.x_test.to(device), data.y_test.to(device)) if evaluate_test else (None, None)
    curves = {i: Curve() for i in indices}
    best = {i: (-math.inf, None, 0) for i in indices}  # accuracy, weights (early stopping), stale epochs
    finished: dict[int, MemberResult] = {}
    charged = dict.fromkeys(indices, 0.0)

    def finish(position: int, reason: StopReason | None) -> None:
        index = population.indices[position]
        curve = curves[index]
        best_acc, best_weights, _ = best[index]
        weights = {name: p[position].detach() for name, p in population.params.items()}
        if reason == "diverged":
            final = DIVERGED_SCORE
        elif best_weights is not None:
            weights, final = best_weights, best_acc  # keep the best epoch's weights and score
        else:
            final = curve.val_acc[-1]
        test_acc = None
        if evaluate_test:  # the member alone, as a population of one, with the weights it keeps
            alone = {name: w[None] for name, w in weights.items()}
            member_buffers = {name: b[position : position + 1] for name, b in population.buffers.items()}
            test_acc = (
                DIVERGED_SCORE
                if reason == "diverged"
                else float(_evaluate(evaluate_forward, alone, member_buffers, x_test, y_test)[1][0])
            )
        finished[index] = MemberResult(members[index], curve, final, reason, test_acc)

    for epoch in range(1, epochs + 1):
        if not population.indices:
            break
        start = time.perf_counter()
        size = len(population.indices)
        steps = np.arange((epoch - 1) * steps_per_epoch, epoch * steps_per_epoch)
        lrs = np.stack(
            [members[i].lr * schedule(steps) for i, schedule in zip(population.indices, population.schedules)]
        )
        lr_table = torch.as_tensor(lrs, dtype=torch.float32, device=device)
        orders = torch.stack([torch.randperm(n, generator=g) for g in population.generators]).to(device)
        loss_sums = torch.zeros(size, device=device)
        for step in range(steps_per_epoch):
            batch = orders[:, step * batch_size : (step + 1) * batch_size]
            logits = train_forward(population.params, population.buffers, x_train[batch])
            losses = _losses(logits, y_train[batch]).mean(1)
            params = list(population.params.values())  # the optimizer's state follows this order
            grads = torch.autograd.grad(losses.sum(), params)
            population.optimizer.step(params, list(grads), lr_table[:, step])
            loss_sums += losses.detach() * batch.shape[1]
        train_losses = (loss_sums.double() / n).cpu().numpy()
        val_losses, val_accs = _evaluate(
            evaluate_forward, population.params, population.buffers, x_val, y_val
        )
        seconds = (time.perf_counter() - start) / size

        leaving: dict[int, StopReason] = {}
        for position, index in enumerate(population.indices):
            curve, schedule = curves[index], population.schedules[position]
            charged[index] += seconds
            diverged = not (math.isfinite(train_losses[position]) and math.isfinite(val_losses[position]))
            curve.epoch.append(epoch)
            curve.train_loss.append(float(train_losses[position]))
            curve.val_loss.append(float(val_losses[position]))
            curve.val_acc.append(math.nan if diverged else float(val_accs[position]))
            curve.lr.append(float(lrs[position, -1]))
            curve.seconds.append(charged[index])
            if diverged:
                leaving[position] = "diverged"
                continue
            if get_family(members[index].family).reacts_to_val_loss:
                schedule.observe(float(val_losses[position]))
            best_acc, best_weights, stale = best[index]
            if val_accs[position] > best_acc:
                snapshot = (
                    {n_: p[position].detach().clone() for n_, p in population.params.items()}
                    if early_stopping
                    else None
                )
                best[index] = (float(val_accs[position]), snapshot, 0)
            else:
                best[index] = (best_acc, best_weights, stale + 1)
        trained = {
            position: index for position, index in enumerate(population.indices) if position not in leaving
        }
        stop = callback({index: curves[index] for index in trained.values()})
        for position, index in trained.items():
            if index in stop:
                leaving[position] = "stopped"
            elif early_stopping is not None and best[index][2] >= early_stopping:
                leaving[position] = "early_stopping"
        for position, reason in leaving.items():
            finish(position, reason)
        if leaving:
            population.keep([p for p in range(size) if p not in leaving])
    for position in range(len(population.indices)):
        finish(position, None)
    return finished


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
    device: str = "cpu",
) -> list[MemberResult]:
    """Train every member for up to ``epochs`` epochs, those sharing an optimizer together;
    one result per member, in order.

    Args:
        early_stopping: stop a member after this many epochs without a better validation
            accuracy, and keep its best weights. None trains every epoch.
        on_epoch: see ``EpochCallback``; used by the sweep to report and prune.
        evaluate_test: also measure the final model's test accuracy (the final comparison only).
        device: ``cpu``, ``cuda`` or ``auto``.
    """
    callback = on_epoch or (lambda curves: set())
    by_optimizer: dict[str, list[int]] = {}
    for index, member in enumerate(members):
        by_optimizer.setdefault(member.optimizer, []).append(index)
    results: dict[int, MemberResult] = {}
    for indices in by_optimizer.values():
        results |= _train_population(
            workload, data, members, indices,
            epochs=epochs, batch_size=batch_size, early_stopping=early_stopping, callback=callback,
            evaluate_test=evaluate_test, device=resolve_device(device),
        )  # fmt: skip
    return [results[index] for index in range(len(members))]
