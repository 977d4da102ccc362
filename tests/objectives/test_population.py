"""The population engine against references it did not write: torch.optim and its schedulers."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import schedulefree
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler

from objectives.engine.training import MemberConfig, train
from objectives.optim import batched as batched_optimizers
from objectives.optim.optimizers import OPTIMIZERS, OptimizerSettings, get_optimizer
from objectives.schedules import Run, get_family
from objectives.workloads.registry import Splits, character_splits, get_workload, load_splits

DIGITS = get_workload("digits")
CNN = get_workload("fashion-mnist-cnn")


def _images(count: int, seed: int) -> Splits:
    """Random 28x28 'images' with a learnable label (bright top half or not), for the CNN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 1, 28, 28, generator=g)
    y = (x[:, 0, :14].mean((1, 2)) > x[:, 0, 14:].mean((1, 2))).long() * 3  # classes 0 and 3 of 10
    cut = count * 3 // 4
    return Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[cut:], y[cut:])


def _verse(characters: int) -> str:
    """A small made-up text with structure a transformer can pick up."""
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis", "nobler"]
    g = torch.Generator().manual_seed(0)
    picks = torch.randint(len(words), (characters,), generator=g).tolist()
    return " ".join(words[i] + (",\n" if i % 4 == 0 else "") for i in picks)[:characters]


TRANSFORMER = dataclasses.replace(get_workload("shakespeare"), steps_per_epoch=3)
CASES = {
    "mlp": (DIGITS, load_splits(DIGITS, 0), 3),
    "cnn": (CNN, _images(160, 0), 2),
    "transformer": (TRANSFORMER, character_splits(_verse(6000), context=64, vocabulary=66), 2),
}


def _member(optimizer: str, seed: int, lr: float | None = None) -> MemberConfig:
    lr = lr if lr is not None else {"sgd": 0.05, "adam": 0.003, "adamw": 0.003}[optimizer]
    return MemberConfig(
        optimizer=optimizer, lr=lr, family="cosine", schedule_kwargs={"final_fraction": 0.1}, seed=seed
    )


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_member_trains_the_same_alone_or_in_a_population(case: str, optimizer: str) -> None:
    workload, data, epochs = CASES[case]
    [alone] = train(workload, data, [_member(optimizer, 7)], epochs=epochs, batch_size=32)
    others = [_member(optimizer, 1, lr=0.01), _member(optimizer, 7), _member(optimizer, 3)]
    together = train(workload, data, others, epochs=epochs, batch_size=32)[1]
    for name in ("train_loss", "val_loss", "val_acc", "lr"):
        np.testing.assert_allclose(
            getattr(together.curve, name), getattr(alone.curve, name), rtol=1e-5, err_msg=name
        )


def _cosine(optimizer: torch.optim.Optimizer, member: MemberConfig, total: int) -> lr_scheduler.LRScheduler:
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=member.lr * 0.1)


def _torch_reference(
    workload, data: Splits, member: MemberConfig, epochs: int, batch_size: int, *,
    schedule=_cosine, schedule_free=None,
) -> dict[str, list[float]]:  # fmt: skip
    """The plain loop people write: one model, torch.optim, a scheduler stepped per update (or
    none, for a schedule-free optimizer, switched to ``eval()`` to validate)."""
    torch.manual_seed(member.seed)
    model = workload.make_model()
    steps_per_epoch = workload.epoch_steps(data, batch_size)
    if schedule_free is None:
        optimizer = get_optimizer(member.optimizer).make(model.parameters(), member.lr)
        scheduler = schedule(optimizer, member, epochs * steps_per_epoch)
    else:
        optimizer, scheduler = schedule_free(model.parameters()), None
    switch = getattr(optimizer, "train", None), getattr(optimizer, "eval", None)  # schedule-free only
    order_generator = torch.Generator().manual_seed(member.seed)
    curve: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_acc": []}
    n = len(data.y_train)
    for _ in range(epochs):
        if workload.steps_per_epoch:  # random batches, drawn with replacement
            order = torch.randint(n, (steps_per_epoch * batch_size,), generator=order_generator)
        else:
            order = torch.randperm(n, generator=order_generator)
        total = 0.0
        model.train()
        if switch[0]:
            switch[0]()
        for step in range(steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            loss = _cross_entropy(model(data.x_train[batch]), data.y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler:
                scheduler.step()
            total += loss.item() * len(batch)
        model.eval()
        if switch[1]:
            switch[1]()
        with torch.no_grad():
            logits = model(data.x_val)
        curve["train_loss"].append(total / len(order))
        curve["val_loss"].append(_cross_entropy(logits, data.y_val).item())
        curve["val_acc"].append((logits.argmax(-1) == data.y_val).float().mean().item())
    return curve


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over every prediction: one per example, or one per position of a sequence."""
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def _assert_same_curve(result, reference: dict[str, list[float]]) -> None:
    for name, values in reference.items():
        np.testing.assert_allclose(getattr(result.curve, name), values, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_population_of_one_is_the_plain_torch_loop(case: str, optimizer: str) -> None:
    workload, data, epochs = CASES[case]
    member = _member(optimizer, 5)
    [result] = train(workload, data, [member], epochs=epochs, batch_size=32)
    _assert_same_curve(result, _torch_reference(workload, data, member, epochs, 32))


def test_the_transformer_with_its_default_adamw_is_the_plain_torch_loop() -> None:
    workload, data, epochs = CASES["transformer"]
    member = _member("adamw", 5)
    [result] = train(workload, data, [member], epochs=epochs, batch_size=16)
    _assert_same_curve(result, _torch_reference(workload, data, member, epochs, 16))


ONE_CYCLE = {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e3, "anneal": "cos"}


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_one_cycle_trains_as_torch_one_cycle_lr_with_its_default_momentum_cycling(optimizer: str) -> None:
    workload, data, epochs = CASES["mlp"]
    lr = {"sgd": 0.2, "adam": 0.01}[optimizer]
    member = MemberConfig(optimizer=optimizer, lr=lr, family="one_cycle", schedule_kwargs=ONE_CYCLE, seed=5)

    def one_cycle_lr(
        opt: torch.optim.Optimizer, member: MemberConfig, total: int
    ) -> lr_scheduler.LRScheduler:
        return lr_scheduler.OneCycleLR(
            opt, max_lr=member.lr, total_steps=total, pct_start=0.3, div_factor=25.0, final_div_factor=1e3
        )  # cycle_momentum=True, PyTorch's default

    [result] = train(workload, data, [member], epochs=epochs, batch_size=32)
    _assert_same_curve(result, _torch_reference(workload, data, member, epochs, 32, schedule=one_cycle_lr))
    assert min(result.curve.momentum) < 0.9 < max(result.curve.momentum)


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_schedule_free_trains_as_the_package_and_validates_at_its_average(optimizer: str) -> None:
    workload, data, epochs = CASES["mlp"]
    lr = {"sgd": 0.5, "adamw": 0.003}[optimizer]
    steps_per_epoch = math.ceil(len(data.y_train) / 32)
    member = MemberConfig(
        optimizer=optimizer, lr=lr, family="schedule_free", schedule_kwargs={"warmup_fraction": 0.1}, seed=5
    )
    warmup = round(0.1 * epochs * steps_per_epoch)
    package = {"sgd": schedulefree.SGDScheduleFree, "adamw": schedulefree.AdamWScheduleFree}[optimizer]
    decay = get_optimizer(optimizer).weight_decay(OptimizerSettings())
    [result] = train(workload, data, [member], epochs=epochs, batch_size=32)
    reference = _torch_reference(
        workload, data, member, epochs, 32,
        schedule_free=lambda params: package(params, lr=lr, warmup_steps=warmup, weight_decay=decay),
    )  # fmt: skip
    _assert_same_curve(result, reference)


SETTINGS = [
    ("sgd", OptimizerSettings()),
    ("sgd", OptimizerSettings(momentum=0.0)),  # plain SGD
    ("sgd", OptimizerSettings(momentum=0.5, nesterov=True, weight_decay=0.1)),
    ("adam", OptimizerSettings()),
    ("adam", OptimizerSettings(weight_decay=0.1)),  # L2, coupled
    ("adamw", OptimizerSettings()),  # decoupled 0.01
    ("adamw", OptimizerSettings(weight_decay=0.3)),
    ("rmsprop", OptimizerSettings()),
    ("rmsprop", OptimizerSettings(weight_decay=0.01)),
    ("adagrad", OptimizerSettings()),
    ("adagrad", OptimizerSettings(weight_decay=0.01)),
]


def _stacked_problem(members: int, steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Start weights, per-step LRs and gradients, every member its own."""
    rng = torch.Generator().manual_seed(0)
    start = torch.randn(members, 4, 5, generator=rng)
    lrs = torch.rand(steps, members, generator=rng) * 0.1 + 0.01  # every member its own LR each step
    grads = torch.randn(steps, members, 4, 5, generator=rng)
    return start, lrs, grads


def test_every_optimizer_is_covered_by_the_settings_table() -> None:
    assert {name for name, _ in SETTINGS} == set(OPTIMIZERS)


@pytest.mark.parametrize("name,settings", SETTINGS, ids=str)
def test_batched_optimizers_follow_torch_optim_per_member(name: str, settings: OptimizerSettings) -> None:
    spec, members, steps = get_optimizer(name), 3, 6
    start, lrs, grads = _stacked_problem(members, steps)
    stacked = start.clone()
    batched = spec.batched(settings)
    assert isinstance(batched, batched_optimizers.BatchedOptimizer)
    for step in range(steps):
        batched.step([stacked], [grads[step]], lrs[step])
    for member in range(members):
        parameter = torch.nn.Parameter(start[member].clone())
        reference = spec.make([parameter], 0.1, settings)
        for step in range(steps):
            parameter.grad = grads[step, member].clone()
            reference.param_groups[0]["lr"] = float(lrs[step, member])
            reference.step()
        torch.testing.assert_close(stacked[member], parameter.detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_a_cycled_momentum_follows_torch_per_member(name: str) -> None:
    """Each member's momentum (SGD) or beta1 (Adam) changes every step, as a scheduler sets it."""
    spec, members, steps = get_optimizer(name), 3, 8
    start, lrs, grads = _stacked_problem(members, steps)
    momenta = torch.rand(steps, members, generator=torch.Generator().manual_seed(1)) * 0.2 + 0.75
    stacked, batched = start.clone(), spec.batched()
    for step in range(steps):
        batched.step([stacked], [grads[step]], lrs[step], momenta[step])
    for member in range(members):
        parameter = torch.nn.Parameter(start[member].clone())
        reference = spec.make([parameter], 0.1)
        group = reference.param_groups[0]
        for step in range(steps):
            parameter.grad = grads[step, member].clone()
            group["lr"] = float(lrs[step, member])
            if name == "sgd":
                group["momentum"] = float(momenta[step, member])
            else:
                group["betas"] = (float(momenta[step, member]), group["betas"][1])
            reference.step()
        torch.testing.assert_close(stacked[member], parameter.detach(), rtol=1e-5, atol=1e-6)


SCHEDULE_FREE = {"sgd": schedulefree.SGDScheduleFree, "adamw": schedulefree.AdamWScheduleFree}


def test_schedule_free_variants_are_the_packages() -> None:
    assert {name for name, spec in OPTIMIZERS.items() if spec.schedule_free} == set(SCHEDULE_FREE)
    with pytest.raises(ValueError, match=r"schedule-free variant \(sgd, adamw\), but got rmsprop"):
        get_optimizer("rmsprop").schedule_free_batched(OptimizerSettings())
    with pytest.raises(ValueError, match="momentum=0"):
        get_optimizer("sgd").schedule_free_batched(OptimizerSettings(momentum=0.0))


@pytest.mark.parametrize("weight_decay", [None, 0.05])
@pytest.mark.parametrize("name", sorted(SCHEDULE_FREE))
def test_batched_schedule_free_follows_the_package_per_member(name: str, weight_decay: float | None) -> None:
    """A whole run with the package's warmup: the trained y at every step and the averaged x
    that ``optimizer.eval()`` switches to."""
    spec, members, steps, warmup = get_optimizer(name), 3, 40, 7
    settings = OptimizerSettings(weight_decay=weight_decay)
    start, _, grads = _stacked_problem(members, steps)
    base = torch.tensor([0.05, 0.02, 0.3])
    schedule = get_family("schedule_free").build(Run(steps, 10), warmup_fraction=warmup / steps)
    stacked, batched = start.clone(), spec.schedule_free_batched(settings)
    trajectory = []
    for step in range(steps):
        batched.step([stacked], [grads[step]], base * float(schedule(np.array([step]))[0]))
        trajectory.append(stacked.clone())
    averaged = batched.evaluation_params([stacked])[0]
    for member in range(members):
        parameter = torch.nn.Parameter(start[member].clone())
        reference = SCHEDULE_FREE[name](
            [parameter], lr=float(base[member]), warmup_steps=warmup, weight_decay=spec.weight_decay(settings)
        )
        reference.train()
        for step in range(steps):
            parameter.grad = grads[step, member].clone()
            reference.step()
            torch.testing.assert_close(trajectory[step][member], parameter.detach(), rtol=1e-5, atol=1e-6)
        reference.eval()
        torch.testing.assert_close(averaged[member], parameter.detach(), rtol=1e-5, atol=1e-6)


def test_members_leave_and_the_others_are_unaffected() -> None:
    workload, data, epochs = CASES["mlp"]
    members = [_member("sgd", seed) for seed in (1, 2, 3)]
    full = train(workload, data, members, epochs=epochs, batch_size=32)
    stopped = train(workload, data, members, epochs=epochs, batch_size=32, on_epoch=lambda curves: {1})
    assert stopped[1].stop_reason == "stopped" and stopped[1].curve.epoch == [1]
    for index in (0, 2):
        np.testing.assert_allclose(stopped[index].curve.val_loss, full[index].curve.val_loss, rtol=1e-5)
