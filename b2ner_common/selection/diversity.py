"""Stage 2: pick k samples that cover an embedding space (FAISS k-means, k-center greedy, random).

Vectors are unit-length float32 rows (see `b2ner_common.selection.embeddings`); distances are Euclidean, which on
unit vectors is sqrt(2 - 2 cos). Every function is deterministic for a seed.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Literal

import numpy as np

Strategy = Literal["kmeans", "kcenter", "random"]
STRATEGIES: tuple[str, ...] = ("kmeans", "kcenter", "random")


# k-means trains on (and picks from) at most this many rows per centroid of a group: FAISS warns below 39.
POINTS_PER_CENTROID = 40

# Below this many point-centroid pairs an OpenMP team costs more than it saves (and spins badly when the
# cores are shared): small k-means problems run single-threaded.
_SMALL_WORK = 4_000_000


@contextmanager
def _faiss_threads(threads: int | None):
    import faiss

    if not threads:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _blas_single_thread():
    """Matrix-vector loops are memory-bound: one BLAS thread is as fast, and far faster when the cores are
    shared (an idle-spinning second thread collapses throughput under contention)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _as_f32(vectors: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(vectors, dtype=np.float32)


def select_diverse(
    vectors: np.ndarray,
    k: int,
    seed: int = 0,
    strategy: str = "kmeans",
    *,
    centers: np.ndarray | None = None,
    kmeans_iters: int = 20,
) -> np.ndarray:
    """Indices of `k` rows of `vectors` chosen by `strategy`, in pick order (position = cluster id).

    - kmeans: FAISS k-means with k centroids, then the sample nearest each centroid (unique).
    - kcenter: greedy farthest-point traversal (2-approximation of the minimax cover); `centers` are
      vectors already chosen elsewhere that the new picks should complement.
    - random: uniform sample without replacement (the ablation baseline).
    Returns all indices when k >= len(vectors). Raises ValueError for an unknown strategy.
    """
    n = len(vectors)
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n:
        return np.arange(n, dtype=np.int64)
    if strategy == "kmeans":
        return kmeans_select(vectors, k, seed, niter=kmeans_iters)
    if strategy == "kcenter":
        return kcenter_select(vectors, k, seed, centers=centers)
    if strategy == "random":
        return np.random.default_rng(seed).choice(n, size=k, replace=False).astype(np.int64)
    raise ValueError(f"unknown selection strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")


def kmeans_select(vectors: np.ndarray, k: int, seed: int = 0, niter: int = 20) -> np.ndarray:
    """k-means (FAISS) with k centroids; for each centroid the nearest not-yet-picked sample.

    Big groups are clustered on a seeded subsample of `POINTS_PER_CENTROID * k` rows and the picks are the
    subsample rows nearest each centroid: cost O(k^2 d) instead of O(n k d), independent of the group size.
    """
    import faiss

    x_all = _as_f32(vectors)
    n_all, d = x_all.shape
    rows = None
    if n_all > POINTS_PER_CENTROID * k:
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(n_all, size=POINTS_PER_CENTROID * k, replace=False))
        x = np.ascontiguousarray(x_all[rows])
    else:
        x = x_all
    n = len(x)
    km = faiss.Kmeans(
        d, k, niter=niter, seed=int(seed) & 0x7FFFFFFF, verbose=False, min_points_per_centroid=1
    )
    # FAISS seeds k-means with random points, which often leaves a big cluster split and small ones merged;
    # k-means++ seeding reaches a markedly lower objective on skewed real data (see tests).
    init = kmeans_pp_init(x, k, seed)
    index = faiss.IndexFlatL2(d)
    index.add(x)
    with _faiss_threads(1 if n * k < _SMALL_WORK else None):
        km.train(x, init_centroids=init)
        # A few neighbours per centroid so two centroids that share a nearest sample both get a distinct one.
        m = min(n, 8)
        _, nbrs = index.search(km.centroids, m)
    taken = np.zeros(n, dtype=bool)
    picks = np.full(k, -1, dtype=np.int64)
    for c in range(k):
        for j in nbrs[c]:
            if j >= 0 and not taken[j]:
                picks[c] = j
                taken[j] = True
                break
    missing = np.flatnonzero(picks < 0)
    if len(missing):
        # Rare (many centroids collapsed onto one spot): fill with the unpicked samples farthest from the picks.
        fill = kcenter_select(x, len(missing), seed, centers=x[picks[picks >= 0]], exclude=taken)
        picks[missing] = fill
    return picks if rows is None else rows[picks]


def kmeans_pp_init(x: np.ndarray, k: int, seed: int = 0, max_points: int | None = None) -> np.ndarray:
    """k-means++ seeding (D^2 sampling) -> (k, d) initial centroids; on a seeded subsample of at most
    `max_points` rows (default 4 k, at least 2048) to bound the O(k n d) cost on big groups."""
    rng = np.random.default_rng(seed)
    n = len(x)
    cap = max_points or max(4 * k, 2048)
    if n > cap:
        x = x[np.sort(rng.choice(n, size=cap, replace=False))]
        n = cap
    sq = np.einsum("ij,ij->i", x, x)
    first = int(rng.integers(n))
    chosen = [first]
    best = np.maximum(sq - 2.0 * (x @ x[first]) + sq[first], 0.0)
    d2 = np.empty(n, dtype=np.float32)
    with _blas_single_thread():
        for u in rng.random(k - 1):
            cum = np.cumsum(best, dtype=np.float64)
            # D^2 sampling by inverting the cumulative weights (rng.choice(p=...) re-validates p every call).
            j = int(np.searchsorted(cum, u * cum[-1], side="right")) if cum[-1] > 0 else int(rng.integers(n))
            j = min(j, n - 1)
            chosen.append(j)
            np.matmul(x, x[j], out=d2)
            d2 *= -2.0
            d2 += sq
            d2 += sq[j]
            np.maximum(d2, 0.0, out=d2)
            np.minimum(best, d2, out=best)
    return np.ascontiguousarray(x[chosen])


def kcenter_select(
    vectors: np.ndarray,
    k: int,
    seed: int = 0,
    *,
    centers: np.ndarray | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy k-center: repeatedly pick the sample farthest from everything picked so far.

    Starts from `centers` when given, else from a seeded random sample. `exclude` (bool mask) rows are never
    picked. Cost O(k * n * d) as matrix-vector products.
    """
    x = _as_f32(vectors)
    n = len(x)
    sq = np.einsum("ij,ij->i", x, x)
    best = np.full(n, np.inf, dtype=np.float32)
    if exclude is not None:
        best[exclude] = -np.inf
    k = min(k, int((best != -np.inf).sum()))
    picks = np.empty(k, dtype=np.int64)
    if centers is not None and len(centers):
        c = _as_f32(centers)
        for start in range(0, len(c), 256):
            block = c[start : start + 256]
            d2 = sq[:, None] - 2.0 * (x @ block.T) + np.einsum("ij,ij->i", block, block)[None, :]
            np.minimum(best, d2.min(axis=1), out=best)
        j = int(np.argmax(best))
    else:
        j = int(np.random.default_rng(seed).choice(np.flatnonzero(best == np.inf)))
    d2 = np.empty(n, dtype=np.float32)
    with _blas_single_thread():
        for i in range(k):
            picks[i] = j
            # In place: this loop is the whole cost (k matrix-vector products). A picked row is set to -inf
            # (like excluded rows) so it is never the argmax again.
            np.matmul(x, x[j], out=d2)
            d2 *= -2.0
            d2 += sq
            d2 += sq[j]
            np.minimum(best, d2, out=best)
            best[j] = -np.inf
            j = int(np.argmax(best))
    return picks


def nearest_distances(
    vectors: np.ndarray, selected: np.ndarray, query: np.ndarray | None = None
) -> np.ndarray:
    """Euclidean distance of every row of `vectors` (or of the rows `query` only) to its nearest row among
    the `selected` indices."""
    import faiss

    x = _as_f32(vectors)
    q = x if query is None else np.ascontiguousarray(x[query])
    if len(selected) == 0:
        return np.full(len(q), np.inf, dtype=np.float32)
    index = faiss.IndexFlatL2(x.shape[1])
    index.add(np.ascontiguousarray(x[np.asarray(selected, dtype=np.int64)]))
    d2, _ = index.search(q, 1)
    return np.sqrt(np.maximum(d2[:, 0], 0.0))


def coverage(vectors: np.ndarray, selected: np.ndarray, max_rows: int = 100_000) -> dict[str, float]:
    """How well `selected` covers `vectors`: mean, 95th percentile and max distance to the nearest pick.

    Over all rows, or a fixed-seed sample of `max_rows` of them for big datasets (`n` says how many)."""
    query = None
    if len(vectors) > max_rows:
        query = np.sort(np.random.default_rng(0).choice(len(vectors), size=max_rows, replace=False))
    dist = nearest_distances(vectors, selected, query)
    if len(dist) == 0:
        return {"mean": 0.0, "p95": 0.0, "max": 0.0, "n": 0, "k": int(len(selected))}
    return {
        "mean": float(dist.mean()),
        "p95": float(np.percentile(dist, 95)),
        "max": float(dist.max()),
        "n": int(len(dist)),
        "k": int(len(selected)),
    }
