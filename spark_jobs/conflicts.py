"""Spark conflict screening: silver/samples -> silver/label_conflicts (modes raw and mapped).

silver --explode/groupBy--> mention counts --driver--> mention index (broadcast)
silver --mapInArrow(self_consistency)--> per-dataset string precision --> filtered index (broadcast)
silver --mapInArrow(ConflictScreen)--> partial rows per task --driver: merge_partials--> table (replaceWhere)
The driver holds label-pair aggregates only (one row per label pair and mode), never samples.
No sentence pairs are compared: every text is scanned once against the hash index.
"""

from __future__ import annotations

import time
import warnings

import pyarrow as pa

from b2ner_common import tables
from b2ner_common.config import PipelineConfig
from b2ner_common.schema import LABEL_CONFLICTS
from b2ner_common.taxonomy.conflicts import (
    MODES,
    PARTIAL_COLUMNS,
    build_mention_index,
    consistent_keys,
    merge_partials,
    screen_batches,
    self_consistency,
)
from b2ner_common.taxonomy.job import (
    CONFLICTS,
    SCREEN_COLUMNS,
    SILVER,
    ConflictReport,
    commit_metadata,
    counts_from_rows,
)
from b2ner_common.taxonomy.model import load_taxonomy
from spark_jobs.delta import read_delta, table_exists, write_delta
from spark_jobs.session import get_spark

PARTIAL = pa.schema([LABEL_CONFLICTS.field(c) for c in PARTIAL_COLUMNS])
SELF = pa.schema(
    [
        ("dataset", pa.string()),
        ("lang", pa.string()),
        ("key", pa.string()),
        ("kind", pa.string()),
        ("n", pa.int64()),
    ]
)


def run_conflicts(cfg: PipelineConfig, spark=None, modes=MODES) -> ConflictReport:
    """Screen silver/samples for cross-dataset label conflicts on Spark and write the table."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    t0 = time.perf_counter()
    spark = spark or get_spark(cfg.spark)
    tc = cfg.taxonomy
    src = tables.table_path(cfg.warehouse, SILVER)
    if not table_exists(spark, src):
        raise FileNotFoundError(f"{src} does not exist: run `b2ner taxonomy apply` first")
    silver = read_delta(spark, src).select(*SCREEN_COLUMNS)

    grouped = (
        silver.select("dataset", "lang", F.explode("entities").alias("e"))
        .groupBy(
            "dataset",
            "lang",
            F.col("e.text").alias("text"),
            F.col("e.label").alias("label"),
            F.col("e.type").alias("type"),
        )
        .count()
    )
    counts, sets = counts_from_rows(grouped.toArrow().to_pylist())
    index = build_mention_index(counts, sets, min_chars=tc.min_mention_chars)
    indexed = len(index)
    bc = spark.sparkContext.broadcast(index)

    if tc.min_self_ratio > 0:

        def self_batches(batches):
            stats = self_consistency(bc.value, (r for b in batches for r in b.to_pylist()))
            rows = [
                {"dataset": d, "lang": lg, "key": k, "kind": kind, "n": n}
                for (d, lg, k, kind), n in stats.items()
            ]
            yield pa.RecordBatch.from_pylist(rows, schema=SELF)

        stats_df = silver.mapInArrow(self_batches, schema=from_arrow_schema(SELF))
        totals = (
            stats_df.groupBy("dataset", "lang", "key", "kind")
            .agg(F.sum("n").alias("n"))
            .toArrow()
            .to_pylist()
        )
        keep = consistent_keys(
            {(r["dataset"], r["lang"], r["key"], r["kind"]): r["n"] for r in totals}, tc.min_self_ratio
        )
        index = build_mention_index(
            counts, sets, min_chars=tc.min_mention_chars, keep=lambda d, lg, k: (d, lg, k) in keep
        )
        bc.unpersist()
        bc = spark.sparkContext.broadcast(index)

    version, k = tc.version, tc.conflict_examples

    def screen(batches):
        rows = list(screen_batches(batches, bc.value, load_taxonomy(version).compatible, k))
        yield pa.RecordBatch.from_pylist(rows, schema=PARTIAL)

    partial = silver.mapInArrow(screen, schema=from_arrow_schema(PARTIAL)).toArrow().to_pylist()
    bc.unpersist()
    result = [r for r in merge_partials(partial, k) if r["mode"] in set(modes)]
    write_delta(
        spark.createDataFrame(pa.Table.from_pylist(result, schema=LABEL_CONFLICTS)),
        tables.table_path(cfg.warehouse, CONFLICTS),
        mode="overwrite",
        predicate="mode IN (" + ", ".join(f"'{m}'" for m in sorted(set(modes))) + ")",
        schema=LABEL_CONFLICTS,
        metadata=commit_metadata(cfg, "taxonomy conflicts (spark)"),
    )
    return ConflictReport("spark", time.perf_counter() - t0, result, indexed, len(index))
