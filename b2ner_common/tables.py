"""The one table API: Delta Lake tables under a warehouse root, committed with delta-rs (`deltalake`).

delta-rs owns the transaction log here (real `_delta_log` commits, MERGE, time travel) because the
delta-spark jars cannot be fetched offline. On a cluster, `spark_jobs.delta` switches to delta-spark
by config (`spark.table_backend: delta-spark`); both produce the same Delta protocol tables.

Engines never read a table directory as plain Parquet: old versions' files are still there.
They read the snapshot's file list (`table_files`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError


class Table(StrEnum):
    """Every table the project writes, by its path under the warehouse root."""

    BRONZE_SAMPLES = "bronze/samples"
    BRONZE_REJECTS = "bronze/rejects"
    BRONZE_RECONCILIATION = "bronze/reconciliation"
    SILVER_SAMPLES = "silver/samples"
    SILVER_LABEL_CONFLICTS = "silver/label_conflicts"
    GOLD_EMBEDDINGS = "gold/embeddings"
    GOLD_SELECTION = "gold/selection"
    GOLD_PREDICTIONS = "gold/predictions"


TABLES = tuple(t.value for t in Table)


def table_path(warehouse: str | Path, name: str) -> str:
    """Location of table `name` (e.g. "bronze/samples") under the warehouse root."""
    return (
        str(Path(warehouse) / name) if "://" not in str(warehouse) else f"{str(warehouse).rstrip('/')}/{name}"
    )


def table_exists(path: str) -> bool:
    try:
        DeltaTable(path)
        return True
    except TableNotFoundError:
        return False


def _commit(metadata: dict | None) -> CommitProperties | None:
    if not metadata:
        return None
    # Delta commit metadata values must be strings; nested config goes in as JSON.
    return CommitProperties(
        custom_metadata={
            k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in metadata.items()
        }
    )


def write_table(
    path: str,
    data: pa.Table,
    *,
    mode: str = "append",
    merge_keys: Sequence[str] | None = None,
    predicate: str | None = None,
    metadata: dict | None = None,
    replace_matched_when: str | None = None,
) -> int:
    """Commit `data` to the Delta table at `path`; returns the new table version.

    - merge_keys: insert only rows whose keys are not in the table yet (idempotent re-runs). The source is
      de-duplicated on the keys first (the first row wins), so the keys stay unique in the table whatever
      the input: a MERGE inserts every source row that matches nothing, duplicates included.
    - replace_matched_when (with merge_keys): a SQL predicate on the target row (alias `t`); matched rows
      that satisfy it are replaced by the source row (e.g. retrying error rows).
    - mode="overwrite" with predicate: replace only the rows matching the SQL predicate.
    """
    if merge_keys:
        data = _dedupe(data, merge_keys)
    if merge_keys and table_exists(path):
        dt = DeltaTable(path)
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in merge_keys)
        merge = dt.merge(
            data, predicate=cond, source_alias="s", target_alias="t", commit_properties=_commit(metadata)
        )
        if replace_matched_when:
            merge = merge.when_matched_update_all(predicate=replace_matched_when)
        merge.when_not_matched_insert_all().execute()
        return DeltaTable(path).version()
    write_deltalake(
        path,
        data,
        mode="overwrite" if mode == "overwrite" else "append",
        predicate=predicate,
        commit_properties=_commit(metadata),
        schema_mode="overwrite" if (mode == "overwrite" and predicate is None) else None,
    )
    return DeltaTable(path).version()


def _dedupe(data: pa.Table, keys: Sequence[str]) -> pa.Table:
    if data.num_rows == 0:
        return data
    idx = pa.table({k: data[k] for k in keys}).append_column("__i", pa.array(range(data.num_rows)))
    first = idx.group_by(list(keys), use_threads=False).aggregate([("__i", "min")])["__i_min"]
    # The first row index of every key, in input order (sort_indices alone would give positions, not rows).
    return data.take(pc.take(first, pc.sort_indices(first)))


def read_table(path: str, columns: Sequence[str] | None = None, version: int | None = None) -> pa.Table:
    """Read the current snapshot (or `version`) of a Delta table as Arrow."""
    dt = DeltaTable(path, version=version)
    return dt.to_pyarrow_table(columns=list(columns) if columns else None)


def table_files(path: str) -> list[str]:
    """Absolute URIs of the Parquet files in the current snapshot (what engines should read)."""
    return DeltaTable(path).file_uris()


def table_history(path: str) -> list[dict]:
    return DeltaTable(path).history()


def delete_rows(path: str, predicate: str) -> None:
    DeltaTable(path).delete(predicate)
