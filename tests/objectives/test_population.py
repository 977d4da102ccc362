"""The population engine against references it did not write: torch.optim and its schedulers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.optim import lr_scheduler

from objectives import batched_optimizers
from objectives.optimizers import OPTIMIZERS, get_optimizer
from objectives.training import MemberConfig, train
from objectives.workloads import Splits, get_workload, load_splits

DIGITS = get_workload("digits")
CNN = get_workload("fashion-mnist-cnn")


def _images(count: int, seed: int) -> Splits:
    """Random 28x28 'images' with a learnable label (bright top half or not), for the CNN."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(count, 1, 28, 28, generator=g)
    y = (x[:, 0, :14].mean((1, 2)) > x[:, 0, 14:].mean((1, 2))).long() * 3  # classes 0 and 3 of 10
    cut = count * 3 // 4
    return Splits(x[:cut], y[:cut], x[cut:], y[cut:], x[cut:], y[cut:])


CASES = {
    "mlp": (DIGITS, load_splits("digits", 0), 3),
    "cnn": (CNN, _images(160, 0), 2),
}


def _member(optimizer: str, seed: int, lr: float | None = None) -> MemberConfig:
    lr = lr if lr is not None else {"sgd": 0.05, "adam": 0.003}[optimizer]
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


def _torch_reference(
    workload, data: Splits, member: MemberConfig, epochs: int, batch_size: int
) -> dict[str, list[float]]:
    """The plain loop people write: one model, torch.optim, CosineAnnealingLR stepped per update."""
    torch.manual_seed(member.seed)
    model = workload.make_model()
    optimizer = get_optimizer(member.optimizer).make(model.parameters(), member.lr)
    steps_per_epoch = math.ceil(len(data.y_train) / batch_size)
    scheduler = lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=epochs * steps_per_epoch, eta_min=member.lr * 0.1
    )
    order_generator = torch.Generator().manual_seed(member.seed)
    curve: dict[str, list[float]] = {"train_loss": [], "val_loss": [], "val_acc": []}
    for _ in range(epochs):
        order = torch.randperm(len(data.y_train), generator=order_generator)
        total = 0.0
        model.train()
        for step in range(steps_per_epoch):
            batch = order[step * batch_size : (step + 1) * batch_size]
            loss = F.cross_entropy(model(data.x_train[batch]), data.y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(batch)
        model.eval()
        with torch.no_grad():
            logits = model(data.x_val)
        curve["train_loss"].append(total / len(data.y_train))
        curve["val_loss"].append(F.cross_entropy(logits, data.y_val).item())
        curve["val_acc"].append((logits.argmax(1) == data.y_val).float().mean().item())
    return curve


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_population_of_one_is_the_plain_torch_loop(case: str, optimizer: str) -> None:
    workload, data, epochs = CASES[case]
    member = _member(optimizer, 5)
    [result] = train(workload, data, [member], epochs=epochs, batch_size=32)
    reference = _torch_reference(workload, data, member, epochs, 32)
    for name, values in reference.items():
        np.testing.assert_allclose(getattr(result.curve, name), values, rtol=1e-4, err_msg=name)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_batched_optimizers_follow_torch_optim_per_member(name: str) -> None:
    spec, members, steps = get_optimizer(name), 3, 6
    rng = torch.Generator().manual_seed(0)
    start = torch.randn(members, 4, 5, generator=rng)
    lrs = torch.rand(steps, members, generator=rng) * 0.1 + 0.01  # every member its own LR each step
    grads = torch.randn(steps, members, 4, 5, generator=rng)
    stacked = start.clone()
    batched = spec.batched()
    assert isinstance(batched, batched_optimizers.BatchedOptimizer)
    for step in range(steps):
        batched.step([stacked], [grads[step]], lrs[step])
    for member in range(members):
        parameter = torch.nn.Parameter(start[member].clone())
        reference = spec.make([parameter], 0.1)
        for step in range(steps):
            parameter.grad = grads[step, member].clone()
            reference.param_groups[0]["lr"] = float(lrs[step, member])
            reference.step()
        torch.testing.assert_close(stacked[member], parameter.detach(), rtol=1e-5, atol=1e-6)


def test_members_leave_and_the_others_are_unaffected() -> None:
    workload, data, epochs = CASES["mlp"]
    members = [_member("sgd", seed) for seed in (1, 2, 3)]
    full = train(workload, data, members, epochs=epochs, batch_size=32)
    stopped = train(workload, data, members, epochs=epochs, batch_size=32, on_epoch=lambda curves: {1})
    assert stopped[1].stop_reason == "stopped" and stopped[1].curve.epoch == [1]
    for index in (0, 2):
        np.testing.assert_allclose(stopped[index].curve.val_loss, full[index].curve.val_loss, rtol=1e-5)
