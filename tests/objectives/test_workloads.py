"""Workload data: fixed, stratified, disjoint splits that depend on the seed only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives.workloads import WORKLOADS, get_workload, load_splits


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_splits_are_disjoint_stratified_and_seeded(name: str) -> None:
    splits = load_splits(name, 0)
    sizes = [len(splits.y_train), len(splits.y_val), len(splits.y_test)]
    assert sizes[0] > sizes[1] > 0 and sizes[2] > 0
    assert splits.x_train.dtype == torch.float32 and splits.y_train.dtype == torch.long
    rows = {tuple(row) for x in (splits.x_train, splits.x_val, splits.x_test) for row in x.tolist()}
    assert len(rows) == sum(sizes), "a sample is in two splits"
    classes = torch.unique(splits.y_train)
    for y in (splits.y_val, splits.y_test):
        train_share = torch.bincount(splits.y_train) / len(splits.y_train)
        assert torch.equal(torch.unique(y), classes)
        np.testing.assert_allclose(torch.bincount(y) / len(y), train_share, atol=0.02)
    again, other = get_workload(name).load(0), get_workload(name).load(1)
    assert torch.equal(again.x_val, splits.x_val)
    assert not torch.equal(other.x_val, splits.x_val)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_model_maps_inputs_to_class_logits(name: str) -> None:
    workload, splits = get_workload(name), load_splits(name, 0)
    logits = workload.make_model()(splits.x_val)
    assert logits.shape == (len(splits.y_val), int(splits.y_train.max()) + 1)
    assert 0 < workload.target < 1 and workload.epochs > 0 and workload.batch_size > 0


def test_unknown_workload_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown workload 'mnst'; choose one of: digits, moons"):
        get_workload("mnst")
