"""study.noise: one configuration's seed-to-seed spread split by source."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from objectives.engine.training import MemberConfig, train
from objectives.workloads.registry import get_workload, load_splits


def test_the_data_order_has_a_seed_of_its_own_and_the_initialization_keeps_the_runs_seed() -> None:
    workload = get_workload("moons")
    data = load_splits(workload, 0)
    base = {"optimizer": "sgd", "lr": 0.1, "family": "constant", "schedule_kwargs": {}}
    members = [
        MemberConfig(**base, seed=1),
        MemberConfig(**base, seed=1, order_seed=1),  # the same run, said twice
        MemberConfig(**base, seed=1, order_seed=2),  # another order, the same initialization
        MemberConfig(**base, seed=2, order_seed=1),  # another initialization, the same order
    ]
    curves = [r.curve.train_loss for r in train(workload, data, members, epochs=2, batch_size=32)]
    assert curves[0] == curves[1]
    assert curves[2] != curves[0] and curves[3] != curves[0] and curves[2] != curves[3]


def test_the_noise_command_writes_each_ways_spread_and_the_evaluation_samples(
    run_cli, tmp_path: Path
) -> None:
    code, out, err = run_cli("noise", "--workload", "moons", "--epochs", "2", "--lr", "0.1", "--runs", "3",
                             "--out", str(tmp_path))  # fmt: skip
    assert code == 0, err
    table = pd.read_csv(tmp_path / "noise" / "moons.csv")
    assert list(table["varies"]) == ["initialization", "data order", "both", "both and the split"]
    assert (table["runs"] == 3).all() and (table["sd_ci_low"] <= table["sd"]).all()
    for _, row in table.iterrows():
        assert row["evaluation_sample_sd"] == math.sqrt(
            row["mean"] * (1 - row["mean"]) / row["test_examples"]
        )
    runs = pd.read_csv(tmp_path / "noise" / "moons-runs.csv")
    assert len(runs) == 12 and "moons, cosine at LR 0.1, 3 runs a way" in out
