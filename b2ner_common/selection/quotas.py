"""Stage 1: category-level quotas per dataset (every universal type represented, rare types first)."""

from __future__ import annotations

import math
from collections.abc import Mapping


def dataset_budget(n: int, budget_per_dataset: int, budget_fraction: float | None = None) -> int:
    """Samples to keep from a dataset of `n` (after cleaning): a fraction when given, else the absolute budget."""
    if budget_fraction is not None:
        if not 0.0 < budget_fraction <= 1.0:
            raise ValueError(f"select.budget_fraction must be in (0, 1], got {budget_fraction}")
        return min(n, math.ceil(budget_fraction * n))
    return min(n, max(0, int(budget_per_dataset)))


def rare_first(counts: Mapping[str, int]) -> list[str]:
    """Type names ordered rarest first (ties by name, so the order is deterministic)."""
    return sorted(counts, key=lambda t: (counts[t], t))


def category_quotas(counts: Mapping[str, int], budget: int) -> dict[str, int]:
    """Split `budget` over types by water-filling, rarest first.

    Each type in turn (rarest first) gets min(its count, ceil(remaining / types left)): rare types take all
    their samples, what they leave goes to the frequent types, and when the budget is smaller than the number
    of types the rarest types get one sample each. Sum of quotas = min(budget, sum of counts).
    """
    quotas: dict[str, int] = {}
    remaining = max(0, int(budget))
    order = rare_first(counts)
    for i, t in enumerate(order):
        left = len(order) - i
        share = -(-remaining // left) if remaining else 0
        quotas[t] = min(int(counts[t]), share)
        remaining -= quotas[t]
    return quotas
