"""``study.bench.counting``: FLOPs by the counter on the path a benchmark times, checked by hand, and the
counter's CPU attention formulas checked against their CUDA twins and attention as products."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from objectives.experiment import Experiment
from objectives.workloads.registry import get_workload, load_splits
from study.bench import counting
from study.bench.counting import Counted, count
from study.bench.loop import one_population_epoch

aten = torch.ops.aten


def test_the_counted_flops_of_a_digits_member_epoch_are_the_mlps_by_hand() -> None:
    """MLP 64-128-10. Forward, per example: 2 x (64 x 128 + 128 x 10) = 18,944. Training adds the
    weight gradients (as many) and the second layer's input gradient (2 x 128 x 10 = 2,560); the
    first layer's input gradient is never computed. Validation is forward only."""
    digits = get_workload("digits")
    data = load_splits(digits, 0)
    experiment = Experiment("digits", "sgd", "cosine", 20, 32, None, 0)
    by_hand = len(data.y_train) * (2 * 18_944 + 2_560) + len(data.y_val) * 18_944
    counted = count(one_population_epoch(digits, experiment, data, population=4))
    assert counted.total_flops / 4 == pytest.approx(by_hand, rel=1e-9)
    assert set(counted.flops) == {"aten::baddbmm", "aten::bmm"}  # named as the profiler names them
    assert all(seconds > 0 for seconds in counted.seconds.values()), "every counted product was timed"
    assert 0 < counted.product_share < 1 and counted.product_rate > 0


def test_count_keeps_the_profiled_run_whose_products_took_least_time(monkeypatch) -> None:
    """A run slowed by other work on a shared machine must not lower the products' bound."""
    runs = iter([Counted({"aten::mm": 8}, {"aten::mm": seconds}, 1.0) for seconds in (0.3, 0.1, 0.2)])
    monkeypatch.setattr(counting, "_profiled", lambda work, flops: next(runs))
    assert count(lambda: None).product_rate == pytest.approx(80.0)


def _flops(work) -> int:
    with FlopCounterMode(display=False) as counter:
        work()
    return counter.get_total_flops()


def test_cpu_attention_counts_as_its_cuda_twins_and_as_attention_by_products() -> None:
    batch, heads, length, width = 3, 4, 16, 8
    q, k, v = (torch.randn(batch, heads, length, width, requires_grad=True) for _ in range(3))
    meta = lambda *shape: torch.empty(*shape, device="meta")
    cpu_forward = _flops(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    cuda_forward = _flops(
        lambda: aten._scaled_dot_product_flash_attention(
            *(meta(batch, heads, length, width) for _ in range(3)), 0.0, True
        )
    )
    by_products = _flops(
        lambda: torch.softmax(q @ k.mT, -1) @ v
    )  # the same two products, uncounted mask aside
    assert cpu_forward == cuda_forward == by_products == 2 * 2 * batch * heads * length * length * width

    cpu_both = _flops(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward())
    tensors = [meta(batch, heads, length, width) for _ in range(5)]
    int_pair = lambda: torch.empty(2, dtype=torch.int64, device="meta")
    cuda_backward = _flops(
        lambda: aten._scaled_dot_product_flash_attention_backward(
            *tensors,
            meta(batch, heads, length),
            None,
            None,
            length,
            length,
            0.0,
            True,
            int_pair(),
            int_pair(),
        )
    )
    assert cuda_backward > 0 and cpu_both - cpu_forward == cuda_backward  # the backward: five products
