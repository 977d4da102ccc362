"""Forward passes of a whole population: members' stacked parameters in, one call, logits out.

Parameters come from ``torch.func.stack_module_state``: every tensor has a leading member
dimension. A model with its own ``population_forward(params, inputs, *, shared)`` (the
transformer) runs through it. Plain MLPs (an ``nn.Sequential`` of linear layers, elementwise
activations, flatten and dropout) run as batched matrix products (``torch.baddbmm``), which the
benchmark measured faster than ``vmap`` for them; every other model runs through ``vmap`` over
``functional_call``. All give each member exactly its own model's output.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

Forward = Callable[[dict[str, torch.Tensor], dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
"""(params, buffers, inputs) -> logits (members, examples, classes)."""

ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.LeakyReLU, nn.SiLU, nn.Identity)


def stacked_forwards(model: nn.Module) -> tuple[Forward, Forward]:
    """The model's (training, evaluation) forwards over a population.

    The training forward takes inputs with a member dimension (each member's own mini-batch) and
    runs the model in training mode (dropout on). The evaluation forward takes inputs all members
    share and runs the model in evaluation mode, as ``model.eval()`` would.
    """
    if hasattr(model, "population_forward"):  # it has no dropout or buffers: train and eval are alike
        return (
            lambda params, buffers, x: model.population_forward(params, x, shared=False),
            lambda params, buffers, x: model.population_forward(params, x, shared=True),
        )
    if _is_plain_mlp(model):
        return _mlp_forward(model, training=True), _mlp_forward(model, training=False)
    return _vmap_forward(model.train(), shared=False), _vmap_forward(copy.deepcopy(model).eval(), shared=True)


def _vmap_forward(model: nn.Module, *, shared: bool) -> Forward:
    def forward(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (params, buffers), (x,))

    # Dropout masks differ per member, as they would for separately trained models.
    return vmap(forward, in_dims=(0, 0, None if shared else 0), randomness="different")


def _is_plain_mlp(model: nn.Module) -> bool:
    """Linear layers, elementwise activations and dropout, flattened inputs at most."""
    if not isinstance(model, nn.Sequential):
        return False
    layers = list(model)
    first_linear = next((i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)), len(layers))
    return all(
        isinstance(layer, (nn.Linear, nn.Dropout, *ELEMENTWISE))
        or (isinstance(layer, nn.Flatten) and i < first_linear)
        for i, layer in enumerate(layers)
    )


def _mlp_forward(model: nn.Sequential, *, training: bool) -> Forward:
    """Training: per-member inputs, dropout on. Evaluation: shared inputs, dropout off.

    From the first linear layer on, activations are kept features-first, (members, features,
    examples): each layer is then ``weight @ activations``, whose weight gradient autograd
    returns contiguous, in the parameter's own layout. (With examples first, ``x @ weight.mT``,
    it comes back transposed, and the optimizer's updates took twice as long.)
    """
    layers = list(model.named_children())

    def forward(params: dict, buffers: dict, x: torch.Tensor) -> torch.Tensor:
        if not training:  # one view of the shared inputs per member, not a copy
            x = x.expand(len(next(iter(params.values()))), *x.shape)
        features_first, previous = False, None
        for name, layer in layers:
            if isinstance(layer, nn.Linear):
                weight, bias = params[f"{name}.weight"], params.get(f"{name}.bias")
                x = x if features_first else x.mT
                x = torch.bmm(weight, x) if bias is None else torch.baddbmm(bias.unsqueeze(-1), weight, x)
                features_first = True
            elif isinstance(layer, nn.Flatten):  # only before the first linear layer
                x = x.flatten(layer.start_dim + 1, layer.end_dim)  # + 1: the member dimension
            elif isinstance(layer, nn.Dropout):
                x = F.dropout(x, layer.p, training)
            elif isinstance(layer, nn.ReLU) and isinstance(previous, nn.Linear):
                x = x.relu_()  # in place on the product, whose backward does not need it: 1-2% a step
            else:
                x = layer(x)
            previous = layer
        return x.mT if features_first else x

    return forward
