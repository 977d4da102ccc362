"""The optimizers, applied to stacked parameters of many members at once.

Every parameter tensor has a leading member dimension, and every member has its own learning
rate at every step, so ``torch.optim`` (one LR per parameter group) cannot be used as is. The
update rules below are PyTorch's own, element for element, for the settings ``optimizers.py``
uses (SGD with momentum 0.9; Adam and AdamW with default betas; RMSprop and Adagrad with their
defaults); the tests compare them with ``torch.optim`` step by step.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _per_member(lr: Tensor, like: Tensor) -> Tensor:
    return lr.view(-1, *[1] * (like.dim() - 1))


class BatchedOptimizer:
    """State for every parameter, one slice per member; members can leave (``keep``)."""

    def __init__(self) -> None:
        self.state: list[dict[str, Tensor]] = []
        self.steps = 0

    def step(self, params: list[Tensor], grads: list[Tensor], lr: Tensor) -> None:
        if not self.state:
            self.state = [self.init(p) for p in params]
        self.steps += 1
        with torch.no_grad():
            for p, g, state in zip(params, grads, self.state):
                self.update(p, g, state, _per_member(lr, p))

    def keep(self, members: Tensor) -> None:
        """Drop every member but ``members`` (indices along the member dimension)."""
        self.state = [{name: value[members] for name, value in state.items()} for state in self.state]

    def init(self, p: Tensor) -> dict[str, Tensor]:
        raise NotImplementedError

    def update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], lr: Tensor) -> None:
        raise NotImplementedError


class SGD(BatchedOptimizer):
    """``torch.optim.SGD(momentum=0.9)``: the first step's buffer is the gradient itself."""

    momentum = 0.9

    def init(self, p: Tensor) -> dict[str, Tensor]:
        return {"buffer": torch.zeros_like(p)}

    def update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], lr: Tensor) -> None:
        buffer = state["buffer"]
        if self.steps == 1:
            buffer.copy_(g)
        else:
            buffer.mul_(self.momentum).add_(g)
        p.sub_(lr * buffer)


class Adam(BatchedOptimizer):
    """``torch.optim.Adam`` (betas 0.9, 0.999; eps 1e-8), or AdamW with decoupled weight decay."""

    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def __init__(self, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.weight_decay = weight_decay

    def init(self, p: Tensor) -> dict[str, Tensor]:
        return {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}

    def update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], lr: Tensor) -> None:
        if self.weight_decay:
            p.mul_(1 - lr * self.weight_decay)
        state["exp_avg"].lerp_(g, 1 - self.beta1)
        state["exp_avg_sq"].mul_(self.beta2).addcmul_(g, g, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**self.steps
        bias_correction2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        denominator = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(self.eps)
        p.sub_((lr / bias_correction1) * state["exp_avg"] / denominator)


class RMSprop(BatchedOptimizer):
    """``torch.optim.RMSprop`` (alpha 0.99, eps 1e-8, no momentum)."""

    alpha, eps = 0.99, 1e-8

    def init(self, p: Tensor) -> dict[str, Tensor]:
        return {"square_avg": torch.zeros_like(p)}

    def update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], lr: Tensor) -> None:
        state["square_avg"].mul_(self.alpha).addcmul_(g, g, value=1 - self.alpha)
        p.sub_(lr * g / state["square_avg"].sqrt().add_(self.eps))


class Adagrad(BatchedOptimizer):
    """``torch.optim.Adagrad`` (no LR decay, eps 1e-10)."""

    eps = 1e-10

    def init(self, p: Tensor) -> dict[str, Tensor]:
        return {"sum": torch.zeros_like(p)}

    def update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], lr: Tensor) -> None:
        state["sum"].addcmul_(g, g, value=1)
        p.sub_(lr * g / state["sum"].sqrt().add_(self.eps))
