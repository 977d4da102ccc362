"""``study.compare_pruning``: two sweeps of one command, with and without the median pruner, side
by side, with each sweep's compute."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import TINY


def test_two_sweeps_are_compared_verdict_by_verdict_and_by_compute(run_cli, tmp_path: Path) -> None:
    sweep = [
        *TINY,
        "--families",
        "constant,cosine",
        "--trials",
        "6",
        "--population",
        "3",
        "--repeats",
        "2",
        "--seeds",
        "2",
    ]
    for pruner in ("median", "none"):
        assert run_cli("run", *sweep, "--pruner", pruner, "--out", str(tmp_path / pruner))[0] == 0
    code, out, _ = run_cli(
        "compare_pruning",
        "--pruned",
        str(tmp_path / "median"),
        "--unpruned",
        str(tmp_path / "none"),
        "--population",
        "3",
    )
    assert code == 0
    assert re.search(
        r"^(constant|cosine) +\S+ +\S+ +\d+ of 10 ", out, re.MULTILINE
    )  # 5 best of each of 2 tuning runs
    pruned, unpruned = map(
        int, re.search(r"compute: (\d+) member-epochs with the median pruner, (\d+) without", out).groups()
    )
    assert (
        unpruned == 2 * 2 * 6 * 3
    )  # families x runs x trials x epochs: nothing stops early without a pruner
    assert pruned <= unpruned


def test_a_folder_without_a_sweep_is_one_line(run_cli, tmp_path: Path) -> None:
    code, _, err = run_cli("compare_pruning", "--pruned", str(tmp_path), "--unpruned", str(tmp_path))
    assert code == 2 and "no sweep in" in err
