"""Delta tables from Spark with delta-spark: reads and writes run on the executors, commits on the driver.

No output passes through the driver: a write is a Spark job whose tasks write Parquet files, and the driver
only commits their list to `_delta_log`. The same tables are read and written by delta-rs
(`b2ner_common.tables`) in the local engines; both stay in the protocol overlap (see spark_jobs.session).

- merge_keys: MERGE insert-if-absent on the keys (idempotent re-runs, exactly-once slices)
- mode="overwrite" + predicate: `replaceWhere` (replace only the rows matching the predicate)
- metadata: the commit's `userMetadata` (JSON, the same object delta-rs commits carry)
Commits that lose the optimistic-concurrency race to another writer are retried with backoff.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from b2ner_common import tables

# Delta's commit-conflict exceptions (delta.exceptions), matched by name: py4j converts them only when their
# text starts with the Java class name, which Delta 4's error-class messages do not always do.
_CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentWriteException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DeltaConcurrentModificationException",
    "DELTA_CONCURRENT_",
    "DELTA_METADATA_CHANGED",
    "DELTA_PROTOCOL_CHANGED",
)
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"


def is_conflict(e: BaseException) -> bool:
    """True when a delta-spark commit lost a race with a concurrent writer (safe to retry if idempotent)."""
    text = f"{type(e).__name__}: {e}"
    return any(name in text for name in _CONFLICTS)


def table_exists(spark, path: str) -> bool:
    path = tables.absolute(path)
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def read_delta(spark, path: str):
    """DataFrame of the current snapshot of the Delta table at `path` (read by the executors)."""
    return spark.read.format("delta").load(tables.absolute(path))


def conform(df, schema: pa.Schema):
    """The columns of `schema`, in its order, cast to its types (the table's schema, whoever wrote it)."""
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    return df.select(*(F.col(f.name).cast(f.dataType).alias(f.name) for f in from_arrow_schema(schema)))


def write_delta(
    df,
    path: str,
    *,
    mode: str = "append",
    merge_keys: Sequence[str] | None = None,
    predicate: str | None = None,
    schema: pa.Schema | None = None,
    metadata: dict | None = None,
    replace_matched_when: str | None = None,
) -> int:
    """Commit a DataFrame to the Delta table at `path` from the executors; returns the new version.

    replace_matched_when (with merge_keys): a SQL condition on the target row (alias `t`); matched rows that
    satisfy it are replaced by the source row (predict's retry of error rows).

    Concurrent writers in one process need one session each (`spark.newSession()`): a MERGE's userMetadata
    is a session setting.
    """
    path = tables.absolute(path)
    if schema is not None:
        df = conform(df, schema)
    if merge_keys and not table_exists(df.sparkSession, path):
        df = df.dropDuplicates(list(merge_keys))  # a new table starts key-unique (later inputs are unique)
    meta = tables.user_metadata(metadata)
    return tables.retry_commit(
        lambda: _write_once(df, path, mode, merge_keys, predicate, meta, replace_matched_when), is_conflict
    )


def _write_once(df, path, mode, merge_keys, predicate, meta, replace_matched_when=None) -> int:
    from delta.tables import DeltaTable

    spark = df.sparkSession
    exists = table_exists(spark, path)
    if merge_keys and not exists:
        # Create the table empty, then MERGE: rows blind-appended by a first write could be ordered after a
        # concurrent writer's MERGE of the same keys (blind appends never conflict) and duplicate them.
        empty = spark.createDataFrame([], df.schema).write.format("delta").mode("append")
        (empty.option("userMetadata", meta) if meta else empty).save(path)
        exists = True
    if merge_keys and exists:
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in merge_keys)
        merge = DeltaTable.forPath(spark, path).alias("t").merge(df.alias("s"), cond)
        if replace_matched_when:
            merge = merge.whenMatchedUpdateAll(condition=replace_matched_when)
        if meta:
            spark.conf.set(USER_METADATA_CONF, meta)
        try:
            merge.whenNotMatchedInsertAll().execute()
        finally:
            if meta:
                spark.conf.unset(USER_METADATA_CONF)
        return _version(spark, path)
    writer = df.write.format("delta")
    if meta:
        writer = writer.option("userMetadata", meta)
    if mode == "overwrite" and exists:
        writer = writer.mode("overwrite")
        writer = (
            writer.option("replaceWhere", predicate)
            if predicate
            else writer.option("overwriteSchema", "true")
        )
    else:
        writer = writer.mode("append")  # also the first write of an overwrite: nothing to replace yet
    writer.save(path)
    return _version(spark, path)


def _version(spark, path: str) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").head()[0])
