"""Spark ingest: work units over partitions, the core readers inside mapInArrow, bronze tables out.

units (file, byte range, first line)  --repartition-->  mapInArrow(unit_batches)
    -> samples  : MERGE on sample_id          (bronze/samples)
    -> rejects  : overwrite per dataset       (bronze/rejects)
    -> stats    : reconciliation per split    (bronze/reconciliation)
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
    write_bronze,
)
from b2ner_common.ingest.units import (
    OUT_SCHEMA,
    PAYLOAD_SCHEMA,
    dataset_predicate,
    payloads_output,
    split_output,
    stats_from_json,
    unit_batches,
    unit_payloads,
    units_table,
)
from b2ner_common.schema import BRONZE_REJECTS, BRONZE_SAMPLES, RECONCILIATION
from spark_jobs.delta import write_delta
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

    backend, meta = cfg.spark.table_backend, commit_metadata(cfg)
    save_config(cfg)
    if backend == "delta-rs":
        # delta-rs commits from the driver: collect each unit's output once, as an Arrow IPC blob, and
        # split it there (one pass over the input, no JVM row conversion, no cache of nested rows).
        blobs = unit_df.mapInArrow(unit_payloads, schema=from_arrow_schema(PAYLOAD_SCHEMA))
        samples, rejects, stats = split_output(payloads_output(blobs.toArrow()))
        write_bronze(cfg, tasks, samples, rejects)
    else:  # pragma: no cover - delta-spark needs the io.delta jars on the cluster
        out = unit_df.mapInArrow(unit_batches, schema=from_arrow_schema(OUT_SCHEMA)).persist()
        stats = stats_from_json(r[0] for r in out.filter(F.col("kind") == "stats").select("stats").collect())
        kinds = {"sample": (SAMPLES, BRONZE_SAMPLES), "reject": (REJECTS, BRONZE_REJECTS)}
        for kind, (name, schema) in kinds.items():
            write_delta(
                out.filter(F.col("kind") == kind).select(*schema.names),
                tables.table_path(cfg.warehouse, name),
                backend=backend,
                merge_keys=["sample_id"] if kind == "sample" else None,
                mode="append" if kind == "sample" else "overwrite",
                predicate=None if kind == "sample" else dataset_predicate({t.dataset for t in tasks}),
                schema=schema,
                metadata=meta,
            )
        out.unpersist()
    recon = reconciliation(cfg, tasks, stats)
    write_delta(
        spark.createDataFrame(recon),
        tables.table_path(cfg.warehouse, RECON),
        backend=backend,
        mode="overwrite",
        predicate=dataset_predicate({t.dataset for t in tasks}),
        schema=RECONCILIATION,
        metadata=meta,
    )
    return report(cfg, recon, stats, "spark", time.perf_counter() - t0, len(units))
