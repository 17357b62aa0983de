"""Delta tables from Spark through the project's one table API.

Backend `delta-rs` (default, offline): Spark reads the snapshot's file list (never the directory as plain
Parquet, which would include files of old versions) and commits go through `b2ner_common.tables`.
Backend `delta-spark` (clusters): Spark's own Delta reader/writer and MERGE.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from b2ner_common import tables


def read_delta(spark, path: str, backend: str = "delta-rs", schema: pa.Schema | None = None):
    """DataFrame of the current snapshot of the Delta table at `path`."""
    if backend == "delta-spark":
        return spark.read.format("delta").load(path)
    files = tables.table_files(path)
    if not files:
        arrow_schema = schema or tables.read_table(path).schema
        return spark.createDataFrame(arrow_schema.empty_table())
    return spark.read.parquet(*files)


def write_delta(
    df,
    path: str,
    *,
    backend: str = "delta-rs",
    mode: str = "append",
    merge_keys: Sequence[str] | None = None,
    predicate: str | None = None,
    schema: pa.Schema | None = None,
    metadata: dict | None = None,
) -> int | None:
    """Commit a DataFrame to a Delta table; merge_keys makes the write idempotent (insert-if-absent).

    delta-rs backend: rows are collected to the driver as Arrow and committed by delta-rs. That is the
    embedded path (one machine); on a cluster use backend delta-spark, which writes from the executors.
    """
    if backend == "delta-spark":
        return _write_delta_spark(df, path, mode=mode, merge_keys=merge_keys, predicate=predicate)
    data = df.toArrow()
    if schema is not None:
        data = data.select(schema.names).cast(schema)
    return tables.write_table(
        path, data, mode=mode, merge_keys=merge_keys, predicate=predicate, metadata=metadata
    )


def _write_delta_spark(df, path, *, mode, merge_keys, predicate):  # pragma: no cover - needs delta jars
    from delta.tables import DeltaTable

    spark = df.sparkSession
    if merge_keys and DeltaTable.isDeltaTable(spark, path):
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in merge_keys)
        DeltaTable.forPath(spark, path).alias("t").merge(
            df.alias("s"), cond
        ).whenNotMatchedInsertAll().execute()
        return None
    writer = df.write.format("delta").mode("overwrite" if mode == "overwrite" else "append")
    if predicate:
        writer = writer.option("replaceWhere", predicate)
    writer.save(path)
    return None
