"""The one table API for pure-Python code: Delta Lake tables under a warehouse root, through delta-rs.

Spark jobs read and write the same tables with delta-spark from the executors (`spark_jobs.delta`); this
module serves the local (no JVM) engines, Ray and pure-Python reads. Both libraries stay inside their
protocol overlap (reader 1 / writer 2, no table features: no deletion vectors, no column mapping; see
docs/tables.md), so either may write any table the other wrote.

Commits carry their metadata twice: as top-level commitInfo keys (delta-rs custom metadata) and as the
JSON object in `userMetadata`, which is what delta-spark writes; `commit_metadata` reads either.
Concurrent writers: a commit that loses the optimistic-concurrency race is retried (`retry_commit`), which
is safe because every write here is idempotent (MERGE insert-if-absent, predicate overwrite).

Engines never read a table directory as plain Parquet: old versions' files are still there.
They read the snapshot's file list (`table_files`).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

log = logging.getLogger(__name__)

# Optimistic concurrency: a lost commit race is retried this many times, with exponential backoff + jitter.
COMMIT_ATTEMPTS = 10
BACKOFF_S = 0.2
BACKOFF_CAP_S = 5.0


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
    """Location of table `name` (e.g. "bronze/samples") under the warehouse root.

    A local path is made absolute here: a Spark JVM resolves relative paths against its own working
    directory, which is not this process's once the directory changed after the JVM started.
    """
    if "://" in str(warehouse):
        return f"{str(warehouse).rstrip('/')}/{name}"
    return str((Path(warehouse) / name).absolute())


def absolute(path: str) -> str:
    """`path` with a local path made absolute (URIs unchanged), for engines with their own working directory."""
    return path if "://" in path else str(Path(path).absolute())


def table_exists(path: str) -> bool:
    try:
        DeltaTable(path)
        return True
    except TableNotFoundError:
        return False


def user_metadata(metadata: dict | None) -> str | None:
    """The commit's `userMetadata`: one JSON object, nested values as JSON strings (as delta-rs keys)."""
    if not metadata:
        return None
    return json.dumps(
        {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True) for k, v in metadata.items()},
        sort_keys=True,
    )


def _commit(metadata: dict | None) -> CommitProperties | None:
    if not metadata:
        return None
    # Delta commit metadata values must be strings; nested config goes in as JSON. delta-rs writes custom
    # keys at the top level of commitInfo, where a plain name can collide with a field of the Delta
    # protocol ("job" is a struct there: Spark then cannot read the table), so every key carries "b2ner.".
    custom = json.loads(user_metadata(metadata))
    prefixed = {k if k.startswith("b2ner.") else f"b2ner.{k}": v for k, v in custom.items()}
    return CommitProperties(custom_metadata={**prefixed, "userMetadata": user_metadata(metadata)})


def commit_metadata(path: str, version: int | None = None) -> dict[str, str]:
    """The b2ner metadata of one commit (default: the latest), whichever library wrote it."""
    for entry in DeltaTable(path).history():
        if version is None or entry.get("version") == version:
            raw = entry.get("userMetadata")
            try:
                meta = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                meta = {"userMetadata": raw}
            return meta if isinstance(meta, dict) else {"userMetadata": raw}
    raise KeyError(f"{path} has no version {version}")


def retry_commit(
    commit: Callable[[], int],
    is_conflict: Callable[[BaseException], bool],
    *,
    attempts: int = COMMIT_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Run `commit` until it wins the optimistic-concurrency race, at most `attempts` times.

    Only for idempotent commits (MERGE insert-if-absent, predicate overwrite): a retry re-reads the table,
    so a concurrent writer's rows are neither lost nor duplicated. Other errors, and the last conflict
    once the attempts are spent, are raised unchanged.
    """
    for attempt in range(attempts):
        try:
            return commit()
        except Exception as e:
            if not is_conflict(e) or attempt == attempts - 1:
                raise
            wait = min(BACKOFF_CAP_S, BACKOFF_S * 2**attempt) * (0.5 + random.random())
            log.info(
                "commit conflict (attempt %d of %d), retrying in %.2f s: %s", attempt + 1, attempts, wait, e
            )
            sleep(wait)
    raise AssertionError("unreachable")


def is_commit_conflict(e: BaseException) -> bool:
    """delta-rs lost a commit race (another writer committed that version first)."""
    return isinstance(e, CommitFailedError)


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
    Commits that lose a race with a concurrent writer are retried (`retry_commit`).
    """
    return retry_commit(
        lambda: _write_once(path, data, mode, merge_keys, predicate, metadata, replace_matched_when),
        is_commit_conflict,
    )


def _write_once(path, data, mode, merge_keys, predicate, metadata, replace_matched_when) -> int:
    exists = table_exists(path)
    if merge_keys and not exists:
        # Create the table empty, then MERGE: a first write that blind-appended its rows could be ordered
        # after a concurrent writer's MERGE of the same keys (blind appends never conflict) and duplicate them.
        write_deltalake(path, data.schema.empty_table(), mode="append", commit_properties=_commit(metadata))
        exists = True
    if merge_keys and exists:
        data = _dedupe(data, merge_keys)  # insert-if-absent inserts each new key once
        dt = DeltaTable(path)
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in merge_keys)
        merge = dt.merge(
            data, predicate=cond, source_alias="s", target_alias="t", commit_properties=_commit(metadata)
        )
        if replace_matched_when:
            merge = merge.when_matched_update_all(predicate=replace_matched_when)
        merge.when_not_matched_insert_all().execute()
        return DeltaTable(path).version()
    if predicate is not None and not exists:
        mode, predicate = "append", None  # nothing to replace yet
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
