"""``study.bench`` counts FLOPs by machine on the path it times; checked against a count by hand."""

from __future__ import annotations

import pytest

from objectives.experiment import Experiment
from objectives.workloads.registry import get_workload, load_splits
from study.bench import flops_per_member_epoch
from tests.conftest import REPO


def test_the_counted_flops_of_a_digits_member_epoch_are_the_mlps_by_hand() -> None:
    """MLP 64-128-10. Forward, per example: 2 x (64 x 128 + 128 x 10) = 18,944. Training adds the
    weight gradients (as many) and the second layer's input gradient (2 x 128 x 10 = 2,560); the
    first layer's input gradient is never computed. Validation is forward only."""
    digits = get_workload("digits")
    data = load_splits(digits, 0)
    experiment = Experiment("digits", "sgd", "cosine", 20, 32, None, 0)
    by_hand = len(data.y_train) * (2 * 18_944 + 2_560) + len(data.y_val) * 18_944
    assert flops_per_member_epoch(digits, experiment, data, population=4) == pytest.approx(by_hand, rel=1e-9)


@pytest.mark.parametrize("command", sorted(p.stem for p in (REPO / "study").glob("bench*.py")))
def test_every_benchmark_command_imports_and_answers_help(command: str, run_cli) -> None:
    """A benchmark no test runs can rot unseen (study.bench once imported a function that had moved)."""
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and out.startswith("usage: python -m study.")  # bench_bookkeeping takes study.run's flags
