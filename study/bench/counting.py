"""What the machine counts for the benchmarks: FLOPs, this machine's matrix-product rate, and how
much of a run's time its matrix products take.

FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on the path a benchmark times,
never from a formula of ours. PyTorch 2.13's counter has no formula for the CPU kernels of
``scaled_dot_product_attention`` (it counts 0 for them); they are registered here with the
counter's own formulas for their CUDA twins (a test checks the counts against those twins and
against attention written as products). The products' share of a run's time, and their own rate,
come from ``torch.profiler`` on further runs of the same work, the fastest kept: with everything
else taking no time, a run could go no faster than its products do, which bounds the share of
the peak it can reach.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode, register_flop_formula

aten = torch.ops.aten


@register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu)
def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    """The CUDA flash kernel's count (``sdpa_flop_count``): the same products."""
    return flop_counter.sdpa_flop_count(query, key, value)


@register_flop_formula(aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _cpu_attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    """The CUDA flash backward's count (``sdpa_backward_flop_count``): scores recomputed, four products."""
    return flop_counter.sdpa_backward_flop_count(grad_out, query, key, value)


@dataclass(frozen=True)
class Counted:
    """One run of some work: its FLOPs by operator (the counter's), and, from a profiled run of
    the same work, each counted operator's time (its calls' inclusive time) and the total."""

    flops: dict[str, int]  # "aten::bmm" -> FLOPs
    seconds: dict[str, float]  # the same operators' profiled seconds
    profiled_seconds: float  # the whole profiled run, wall

    @property
    def total_flops(self) -> int:
        return sum(self.flops.values())

    @property
    def product_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def product_share(self) -> float:
        """The share of the run's time spent in the counted products."""
        return self.product_seconds / self.profiled_seconds

    @property
    def product_rate(self) -> float:
        """FLOP/s of the products alone: what the whole run would reach if nothing else took time."""
        return self.total_flops / self.product_seconds


def count(work: Callable[[], object], profiled_runs: int = 3) -> Counted:
    """Run ``work`` once under the FLOP counter, then ``profiled_runs`` times under the profiler,
    keeping the run whose products took least time: the machine is shared, and a run slowed by
    other work would lower the bound the products set (as ``matmul_flops_per_second`` keeps its
    fastest product)."""
    with FlopCounterMode(display=False) as counter:
        work()
    flops = {_profiler_name(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items() if n}
    return min((_profiled(work, flops) for _ in range(profiled_runs)), key=lambda run: run.product_seconds)


def _profiled(work: Callable[[], object], flops: dict[str, int]) -> Counted:
    with profile(activities=[ProfilerActivity.CPU]) as profiler:
        start = time.perf_counter()
        work()
        profiled = time.perf_counter() - start
    totals = {
        event.key: event.cpu_time_total / 1e6 for event in profiler.key_averages() if event.key in flops
    }
    return Counted(flops, {name: totals.get(name, 0.0) for name in flops}, profiled)


def _profiler_name(op: object) -> str:
    """``aten.bmm`` (the counter's key) as the profiler names it, ``aten::bmm``."""
    return str(op).replace(".", "::", 1)


def matmul_flops_per_second(size: int = 2048, repeats: int = 5) -> float:
    """This machine's fp32 matrix-product rate now, on the current thread count: a ``size``
    square product, the best of ``repeats`` (the machine is shared; the best is its rate)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.matmul(a, b)  # warm up
    fastest = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.matmul(a, b)
        fastest = min(fastest, time.perf_counter() - start)
    return 2 * size**3 / fastest
