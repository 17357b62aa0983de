"""Cleaning before selection: exact duplicates, near duplicates, decontamination, with exact counts."""

from __future__ import annotations

import numpy as np
import pytest

from b2ner_common.selection import (
    OOD_DEV_DATASETS,
    catalog_roles,
    clean,
    contaminated_mask,
    eval_datasets,
    exact_duplicate_mask,
    near_duplicate_mask,
    never_train,
    normalize_text,
    text_hash,
)
from b2ner_common.selection.dedup import text_hashes


def unit(rng, n, d=48):
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def near_copy(rng, v, cos):
    """A unit vector at exactly cosine `cos` from unit vector v."""
    r = rng.normal(size=v.shape).astype(np.float32)
    r -= (r @ v) * v
    r /= np.linalg.norm(r)
    return (cos * v + np.sqrt(1 - cos**2) * r).astype(np.float32)


def test_dedup_normalize_text_matches_tokenization_and_width_variants():
    assert normalize_text("U.S. - led  Forces") == normalize_text("u.s.-led forces")
    assert normalize_text("ＡＢＣ　公司") == normalize_text("abc公司")  # full-width + ideographic space
    assert text_hash("Obama visited Paris") != text_hash("Obama visited Rome")


def test_dedup_exact_duplicates_keep_first_occurrence():
    texts = [
        "EU rejects German call",
        "eu rejects  german call",
        "Peter Blackburn",
        "EU REJECTS GERMAN CALL",
        "x",
    ]
    drop = exact_duplicate_mask(text_hashes(texts))
    assert drop.tolist() == [False, True, False, True, False]
    # Inactive rows neither count as duplicates nor make later rows duplicates.
    drop = exact_duplicate_mask(text_hashes(texts), active=np.array([False, True, True, True, True]))
    assert drop.tolist() == [False, False, False, True, False]


def test_dedup_near_duplicates_threshold_is_inclusive_and_greedy():
    rng = np.random.default_rng(0)
    x = unit(rng, 200)
    x[10] = near_copy(rng, x[3], 0.97)  # dup of 3
    x[11] = near_copy(rng, x[3], 0.96)  # dup of 3
    x[50] = near_copy(rng, x[40], 0.95)  # exactly at the threshold: dup
    x[60] = near_copy(rng, x[41], 0.93)  # below: kept
    drop = near_duplicate_mask(x, 0.95)
    assert sorted(np.flatnonzero(drop).tolist()) == [10, 11, 50]


def test_dedup_near_duplicates_chain_is_greedy_not_transitive():
    # a~b and b~c but a !~ c: b goes (dup of a), c stays because the only row it duplicates was dropped.
    rng = np.random.default_rng(1)
    a = unit(rng, 1)[0]
    b = near_copy(rng, a, 0.96)
    # c in the (a, b) plane beyond b: cos(b, c) = 0.96, cos(a, c) ~ 0.84
    theta = np.arccos(0.96)
    perp = b - (b @ a) * a
    perp /= np.linalg.norm(perp)
    c = np.cos(2 * theta) * a + np.sin(2 * theta) * perp
    x = np.stack([a, b, c.astype(np.float32)])
    assert near_duplicate_mask(x, 0.95).tolist() == [False, True, False]


def test_dedup_near_duplicates_ivf_path_finds_planted_pairs():
    rng = np.random.default_rng(2)
    x = unit(rng, 3000, d=32)
    planted = {}
    for i in range(0, 200, 2):
        x[1000 + i] = near_copy(rng, x[i], 0.985)
        planted[1000 + i] = i
    exact = near_duplicate_mask(x, 0.95, exact_limit=10_000)
    approx = near_duplicate_mask(x, 0.95, exact_limit=500)  # IVF index (the default above 5000 rows)
    assert sorted(np.flatnonzero(exact)) == sorted(planted)
    assert sorted(np.flatnonzero(approx)) == sorted(planted)


def test_dedup_contamination_and_clean_counts():
    rng = np.random.default_rng(3)
    texts = [
        "Apple unveils a new iPhone in Cupertino .",  # in the eval set (different spacing/case)
        "The striker scored twice for Arsenal .",
        "the striker scored twice for arsenal.",  # exact dup of 1
        "Rain is expected over Berlin on Sunday .",
        "Heavy rain is expected over Berlin on Sunday .",  # near dup of 3 (by vector)
        "Apple unveils a new iPhone in Cupertino.",  # contaminated too (counted as contaminated, not dup)
        "A quiet sentence with no entity .",
    ]
    x = unit(rng, len(texts))
    x[4] = near_copy(rng, x[3], 0.99)
    eval_h = {text_hash("apple unveils a new iphone in cupertino .")}
    assert contaminated_mask(text_hashes(texts), eval_h).tolist() == [
        True,
        False,
        False,
        False,
        False,
        True,
        False,
    ]
    keep, counts = clean(text_hashes(texts), x, 0.95, eval_h)
    assert counts == {"input": 7, "contaminated": 2, "exact_duplicate": 1, "near_duplicate": 1, "kept": 3}
    assert np.flatnonzero(keep).tolist() == [1, 3, 6]


def test_dedup_eval_datasets_default_and_explicit():
    assert eval_datasets(["wnut17", "mit_movie", "wnut17"]) == ["mit_movie", "wnut17"]
    assert eval_datasets() == sorted(OOD_DEV_DATASETS)
    roles = catalog_roles()  # the ingest catalog: its ood_dev role decides
    assert eval_datasets(None, roles) == sorted(d for d, r in roles.items() if r == "ood_dev")
    assert set(eval_datasets(None, roles)) == set(OOD_DEV_DATASETS)
    assert eval_datasets(None, {"my_eval": "ood_dev", "conll2003": "train_pool"}) == ["my_eval"]
    # Duplicates (crossner_conll2003) and OOD-DEV corpora are never selection candidates.
    assert {"crossner_conll2003", "crossner_ai", "weibo"} <= set(never_train(roles))
    assert "conll2003" not in never_train(roles)


@pytest.mark.parametrize("threshold", [1.01])
def test_dedup_threshold_above_one_disables_near_dedup(threshold):
    rng = np.random.default_rng(4)
    x = unit(rng, 10)
    x[1] = x[0]
    assert not near_duplicate_mask(x, threshold).any()
