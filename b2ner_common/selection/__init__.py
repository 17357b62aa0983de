"""Diversity-driven data selection (B2NERD-style): cleaning, category quotas, semantic diversity.

Public API:
- `select_diverse(vectors, k, seed, strategy) -> indices` and `coverage(vectors, selected)` (diversity.py)
- `category_quotas(counts, budget)`, `dataset_budget(n, budget, fraction)` (quotas.py)
- `clean`, `near_duplicate_mask`, `exact_duplicate_mask`, `contaminated_mask`, `text_hash` (dedup.py)
- `select_dataset(df, vectors, params, eval_hashes)` the per-dataset job body (two_stage.py)
- `selected_samples(warehouse, run_id)` a selection run read back (output.py)
- `training_rows(cfg)` what every model family trains on: `train.selection_run` + the eval-leak guard
  (training_rows.py)
"""

from b2ner_common.selection.dedup import (
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
from b2ner_common.selection.diversity import (
    STRATEGIES,
    coverage,
    kcenter_select,
    kmeans_select,
    select_diverse,
)
from b2ner_common.selection.output import read_selection, selected_samples
from b2ner_common.selection.quotas import category_quotas, dataset_budget
from b2ner_common.selection.two_stage import NO_ENTITY, SelectParams, select_dataset, two_stage


class SelectionError(RuntimeError):
    """The job ran but cannot produce a selection (e.g. samples without embeddings)."""


__all__ = [
    "SelectionError",
    "NO_ENTITY",
    "OOD_DEV_DATASETS",
    "STRATEGIES",
    "SelectParams",
    "category_quotas",
    "catalog_roles",
    "clean",
    "contaminated_mask",
    "coverage",
    "dataset_budget",
    "eval_datasets",
    "exact_duplicate_mask",
    "kcenter_select",
    "kmeans_select",
    "near_duplicate_mask",
    "never_train",
    "normalize_text",
    "read_selection",
    "select_dataset",
    "select_diverse",
    "selected_samples",
    "text_hash",
    "two_stage",
]
