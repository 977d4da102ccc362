"""The population engine: many members trained at once, curves out. It knows nothing about Optuna.

A *member* is one configuration to train (optimizer, base LR, schedule family and its knobs,
seed). ``train`` takes a list of members and returns one result per member, in order. Members
that share an optimizer are trained together: their parameters are stacked along a leading
member dimension and every step is one batched forward and backward pass (``stacked_forward``),
followed by a batched optimizer step with each member's own learning rate. Tiny models leave a
CPU mostly idle one at a time; stacked, they keep it busy.

Each member still owns everything that makes its curve its own: its initialization
(the CPU generator seeded with ``seed`` before building its model), its data order (a generator seeded with
``seed``), its schedule and its optimizer state. So a member's curve is the same, up to float
rounding, whether it trains alone or in a population. Members that are stopped (pruned,
diverged, early-stopped) leave the batch, which shrinks. Dropout draws its masks from one random
stream for the whole population, so with dropout only the distribution of a member's curve,
not its exact values, is independent of its companions.

Members share a population when they share an optimizer, its settings and whether it is
schedule-free (``MemberConfig.population_key``). A family that cycles momentum (``one_cycle``,
``cyclic_*``) gives its member its own momentum (or beta1) at every step; a schedule-free
member is evaluated at the optimizer's average, as the ``schedulefree`` package's
``optimizer.eval()`` would.

An epoch is one pass over the training set in each member's own order, or, for workloads with
``steps_per_epoch`` (the language model), that many batches drawn at random with replacement.

Per epoch it records the mean train loss, validation loss, accuracy and the workload's metric
(``objectives.metrics``), the LR and momentum of the epoch's last update, and the seconds of
compute charged to the member so far (each epoch's wall time split evenly over the members that
trained in it). A non-finite train or validation loss stops the member as diverged; it scores
the metric's worst value.
"""

from __future__ import annotations

import functools
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

from objectives.engine.allocator import keep_freed_memory
from objectives.engine.stacked_forward import Forward, stacked_forwards
from objectives.metrics import Metric
from objectives.optim.batched import BatchedOptimizer
from objectives.optim.optimizers import OptimizerSettings, get_optimizer
from objectives.schedules import Multiplier, Plateau, Run, get_family
from objectives.workloads.registry import Splits, Workload

StopReason = Literal["diverged", "early_stopping", "stopped"]


@dataclass(frozen=True)
class MemberConfig:
    """One configuration to train."""

    optimizer: str
    lr: float
    family: str
    schedule_kwargs: dict[str, Any]
    seed: int
    optimizer_settings: OptimizerSettings = field(default_factory=OptimizerSettings)
    order_seed: int | None = None  # the data order's seed when not ``seed`` (telling noise sources apart)

    @property
    def data_order_seed(self) -> int:
        return self.seed if self.order_seed is None else self.order_seed

    def __post_init__(self) -> None:
        """Reject bad configurations before any training starts, with the offending value."""
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"the base LR must be a positive number, but got lr={self.lr}")
        self.make_optimizer()
        # The knobs are valid or not whatever the run length, so any run checks them.
        get_family(self.family).build(Run(total_steps=100, steps_per_epoch=10), **self.schedule_kwargs)

    @property
    def population_key(self) -> tuple[str, OptimizerSettings, bool]:
        """Members with the same key share one batched optimizer, so they train together."""
        return self.optimizer, self.optimizer_settings, get_family(self.family).schedule_free

    def make_optimizer(self) -> BatchedOptimizer:
        """The member's batched optimizer: the schedule-free variant for ``schedule_free``."""
        spec = get_optimizer(self.optimizer)
        spec.check(self.optimizer_settings)
        if get_family(self.family).schedule_free:
            return spec.schedule_free_batched(self.optimizer_settings)
        return spec.batched(self.optimizer_settings)


@dataclass
class Curve:
    """Per-epoch records, one list per quantity (the shape stored in each Optuna trial).

    ``val_metric`` is the workload's metric (accuracy, bits per character, ...); ``lr`` and
    ``momentum`` are those of the epoch's last update (``momentum`` is SGD's momentum or Adam's
    beta1, 0 for optimizers without one); ``seconds`` is cumulative."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    val_metric: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    momentum: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[Any]]:
        return asdict(self)

    def first_reaching(self, target: float, metric: Metric) -> int | None:
        """Index of the first epoch whose validation metric reaches ``target``."""
        return next((i for i, value in enumerate(self.val_metric) if metric.reached(value, target)), None)


@dataclass
class MemberResult:
    config: MemberConfig
    curve: Curve
    final_metric: float  # validation; with early stopping the best epoch's, whose weights are kept
    stop_reason: StopReason | None  # None: trained for every epoch
    test_metric: float | None = None  # only when asked for: tuning never looks at the test split


EpochCallback = Callable[[dict[int, Curve]], set[int]]
"""Called after each epoch with the curves so far of the members that trained in it and did not
diverge, by member index; returns the indices of the members to stop. All of a population's
members are seen at once, so a rule comparing them sees each one's latest epoch."""


EVAL_CHUNK = 2048
"""Validation and test examples per batched forward pass (bounds memory for big populations)."""


Precision = Literal["fp32", "bf16"]
"""How the forward and backward passes compute: fp32, or bf16 autocast (products in bfloat16,
parameters, optimizer and losses in fp32)."""


@functools.cache
def has_native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 products in hardware: a CUDA GPU that supports them,
    or a CPU with AVX512-BF16 or AMX (Linux: /proc/cpuinfo). Elsewhere PyTorch emulates them,
    slower than fp32. Asked once per device: ``train`` checks it on every call."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()  # noqa: SIM115
    except (OSError, StopIteration):
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_precision(precision: Precision, device: torch.device) -> None:
    """Raise ValueError, in one line, for bf16 where the hardware would only emulate it."""
    if precision == "bf16" and not has_native_bf16(device):
        raise ValueError(
            f"--precision bf16 needs native bfloat16 ({'a GPU that supports it' if device.type == 'cuda' else 'a CPU with avx512_bf16 or amx_bf16'}), "
            f"which this {device.type} lacks: emulated it would be slower than fp32; use --precision fp32"
        )


def _in_precision(forward: Forward, device: torch.device, precision: Precision) -> Forward:
    """``forward`` under bf16 autocast, its logits back in fp32 (the loss and metrics are fp32),
    or ``forward`` itself for fp32."""
    if precision == "fp32":
        return forward

    def autocast_forward(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return forward(params, buffers, x).float()

    return autocast_forward


def resolve_device(device: str) -> torch.device:
    """``auto``: the GPU when there is one, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda, but PyTorch sees no CUDA GPU here; use --device cpu or auto")
    return torch.device(device)


def fork_is_safe(threads: int, device: str) -> bool:
    """Whether a worker that trains may be forked from this process rather than started afresh:
    only on the CPU and on one thread. A forked copy of a process whose torch ran on several
    threads deadlocks when it runs on several threads itself (OpenMP's pool does not survive a
    fork; reproduced here), and CUDA cannot be used in a forked process."""
    if threads != 1 or device == "cuda":
        return False
    return resolve_device(device).type == "cpu"  # "auto": the GPU where there is one


@dataclass
class _Progress:
    """One member's bookkeeping across epochs: its curve, its best epoch, when to stop it."""

    metric: Metric
    curve: Curve = field(default_factory=Curve)
    best: float = math.nan  # the best validation metric so far
    kept_weights: dict[str, torch.Tensor] | None = None  # the best epoch's, with early stopping
    stale_epochs: int = 0  # epochs since the best one
    seconds: float = 0.0  # compute charged so far

    def record(
        self, epoch: int, train_loss: float, val_loss: float, val_acc: float, lr: float, momentum: float
    ) -> bool:
        """Append one epoch; True when it diverged (a non-finite loss)."""
        diverged = not (math.isfinite(train_loss) and math.isfinite(val_loss))
        curve = self.curve
        curve.epoch.append(epoch)
        curve.train_loss.append(train_loss)
        curve.val_loss.append(val_loss)
        curve.val_acc.append(math.nan if diverged else val_acc)
        curve.val_metric.append(math.nan if diverged else self.metric.of(val_loss, val_acc))
        curve.lr.append(lr)
        curve.momentum.append(momentum)
        curve.seconds.append(self.seconds)
        return diverged

    def track_best(self, weights: Callable[[], dict[str, torch.Tensor]] | None) -> None:
        """A better last epoch resets the stale count and, with early stopping, keeps its weights."""
        value = self.curve.val_metric[-1]
        if math.isnan(self.best) or self.metric.sign * value > self.metric.sign * self.best:
            self.best, self.stale_epochs = value, 0
            self.kept_weights = weights() if weights else None
        else:
            self.stale_epochs += 1


@dataclass
class _StackedMembers:
    """The members still training: stacked parameters and everything per member, aligned."""

    indices: list[int]  # positions in the caller's list of members
    params: dict[str, torch.Tensor]  # name -> (members, ...), leaves that require grad
    buffers: dict[str, torch.Tensor]
    optimizer: BatchedOptimizer
    base_momentum: float  # the optimizer's momentum or beta1 for members that do not cycle it
    schedules: list[Any]  # Multiplier, or Plateau (fed the validation loss)
    momenta: list[Multiplier | None]  # the cycled momentum, where the family cycles one
    generators: list[torch.Generator]

    def keep(self, positions: list[int]) -> None:
        """Keep only the members at ``positions`` (in this population's current order)."""
        index = torch.tensor(positions, dtype=torch.long, device=next(iter(self.params.values())).device)
        self.params = {name: p.detach()[index].requires_grad_() for name, p in self.params.items()}
        self.buffers = {name: b[index] for name, b in self.buffers.items()}
        self.optimizer.keep(index)
        for attribute in ("indices", "schedules", "momenta", "generators"):
            setattr(self, attribute, [getattr(self, attribute)[i] for i in positions])

    def evaluation_params(self) -> dict[str, torch.Tensor]:
        """The weights evaluation sees (a schedule-free optimizer's average, else the trained ones)."""
        names = list(self.params)
        return dict(zip(names, self.optimizer.evaluation_params([self.params[n] for n in names])))

    def schedule_tables(
        self, lrs: Sequence[float], steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Every member's LR at ``steps`` (members x steps), and momentum where any cycles one."""
        lr_table = np.stack([lr * schedule(steps) for lr, schedule in zip(lrs, self.schedules)])
        if not any(self.momenta):
            return lr_table, None
        full = np.full(len(steps), self.base_momentum)
        return lr_table, np.stack([full if m is None else m(steps) for m in self.momenta])


def member_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every (member, example): logits (members, n, [positions,] classes),
    targets (members, n, [positions]); a sequence's loss is the mean over its positions.

    The classes go to dimension 1, where PyTorch's CPU log-softmax over a few classes is about
    2.5x faster, forward and backward, than over the last dimension (measured on 32 x 32 x 10).
    """
    losses = F.cross_entropy(logits.movedim(-1, 1), targets, reduction="none")
    return losses.flatten(2).mean(2) if losses.dim() > 2 else losses


def _evaluate(
    forward: Forward,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-member loss and accuracy on (x, y), which all members share, in chunks of about
    ``EVAL_CHUNK`` predictions."""
    members = len(next(iter(params.values())))
    losses = torch.zeros(members, dtype=torch.float64, device=x.device)
    correct = torch.zeros_like(losses)
    chunk = max(1, EVAL_CHUNK // y[0].numel())
    with torch.no_grad():
        for start in range(0, len(y), chunk):
            xs, ys = x[start : start + chunk], y[start : start + chunk]
            logits = forward(params, buffers, xs)  # (members, n, [positions,] classes)
            losses += member_losses(logits, ys.expand(members, *ys.shape)).sum(1).double()
            # max's indices are argmax's (the first maximum), and 6x faster on these strided logits
            correct += (logits.max(-1).indices == ys).flatten(1).sum(1).double()
    return (losses / len(y)).cpu().numpy(), (correct / y.numel()).cpu().numpy()


def _build_population(
    workload: Workload, members: Sequence[MemberConfig], indices: list[int], run: Run, device: torch.device
) -> tuple[nn.Module, _StackedMembers]:
    models = []
    for index in indices:
        # The member's own initialization, drawn on the CPU (models are built there). Seeding
        # the CPU generator alone: torch.manual_seed also queues a seeding of every accelerator
        # backend, formatting the call stack for each: 0.4 ms a member 30 frames deep.
        torch.default_generator.manual_seed(members[index].seed)
        models.append(workload.make_model().to(device))
    params, buffers = stack_module_state(models)
    template = models[0].to("meta")
    first = members[indices[0]]
    base_momentum = get_optimizer(first.optimizer).base_momentum(first.optimizer_settings)
    families = [get_family(members[i].family) for i in indices]
    population = _StackedMembers(
        indices=list(indices),
        params={name: p.detach().requires_grad_() for name, p in params.items()},
        buffers=buffers,
        optimizer=first.make_optimizer(),
        base_momentum=base_momentum,
        schedules=[f.build(run, **members[i].schedule_kwargs) for f, i in zip(families, indices)],
        momenta=[
            f.momentum(run, **members[i].schedule_kwargs) if f.momentum and base_momentum > 0 else None
            for f, i in zip(families, indices)
        ],
        generators=[torch.Generator().manual_seed(members[i].data_order_seed) for i in indices],
    )
    return template, population


@dataclass(frozen=True)
class _Setup:
    """What stays fixed while a population trains: data on the device, forwards, lengths."""

    data: Splits
    train_forward: Forward
    evaluate_forward: Forward
    run: Run
    batch_size: int
    early_stopping: int | None
    evaluate_test: bool
    random_batches: bool  # an epoch of random batches (``Workload.steps_per_epoch``), not one pass
    metric: Metric


@dataclass(frozen=True)
class _Epoch:
    """One epoch of every member of a population, as measured."""

    train_losses: np.ndarray  # mean train loss per member
    val_losses: np.ndarray
    val_accs: np.ndarray
    lrs: np.ndarray  # members x steps
    momenta: np.ndarray  # members x steps (the optimizer's own where nothing cycles it)
    evaluated: dict[str, torch.Tensor]  # the weights validation saw


def _rows(table: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``table[indices]`` for a (members, batch) index: ``index_select`` on the flat index is the
    same copy, about 3.5x faster than advanced indexing on the CPU (measured on digits' batches)."""
    return table.index_select(0, indices.flatten()).view(*indices.shape, *table.shape[1:])


def _train_epoch(population: _StackedMembers, setup: _Setup, epoch: int, lr_steps: Sequence[float]) -> _Epoch:
    """One epoch of every member: train, then validate (both charged to the members' seconds)."""
    data, per_epoch, batch_size = setup.data, setup.run.steps_per_epoch, setup.batch_size
    device, n = data.x_train.device, len(data.y_train)
    steps = np.arange((epoch - 1) * per_epoch, epoch * per_epoch)
    lrs, momenta = population.schedule_tables(lr_steps, steps)
    lr_table = torch.as_tensor(lrs, dtype=torch.float32, device=device)
    momentum_table = None if momenta is None else torch.as_tensor(momenta, dtype=torch.float32, device=device)
    if setup.random_batches:
        orders = torch.stack(
            [torch.randint(n, (per_epoch * batch_size,), generator=g) for g in population.generators]
        )
    else:
        orders = torch.stack([torch.randperm(n, generator=g) for g in population.generators])
    orders = orders.to(device)
    loss_sums = torch.zeros(len(population.indices), device=device)
    for step in range(per_epoch):
        batch = orders[:, step * batch_size : (step + 1) * batch_size]
        logits = setup.train_forward(population.params, population.buffers, _rows(data.x_train, batch))
        losses = member_losses(logits, _rows(data.y_train, batch)).mean(1)
        params = list(population.params.values())  # the optimizer's state follows this order
        grads = torch.autograd.grad(losses.sum(), params)
        momentum = None if momentum_table is None else momentum_table[:, step]
        population.optimizer.step(params, list(grads), lr_table[:, step], momentum)
        loss_sums += losses.detach() * batch.shape[1]
    if momenta is None:
        momenta = np.full_like(lrs, population.base_momentum)
    evaluated = population.evaluation_params()
    val_losses, val_accs = _evaluate(
        setup.evaluate_forward, evaluated, population.buffers, data.x_val, data.y_val
    )
    mean_losses = (loss_sums.double() / orders.shape[1]).cpu().numpy()
    return _Epoch(mean_losses, val_losses, val_accs, lrs, momenta, evaluated)


def _finish(
    population: _StackedMembers, position: int, progress: _Progress, reason: StopReason | None,
    member: MemberConfig, setup: _Setup,
) -> MemberResult:  # fmt: skip
    """The member's result: its score and, when asked, the test accuracy of the weights it keeps."""
    worst = setup.metric.worst
    if reason == "diverged":
        return MemberResult(member, progress.curve, worst, reason, worst if setup.evaluate_test else None)
    if progress.kept_weights is not None:
        weights, final = progress.kept_weights, progress.best  # the best epoch's weights and score
    else:
        weights = {name: p[position].detach() for name, p in population.evaluation_params().items()}
        final = progress.curve.val_metric[-1]
    test_metric = None
    if setup.evaluate_test:  # the member alone, as a population of one, with the weights it keeps
        alone = {name: w[None] for name, w in weights.items()}
        member_buffers = {name: b[position : position + 1] for name, b in population.buffers.items()}
        data = setup.data
        losses, accuracies = _evaluate(
            setup.evaluate_forward, alone, member_buffers, data.x_test, data.y_test
        )
        test_metric = setup.metric.of(float(losses[0]), float(accuracies[0]))
    return MemberResult(member, progress.curve, final, reason, test_metric)


def _record_epoch(
    population: _StackedMembers, setup: _Setup, progress: dict[int, _Progress], epoch: int, measured: _Epoch,
    seconds: float,
) -> dict[int, StopReason]:  # fmt: skip
    """Record every member's epoch and feed its schedule; the diverged, by position."""
    evaluated = measured.evaluated
    diverged: dict[int, StopReason] = {}
    for position, index in enumerate(population.indices):
        member = progress[index]
        member.seconds += seconds
        values = tuple(
            float(v[position]) for v in (measured.train_losses, measured.val_losses, measured.val_accs)
        )
        lr, momentum = float(measured.lrs[position, -1]), float(measured.momenta[position, -1])
        if member.record(epoch, *values, lr, momentum):
            diverged[position] = "diverged"
            continue
        schedule = population.schedules[position]
        if isinstance(schedule, Plateau):
            schedule.observe(values[1])
        snapshot = lambda p=position: {n: w[p].detach().clone() for n, w in evaluated.items()}
        member.track_best(snapshot if setup.early_stopping else None)
    return diverged


def _train_population(
    workload: Workload, data: Splits, members: Sequence[MemberConfig], indices: list[int], *,
    epochs: int, batch_size: int, early_stopping: int | None, callback: EpochCallback,
    evaluate_test: bool, device: torch.device, precision: Precision,
) -> dict[int, MemberResult]:  # fmt: skip
    steps_per_epoch = workload.epoch_steps(data, batch_size)
    run = Run(epochs * steps_per_epoch, steps_per_epoch)
    template, population = _build_population(workload, members, indices, run, device)
    train_forward, evaluate_forward = (
        _in_precision(f, device, precision) for f in stacked_forwards(template)
    )
    tuning = [t.to(device) for t in (data.x_train, data.y_train, data.x_val, data.y_val)]
    test = [t.to(device) if evaluate_test else t for t in (data.x_test, data.y_test)]  # moved only if used
    on_device = Splits(*tuning, *test)
    setup = _Setup(
        on_device, train_forward, evaluate_forward, run, batch_size, early_stopping, evaluate_test,
        random_batches=workload.steps_per_epoch is not None, metric=workload.metric,
    )  # fmt: skip
    progress = {i: _Progress(workload.metric) for i in indices}
    finished: dict[int, MemberResult] = {}
    for epoch in range(1, epochs + 1):
        if not population.indices:
            break
        start, size = time.perf_counter(), len(population.indices)
        base_lrs = [members[i].lr for i in population.indices]
        measured = _train_epoch(population, setup, epoch, base_lrs)
        seconds = (time.perf_counter() - start) / size  # training and validation, as before
        leaving = _record_epoch(population, setup, progress, epoch, measured, seconds)
        trained = {p: i for p, i in enumerate(population.indices) if p not in leaving}
        stop = callback({index: progress[index].curve for index in trained.values()})
        for position, index in trained.items():
            if index in stop:
                leaving[position] = "stopped"
            elif early_stopping is not None and progress[index].stale_epochs >= early_stopping:
                leaving[position] = "early_stopping"
        for position, reason in leaving.items():
            index = population.indices[position]
            finished[index] = _finish(population, position, progress[index], reason, members[index], setup)
        if leaving:
            population.keep([p for p in range(size) if p not in leaving])
    for position, index in enumerate(population.indices):
        finished[index] = _finish(population, position, progress[index], None, members[index], setup)
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
    precision: Precision = "fp32",
) -> list[MemberResult]:
    """Train every member for up to ``epochs`` epochs, those sharing an optimizer together
    (``MemberConfig.population_key``);
    one result per member, in order.

    Args:
        early_stopping: stop a member after this many epochs without a better validation
            metric, and keep its best weights. None trains every epoch.
        on_epoch: see ``EpochCallback``; used by the sweep to report and prune.
        evaluate_test: also measure the final model's test metric (the final comparison only).
        device: ``cpu``, ``cuda`` or ``auto``.
        precision: ``fp32``, or ``bf16`` autocast where the hardware has it (``check_precision``).
    """
    keep_freed_memory()
    check_precision(precision, resolve_device(device))
    callback = on_epoch or (lambda curves: set())
    populations: dict[tuple[str, OptimizerSettings, bool], list[int]] = {}
    for index, member in enumerate(members):
        populations.setdefault(member.population_key, []).append(index)
    results: dict[int, MemberResult] = {}
    for indices in populations.values():
        results |= _train_population(
            workload, data, members, indices,
            epochs=epochs, batch_size=batch_size, early_stopping=early_stopping, callback=callback,
            evaluate_test=evaluate_test, device=resolve_device(device), precision=precision,
        )  # fmt: skip
    return [results[index] for index in range(len(members))]
