"""``python -m study.bench.torch_compile``: does ``torch.compile`` pay for a population's training step?

Times one step's forward, loss and backward (the optimizer aside) of a workload's population of
``--population`` members eagerly and compiled (inductor), alternately in one process (the
fastest of three rounds each): the compile's own seconds with an empty compile cache (as a fresh
machine or a new PyTorch has), each way's milliseconds per step, and the recompile a shrinking
population (members pruned) costs. A sweep would pay the compile in every worker process.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence

import torch
from torch.func import stack_module_state

from objectives.engine.stacked_forward import stacked_forwards
from objectives.engine.training import member_losses
from objectives.workloads.registry import Workload
from study.cli import (
    ArgumentParser,
    add_population_argument,
    add_workload_argument,
    positive_int,
    run_main,
)

Step = Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]


def population_step(workload: Workload, members: int) -> tuple[Step, Callable[[int], tuple]]:
    """A population's step (logits, loss, gradients) and a maker of its inputs for ``n`` members."""
    models = [workload.make_model() for _ in range(members)]
    params, buffers = stack_module_state(models)
    forward, _ = stacked_forwards(models[0])

    def step(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        losses = member_losses(forward(params, buffers, x), y).mean(1)
        return torch.autograd.grad(losses.sum(), list(params.values()))

    def inputs(n: int) -> tuple:
        batch = workload.batch_size
        kept = {name: p[:n].detach().requires_grad_() for name, p in params.items()}
        return kept, workload.example_inputs(n, batch), torch.randint(workload.classes, (n, batch))

    return step, inputs


def milliseconds_per_step(step: Step, inputs: tuple, repeats: int) -> float:
    step(*inputs)  # warm
    start = time.perf_counter()
    for _ in range(repeats):
        step(*inputs)
    return (time.perf_counter() - start) / repeats * 1e3


def seconds_of_first_call(step: Step, inputs: tuple) -> float:
    start = time.perf_counter()
    step(*inputs)
    return time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m study.bench.torch_compile", description=__doc__)
    add_workload_argument(parser)
    add_population_argument(parser)
    parser.add_argument("--repeats", type=positive_int, default=300, help="steps timed per way (default 300)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    step, inputs = population_step(args.workload, args.population)
    full, shrunk = inputs(args.population), inputs(max(1, args.population * 2 // 3))
    compiled_step = torch.compile(step)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # cold: nothing compiled before counts
        compile_s = seconds_of_first_call(compiled_step, full)
        recompile_s = seconds_of_first_call(compiled_step, shrunk)
    rounds = [
        (
            milliseconds_per_step(step, full, args.repeats),
            milliseconds_per_step(compiled_step, full, args.repeats),
        )
        for _ in range(3)
    ]
    eager, compiled = (min(times) for times in zip(*rounds))
    print(
        f"{args.workload.name}, population {args.population}, 1 thread: forward, loss and backward of one step"
    )
    print(f"eager: {eager:.3f} ms/step; compiled: {compiled:.3f} ms/step ({eager / compiled:.2f}x)")
    print(f"compiling: {compile_s:.1f} s; again for {len(shrunk[1])} members: {recompile_s:.1f} s")


if __name__ == "__main__":
    run_main(main)
