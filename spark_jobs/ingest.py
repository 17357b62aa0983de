"""Spark ingest: work units over partitions, the core readers inside mapInArrow, bronze tables out.

units (file, byte range, first line)  --repartition-->  mapInArrow(unit_batches)  --persist (executors)-->
    -> samples  : MERGE on sample_id          (bronze/samples)
    -> rejects  : replaceWhere per dataset    (bronze/rejects)
    -> stats    : reconciliation per split    (bronze/reconciliation; the only rows the driver sees)
Every table is written by the executors with delta-spark; nothing but counts comes back to the driver.
"""

from __future__ import annotations

import time
import warnings

from b2ner_common import tables
from b2ner_common.config import PipelineConfig
from b2ner_common.ingest.job import (
    RECON,
    REJECTS,
    SAMPLES,
    IngestReport,
    commit_metadata,
    plan,
    reconciliation,
    report,
    save_config,
)
from b2ner_common.ingest.units import (
    OUT_SCHEMA,
    dataset_predicate,
    stats_from_json,
    unit_batches,
    units_table,
)
from b2ner_common.schema import BRONZE_REJECTS, BRONZE_SAMPLES, RECONCILIATION
from spark_jobs.delta import read_delta, write_delta
from spark_jobs.session import get_spark


def run_ingest(cfg: PipelineConfig, spark=None) -> IngestReport:
    """Ingest the configured catalog files into the warehouse with Spark; returns the reconciliation."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    # pandas 3 is pinned; the Arrow paths used here work with it (measured), the warning is noise.
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    tasks, units = plan(cfg)
    spark = spark or get_spark(cfg.spark)
    t0 = time.perf_counter()
    # Largest units first, dealt round-robin: partitions get similar amounts of work.
    units.sort(key=lambda u: u.end - u.start, reverse=True)
    n_parts = min(len(units), cfg.ingest.partitions or 2 * spark.sparkContext.defaultParallelism)
    unit_df = spark.createDataFrame(units_table(units)).repartition(n_parts)

    meta, datasets = commit_metadata(cfg), {t.dataset for t in tasks}
    save_config(cfg)
    # Read once, write three tables: the output stays on the executors (memory, then disk).
    out = unit_df.mapInArrow(unit_batches, schema=from_arrow_schema(OUT_SCHEMA)).persist()
    stats = stats_from_json(r[0] for r in out.filter(F.col("kind") == "stats").select("stats").collect())
    samples_path = tables.table_path(cfg.warehouse, SAMPLES)
    write_delta(
        out.filter(F.col("kind") == "sample"),
        samples_path,
        merge_keys=["sample_id"],
        schema=BRONZE_SAMPLES,
        metadata=meta,
    )
    write_delta(
        out.filter(F.col("kind") == "reject"),
        tables.table_path(cfg.warehouse, REJECTS),
        mode="overwrite",
        predicate=dataset_predicate(datasets),
        schema=BRONZE_REJECTS,
        metadata=meta,
    )
    out.unpersist()
    recon = reconciliation(cfg, tasks, stats)
    write_delta(
        spark.createDataFrame(recon),
        tables.table_path(cfg.warehouse, RECON),
        mode="overwrite",
        predicate=dataset_predicate(datasets),
        schema=RECONCILIATION,
        metadata=meta,
    )
    have = {
        (r["dataset"], r["split"]): r["count"]
        for r in read_delta(spark, samples_path)
        .filter(F.col("dataset").isin(sorted(datasets)))
        .groupBy("dataset", "split")
        .count()
        .collect()
    }
    return report(cfg, recon, stats, "spark", time.perf_counter() - t0, len(units), have)
