"""Workloads: every model fits its declared input; built-in data splits are fixed and stratified."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from objectives.workloads import registry
from objectives.workloads.registry import WORKLOADS, character_splits, get_workload, load_splits

SHAKESPEARE_FILE = Path(__file__).parents[3] / "shared" / "data" / "tinyshakespeare" / "input.txt"

BUILT_IN = ["digits", "moons", "mnist1d"]  # the others read files; see test_datasets.py


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_model_maps_its_input_to_class_logits(name: str) -> None:
    """Classifiers: one row of logits per example; language models: one per position."""
    workload = get_workload(name)
    per_position = workload.input_shape if workload.token_inputs else ()
    logits = workload.make_model()(workload.example_inputs(3))
    assert logits.shape == (3, *per_position, workload.classes)
    worst, best = workload.metric.worst, (1.0 if workload.metric.sign > 0 else 0.0)
    assert min(worst, best) < workload.target < max(worst, best)
    assert workload.epochs > 0 and workload.batch_size > 0 and workload.description


@pytest.mark.parametrize("name", BUILT_IN)
def test_splits_are_disjoint_stratified_and_seeded(name: str) -> None:
    splits = load_splits(get_workload(name), 0)
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
    """The package's own generator with its default arguments: its 4,000 training sequences of 40,
    and a test set of 20,000 from the same generator with a seed of its own, balanced by class."""
    import random
    import socket

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("MNIST-1D must be generated offline, never downloaded")

    monkeypatch.setattr(socket, "socket", no_network)
    registry._mnist1d_arrays.cache_clear()  # generated here, not by an earlier test
    random.seed(123)
    np.random.seed(123)
    before = random.random(), np.random.random()
    random.seed(123)
    np.random.seed(123)
    first, second = get_workload("mnist1d").load(0, None), get_workload("mnist1d").load(0, None)
    assert (random.random(), np.random.random()) == before
    assert [len(first.y_train), len(first.y_val), len(first.y_test)] == [3200, 800, 20_000]
    assert torch.bincount(first.y_test).tolist() == [2000] * 10
    official = __import__("mnist1d.data", fromlist=["make_dataset"]).make_dataset()
    assert np.allclose(
        np.sort(np.concatenate([first.x_train, first.x_val]), axis=0),
        np.sort(official["x"], axis=0),
        atol=1e-6,
    )
    assert not np.isin(first.x_test[:, 0].numpy(), official["x_test"][:, 0]).any(), (
        "not the official test set"
    )
    assert first.x_train.shape[1:] == (40,)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(first, name), getattr(second, name))
    assert torch.equal(get_workload("mnist1d").load(1, None).x_test, first.x_test), "the test set is fixed"


def test_character_splits_are_contiguous_blocks_with_the_training_vocabulary() -> None:
    text = "abcab" * 36 + "xyz" * 4  # 180 + 12 characters; x, y and z only after the training block
    splits = character_splits(text, context=4, vocabulary=3)
    codes = {"a": 1, "b": 2}  # the two most frequent training characters (c, rarer, is unknown: 0)
    encode = lambda s: [codes.get(c, 0) for c in s]
    train_end, val_end = int(len(text) * 0.9), int(len(text) * 0.925)
    assert splits.x_train.tolist()[0] == encode(text[0:4]) and splits.y_train.tolist()[0] == encode(text[1:5])
    assert len(splits.y_train) == train_end - 4, "every window of the training block, at every offset"
    assert splits.x_train.tolist()[-1] == encode(text[train_end - 5 : train_end - 1])
    assert splits.y_train.tolist()[-1] == encode(text[train_end - 4 : train_end]), "nothing past the block"
    assert splits.x_val.tolist() == [encode(text[train_end : train_end + 4])]
    assert splits.y_val.tolist() == [encode(text[train_end + 1 : train_end + 5])]
    test_block = text[val_end:]
    tiles = (len(test_block) - 1) // 4
    assert splits.x_test.flatten().tolist() == encode(test_block[: tiles * 4])
    assert splits.y_test.flatten().tolist() == encode(test_block[1 : tiles * 4 + 1])
    assert splits.x_test.dtype == torch.long and splits.x_test[-1].tolist() == [0, 0, 0, 0]  # x, y, z


@pytest.mark.skipif(not SHAKESPEARE_FILE.is_file(), reason=f"the real corpus is not at {SHAKESPEARE_FILE}")
def test_shakespeare_has_65_training_characters_and_contiguous_splits() -> None:
    workload = get_workload("shakespeare")
    splits = workload.load(0, SHAKESPEARE_FILE.parent)
    assert splits.x_train.max() == 65 and workload.classes == 66  # every character has its own code
    assert (len(splits.y_train), splits.x_val.shape, splits.x_test.shape) == (
        1_003_790,
        (435, 64),
        (1307, 64),
    )
    assert torch.equal(workload.load(1, SHAKESPEARE_FILE.parent).x_val, splits.x_val), (
        "the same for every seed"
    )


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_built_in_workload_pickles_by_reference(name: str) -> None:
    """Re-evaluation hands the workload to its worker processes: a closure there (MNIST's loader
    once was) fails the whole report with 'Can't pickle local object'."""
    workload = WORKLOADS[name]
    restored = pickle.loads(pickle.dumps(workload))
    assert restored.name == workload.name and pickle.dumps(restored) == pickle.dumps(workload)
