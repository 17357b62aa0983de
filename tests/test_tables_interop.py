"""Every table the project writes, written by one Delta library and read (and written on) by the other.

delta-spark 4.4 (the Spark jobs) and deltalake 1.6 (local engines, Ray, pure-Python reads) share the
warehouse; the tables stay in the protocol both handle: reader 1 / writer 2, no table features.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from b2ner_common import schema, tables
from b2ner_common.tables import Table
from spark_jobs.delta import read_delta, write_delta

pytestmark = pytest.mark.slow

# Per table: its schema, and the MERGE key (None: written by predicate overwrite, predicate on `dataset`).
TABLES = {
    Table.BRONZE_SAMPLES: (schema.BRONZE_SAMPLES, ["sample_id"]),
    Table.BRONZE_REJECTS: (schema.BRONZE_REJECTS, None),
    Table.BRONZE_RECONCILIATION: (schema.RECONCILIATION, None),
    Table.SILVER_SAMPLES: (schema.SILVER_SAMPLES, None),
    Table.SILVER_LABEL_CONFLICTS: (schema.LABEL_CONFLICTS, None),
    Table.GOLD_EMBEDDINGS: (schema.EMBEDDINGS, ["sample_id", "model"]),
    Table.GOLD_SELECTION: (schema.SELECTION, None),
    Table.GOLD_PREDICTIONS: (schema.PREDICTIONS, ["run_id", "doc_id"]),
}


def _value(t: pa.DataType, i: int, name: str):
    if pa.types.is_string(t):
        return "b" if name in ("dataset", "dataset_a", "mode") and i >= 5 else f"{name}-{i}-é中"
    if pa.types.is_integer(t):
        return i
    if pa.types.is_floating(t):
        return i + 0.5
    if pa.types.is_list(t):
        return [] if i % 3 == 0 else [_value(t.value_type, i + j, name) for j in range(2)]
    if pa.types.is_struct(t):
        return {f.name: _value(f.type, i, f.name) for f in t}
    raise TypeError(t)


def _rows(sch: pa.Schema, ids: range) -> pa.Table:
    """Rows i in `ids`; every other field value null for odd i (nullable columns stay nullable)."""
    rows = [
        {f.name: (None if i % 4 == 3 and k > 2 else _value(f.type, i, f.name)) for k, f in enumerate(sch)}
        for i in ids
    ]
    return pa.Table.from_pylist(rows, schema=sch)


def _sorted(t: pa.Table, sch: pa.Schema) -> list[dict]:
    return sorted(t.select(sch.names).cast(sch).to_pylist(), key=repr)


def _spark_rows(spark, path, sch):
    return _sorted(read_delta(spark, path).toArrow(), sch)


def _spark_write(spark, path, data: pa.Table, sch, keys):
    df = spark.createDataFrame(data)
    if keys:
        return write_delta(df, path, merge_keys=keys, schema=sch, metadata={"by": "spark"})
    col = "dataset" if "dataset" in sch.names else "mode"
    pred = f"{col} = 'b'"  # replaceWhere; the rows written (i >= 5) match it
    return write_delta(df, path, mode="overwrite", predicate=pred, schema=sch, metadata={"by": "spark"})


def _assert_overlap_protocol(path: str):
    from deltalake import DeltaTable

    dt = DeltaTable(path)
    p = dt.protocol()
    assert (p.min_reader_version, p.min_writer_version) == (1, 2)
    assert not p.reader_features and not p.writer_features
    conf = dt.metadata().configuration
    assert conf.get("delta.enableDeletionVectors", "false") == "false"
    assert conf.get("delta.columnMapping.mode", "none") == "none"


@pytest.mark.parametrize("table", list(TABLES), ids=str)
def test_tables_interop_spark_written_then_deltalake_and_back(spark, warehouse, table):
    sch, keys = TABLES[table]
    path = tables.table_path(warehouse, f"spark_first/{table}")
    first = _rows(sch, range(5))
    write_delta(spark.createDataFrame(first), path, merge_keys=keys, schema=sch, metadata={"by": "spark"})
    assert _sorted(tables.read_table(path), sch) == _sorted(first, sch)  # deltalake reads delta-spark
    assert tables.commit_metadata(path) == {"by": "spark"}

    more = _rows(sch, range(5, 8))
    tables.write_table(path, more, merge_keys=keys, metadata={"by": "deltalake"})  # deltalake appends/merges
    assert _spark_rows(spark, path, sch) == _sorted(pa.concat_tables([first, more]), sch)
    _spark_write(spark, path, _rows(sch, range(5, 9)), sch, keys)  # delta-spark again on top
    # Keyed: insert-if-absent adds 8 only; else replaceWhere swaps rows 5..7 for 5..8.
    want = pa.concat_tables([first, _rows(sch, range(5, 9))])
    assert _sorted(tables.read_table(path), sch) == _sorted(want, sch)
    _assert_overlap_protocol(path)


@pytest.mark.parametrize("table", list(TABLES), ids=str)
def test_tables_interop_deltalake_written_then_spark_and_back(spark, warehouse, table):
    sch, keys = TABLES[table]
    path = tables.table_path(warehouse, f"rs_first/{table}")
    first = _rows(sch, range(5))
    tables.write_table(path, first, merge_keys=keys, metadata={"by": "deltalake"})
    assert _spark_rows(spark, path, sch) == _sorted(first, sch)  # delta-spark reads deltalake
    _spark_write(spark, path, _rows(sch, range(5, 8)), sch, keys)
    want = pa.concat_tables([first, _rows(sch, range(5, 8))])
    assert _sorted(tables.read_table(path), sch) == _sorted(want, sch)
    assert tables.commit_metadata(path) == {"by": "spark"}
    tables.write_table(path, _rows(sch, range(8, 10)), merge_keys=keys)  # and deltalake on top
    assert _spark_rows(spark, path, sch) == _sorted(pa.concat_tables([want, _rows(sch, range(8, 10))]), sch)
    _assert_overlap_protocol(path)
