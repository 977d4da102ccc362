"""What a study is made of: schedules, optimizers, workloads and the engine that trains them.

The public API, for a workload of your own and for notebooks; nothing here imports torch."""

from objectives.metrics import ACCURACY, Metric, bits_per_character
from objectives.schedules import FAMILIES, get_family
from objectives.workloads.registry import (
    WORKLOADS,
    Splits,
    Workload,
    carve_validation,
    get_workload,
    stratified_splits,
)

__all__ = [
    "ACCURACY",
    "FAMILIES",
    "WORKLOADS",
    "Metric",
    "Splits",
    "Workload",
    "bits_per_character",
    "carve_validation",
    "get_family",
    "get_workload",
    "stratified_splits",
]
