"""delta-spark from the executors: MERGE insert-if-absent, replaceWhere, userMetadata, conflict retries."""

import json

import pyarrow as pa
import pytest

from b2ner_common import tables
from spark_jobs.delta import is_conflict, read_delta, write_delta

pytestmark = pytest.mark.slow


def test_spark_delta_reads_snapshot_not_stale_files(spark, warehouse):
    path = tables.table_path(warehouse, "t")
    tables.write_table(path, pa.table({"k": ["a", "b", "c"]}))
    tables.write_table(path, pa.table({"k": ["z"]}), mode="overwrite")
    # The folder still holds the first version's file; the snapshot does not.
    assert read_delta(spark, path).count() == 1


def test_spark_delta_write_merge_is_idempotent_and_carries_metadata(spark, warehouse):
    path = tables.table_path(warehouse, "t2")
    df = spark.createDataFrame([("a", 1), ("b", 2), ("b", 2)], "k string, v long")
    v0 = write_delta(df, path, merge_keys=["k"], metadata={"stage": "t", "config": {"x": 1}})
    v1 = write_delta(df, path, merge_keys=["k"], metadata={"stage": "t1"})
    # Version 0 creates the table empty, 1 is the MERGE; a MERGE with nothing to insert commits nothing.
    assert (v0, v1) == (1, 1)
    more = spark.createDataFrame([("a", 9), ("c", 3)], "k string, v long")
    assert write_delta(more, path, merge_keys=["k"], metadata={"stage": "t2"}) == 2
    assert sorted((r.k, r.v) for r in read_delta(spark, path).collect()) == [("a", 1), ("b", 2), ("c", 3)]
    assert tables.commit_metadata(path, 1) == {"stage": "t", "config": json.dumps({"x": 1})}
    assert tables.commit_metadata(path)["stage"] == "t2"  # MERGE: userMetadata from the session setting
    assert spark.conf.get("spark.databricks.delta.commitInfo.userMetadata", None) is None


def test_spark_delta_replace_where_replaces_only_matching_rows(spark, warehouse):
    path = tables.table_path(warehouse, "t3")
    rows = spark.createDataFrame([("a", 1), ("b", 2), ("c", 2)], "k string, v long")
    write_delta(rows, path, mode="overwrite", predicate="v = 2")  # first write: creates the table
    write_delta(
        spark.createDataFrame([("z", 2)], "k string, v long"), path, mode="overwrite", predicate="v = 2"
    )
    assert sorted(r.k for r in read_delta(spark, path).collect()) == ["a", "z"]


def test_spark_delta_is_conflict_matches_delta_concurrency_errors():
    from delta.exceptions import ConcurrentAppendException

    assert is_conflict(ConcurrentAppendException("Files were added to the root of the table"))
    assert is_conflict(RuntimeError("[DELTA_CONCURRENT_APPEND.WITHOUT_HINT] Files were added"))
    assert not is_conflict(ValueError("[DELTA_REPLACE_WHERE_MISMATCH] Written data does not conform"))
