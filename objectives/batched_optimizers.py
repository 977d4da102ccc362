"""The optimizers, applied to stacked parameters of many members at once.

Every parameter tensor has a leading member dimension, and every member has its own learning
rate at every step, so ``torch.optim`` (one LR per parameter group) cannot be used as is. The
update rules below are PyTorch's own, element for element, for the settings ``optimizers.py``
uses (SGD with momentum 0.9; Adam and AdamW with default betas; RMSprop and Adagrad with their
defaults); the tests compare them with ``torch.optim`` step by step. Each rule is written with
``torch._foreach_*`` ops (as ``torch.optim``'s own ``foreach`` implementations are): one call per
operation for all parameters, instead of a Python loop over them.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


class BatchedOptimizer:
    """State for every parameter, one slice per member; members can leave (``keep``)."""

    state_names: tuple[str, ...] = ()  # one state tensor of each name per parameter, zeros at first

    def __init__(self) -> None:
        self.state: dict[str, list[Tensor]] = {}
        self.steps = 0

    def step(self, params: list[Tensor], grads: list[Tensor], lr: Tensor) -> None:
        """One update of every parameter; ``lr`` holds each member's learning rate."""
        if not self.state:
            self.state = {name: [torch.zeros_like(p) for p in params] for name in self.state_names}
        self.steps += 1
        lrs = [lr.view(-1, *[1] * (p.dim() - 1)) for p in params]  # broadcast over each parameter
        with torch.no_grad():
            self.update(params, grads, lrs)

    def keep(self, members: Tensor) -> None:
        """Drop every member but ``members`` (indices along the member dimension)."""
        self.state = {name: [value[members] for value in values] for name, values in self.state.items()}

    def update(self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor]) -> None:
        raise NotImplementedError


class SGD(BatchedOptimizer):
    """``torch.optim.SGD(momentum=0.9)``: the first step's buffer is the gradient itself."""

    momentum = 0.9
    state_names = ("buffer",)

    def update(self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor]) -> None:
        buffers = self.state["buffer"]
        if self.steps == 1:
            torch._foreach_copy_(buffers, grads)
        else:
            torch._foreach_mul_(buffers, self.momentum)
            torch._foreach_add_(buffers, grads)
        torch._foreach_sub_(params, torch._foreach_mul(buffers, lrs))


class Adam(BatchedOptimizer):
    """``torch.optim.Adam`` (betas 0.9, 0.999; eps 1e-8), or AdamW with decoupled weight decay."""

    beta1, beta2, eps = 0.9, 0.999, 1e-8
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.weight_decay = weight_decay

    def update(self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor]) -> None:
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        if self.weight_decay:
            torch._foreach_mul_(params, [1 - lr * self.weight_decay for lr in lrs])
        torch._foreach_lerp_(exp_avg, grads, 1 - self.beta1)
        torch._foreach_mul_(exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**self.steps
        bias_correction2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        denominator = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denominator, bias_correction2_sqrt)
        torch._foreach_add_(denominator, self.eps)
        updates = torch._foreach_div(exp_avg, denominator)
        torch._foreach_mul_(updates, [lr / bias_correction1 for lr in lrs])
        torch._foreach_sub_(params, updates)


def _scaled_by_root(
    params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], accumulated: list[Tensor], eps: float
) -> None:
    """p -= lr * g / (sqrt(accumulated) + eps): the update RMSprop and Adagrad share."""
    denominator = torch._foreach_sqrt(accumulated)
    torch._foreach_add_(denominator, eps)
    updates = torch._foreach_div(grads, denominator)
    torch._foreach_mul_(updates, lrs)
    torch._foreach_sub_(params, updates)


class RMSprop(BatchedOptimizer):
    """``torch.optim.RMSprop`` (alpha 0.99, eps 1e-8, no momentum)."""

    alpha, eps = 0.99, 1e-8
    state_names = ("square_avg",)

    def update(self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor]) -> None:
        square_avg = self.state["square_avg"]
        torch._foreach_mul_(square_avg, self.alpha)
        torch._foreach_addcmul_(square_avg, grads, grads, value=1 - self.alpha)
        _scaled_by_root(params, grads, lrs, square_avg, self.eps)


class Adagrad(BatchedOptimizer):
    """``torch.optim.Adagrad`` (no LR decay, eps 1e-10)."""

    eps = 1e-10
    state_names = ("sum",)

    def update(self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor]) -> None:
        torch._foreach_addcmul_(self.state["sum"], grads, grads, value=1)
        _scaled_by_root(params, grads, lrs, self.state["sum"], self.eps)
