"""Weighted and Zipf-distributed choices that stay fast in pure Python."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from typing import Generic, TypeVar

__all__ = ["WeightedChoice", "zipf_weights"]

T = TypeVar("T")


def zipf_weights(n: int, exponent: float) -> list[float]:
    """Weights 1/rank**exponent for ranks 1..n (rank 1 is the most popular)."""
    return [1.0 / (rank**exponent) for rank in range(1, n + 1)]


class WeightedChoice(Generic[T]):
    """Draws items with fixed weights; cumulative weights are built once, each draw is a bisect."""

    __slots__ = ("_cumulative", "_items", "_total")

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if not items or len(items) != len(weights):
            raise ValueError("need as many weights as items, and at least one item")
        self._items = list(items)
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]

    def draw(self, rng: random.Random) -> T:
        """One item, with probability proportional to its weight."""
        index = bisect.bisect_right(self._cumulative, rng.random() * self._total)
        # random() < 1.0, but float rounding in the product can still land on the total.
        return self._items[min(index, len(self._items) - 1)]

    @property
    def items(self) -> list[T]:
        """The items in their original order."""
        return self._items
