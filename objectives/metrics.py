"""What a workload is judged by: its metric's name, direction and worst value.

The engine measures two things per member on every split, the mean cross-entropy (nats per
prediction) and the accuracy; a metric is one of them, in the units people quote: accuracy for
classifiers, bits per character (cross-entropy / ln 2) for language models. Everything that
compares runs (the engine's best epoch, the pruner, the sweep's study direction, the report's
rankings and verdicts) asks the metric which way is better instead of assuming "higher".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

CHANCE_MARGIN = 0.1
"""How far past a uniform guess (as a share of the way to perfect) a run must get to count as
having learned something: digits' 10 classes put the line at accuracy 0.19."""


@dataclass(frozen=True)
class Metric:
    """``name`` labels tables and the dashboard; ``worst`` scores a run that diverged (and caps
    a minimized metric: a model worse than it learned nothing either)."""

    name: str  # e.g. "acc", "bits_per_char"
    label: str  # in prose: "accuracy", "bits per character"
    direction: Literal["maximize", "minimize"]
    worst: float
    from_loss: bool  # True: the cross-entropy in bits; False: the accuracy

    @property
    def bounds(self) -> tuple[float, float]:
        """Every value the metric can take: accuracy 0 to 1, bits per character 0 to ``worst``."""
        return (0.0, self.worst) if self.from_loss else (0.0, 1.0)

    @property
    def sign(self) -> float:
        """+1 when higher is better, -1 when lower is: ``sign * value`` is always "higher is better"."""
        return 1.0 if self.direction == "maximize" else -1.0

    def of(self, loss: Any, accuracy: Any) -> Any:
        """The metric from the mean cross-entropy in nats and the accuracy (floats or arrays);
        non-finite or worse-than-worst values score ``worst``."""
        value = np.asarray(loss / math.log(2) if self.from_loss else accuracy, dtype=float)
        capped = np.where(np.isfinite(value), value, self.worst)
        capped = np.minimum(capped, self.worst) if self.direction == "minimize" else capped
        return float(capped) if capped.ndim == 0 else capped

    def reached(self, value: float, target: float) -> bool:
        """Whether ``value`` is at least as good as ``target``."""
        return self.sign * value >= self.sign * target

    def best(self, values: Any) -> float:
        """The best of ``values``, NaN ignored (NaN when none is a number)."""
        return _extreme(values, largest=self.sign > 0)

    def poorest(self, values: Any) -> float:
        """The worst of ``values``, NaN ignored (NaN when none is a number)."""
        return _extreme(values, largest=self.sign < 0)

    def chance(self, classes: int) -> float:
        """A uniform guess over ``classes``: accuracy 1/classes, or log2(classes) bits."""
        return math.log2(classes) if self.from_loss else 1.0 / classes

    def chance_line(self, classes: int) -> float:
        """``CHANCE_MARGIN`` of the way from a uniform guess to a perfect score (accuracy 1, 0 bits)."""
        chance = self.chance(classes)
        return chance + CHANCE_MARGIN * ((0.0 if self.from_loss else 1.0) - chance)

    def at_chance(self, value: Any, classes: int) -> Any:
        """Whether a run learned (next to) nothing: ``value`` is not past ``chance_line``."""
        return self.sign * np.asarray(value, dtype=float) < self.sign * self.chance_line(classes)

    @property
    def comparison(self) -> str:
        """How a value that reached the target compares with it: ``>=``, or ``<=`` when lower is better."""
        return ">=" if self.sign > 0 else "<="

    @property
    def validation_name(self) -> str:
        """The objective's name in the dashboard and the tables, e.g. ``val_acc``."""
        return f"val_{self.name}"


def _extreme(values: Any, *, largest: bool) -> float:
    """The largest or smallest of ``values``, NaN ignored (NaN when none is a number)."""
    numbers = np.asarray(values, dtype=float)
    numbers = numbers[~np.isnan(numbers)]
    if not len(numbers):
        return math.nan
    return float(numbers.max() if largest else numbers.min())


ACCURACY = Metric("acc", "accuracy", "maximize", worst=0.0, from_loss=False)


def bits_per_character(vocabulary: int) -> Metric:
    """Cross-entropy in bits per predicted character; the worst is a uniform guess over the vocabulary."""
    return Metric(
        "bits_per_char", "bits per character", "minimize", worst=math.log2(vocabulary), from_loss=True
    )
