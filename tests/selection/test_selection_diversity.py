"""Stage-2 algorithms on synthetic point clouds: coverage beats random, determinism, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from b2ner_common.selection import STRATEGIES, coverage, select_diverse


def blobs(seed: int, n_blobs: int = 25, dim: int = 32, spread: float = 0.15) -> np.ndarray:
    """Unit vectors in clusters of very unequal sizes (the shape of real corpora: a few dominant topics)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(n_blobs, dim))
    sizes = np.maximum(5, (rng.pareto(1.2, n_blobs) * 60).astype(int))
    x = np.concatenate([c + spread * rng.normal(size=(s, dim)) for c, s in zip(centers, sizes, strict=True)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selection_diversity_kmeans_and_kcenter_cover_better_than_random(seed):
    x = blobs(seed)
    k = 30
    rand = coverage(x, select_diverse(x, k, seed, "random"))
    km = coverage(x, select_diverse(x, k, seed, "kmeans"))
    kc = coverage(x, select_diverse(x, k, seed, "kcenter"))
    # k-means optimizes the average distance, k-center the worst case: each must beat random on its objective.
    assert km["mean"] < rand["mean"]
    assert kc["max"] < rand["max"]
    assert kc["p95"] < rand["p95"]


def test_selection_diversity_kcenter_reaches_every_blob():
    x = blobs(3, n_blobs=12)
    picks = select_diverse(x, 12, 0, "kcenter")
    # With as many picks as well-separated blobs, farthest-point traversal lands in each blob once.
    assert coverage(x, picks)["max"] < 0.9


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_selection_diversity_deterministic_unique_and_sized(strategy):
    x = blobs(4)
    a = select_diverse(x, 40, 7, strategy)
    b = select_diverse(x, 40, 7, strategy)
    assert np.array_equal(a, b)
    assert len(a) == 40 and len(np.unique(a)) == 40
    assert a.min() >= 0 and a.max() < len(x)


def test_selection_diversity_seed_changes_random_pick():
    x = blobs(5)
    assert not np.array_equal(select_diverse(x, 20, 1, "random"), select_diverse(x, 20, 2, "random"))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_selection_diversity_edge_sizes(strategy):
    x = blobs(6)[:10]
    assert np.array_equal(select_diverse(x, 10, 0, strategy), np.arange(10))
    assert np.array_equal(select_diverse(x, 50, 0, strategy), np.arange(10))
    assert len(select_diverse(x, 0, 0, strategy)) == 0
    assert len(select_diverse(x[:0], 5, 0, strategy)) == 0


def test_selection_diversity_kmeans_with_duplicated_points_still_unique():
    # 30 copies of 3 points: centroids collapse, the fallback must still return k distinct rows.
    base = blobs(7)[:3]
    x = np.repeat(base, 30, axis=0)
    picks = select_diverse(x, 5, 0, "kmeans")
    assert len(np.unique(picks)) == 5


def test_selection_diversity_kcenter_complements_given_centers():
    x = blobs(8, n_blobs=6)
    first = select_diverse(x, 3, 0, "kcenter")
    more = select_diverse(x, 3, 0, "kcenter", centers=x[first])
    assert not set(first) & set(more)
    assert coverage(x, np.concatenate([first, more]))["max"] <= coverage(x, first)["max"]


def test_selection_diversity_unknown_strategy():
    with pytest.raises(ValueError, match="unknown selection strategy"):
        select_diverse(blobs(0), 3, 0, "dpp")


def test_selection_diversity_coverage_sampled_rows_estimate_the_full_metric():
    x = blobs(9)
    picks = select_diverse(x, 25, 0, "kmeans")
    full = coverage(x, picks)
    sampled = coverage(x, picks, max_rows=len(x) // 2)
    assert sampled["n"] == len(x) // 2 and full["n"] == len(x)
    assert abs(sampled["mean"] - full["mean"]) < 0.1 * full["mean"]
