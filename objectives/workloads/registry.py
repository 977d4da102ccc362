"""Workloads: data, model, loss, metric, step budget and the accuracy that counts as converged.

A plain dict maps names to workloads (AlgoPerf's ``spec.py``, trimmed). Data is loaded once per
process into tensors (``load_splits`` is cached); training never touches a DataLoader.

The benchmark workloads carve a fixed, stratified validation split (seeded) out of the official
training set; the official test set is only for the final comparison.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from objectives.metrics import ACCURACY, Metric, bits_per_character
from objectives.workloads.datasets import (
    FASHION_MNIST,
    MNIST,
    SHAKESPEARE,
    SHAKESPEARE_CONTEXT,
    SHAKESPEARE_VOCABULARY,
    DataError,
    Dataset,
    fetch,
    load_cifar10,
    load_idx_pair,
)

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors. Tuning sees train and validation only."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _whole_positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _finite_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


MARGIN_SHARE = 0.01
"""The margin of equivalence, one rule for every workload in its metric's own units: 1% of the
workload's target (the validation value that counts as converged, set from single runs before any
study). A gap smaller than a hundredth of the quality a workload is meant to reach is not one a
practitioner would change schedule for: 0.0097 accuracy on digits, 0.032 bits on shakespeare."""


@dataclass(frozen=True)
class Workload:
    """What to train, how long, and what it is judged by. The loss is always cross-entropy.

    A model maps a batch of examples to logits (examples, classes), or for sequences
    (examples, positions, classes) against targets (examples, positions). Its ``metric`` is
    accuracy (maximized) unless it says otherwise, e.g. ``bits_per_character`` (minimized).
    """

    name: str
    description: str
    load: Callable[[int, Path | None], Splits]  # (seed, data_dir) -> splits
    make_model: Callable[[], nn.Module]
    input_shape: tuple[int, ...]  # of one example
    classes: int
    epochs: int  # default epoch budget
    batch_size: int
    target: float  # the validation metric's value that counts as "converged"
    metric: Metric = ACCURACY
    steps_per_epoch: int | None = None  # None: one pass over the training set; else random batches
    optimizer: str = "sgd"  # the default optimizer (``--optimizer`` overrides it)
    token_inputs: bool = False  # inputs are token ids in [0, classes), not real numbers
    test_drawn_from_seed: bool = False  # True: ``load`` draws the test split from the seed too
    margin: float | None = (
        None  # within +-margin of the reference is equivalent; None: MARGIN_SHARE of target
    )

    def __post_init__(self) -> None:
        if self.margin is None and _finite_number(self.target):  # the one rule (results/METHODS.md, Margins)
            object.__setattr__(self, "margin", float(f"{MARGIN_SHARE * abs(self.target):.6g}"))

    def example_inputs(self, *leading: int) -> torch.Tensor:
        """Random inputs of the model's shape, with ``leading`` dimensions first (for tests and FLOP counts)."""
        import torch

        shape = (*leading, *self.input_shape)
        return torch.randint(self.classes, shape) if self.token_inputs else torch.randn(shape)

    def epoch_steps(self, data: Splits, batch_size: int) -> int:
        """Optimizer steps per epoch: ``steps_per_epoch``, else one pass over the training set."""
        return self.steps_per_epoch or math.ceil(len(data.y_train) / batch_size)


def carve_validation(
    x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *, seed: int, val: float
) -> Splits:
    """Split a fraction ``val`` off the training data for validation (stratified, fixed by ``seed``)."""
    import torch
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=val, stratify=y, random_state=seed)
    as_x, as_y = partial(torch.as_tensor, dtype=torch.float32), partial(torch.as_tensor, dtype=torch.long)
    return Splits(as_x(x_train), as_y(y_train), as_x(x_val), as_y(y_val), as_x(x_test), as_y(y_test))


def stratified_splits(
    x: np.ndarray, y: np.ndarray, *, seed: int, val: float = 0.2, test: float = 0.2
) -> Splits:
    """A fixed stratified train / validation / test split of one dataset, determined by ``seed``."""
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, stratify=y, random_state=seed)
    return carve_validation(x_rest, y_rest, x_test, y_test, seed=seed, val=val / (1 - test))


def _digits(seed: int, data_dir: Path | None) -> Splits:
    from sklearn.datasets import load_digits

    digits = load_digits()  # 1,797 real 8x8 scans, shipped with scikit-learn
    return stratified_splits(digits.data / 16.0, digits.target, seed=seed)


def _moons(seed: int, data_dir: Path | None) -> Splits:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=1000, noise=0.25, random_state=0)  # the same points for every seed
    return stratified_splits(x, y, seed=seed)


MNIST1D_TEST_SIZE = 20_000
"""Test sequences of MNIST-1D: the official 1,000 gave a binomial SD of 0.0148 at 68% accuracy,
about all of the seed-to-seed SD of one configuration (results/METHODS.md, Noise); 20,000 give 0.0033."""


def _mnist1d(seed: int, data_dir: Path | None) -> Splits:
    """MNIST-1D (Greydanus 2020): the package's own generator with its default arguments.

    The 4,000 official training sequences, made offline and identically on every call (never the
    package's download path); a stratified fifth of them, fixed by ``seed``, validates. The test
    set is ``MNIST1D_TEST_SIZE`` sequences from the same generator with the same arguments but its
    own seed (43) and no training part, standardized by the generator as the official ones are
    (to mean 0, SD 1): the same distribution, a twentieth of the sampling noise of the official 1,000.
    """
    x, y, x_test, y_test = _mnist1d_arrays()
    return carve_validation(x, y, x_test, y_test, seed=seed, val=0.2)


@cache
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The training and test sequences, generated once per process (9 s and 21 s here)."""
    from mnist1d.data import get_dataset_args, make_dataset  # imports requests; never uses it here

    saved = random.getstate(), np.random.get_state()
    try:  # the generator seeds Python's and numpy's global generators: leave them as they were
        official = make_dataset(get_dataset_args())
        test_args = get_dataset_args()
        test_args.num_samples, test_args.train_split, test_args.seed = MNIST1D_TEST_SIZE, 0.0, 43
        test = make_dataset(test_args)
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    return official["x"], official["y"], test["x_test"], test["y_test"]


UNKNOWN = 0


def character_splits(text: str, *, context: int, vocabulary: int) -> Splits:
    """Contiguous blocks of ``text``: the first 90% trains, the next 2.5% validates (every epoch of
    every trial: kept small so validation costs a fifth of an epoch), the last 7.5% tests (random
    windows would overlap across splits and leak). The vocabulary is the training block's
    ``vocabulary - 1`` most frequent characters (ties by code point) plus the unknown symbol, 0,
    which every other character maps to.

    Training examples are every window of ``context + 1`` characters (a view, not a copy): inputs
    the first ``context``, targets the next character at each position. Validation and test are
    cut into non-overlapping windows, the remainder dropped.
    """
    train_end, val_end = int(len(text) * 0.9), int(len(text) * 0.925)
    counts: dict[str, int] = {}
    for character in text[:train_end]:
        counts[character] = counts.get(character, 0) + 1
    kept = sorted(counts, key=lambda c: (-counts[c], c))[: vocabulary - 1]
    table = np.full(max(map(ord, text)) + 1, UNKNOWN, dtype=np.int64)
    table[[ord(c) for c in kept]] = np.arange(1, len(kept) + 1)
    import torch

    codes = torch.from_numpy(table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)])
    windows = codes[:train_end].unfold(0, context + 1, 1)

    def tiled(block: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        usable = (len(block) - 1) // context * context
        return block[:usable].view(-1, context), block[1 : usable + 1].view(-1, context)

    return Splits(windows[:, :-1], windows[:, 1:], *tiled(codes[train_end:val_end]), *tiled(codes[val_end:]))


def _shakespeare(seed: int, data_dir: Path | None) -> Splits:
    """Tiny Shakespeare (1,115,394 characters, md5-checked), in contiguous blocks; the same split for every seed."""
    text = fetch(SHAKESPEARE, "input.txt", data_dir).decode("utf-8")
    return character_splits(text, context=SHAKESPEARE_CONTEXT, vocabulary=SHAKESPEARE_VOCABULARY)


def build_model(name: str) -> nn.Module:
    """A built-in workload's model, from ``objectives.workloads.models`` (imported here: it needs torch)."""
    from objectives.workloads import models

    return getattr(models, name)()


def _unit_scale(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) images as float32 (N, 1, H, W) in [0, 1]."""
    return images[:, None].astype(np.float32) / 255


def _idx_images(dataset: Dataset, seed: int, data_dir: Path | None) -> Splits:
    """MNIST-format data scaled to [0, 1], shaped (N, 1, 28, 28); a sixth of train validates.
    Bound to its dataset with ``partial``, so the workload pickles (re-evaluation workers take it)."""
    (x, y), (x_test, y_test) = (load_idx_pair(dataset, split, data_dir) for split in ("train", "t10k"))
    return carve_validation(_unit_scale(x), y, _unit_scale(x_test), y_test, seed=seed, val=1 / 6)


def _cifar10(seed: int, data_dir: Path | None) -> Splits:
    """CIFAR-10 normalized per channel with the training split's own mean and std; 10% validates."""
    (x, y), (x_test, y_test) = load_cifar10(data_dir)
    splits = carve_validation(x, y, x_test, y_test, seed=seed, val=0.1)
    mean = splits.x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = splits.x_train.std(dim=(0, 2, 3), keepdim=True)
    normalize = lambda images: (images - mean) / std
    return Splits(
        normalize(splits.x_train),
        splits.y_train,
        normalize(splits.x_val),
        splits.y_val,
        normalize(splits.x_test),
        splits.y_test,
    )


WORKLOADS: dict[str, Workload] = {
    workload.name: workload
    for workload in [
        Workload(
            name="digits",
            description="scikit-learn 8x8 handwritten digits, MLP 64-128-10",
            load=_digits,
            make_model=partial(build_model, "digits_mlp"),
            input_shape=(64,),
            classes=10,
            epochs=20,
            batch_size=32,
            target=0.97,
            test_drawn_from_seed=True,
        ),
        Workload(
            name="moons",
            description="two noisy half circles, tanh MLP 2-16-16-2 (the tiny one for quick tests)",
            load=_moons,
            make_model=partial(build_model, "moons_mlp"),
            input_shape=(2,),
            classes=2,
            epochs=10,
            batch_size=32,
            target=0.93,
            test_drawn_from_seed=True,
        ),
        Workload(
            name="mnist1d",
            description="MNIST-1D (Greydanus 2020), 40-feature sequences, the paper's MLP 40-100-100-10",
            load=_mnist1d,
            make_model=partial(build_model, "mnist1d_mlp"),
            input_shape=(40,),
            classes=10,
            epochs=30,
            batch_size=32,
            target=0.65,
        ),
        Workload(
            name="mnist1d-cnn",
            description="MNIST-1D (Greydanus 2020), the paper's 1-D CNN (3 conv layers of 25 channels)",
            load=_mnist1d,
            make_model=partial(build_model, "mnist1d_cnn"),
            input_shape=(40,),
            classes=10,
            epochs=30,
            batch_size=32,
            target=0.90,
        ),
        Workload(
            name="mnist",
            description="MNIST handwritten digits, the Keras example MLP 784-128-10 with dropout 0.2",
            load=partial(_idx_images, MNIST),
            make_model=partial(build_model, "keras_mnist_mlp"),
            input_shape=(1, 28, 28),
            classes=10,
            epochs=5,
            batch_size=32,
            target=0.975,
        ),
        Workload(
            name="fashion-mnist",
            description="Fashion-MNIST clothing images, the Keras example MLP 784-128-10 with dropout 0.2",
            load=partial(_idx_images, FASHION_MNIST),
            make_model=partial(build_model, "keras_mnist_mlp"),
            input_shape=(1, 28, 28),
            classes=10,
            epochs=5,
            batch_size=32,
            target=0.87,
        ),
        Workload(
            name="fashion-mnist-cnn",
            description="Fashion-MNIST clothing images, a small CNN (conv 16 and 32, 5x5, max-pool)",
            load=partial(_idx_images, FASHION_MNIST),
            make_model=partial(build_model, "fashion_cnn"),
            input_shape=(1, 28, 28),
            classes=10,
            epochs=5,
            batch_size=32,
            target=0.90,
        ),
        Workload(
            name="cifar10",
            description="CIFAR-10 photos, the CNN of PyTorch's CIFAR-10 tutorial",
            load=_cifar10,
            make_model=partial(build_model, "cifar_tutorial_cnn"),
            input_shape=(3, 32, 32),
            classes=10,
            epochs=10,
            batch_size=64,
            target=0.60,
        ),
        Workload(
            name="shakespeare",
            description="tiny Shakespeare, characters; a 2-block transformer (width 64, 4 heads, context 64)",
            load=_shakespeare,
            make_model=partial(build_model, "shakespeare_transformer"),
            input_shape=(SHAKESPEARE_CONTEXT,),
            classes=SHAKESPEARE_VOCABULARY,
            epochs=10,
            batch_size=16,
            target=3.2,
            metric=bits_per_character(SHAKESPEARE_VOCABULARY),
            steps_per_epoch=50,
            optimizer="adamw",
            token_inputs=True,
        ),
        Workload(
            name="shakespeare-small",
            description="tiny Shakespeare, characters; a 1-block transformer (width 32, 4 heads, context 64), "
            "about 19,000 parameters: 2.7 tokens per parameter per epoch",
            load=_shakespeare,
            make_model=partial(build_model, "small_shakespeare_transformer"),
            input_shape=(SHAKESPEARE_CONTEXT,),
            classes=SHAKESPEARE_VOCABULARY,
            epochs=16,
            batch_size=16,
            target=3.4,
            metric=bits_per_character(SHAKESPEARE_VOCABULARY),
            steps_per_epoch=50,
            optimizer="adamw",
            token_inputs=True,
        ),
    ]
}


def get_workload(name: str) -> Workload:
    """A built-in workload by name, or your own as ``package.module:NAME`` (see
    ``import_workload``); anything else raises with the valid choices."""
    if name in WORKLOADS:
        return WORKLOADS[name]
    if ":" in name:
        return import_workload(name)
    raise ValueError(
        f"unknown workload {name!r}; choose one of: {', '.join(WORKLOADS)}, or package.module:NAME for your own"
    )


@cache
def import_workload(spec: str) -> Workload:
    """Your own workload: ``package.module:NAME`` names a ``Workload``, or a function of no
    arguments that returns one. Its name becomes ``spec``, so stored studies find it again.

    Raises ValueError, in one line, for a module that cannot be imported, a missing name, or an
    object that is not a workload."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"{spec!r}: expected package.module:NAME")
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the user's module: its error, in one line
        raise ValueError(
            f"{spec!r}: cannot import {module_name!r} ({type(error).__name__}: {error})"
        ) from None
    if not hasattr(module, attribute):
        raise ValueError(f"{spec!r}: module {module_name!r} has no {attribute!r}")
    found = getattr(module, attribute)
    try:
        workload = found() if callable(found) and not isinstance(found, Workload) else found
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the user's function, as above
        raise ValueError(f"{spec!r}: {attribute}() raised {type(error).__name__}: {error}") from None
    if not isinstance(workload, Workload):  # a usage error, shown as one line like the others
        raise ValueError(  # noqa: TRY004
            f"{spec!r}: {attribute} is a {type(workload).__name__}, not an objectives.Workload"
        )
    if problem := field_problem(workload):
        raise ValueError(f"{spec!r}: {problem}")
    return dataclasses.replace(workload, name=spec)


def field_problem(workload: Workload) -> str | None:
    """What is wrong with a workload's fields, as the command line would refuse the same values
    (``--epochs 0``, ``--margin -1``), or None: checked before anything is stored."""
    from objectives.optim.optimizers import OPTIMIZERS

    positive = {"epochs": workload.epochs, "batch_size": workload.batch_size, "classes": workload.classes}
    if bad := [f"{name}={value!r}" for name, value in positive.items() if not _whole_positive(value)]:
        return f"{', '.join(bad)}: must be a whole number of at least 1"
    if workload.steps_per_epoch is not None and not _whole_positive(workload.steps_per_epoch):
        return f"steps_per_epoch={workload.steps_per_epoch!r}: must be a whole number of at least 1, or None"
    if not _finite_number(workload.target):
        return f"target={workload.target!r}: must be a finite number (the validation value that counts as converged)"
    if not (_finite_number(workload.margin) and workload.margin > 0):
        return f"margin={workload.margin!r}: must be a positive number (of the metric's units)"
    if workload.optimizer not in OPTIMIZERS:
        return f"its optimizer {workload.optimizer!r} is not one of {', '.join(OPTIMIZERS)}"
    return None


@lru_cache(maxsize=4)
def load_splits(workload: Workload, seed: int, data_dir: Path | None = None) -> Splits:
    """The workload's splits for ``seed``, checked (``check_splits``) before anything trains on them.

    Raises ``DataError``, in one line naming the workload, for whatever goes wrong in its own
    ``load`` or model: nothing is stored before the data and one forward pass have been checked."""
    try:
        splits = workload.load(seed, data_dir)
    except DataError:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 - a workload's own code: its error, in one line
        raise DataError(
            f"workload {workload.name!r}: load() raised {type(error).__name__}: {error}"
        ) from None
    check_splits(workload, splits)
    return splits


def check_splits(workload: Workload, splits: Splits) -> None:
    """Refuse, as a ``DataError`` naming the workload, splits the engine cannot train on:
    not ``Splits``, empty, shapes that disagree with the workload, labels outside
    [0, classes), inputs that are not finite, or a model whose forward pass fails on them."""
    problem = _splits_problem(workload, splits) or _forward_problem(workload, splits)
    if problem:
        raise DataError(f"workload {workload.name!r}: {problem}")


def _splits_problem(workload: Workload, splits: Splits) -> str | None:
    import torch

    if not isinstance(splits, Splits):
        return f"load() returned a {type(splits).__name__}, not objectives.workloads.registry.Splits"
    for part in ("train", "val", "test"):
        x, y = getattr(splits, f"x_{part}"), getattr(splits, f"y_{part}")
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
            return f"its {part} split is not a pair of tensors"
        if len(x) == 0 or len(x) != len(y):
            return f"its {part} split has {len(x)} inputs and {len(y)} labels (it needs as many, and some)"
        if tuple(x.shape[1:]) != tuple(workload.input_shape):
            return f"its {part} inputs are {tuple(x.shape[1:])} each, but input_shape says {workload.input_shape}"
        if y.dtype.is_floating_point or y.dtype.is_complex or y.dtype == torch.bool:
            return f"its {part} labels are {y.dtype}; class indices must be integers"
        if y.min() < 0 or y.max() >= workload.classes:
            return f"its {part} labels run from {int(y.min())} to {int(y.max())}, outside [0, {workload.classes})"
        if x.dtype.is_floating_point and not torch.isfinite(x).all():
            return f"its {part} inputs hold NaN or infinite values"
    return None


def _forward_problem(workload: Workload, splits: Splits) -> str | None:
    """A forward pass of a fresh model on two training examples: the logits' shape must be
    (2, classes), or (2, positions, classes) against (2, positions) targets."""
    import torch

    try:
        with torch.no_grad():
            logits = workload.make_model()(splits.x_train[:2])
    except (Exception, SystemExit) as error:  # noqa: BLE001 - the workload's own model
        return f"its model's forward pass on two training examples raised {type(error).__name__}: {error}"
    expected = (*splits.y_train[:2].shape, workload.classes)
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        return f"its model returns {shape} for two examples, not logits of shape {expected}"
    return None
