"""Delta table API: real transaction log, idempotent merge writes, predicate overwrite, time travel."""

import pyarrow as pa

from b2ner_common import tables


def _rows(ids):
    return pa.table({"k": pa.array(ids, pa.string()), "v": pa.array([len(i) for i in ids], pa.int64())})


def test_tables_merge_keys_make_rewrites_idempotent(warehouse):
    path = tables.table_path(warehouse, "bronze/t")
    tables.write_table(path, _rows(["a", "b", "b"]), merge_keys=["k"], metadata={"run": {"x": 1}})
    tables.write_table(path, _rows(["a", "b", "c"]), merge_keys=["k"])
    got = sorted(tables.read_table(path)["k"].to_pylist())
    assert got == ["a", "b", "c"]
    assert (warehouse / "bronze/t/_delta_log").is_dir()
    # Version 0 creates the table empty, 1 and 2 are the MERGEs (see tables._write_once).
    assert len(tables.table_history(path)) == 3
    assert tables.read_table(path, version=1).num_rows == 2


def test_tables_predicate_overwrite_replaces_only_matching_rows(warehouse):
    path = tables.table_path(warehouse, "t")
    tables.write_table(path, _rows(["a", "bb", "ccc"]))
    tables.write_table(path, _rows(["zz"]), mode="overwrite", predicate="v = 2")
    assert sorted(tables.read_table(path)["k"].to_pylist()) == ["a", "ccc", "zz"]
    assert len(tables.table_files(path)) >= 1
