"""Stage-1 quotas and the per-dataset two-stage selection: budgets, rare types first, no-entity share."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from b2ner_common.selection import NO_ENTITY, SelectParams, category_quotas, dataset_budget, select_dataset


def test_selection_quotas_rare_types_take_all_rest_split_evenly():
    q = category_quotas({"person": 900, "location": 500, "award": 4, "gene": 10}, 100)
    # award and gene are served first and completely; the 86 left are split over the two frequent types.
    assert q == {"award": 4, "gene": 10, "location": 43, "person": 43}


def test_selection_quotas_budget_below_type_count_goes_to_rarest():
    q = category_quotas({"a": 50, "b": 3, "c": 7, "d": 1}, 2)
    assert q == {"d": 1, "b": 1, "c": 0, "a": 0}


@given(
    counts=st.dictionaries(
        st.text(min_size=1, max_size=4), st.integers(min_value=1, max_value=500), max_size=12
    ),
    budget=st.integers(min_value=0, max_value=3000),
)
def test_selection_quotas_properties(counts, budget):
    q = category_quotas(counts, budget)
    assert set(q) == set(counts)
    assert sum(q.values()) == min(budget, sum(counts.values()))
    assert all(0 <= q[t] <= counts[t] for t in counts)
    if budget >= len(counts):
        assert all(q[t] >= 1 for t in counts)  # every type represented
    # Rarer types never get a smaller share of their samples than more frequent ones.
    ratios = sorted((counts[t], q[t] / counts[t]) for t in counts)
    assert all(a[1] >= b[1] - 1e-9 or a[0] == b[0] for a, b in zip(ratios, ratios[1:], strict=False))


def test_selection_quotas_dataset_budget():
    assert dataset_budget(5000, 1300) == 1300
    assert dataset_budget(800, 1300) == 800
    assert dataset_budget(5000, 1300, 0.1) == 500
    with pytest.raises(ValueError):
        dataset_budget(10, 5, 1.5)


def synthetic_dataset(n: int, seed: int, dim: int = 24) -> tuple[pd.DataFrame, np.ndarray]:
    """Samples with Zipf-like type frequencies (one very rare type) and ~20 % without entities."""
    rng = np.random.default_rng(seed)
    names = ["person", "location", "organization", "product", "disease", "award"]
    probs = np.array([0.45, 0.25, 0.15, 0.1, 0.045, 0.005])
    types = []
    for _ in range(n):
        m = rng.choice([0, 1, 2], p=[0.2, 0.5, 0.3])
        types.append(list(rng.choice(names, size=m, replace=False, p=probs)))
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    df = pd.DataFrame(
        {
            "sample_id": [f"{seed}-{i:06d}" for i in range(n)],
            "dataset": "synthetic",
            "text": [f"sentence number {i} of seed {seed}" for i in range(n)],
            "types": types,
        }
    )
    return df, vecs


@pytest.mark.parametrize("strategy", ["kmeans", "kcenter", "random"])
def test_selection_two_stage_budget_and_every_type_represented(strategy):
    df, vecs = synthetic_dataset(2000, 1)
    params = SelectParams(
        budget_per_dataset=120, strategy=strategy, compare_strategies=False, empty_share=0.1
    )
    out, stats = select_dataset(df, vecs, params)
    assert len(out) == 120 and out["sample_id"].is_unique
    chosen = df.set_index("sample_id").loc[out["sample_id"], "types"]
    present = {t for ts in df["types"] for t in ts}
    assert present == {t for ts in chosen for t in ts}  # every type represented
    # The rarest type has fewer samples than its fair share: all of them are taken.
    award = sum("award" in ts for ts in df["types"])
    assert 0 < award < 120 // len(present)
    assert sum("award" in ts for ts in chosen) == award
    assert stats["types"]["award"]["quota"] == award
    # The no-entity share: 10 % of the budget.
    assert sum(len(ts) == 0 for ts in chosen) == 12 == stats["types"][NO_ENTITY]["picked_for"]
    assert (
        out.loc[out["category"] == NO_ENTITY, "sample_id"].isin(
            df.loc[df["types"].str.len() == 0, "sample_id"]
        )
    ).all()
    # Picks made for a type contain that type.
    for sid, cat in zip(out["sample_id"], out["category"], strict=True):
        assert cat == NO_ENTITY or cat in chosen[sid]


def test_selection_two_stage_deterministic_and_order_independent():
    df, vecs = synthetic_dataset(1500, 2)
    params = SelectParams(budget_per_dataset=100, compare_strategies=False)
    a, _ = select_dataset(df, vecs, params)
    perm = np.random.default_rng(0).permutation(len(df))
    b, _ = select_dataset(df.iloc[perm].reset_index(drop=True), vecs[perm], params)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
    c, _ = select_dataset(df, vecs, SelectParams(budget_per_dataset=100, compare_strategies=False, seed=5))
    assert set(a["sample_id"]) != set(c["sample_id"])


def test_selection_two_stage_compare_strategies_equal_sizes():
    df, vecs = synthetic_dataset(1200, 3)
    _, stats = select_dataset(df, vecs, SelectParams(budget_per_dataset=90, budget_fraction=None))
    assert set(stats["coverage"]) == {"kmeans", "kcenter", "random"}
    assert {c["k"] for c in stats["coverage"].values()} == {90}


def test_selection_two_stage_small_dataset_takes_everything_as_category_stage():
    df, vecs = synthetic_dataset(40, 4)
    out, stats = select_dataset(df, vecs, SelectParams(budget_per_dataset=1300, compare_strategies=False))
    assert len(out) == 40 and set(out["stage"]) == {"category"}
    assert stats["budget"] == 40
