"""Cleaning before selection: exact duplicates, near duplicates, and decontamination against eval sets.

All functions return boolean "drop" masks over the input rows (True = drop) so callers can count the
reason of every dropped row: nothing is removed silently.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection, Iterable, Mapping

import numpy as np

# The OOD-DEV corpora: the ingest catalog's `role` column takes precedence, this list is the fallback and a guard.
from b2ner_common.ood import OOD_DEV_DATASETS

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Canonical form used for duplicate and contamination checks.

    NFKC (full-width -> ASCII), case-folded, all whitespace removed: the same sentence tokenized
    differently by two corpora ("U.S. - led" vs "U.S.-led") or joined with/without spaces still matches.
    """
    return _SPACE.sub("", unicodedata.normalize("NFKC", text or "").casefold())


def text_hash(text: str) -> str:
    """16-byte hex digest of `normalize_text(text)`."""
    return hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).hexdigest()


def text_hashes(texts: Iterable[str]) -> np.ndarray:
    return np.array([text_hash(t) for t in texts], dtype=object)


def catalog_roles(catalogs: Collection[str] = (), builtin: bool = True) -> dict[str, str]:
    """dataset -> role (train_pool, ood_dev, duplicate) from the ingest catalog (built-in unless
    `builtin` is False, + `catalogs`: the same catalogs ingest read)."""
    from b2ner_common.ingest.catalog import load_catalog

    return load_catalog(list(catalogs), builtin=builtin).roles()


def eval_datasets(names: Collection[str] | None = None, roles: Mapping[str, str] | None = None) -> list[str]:
    """Evaluation datasets for decontamination: `names` if given, else the datasets whose catalog role is
    ood_dev, else the built-in OOD-DEV list."""
    if names:
        return sorted(set(names))
    found = sorted(d for d, role in (roles or {}).items() if role == "ood_dev")
    return found or sorted(OOD_DEV_DATASETS)


def never_train(roles: Mapping[str, str] | None = None) -> list[str]:
    """Datasets that are never selection candidates: OOD-DEV (evaluation only) and catalog duplicates
    (e.g. crossner_conll2003, a relabelled copy of conll2003)."""
    roles = roles or {}
    return sorted(set(OOD_DEV_DATASETS) | {d for d, r in roles.items() if r in ("ood_dev", "duplicate")})


def contaminated_mask(hashes: np.ndarray, eval_hashes: Collection[str]) -> np.ndarray:
    """True where a row's normalized text also occurs in an evaluation set."""
    if not len(eval_hashes):
        return np.zeros(len(hashes), dtype=bool)
    return np.fromiter((h in eval_hashes for h in hashes), dtype=bool, count=len(hashes))


def exact_duplicate_mask(hashes: np.ndarray, active: np.ndarray | None = None) -> np.ndarray:
    """True for every row whose normalized text already occurred in an earlier active row."""
    seen: set[str] = set()
    drop = np.zeros(len(hashes), dtype=bool)
    for i, h in enumerate(hashes):
        if active is not None and not active[i]:
            continue
        if h in seen:
            drop[i] = True
        else:
            seen.add(h)
    return drop


def near_duplicate_mask(
    vectors: np.ndarray,
    threshold: float,
    active: np.ndarray | None = None,
    *,
    exact_limit: int = 5000,
    nprobe: int = 2,
) -> np.ndarray:
    """True for rows with cosine >= `threshold` to an earlier kept row (greedy in row order).

    Inner-product range search with FAISS: exact (flat) up to `exact_limit` rows, an IVF index above
    (near duplicates are very close, so probing `nprobe` lists finds them; approximate by design).
    """
    import faiss

    n = len(vectors)
    drop = np.zeros(n, dtype=bool)
    rows = np.arange(n) if active is None else np.flatnonzero(active)
    if len(rows) < 2 or threshold > 1.0:
        return drop
    x = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    d = x.shape[1]
    if len(rows) <= exact_limit:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(2 * np.sqrt(len(rows)))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        # Coarse centroids only route queries: a seeded subsample of 32 points per list trains them.
        sample = np.random.default_rng(0).choice(len(rows), size=min(len(rows), 32 * nlist), replace=False)
        index.cp.min_points_per_centroid = 1
        index.train(x[np.sort(sample)])
        index.nprobe = nprobe
    index.add(x)
    # FAISS keeps results strictly above the radius; the epsilon makes the threshold inclusive.
    lims, _, nbrs = index.range_search(x, float(threshold) - 1e-6)
    src = np.repeat(np.arange(len(rows)), np.diff(lims.astype(np.int64)))
    later = nbrs > src
    src, dst = src[later], nbrs[later]
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    dropped = np.zeros(len(rows), dtype=bool)
    starts = np.searchsorted(src, np.arange(len(rows) + 1))
    for i in np.unique(src):
        if not dropped[i]:
            dropped[dst[starts[i] : starts[i + 1]]] = True
    drop[rows[dropped]] = True
    return drop


def clean(
    hashes: np.ndarray, vectors: np.ndarray, threshold: float, eval_hashes: Collection[str] = ()
) -> tuple[np.ndarray, dict[str, int]]:
    """Keep-mask after decontamination, exact and near-duplicate removal (in that order), plus the counts
    of rows dropped for each reason."""
    contaminated = contaminated_mask(hashes, eval_hashes)
    exact = exact_duplicate_mask(hashes, active=~contaminated)
    near = near_duplicate_mask(vectors, threshold, active=~(contaminated | exact))
    keep = ~(contaminated | exact | near)
    counts = {
        "input": int(len(hashes)),
        "contaminated": int(contaminated.sum()),
        "exact_duplicate": int(exact.sum()),
        "near_duplicate": int(near.sum()),
        "kept": int(keep.sum()),
    }
    return keep, counts
