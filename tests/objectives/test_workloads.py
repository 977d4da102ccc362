"""Workloads: every model fits its declared input; built-in data splits are fixed and stratified."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives.workloads import WORKLOADS, get_workload, load_splits

BUILT_IN = ["digits", "moons", "mnist1d"]  # the others read files; see test_datasets.py


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_model_maps_its_input_to_class_logits(name: str) -> None:
    workload = get_workload(name)
    assert workload.make_model()(torch.zeros(3, *workload.input_shape)).shape == (3, workload.classes)
    assert (
        0 < workload.target < 1 and workload.epochs > 0 and workload.batch_size > 0 and workload.description
    )


@pytest.mark.parametrize("name", BUILT_IN)
def test_splits_are_disjoint_stratified_and_seeded(name: str) -> None:
    splits = load_splits(name, 0)
    sizes = [len(splits.y_train), len(splits.y_val), len(splits.y_test)]
    assert sizes[0] > sizes[1] > 0 and sizes[2] > 0
    assert splits.x_train.dtype == torch.float32 and splits.y_train.dtype == torch.long
    assert splits.x_train.shape[1:] == get_workload(name).input_shape
    rows = {tuple(row) for x in (splits.x_train, splits.x_val, splits.x_test) for row in x.tolist()}
    assert len(rows) == sum(sizes), "a sample is in two splits"
    classes = torch.unique(splits.y_train)
    assert len(classes) == get_workload(name).classes
    for y in (splits.y_val, splits.y_test):
        train_share = torch.bincount(splits.y_train) / len(splits.y_train)
        assert torch.equal(torch.unique(y), classes)
        np.testing.assert_allclose(torch.bincount(y) / len(y), train_share, atol=0.02)
    again, other = get_workload(name).load(0, None), get_workload(name).load(1, None)
    assert torch.equal(again.x_val, splits.x_val)
    assert not torch.equal(other.x_val, splits.x_val)


def test_unknown_workload_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown workload 'mnst'; choose one of: digits, moons, mnist"):
        get_workload("mnst")


def test_mnist1d_is_generated_offline_identically_and_leaves_global_randomness_alone(monkeypatch) -> None:
    """The package's own generator with its default arguments: 4,000 + 1,000 sequences of 40."""
    import random
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("MNIST-1D must be generated offline, never downloaded")

    monkeypatch.setattr(socket, "socket", no_network)
    random.seed(123)
    np.random.seed(123)
    before = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    first, second = get_workload("mnist1d").load(0, None), get_workload("mnist1d").load(0, None)
    assert (random.random(), np.random.random()) == before
    assert [len(first.y_train), len(first.y_val), len(first.y_test)] == [3200, 800, 1000]
    assert first.x_train.shape[1:] == (40,)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert torch.equal(get_workload("mnist1d").load(1, None).x_test, first.x_test), "the test set is fixed"
