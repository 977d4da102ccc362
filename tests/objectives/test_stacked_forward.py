"""A population's forward pass is every member's own model, in the right mode."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.func import stack_module_state

from objectives.engine.stacked_forward import stacked_forwards
from objectives.workloads.registry import WORKLOADS

MEMBERS, EXAMPLES = 3, 5


def _members(name: str) -> list[nn.Module]:
    models = []
    for seed in range(MEMBERS):
        torch.manual_seed(seed)
        models.append(WORKLOADS[name].make_model())
    return models


def _has_dropout(model: nn.Module) -> bool:
    return any(isinstance(module, nn.Dropout) for module in model.modules())


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_evaluation_forward_is_each_member_in_eval_mode(name: str) -> None:
    models = _members(name)
    params, buffers = stack_module_state(models)
    _, evaluate = stacked_forwards(copy.deepcopy(models[0]).to("meta"))
    x = WORKLOADS[name].example_inputs(EXAMPLES)
    logits = evaluate(params, buffers, x)
    for member, model in enumerate(models):
        torch.testing.assert_close(logits[member], model.eval()(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_training_forward_is_each_member_on_its_own_inputs(name: str) -> None:
    models = _members(name)
    params, buffers = stack_module_state(models)
    train, _ = stacked_forwards(copy.deepcopy(models[0]).to("meta"))
    x = WORKLOADS[name].example_inputs(MEMBERS, EXAMPLES)
    logits = train(params, buffers, x)
    for member, model in enumerate(models):
        alone = model.eval()(x[member])
        if _has_dropout(model):  # dropout is on while training: outputs differ from eval mode
            assert not torch.allclose(logits[member], alone)
        else:
            torch.testing.assert_close(logits[member], alone, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "layers",
    [
        lambda: [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)],  # ReLU in place on the product
        lambda: [
            nn.Linear(4, 6),
            nn.Tanh(),
            nn.ReLU(),
            nn.Linear(6, 3),
        ],  # not on tanh's output, which its backward needs
        lambda: [nn.Linear(4, 6), nn.Dropout(0.0), nn.ReLU(), nn.Linear(6, 3)],
    ],
)
def test_mlp_gradients_are_each_members_own(layers: Callable[[], list[nn.Module]]) -> None:
    models = []
    for seed in range(MEMBERS):
        torch.manual_seed(seed)
        models.append(nn.Sequential(*layers()))
    params, buffers = stack_module_state(models)
    train, _ = stacked_forwards(copy.deepcopy(models[0]).to("meta"))
    x = torch.randn(MEMBERS, EXAMPLES, 4)
    names = list(params)
    stacked = torch.autograd.grad(train(params, buffers, x).square().sum(), [params[n] for n in names])
    for member, model in enumerate(models):
        alone = torch.autograd.grad(
            model(x[member]).square().sum(), [dict(model.named_parameters())[n] for n in names]
        )
        for got, want in zip(stacked, alone):
            torch.testing.assert_close(got[member], want, rtol=1e-5, atol=1e-6)
