"""The optimizers, applied to stacked parameters of many members at once.

Every parameter tensor has a leading member dimension, and every member has its own learning
rate (and, for schedules that cycle it, its own momentum or beta1) at every step, so
``torch.optim`` (one LR per parameter group) cannot be used as is. The update rules below are
PyTorch's own, element for element: SGD (momentum, Nesterov, weight decay), Adam (L2 weight
decay) and AdamW (decoupled), RMSprop and Adagrad with their defaults. ``ScheduleFree`` is the
``schedulefree`` package's ``SGDScheduleFree`` and ``AdamWScheduleFree``. The tests compare each
with its reference step by step. Each rule is written with ``torch._foreach_*`` ops (as
``torch.optim``'s own ``foreach`` implementations are): one call per operation for all
parameters, instead of a Python loop over them.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _per_member(values: Tensor, params: list[Tensor]) -> list[Tensor]:
    """One value per member, shaped to broadcast over each parameter."""
    return [values.view(-1, *[1] * (p.dim() - 1)) for p in params]


class BatchedOptimizer:
    """State for every parameter, one slice per member; members can leave (``keep``)."""

    state_names: tuple[str, ...] = ()  # one state tensor of each name per parameter, zeros at first

    def __init__(self, weight_decay: float = 0.0) -> None:
        self.weight_decay = weight_decay
        self.state: dict[str, list[Tensor]] = {}
        self.steps = 0

    def step(
        self, params: list[Tensor], grads: list[Tensor], lr: Tensor, momentum: Tensor | None = None
    ) -> None:
        """One update of every parameter; ``lr`` holds each member's learning rate, ``momentum``
        each member's momentum or beta1 for this step (None: the optimizer's own)."""
        if not self.state:
            self.state = self.initial_state(params)
        self.steps += 1
        momenta = None if momentum is None else _per_member(momentum, params)
        with torch.no_grad():
            self.update(params, grads, _per_member(lr, params), momenta)

    def initial_state(self, params: list[Tensor]) -> dict[str, list[Tensor]]:
        return {name: [torch.zeros_like(p) for p in params] for name in self.state_names}

    def keep(self, members: Tensor) -> None:
        """Drop every member but ``members`` (indices along the member dimension)."""
        self.state = {name: [value[members] for value in values] for name, values in self.state.items()}

    def evaluation_params(self, params: list[Tensor]) -> list[Tensor]:
        """The weights to evaluate: the trained ones, except where an optimizer averages."""
        return params

    def update(
        self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], momenta: list[Tensor] | None
    ) -> None:
        raise NotImplementedError


def _descend(params: list[Tensor], directions: list[Tensor], scales: list[Tensor]) -> None:
    """p -= scale * direction in one fused pass: the same rounding as ``torch.optim``'s
    ``p.add_(d, alpha=-lr)`` and ``p.addcdiv_(..., value=-step)`` (a multiply and subtract in two
    passes rounds twice, and took twice as long on a population's parameters)."""
    torch._foreach_addcmul_(params, directions, torch._foreach_neg(scales))


def _with_l2(grads: list[Tensor], params: list[Tensor], weight_decay: float) -> list[Tensor]:
    """g + weight_decay * p: PyTorch's (coupled) weight decay."""
    return torch._foreach_add(grads, params, alpha=weight_decay) if weight_decay else grads


class SGD(BatchedOptimizer):
    """``torch.optim.SGD``: the first step's buffer is the gradient itself; momentum 0 is plain SGD."""

    state_names = ("buffer",)

    def __init__(self, momentum: float = 0.9, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(weight_decay)
        self.momentum, self.nesterov = momentum, nesterov

    def update(
        self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], momenta: list[Tensor] | None
    ) -> None:
        grads = _with_l2(grads, params, self.weight_decay)
        if self.momentum == 0:
            _descend(params, grads, lrs)
            return
        buffers = self.state["buffer"]
        if self.steps == 1:
            torch._foreach_copy_(buffers, grads)
        else:
            torch._foreach_mul_(buffers, self.momentum if momenta is None else momenta)
            torch._foreach_add_(buffers, grads)
        if not self.nesterov:
            direction = buffers
        elif momenta is None:  # torch.optim's grad.add(buf, alpha=momentum)
            direction = torch._foreach_add(grads, buffers, alpha=self.momentum)
        else:
            direction = torch._foreach_addcmul(grads, buffers, momenta)
        _descend(params, direction, lrs)


class Adam(BatchedOptimizer):
    """``torch.optim.Adam`` (``betas``; eps 1e-8) with L2 weight decay, or ``AdamW``
    (``decoupled``); beta1 may change every step, as when a scheduler cycles it."""

    eps = 1e-8
    state_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, weight_decay: float, decoupled: bool, betas: tuple[float, float]) -> None:
        super().__init__(weight_decay)
        self.decoupled = decoupled
        self.beta1, self.beta2 = betas

    def update(
        self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], momenta: list[Tensor] | None
    ) -> None:
        exp_avg, exp_avg_sq = self.state["exp_avg"], self.state["exp_avg_sq"]
        if self.decoupled and self.weight_decay:
            torch._foreach_mul_(params, [1 - lr * self.weight_decay for lr in lrs])
        elif self.weight_decay:
            grads = _with_l2(grads, params, self.weight_decay)
        if momenta is None:  # beta1 fixed: scalar ops
            torch._foreach_lerp_(exp_avg, grads, 1 - self.beta1)
            step_sizes = [lr / (1 - self.beta1**self.steps) for lr in lrs]
        else:
            torch._foreach_lerp_(exp_avg, grads, [1 - beta1 for beta1 in momenta])
            step_sizes = [lr / (1 - beta1**self.steps) for lr, beta1 in zip(lrs, momenta)]
        torch._foreach_mul_(exp_avg_sq, self.beta2)
        torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - self.beta2)
        bias_correction2_sqrt = (1 - self.beta2**self.steps) ** 0.5
        denominator = torch._foreach_sqrt(exp_avg_sq)
        torch._foreach_div_(denominator, bias_correction2_sqrt)
        torch._foreach_add_(denominator, self.eps)
        _descend(params, torch._foreach_div(exp_avg, denominator), step_sizes)


def _scaled_by_root(
    params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], accumulated: list[Tensor], eps: float
) -> None:
    """p -= lr * g / (sqrt(accumulated) + eps): the update RMSprop and Adagrad share."""
    denominator = torch._foreach_sqrt(accumulated)
    torch._foreach_add_(denominator, eps)
    _descend(params, torch._foreach_div(grads, denominator), lrs)


class RMSprop(BatchedOptimizer):
    """``torch.optim.RMSprop`` (alpha 0.99, eps 1e-8, no momentum), L2 weight decay."""

    alpha, eps = 0.99, 1e-8
    state_names = ("square_avg",)

    def update(
        self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], momenta: list[Tensor] | None
    ) -> None:
        grads = _with_l2(grads, params, self.weight_decay)
        square_avg = self.state["square_avg"]
        torch._foreach_mul_(square_avg, self.alpha)
        torch._foreach_addcmul_(square_avg, grads, grads, value=1 - self.alpha)
        _scaled_by_root(params, grads, lrs, square_avg, self.eps)


class Adagrad(BatchedOptimizer):
    """``torch.optim.Adagrad`` (no LR decay, eps 1e-10), L2 weight decay."""

    eps = 1e-10
    state_names = ("sum",)

    def update(
        self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], momenta: list[Tensor] | None
    ) -> None:
        grads = _with_l2(grads, params, self.weight_decay)
        torch._foreach_addcmul_(self.state["sum"], grads, grads, value=1)
        _scaled_by_root(params, grads, lrs, self.state["sum"], self.eps)


class ScheduleFree(BatchedOptimizer):
    """Schedule-free SGD or AdamW (Defazio et al. 2024), as the ``schedulefree`` package's
    ``SGDScheduleFree`` / ``AdamWScheduleFree`` with their defaults (r = 0, weight_lr_power = 2).

    The trained parameters are the package's ``y`` (where gradients are taken); the state holds
    ``z`` (the SGD / Adam iterate) and, per member, the running weight of the average. The
    average ``x`` that the package's ``optimizer.eval()`` switches to is what evaluation sees
    (``evaluation_params``). ``normalize`` divides the gradient by Adam's second moment
    (AdamW); without it this is SGD. The LR given each step already holds the warmup.
    """

    beta2, eps = 0.999, 1e-8

    def __init__(self, beta: float, weight_decay: float, *, normalize: bool) -> None:
        super().__init__(weight_decay)
        self.beta, self.normalize = beta, normalize
        self.lr_max: Tensor | None = None  # per member
        self.weight_sum: Tensor | None = None  # per member

    def initial_state(self, params: list[Tensor]) -> dict[str, list[Tensor]]:
        state = {"z": [p.detach().clone() for p in params]}
        if self.normalize:
            state["exp_avg_sq"] = [torch.zeros_like(p) for p in params]
        return state

    def keep(self, members: Tensor) -> None:
        super().keep(members)
        if self.lr_max is not None and self.weight_sum is not None:
            self.lr_max, self.weight_sum = self.lr_max[members], self.weight_sum[members]

    def step(
        self, params: list[Tensor], grads: list[Tensor], lr: Tensor, momentum: Tensor | None = None
    ) -> None:
        """The averaging weight of this step, ``lr_max ** 2`` over the running sum, then the update."""
        lr64 = lr.double()
        self.lr_max = lr64 if self.lr_max is None else torch.maximum(self.lr_max, lr64)
        weight = self.lr_max**2
        self.weight_sum = weight if self.weight_sum is None else self.weight_sum + weight
        self._ckp1 = torch.where(self.weight_sum > 0, weight / self.weight_sum, 0.0).to(lr.dtype)
        super().step(params, grads, lr, momentum)

    def update(
        self, params: list[Tensor], grads: list[Tensor], lrs: list[Tensor], momenta: list[Tensor] | None
    ) -> None:
        z = self.state["z"]
        if self.normalize:
            exp_avg_sq = self.state["exp_avg_sq"]
            torch._foreach_mul_(exp_avg_sq, self.beta2)
            torch._foreach_addcmul_(exp_avg_sq, grads, grads, value=1 - self.beta2)
            denominator = torch._foreach_div(exp_avg_sq, 1 - self.beta2**self.steps)
            torch._foreach_sqrt_(denominator)
            torch._foreach_add_(denominator, self.eps)
            grads = torch._foreach_div(grads, denominator)
        grads = _with_l2(grads, params, self.weight_decay)
        ckp1 = _per_member(self._ckp1, params)
        torch._foreach_lerp_(params, z, ckp1)
        # y += lr * (beta * (1 - ckp1) - 1) * g; z -= lr * g
        y_scale = [lr * (self.beta * (1 - c) - 1) for lr, c in zip(lrs, ckp1)]
        torch._foreach_addcmul_(params, grads, y_scale)  # the package's y.add_(grad, alpha=...)
        _descend(z, grads, lrs)

    def evaluation_params(self, params: list[Tensor]) -> list[Tensor]:
        """The average x = y + (z - y) (1 - 1 / beta), as ``optimizer.eval()`` sets it."""
        if not self.state:
            return params
        with torch.no_grad():
            return [torch.lerp(y, z, 1 - 1 / self.beta) for y, z in zip(params, self.state["z"])]
