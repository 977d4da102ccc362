"""The LR range test of a workload, run and drawn: shared by ``study.lr_find`` and ``study.run
--lr-range auto`` (no command imports another)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from objectives.engine.lr_range_test import RangeTest, lr_range_test
from objectives.workloads.registry import Workload, load_splits
from study.errors import UsageError
from study.reporting import figures
from study.reporting.output import write_file


def find_range(workload: Workload, optimizer: str, *, seed: int, data_dir: Path | None) -> RangeTest:
    """The range test on the workload's training split for ``seed``."""
    return lr_range_test(workload, load_splits(workload, seed, data_dir), optimizer, seed=seed)


def save_plot(test: RangeTest, workload: str, optimizer: str, out: Path) -> Path:
    """The loss against the LR, with the suggested range, as ``OUT/lr_find/<workload>-<optimizer>.png``."""
    folder = out / "lr_find"
    if folder.is_symlink():
        raise UsageError(f"refusing to write into {folder}: it is a symbolic link this project did not make")
    folder.mkdir(exist_ok=True)
    frame = pd.DataFrame({"lr": test.lrs, "loss": test.losses, "smoothed": test.smoothed})
    path = folder / f"{workload}-{optimizer}.png"
    image = io.BytesIO()
    figures.lr_range(frame, test.suggested, f"LR range test: {workload}, {optimizer}").savefig(image, dpi=110)
    write_file(path, image.getvalue())
    return path
