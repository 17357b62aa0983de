"""Spark reads delta-rs tables through the snapshot file list and commits back through the one table API."""

import pyarrow as pa
import pytest

from b2ner_common import tables
from spark_jobs.delta import read_delta, write_delta

pytestmark = pytest.mark.slow


def test_spark_delta_reads_snapshot_not_stale_files(spark, warehouse):
    path = tables.table_path(warehouse, "t")
    tables.write_table(path, pa.table({"k": ["a", "b", "c"]}))
    tables.write_table(path, pa.table({"k": ["z"]}), mode="overwrite")
    # The folder still holds the first version's file; the snapshot does not.
    assert read_delta(spark, path).count() == 1


def test_spark_delta_write_merge_is_idempotent(spark, warehouse):
    path = tables.table_path(warehouse, "t2")
    df = spark.createDataFrame([("a", 1), ("b", 2)], "k string, v long")
    write_delta(df, path, merge_keys=["k"])
    write_delta(df, path, merge_keys=["k"])
    assert sorted(r.k for r in read_delta(spark, path).collect()) == ["a", "b"]
