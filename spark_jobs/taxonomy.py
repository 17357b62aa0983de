"""Spark taxonomy apply: bronze/samples -> silver/samples (entities with universal `type`, `label_set`).

bronze  --groupBy(dataset, label).count-->  check_mappings (fails listing unmapped labels)
bronze  --mapInArrow(map_table)-->  silver   (replaceWhere of the applied datasets: idempotent)
silver  --groupBy(dataset)-->  the summary (the only rows the driver sees)
"""

from __future__ import annotations

import time
import warnings

from b2ner_common import tables
from b2ner_common.config import PipelineConfig
from b2ner_common.schema import SILVER_SAMPLES
from b2ner_common.taxonomy.job import (
    BRONZE,
    SILVER,
    ApplyReport,
    check_counts,
    commit_metadata,
    dataset_predicate,
    label_sets_for,
    load_stage,
    require_clean,
)
from b2ner_common.taxonomy.mappings import map_table
from spark_jobs.delta import read_delta, table_exists, write_delta
from spark_jobs.session import get_spark


def raw_label_counts(bronze) -> dict[str, dict[str, int]]:
    """{dataset: {raw label: entities}} computed on Spark (the check's input)."""
    from pyspark.sql import functions as F

    rows = (
        bronze.select("dataset", F.explode("entities").alias("e"))
        .groupBy("dataset", F.col("e.label").alias("label"))
        .count()
        .collect()
    )
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        out.setdefault(r["dataset"], {})[r["label"]] = r["count"]
    return out


def run_taxonomy(cfg: PipelineConfig, spark=None) -> ApplyReport:
    """Map bronze/samples to silver/samples with Spark; raises CheckFailed before writing anything."""
    from pyspark.sql.pandas.types import from_arrow_schema

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    t0 = time.perf_counter()
    spark = spark or get_spark(cfg.spark)
    src = tables.table_path(cfg.warehouse, BRONZE)
    if not table_exists(spark, src):
        raise FileNotFoundError(f"{src} does not exist: run `b2ner ingest` first")
    bronze = read_delta(spark, src)
    counts = raw_label_counts(bronze)
    require_clean(check_counts(cfg, counts))
    _, mappings = load_stage(cfg)
    label_sets = label_sets_for(counts, mappings)

    def map_batches(batches):
        for b in batches:
            yield from map_table(b, mappings, label_sets).to_batches()

    silver = bronze.mapInArrow(map_batches, schema=from_arrow_schema(SILVER_SAMPLES))
    dst = tables.table_path(cfg.warehouse, SILVER)
    datasets = set(counts) | {r["dataset"] for r in bronze.select("dataset").distinct().collect()}
    write_delta(
        silver,
        dst,
        mode="overwrite",
        predicate=dataset_predicate(datasets) if datasets else None,
        schema=SILVER_SAMPLES,
        metadata=commit_metadata(cfg, "taxonomy apply (spark)"),
    )
    summary = spark_summary(read_delta(spark, dst))
    rows = sum(d["samples"] for d in summary.values())
    return ApplyReport("spark", rows, time.perf_counter() - t0, summary)


def spark_summary(silver) -> dict[str, dict]:
    """`apply_summary` of silver/samples, aggregated on the executors (one row per dataset comes back)."""
    from pyspark.sql import functions as F

    n_entities = F.coalesce(F.size("entities"), F.lit(0))
    untyped = F.filter("entities", lambda e: e["type"].isNull() | (e["type"] == ""))
    rows = (
        silver.groupBy("dataset")
        .agg(
            F.count(F.lit(1)).alias("samples"),
            F.sum(F.when(F.col("entities").isNull(), 0).otherwise(n_entities)).alias("entities"),
            F.sum(F.when(F.col("entities").isNull(), 0).otherwise(F.size(untyped))).alias("untyped"),
            F.first("label_set").alias("label_set"),
        )
        .collect()
    )
    return {
        r["dataset"]: {
            "samples": r["samples"],
            "entities": int(r["entities"] or 0),
            "untyped": int(r["untyped"] or 0),
            "label_set": r["label_set"],
        }
        for r in rows
    }
