"""The LR range test (Smith 2017; fastai's lr_find): where does the loss fall fastest?

One short run whose LR grows exponentially from ``start`` to ``end``, recording the training
loss of every step, smoothed by an exponential moving average (bias-corrected). The run stops
early once the smoothed loss exceeds ``divergence`` times its minimum.

The suggested base-LR search range is made to be safe, not hot:

- the smoothing is light (0.9: a lag of about 10 steps, a third of a decade over the default
  200 steps from 1e-6 to 10; fastai's 0.98 lags almost two decades, so its minimum sits where
  the raw loss is already blowing up);
- the top is a third of the LR at which the loss starts to blow up (the first LR after the
  smoothed minimum where the loss is ``ONSET`` times that minimum): a cosine decay from it trains
  to within a point of the workload's target (tested on digits and moons);
- the bottom is a tenth of the LR of steepest descent before the minimum.

Checked against the sweeps' own data: on digits (SGD, momentum 0.9) the range is 0.0099 to 0.37;
the default sweep's trials above it did worse (89% of complete trials with LRs 0.32 to 1 reached
0.95 validation accuracy, against 98-99% from 0.03 to 0.32), though the best trials of 4 of the
17 families sat at 0.41 to 0.57 and one below it (cyclic_triangular, 0.0028). On moons it is
0.0091 to 0.52 (the best trials of constant, cosine and one_cycle: 0.20, 0.45, 0.72).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from objectives.optim.optimizers import get_optimizer
from objectives.workloads.registry import Splits, Workload


@dataclass(frozen=True)
class RangeTest:
    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: tuple[float, float]  # (low, high) for the base-LR search


def lr_range_test(
    workload: Workload,
    data: Splits,
    optimizer: str,
    *,
    start: float = 1e-6,
    end: float = 10.0,
    steps: int = 200,
    seed: int = 0,
    smoothing: float = 0.9,
    divergence: float = 4.0,
) -> RangeTest:
    """Run the test on ``workload``'s training split (cycling through it if ``steps`` needs more)."""
    if not (0 < start < end) or steps < 10:
        raise ValueError(
            f"the range test needs 0 < start < end and steps >= 10, but got {start=}, {end=}, {steps=}"
        )
    torch.manual_seed(seed)
    model = workload.make_model()
    opt = get_optimizer(optimizer).make(model.parameters(), start)
    generator = torch.Generator().manual_seed(seed)
    batch = workload.batch_size
    order = torch.cat(
        [
            torch.randperm(len(data.y_train), generator=generator)
            for _ in range(math.ceil(steps * batch / len(data.y_train)))
        ]
    )
    lrs, losses, smoothed, average = [], [], [], 0.0
    model.train()
    for step in range(steps):
        lr = start * (end / start) ** (step / (steps - 1))
        indices = order[step * batch : (step + 1) * batch]
        logits = model(data.x_train[indices])  # (batch, [positions,] classes)
        loss = F.cross_entropy(logits.flatten(0, -2), data.y_train[indices].flatten())
        opt.zero_grad()
        loss.backward()
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        value = loss.item()
        if not math.isfinite(value):
            break
        average = smoothing * average + (1 - smoothing) * value
        lrs.append(lr)
        losses.append(value)
        smoothed.append(average / (1 - smoothing ** (step + 1)))
        if smoothed[-1] > divergence * min(smoothed):
            break
    return RangeTest(lrs, losses, smoothed, _suggest(np.array(lrs), np.array(smoothed)))


ONSET = 1.25
"""The loss "starts to blow up" where it first exceeds the minimum by this factor, after it."""


def _suggest(lrs: np.ndarray, smoothed: np.ndarray) -> tuple[float, float]:
    if len(lrs) < 3:
        raise ValueError("the loss diverged at once: lower the range test's start LR")
    bottom = int(np.argmin(smoothed))
    rising = np.nonzero(smoothed[bottom:] > ONSET * smoothed[bottom])[0]
    onset = lrs[bottom + rising[0]] if len(rising) else lrs[-1]
    skip = max(1, len(lrs) // 10)  # the first smoothed values are mostly noise (fastai skips them too)
    if bottom - skip >= 2:
        slopes = np.gradient(smoothed[skip : bottom + 1], np.log(lrs[skip : bottom + 1]))
        steepest = lrs[skip + int(np.argmin(slopes))]
    else:
        steepest = lrs[bottom]
    low, high = steepest / 10, float(onset / 3)
    return (float(low), high) if low < high else (float(high / 100), high)
