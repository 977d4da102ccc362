"""The built-in workloads' models. Imported only when a model is built (``objectives.workloads.registry``
names them), so that listing workloads, as every command's ``--help`` does, needs no torch."""

from __future__ import annotations

from torch import nn

from objectives.workloads.datasets import SHAKESPEARE_CONTEXT, SHAKESPEARE_VOCABULARY
from objectives.workloads.transformer import CharTransformer


def digits_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def moons_mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 2))


def mnist1d_mlp() -> nn.Module:
    """The MLP of the MNIST-1D paper: 40-100-100-10, ReLU."""
    return nn.Sequential(nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))


def mnist1d_cnn() -> nn.Module:
    """The CNN of the MNIST-1D paper: three 1-D convolutions of 25 channels (stride 2), then linear."""
    return nn.Sequential(
        nn.Unflatten(1, (1, 40)),
        nn.Conv1d(1, 25, 5, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv1d(25, 25, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(25 * 5, 10),
    )


def shakespeare_transformer() -> nn.Module:
    """Two pre-norm blocks of width 64 with 4 heads: about 113,000 parameters."""
    return CharTransformer(SHAKESPEARE_VOCABULARY, SHAKESPEARE_CONTEXT, width=64, layers=2, heads=4)


def small_shakespeare_transformer() -> nn.Module:
    """One pre-norm block of width 32 with 4 heads: about 19,000 parameters, so a short run on
    a CPU sees tens of tokens per parameter (the decay-to-zero claim's regime)."""
    return CharTransformer(SHAKESPEARE_VOCABULARY, SHAKESPEARE_CONTEXT, width=32, layers=1, heads=4)


def keras_mnist_mlp() -> nn.Module:
    """The classic Keras MNIST example: flatten, dense 128 ReLU, dropout 0.2, dense 10."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, 10))


def fashion_cnn() -> nn.Module:
    """Two 5x5 conv + max-pool blocks (16 and 32 channels), then a linear classifier."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 7 * 7, 10),
    )


def cifar_tutorial_cnn() -> nn.Module:
    """The CNN of PyTorch's CIFAR-10 tutorial."""
    return nn.Sequential(
        nn.Conv2d(3, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
