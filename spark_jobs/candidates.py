"""The rows selection may draw from, shared by the embed and select jobs so both see the same candidates.

Candidates: silver samples of `select.splits`, not of an evaluation / never-train dataset nor of
`select.exclude`, restricted to `select.datasets` / `select.langs` when set, and at most
`select.max_candidates_per_dataset` per dataset. The cap keeps the rows with the smallest seeded hash of
their sample_id: deterministic, independent of partitioning, and stable when a table is re-run (idempotent).
"""

from __future__ import annotations

from b2ner_common.config import PipelineConfig


def selection_candidates(silver, cfg: PipelineConfig, excluded: set[str]):
    """Filter a silver/samples DataFrame down to the selection candidates (see module doc)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    s = cfg.select
    cand = silver.filter(F.col("split").isin(s.splits) & ~F.col("dataset").isin(sorted(excluded)))
    if s.datasets:
        cand = cand.filter(F.col("dataset").isin(s.datasets))
    if s.langs:
        cand = cand.filter(F.col("lang").isin(s.langs))
    if s.max_candidates_per_dataset is not None:
        order = Window.partitionBy("dataset").orderBy(F.xxhash64(F.lit(s.seed), "sample_id"), "sample_id")
        cand = (
            cand.withColumn("_rank", F.row_number().over(order))
            .filter(F.col("_rank") <= s.max_candidates_per_dataset)
            .drop("_rank")
        )
    return cand


def excluded_datasets(cfg: PipelineConfig) -> tuple[list[str], set[str]]:
    """(evaluation datasets to decontaminate against, every dataset selection never draws from)."""
    from b2ner_common.selection.dedup import catalog_roles, eval_datasets, never_train

    roles = catalog_roles(cfg.ingest.catalogs, builtin=cfg.ingest.builtin_catalog)
    evals = eval_datasets(cfg.select.decontaminate, roles)
    return evals, set(evals) | set(never_train(roles)) | set(cfg.select.exclude)
