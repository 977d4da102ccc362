"""The sweep's trials, pinned: a small two-workload sweep must give the trials, attributes and
study attributes recorded in ``tests/data/same_trials.json``, trial by trial.

Restructuring the code (where the stored schema lives, how the workload reaches the engine)
must not change what is trained or what is stored. Regenerate the file only for a change
that is meant to change trials, and say so in its commit:
``python -m tests.study.test_same_trials > tests/data/same_trials.json``.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.conftest import REPO

GOLDEN = REPO / "tests" / "data" / "same_trials.json"
SWEEP = [
    "--workload", "digits,moons", "--trials", "3", "--epochs", "2",
    "--families", "cosine,wsd,plateau,schedule_free", "--no-report", "--repeats", "1",
]  # fmt: skip
"""Three trials a study: all from the sampler's random start-up, so the parameters do not
hang on the values, and a value that moves shows as itself, not as other trials."""


def snapshot(out: Path) -> dict[str, Any]:
    """What must not change: per study its user attributes, per trial its state, parameters,
    value, reports and user attributes (wall seconds left out: they are the machine's)."""
    from study import load_studies

    studies = load_studies(str(out / "optuna.journal"))
    return {
        name: {
            "attrs": study.user_attrs,
            "trials": [
                {
                    "number": t.number,
                    "state": t.state.name,
                    "params": t.params,
                    "value": t.value,
                    "reports": {str(k): v for k, v in sorted(t.intermediate_values.items())},
                    "attrs": {k: v for k, v in t.user_attrs.items() if "seconds" not in k and k != "worker"},
                }
                for t in study.get_trials()
            ],
        }
        for name, study in sorted(studies.items())
    }


def _sweep(out: Path) -> int:
    """The sweep into ``out``, in this process: its exit code."""
    from study.cli import run_main
    from study.run import main

    try:
        run_main(main, [*SWEEP, "--out", str(out)])
    except SystemExit as stop:
        return stop.code
    raise AssertionError("run_main always exits")


def _close(got: Any, want: Any, where: str) -> None:
    """Equal, floats to 1e-6 relative (the last bits of float32 training may move with the CPU's
    vector width; anything a code change moves, moves more)."""
    if isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9) or got == want, f"{where}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), (
            f"{where}: keys {sorted(got)} != {sorted(want)}"
        )
        for key in want:
            _close(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for index, (g, w) in enumerate(zip(got, want)):
            _close(g, w, f"{where}[{index}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_a_two_workload_sweep_gives_the_pinned_trials(tmp_path: Path) -> None:
    want = json.loads(GOLDEN.read_text())
    assert _sweep(tmp_path) == 0
    got = json.loads(json.dumps(snapshot(tmp_path)))  # as JSON holds it: tuples as lists
    _close(got, want, "studies")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the file
            failed = _sweep(Path(folder))
        if failed:
            sys.exit("the sweep failed")
        json.dump(snapshot(Path(folder)), sys.stdout, indent=1, sort_keys=True)
