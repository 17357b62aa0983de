"""Two-stage selection of one dataset: cleaning, category quotas (stage 1), semantic diversity (stage 2).

`select_dataset` is the per-group function the Spark job runs with applyInPandas (one dataset per call);
it is plain pandas/numpy and is unit-tested without Spark.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from b2ner_common.selection.dedup import clean, text_hashes
from b2ner_common.selection.diversity import STRATEGIES, coverage, select_diverse
from b2ner_common.selection.quotas import category_quotas, dataset_budget, rare_first

NO_ENTITY = "(no entity)"  # category of samples without any typed entity
SELECTION_COLUMNS = ["sample_id", "dataset", "stage", "category", "cluster", "selection_run"]


@dataclass(frozen=True)
class SelectParams:
    """The knobs of `select.*` that the per-dataset function needs (picklable, engine-independent)."""

    budget_per_dataset: int = 1300
    budget_fraction: float | None = None
    empty_share: float = 0.05
    strategy: str = "kmeans"
    seed: int = 0
    dedup_threshold: float = 0.95
    kmeans_iters: int = 20
    compare_strategies: bool = True
    run_id: str = "default"

    @classmethod
    def from_config(cls, cfg) -> SelectParams:
        """From a `SelectConfig`."""
        return cls(**{k: getattr(cfg, k) for k in cls.__dataclass_fields__})


def group_seed(seed: int, *parts: object) -> int:
    """A stable per-group seed (Python's hash() is salted per process, so it cannot be used)."""
    h = hashlib.blake2b(repr((seed, *parts)).encode("utf-8"), digest_size=4)
    return int.from_bytes(h.digest(), "little") & 0x7FFFFFFF


def _types_of(value) -> tuple[str, ...]:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ()
    return tuple(sorted({str(t) for t in value if t}))


def two_stage(
    vectors: np.ndarray,
    types: list[tuple[str, ...]],
    budget: int,
    empty_share: float,
    strategy: str,
    seed: int,
    dataset: str = "",
    kmeans_iters: int = 20,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Select `budget` rows: quotas per type (rarest first; a pick counts toward every type it contains),
    diverse picks inside each type group, a small share for rows without entities.

    Returns (picks with columns row, category, stage, cluster; round-1 quota per type).
    Rounds repeat with the budget left until it is spent or no candidate is left, so the number selected
    is min(budget, rows) whatever the strategy (equal sizes for the coverage comparison).
    """
    n = len(types)
    typed = [i for i in range(n) if types[i]]
    empty = [i for i in range(n) if not types[i]]
    empty_quota = min(len(empty), round(empty_share * budget))
    typed_budget = min(budget - empty_quota, len(typed))
    empty_quota = min(len(empty), budget - typed_budget)

    lists: dict[str, list[int]] = {}
    for i in typed:
        for t in types[i]:
            lists.setdefault(t, []).append(i)
    members = {t: np.array(v, dtype=np.int64) for t, v in lists.items()}
    picked = np.zeros(n, dtype=bool)
    rows: list[tuple[int, str, str, int]] = []
    first_quotas: dict[str, int] = {}
    remaining = typed_budget
    rnd = 0
    while remaining > 0:
        avail = {t: m[~picked[m]] for t, m in members.items()}
        avail = {t: v for t, v in avail.items() if len(v)}
        if not avail:
            break
        quotas = category_quotas({t: len(v) for t, v in avail.items()}, remaining)
        if rnd == 0:
            first_quotas = quotas
        counted: Counter[str] = Counter()
        for t in rare_first({t: len(v) for t, v in avail.items()}):
            need = min(quotas[t] - counted[t], remaining)
            if need <= 0:
                continue
            cand = avail[t][~picked[avail[t]]]
            if len(cand) == 0:
                continue
            need = min(need, len(cand))
            stage = "category" if need >= len(cand) else "semantic"
            # k-center continues from the group's members picked earlier (for other types).
            prev = members[t][picked[members[t]]]
            local = select_diverse(
                vectors[cand],
                need,
                group_seed(seed, dataset, t, rnd),
                strategy,
                centers=vectors[prev] if len(prev) else None,
                kmeans_iters=kmeans_iters,
            )
            for cluster, i in enumerate(cand[local].tolist()):
                picked[i] = True
                rows.append((i, t, stage, cluster))
                counted.update(types[i])
            remaining -= len(local)
        rnd += 1

    if empty_quota > 0:
        cand = np.array(empty, dtype=np.int64)
        stage = "category" if empty_quota >= len(cand) else "semantic"
        local = select_diverse(
            vectors[cand],
            empty_quota,
            group_seed(seed, dataset, NO_ENTITY),
            strategy,
            kmeans_iters=kmeans_iters,
        )
        rows.extend((int(cand[j]), NO_ENTITY, stage, c) for c, j in enumerate(local))
    if empty:
        first_quotas[NO_ENTITY] = empty_quota
    picks = pd.DataFrame(rows, columns=["row", "category", "stage", "cluster"])
    if typed_budget >= len(typed) and empty_quota >= len(empty):
        picks["stage"] = "category"  # everything is kept: no semantic choice was made
    return picks, first_quotas


def select_dataset(
    df: pd.DataFrame,
    vectors: np.ndarray,
    params: SelectParams,
    eval_hashes: Collection[str] = (),
) -> tuple[pd.DataFrame, dict]:
    """Clean and select one dataset.

    Args:
        df: one dataset's candidate rows with columns sample_id, dataset, text, types (universal type
            names of the sample's entities; empty for samples without entities).
        vectors: (len(df), d) unit embeddings aligned with `df`.
        params: budget, strategy, seed, thresholds.
        eval_hashes: normalized-text hashes of the evaluation sets (decontamination).
    Returns:
        (selection rows with the gold/selection columns, stats dict: cleaning counts, per-type counts,
        coverage per strategy).
    """
    dataset = str(df["dataset"].iloc[0]) if len(df) else ""
    # Rows arrive in engine-dependent order: sort so results depend only on the data and the seed.
    order = np.argsort(df["sample_id"].to_numpy().astype(str), kind="stable")
    df = df.iloc[order].reset_index(drop=True)
    vectors = np.ascontiguousarray(vectors[order], dtype=np.float32)

    keep, cleaning = clean(text_hashes(df["text"]), vectors, params.dedup_threshold, eval_hashes)
    kept = np.flatnonzero(keep)
    kdf = df.iloc[kept].reset_index(drop=True)
    kvec = vectors[kept]
    types = [_types_of(v) for v in kdf["types"]]
    budget = dataset_budget(len(kdf), params.budget_per_dataset, params.budget_fraction)

    strategies = list(STRATEGIES) if params.compare_strategies else [params.strategy]
    if params.strategy not in strategies:
        strategies.insert(0, params.strategy)
    result = None
    cover: dict[str, dict] = {}
    quotas: dict[str, int] = {}
    for strategy in strategies:
        picks, q = two_stage(
            kvec, types, budget, params.empty_share, strategy, params.seed, dataset, params.kmeans_iters
        )
        cover[strategy] = coverage(kvec, picks["row"].to_numpy()) if len(kvec) else {}
        if strategy == params.strategy:
            result, quotas = picks, q

    assert result is not None
    out = pd.DataFrame(
        {
            "sample_id": kdf["sample_id"].to_numpy()[result["row"].to_numpy()] if len(result) else [],
            "dataset": dataset,
            "stage": result["stage"].to_numpy(),
            "category": result["category"].to_numpy(),
            "cluster": result["cluster"].to_numpy().astype(np.int32),
            "selection_run": params.run_id,
        },
        columns=SELECTION_COLUMNS,
    )
    available = Counter(t for ts in types for t in ts)
    available[NO_ENTITY] = sum(1 for ts in types if not ts)
    before = Counter(t for v in df["types"] for t in _types_of(v))
    before[NO_ENTITY] = sum(1 for v in df["types"] if not _types_of(v))
    sel_types = [types[i] for i in result["row"]]
    after = Counter(t for ts in sel_types for t in ts)
    after[NO_ENTITY] = sum(1 for ts in sel_types if not ts)
    per_type = {
        t: {
            "before": int(before.get(t, 0)),
            "after_cleaning": int(available.get(t, 0)),
            "quota": int(quotas.get(t, 0)),
            "picked_for": int((result["category"] == t).sum()),
            "selected": int(after.get(t, 0)),
        }
        for t in sorted(set(before) | set(available))
        if before.get(t, 0)
    }
    stats = {
        "dataset": dataset,
        "cleaning": cleaning,
        "budget": int(budget),
        "selected": int(len(out)),
        "strategy": params.strategy,
        "types": per_type,
        "coverage": cover,
        "params": asdict(params),
    }
    return out, stats


def stats_json(stats: dict) -> str:
    return json.dumps(stats, sort_keys=True)
