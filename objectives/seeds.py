"""Every seed of a sweep, derived from the one ``--seed``, in one place.

- ``--seed`` itself fixes the data split of the built-in workloads (``Workload.load``).
- A trial's **place** in its study is its number less the interrupted trials before it. The
  trial trains with ``trial_seed(seed, place)``: its model's initialization and its data order.
  Place k of every family gets the same training seed, so families are compared on the same
  initializations and data orders.
- Before each ask the TPE sampler is seeded with ``sampler_seed(seed, study name, place)``: what
  the trial draws depends on its study and place, not on timing.
- The grid protocol trains every grid point with the selection seeds ``selection_seed(seed, k)``,
  k = 0, 1, ...: the same for every family and LR.
- The re-evaluation of a study's best configuration trains with ``reevaluation_seeds(seed, n)``,
  which never coincide with a training seed of a tuning trial (a disjoint range of keys).

Seeds are 32-bit numbers mixed from their keys by numpy's ``SeedSequence``.
"""

from __future__ import annotations

import zlib

import numpy as np

DEFAULT_SEEDS = 20
"""Re-evaluation seeds per family unless ``--seeds`` (or a suite) says otherwise."""

REEVALUATION_OFFSET = 1_000_000
"""Re-evaluation seeds derive from (seed, REEVALUATION_OFFSET + k): never a tuning trial's place."""


def derive_seed(*keys: int) -> int:
    """A well-mixed 32-bit seed from integers (the sweep seed, a place, ...)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def trial_seed(sweep_seed: int, place: int) -> int:
    """The training seed at ``place``; the same for that place in every family's study."""
    return derive_seed(sweep_seed, place)


def selection_seed(sweep_seed: int, k: int) -> int:
    """The grid protocol's k-th selection seed: place k's training seed, so every family's grid
    point k trains as every family's tuning trial k does."""
    return trial_seed(sweep_seed, k)


def sampler_seed(sweep_seed: int, study_name: str, place: int) -> int:
    """The sampler's seed for the trial at ``place`` of the study named ``study_name``."""
    return derive_seed(sweep_seed, zlib.crc32(study_name.encode()), place)


def reevaluation_seeds(sweep_seed: int, count: int) -> list[int]:
    """The ``count`` seeds a best configuration is re-trained with, the same for every family."""
    return [derive_seed(sweep_seed, REEVALUATION_OFFSET + k) for k in range(count)]
