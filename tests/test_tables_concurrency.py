"""Concurrent writers into one table: conflicting commits are retried, nothing is lost or duplicated.

delta-rs (local engines: separate processes) and delta-spark (Spark jobs: one session each, as separate
jobs have), raw MERGE writers, predict runs into gold/predictions and ingests of different datasets into
bronze/samples, with 2 and 4 writers (those two: tests/predict and tests/ingest, *_concurrency.py).
"""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from b2ner_common import tables

pytestmark = pytest.mark.slow


def _keys(w: int) -> list[str]:
    """Writer w's keys: half shared with writer w+1, so concurrent MERGEs insert overlapping rows."""
    return [f"k{i:04d}" for i in range(w * 30, w * 30 + 60)]


def _rows(keys: list[str], w: int) -> pa.Table:
    return pa.table({"k": pa.array(keys, pa.string()), "w": pa.array([w] * len(keys), pa.int64())})


def _deltalake_writer(path: str, w: int, barrier) -> None:
    barrier.wait()
    keys = _keys(w)
    for s in range(0, len(keys), 15):  # 4 commits per writer
        tables.write_table(path, _rows(keys[s : s + 15], w), merge_keys=["k"])


def _assert_exactly_once(keys: list[str], n: int) -> None:
    want = sorted({k for w in range(n) for k in _keys(w)})
    assert sorted(keys) == want  # every key once: none lost, none duplicated


@pytest.mark.parametrize("n", [2, 4])
def test_tables_concurrent_merges_deltalake(warehouse: Path, n: int):
    path = tables.table_path(warehouse, "t")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n)
    procs = [ctx.Process(target=_deltalake_writer, args=(path, w, barrier)) for w in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * n
    _assert_exactly_once(tables.read_table(path)["k"].to_pylist(), n)


@pytest.mark.parametrize("n", [2, 4])
def test_tables_concurrent_merges_delta_spark(spark, warehouse: Path, n: int, run_threads):
    from spark_jobs.delta import read_delta, write_delta

    path = tables.table_path(warehouse, "t")
    barrier = threading.Barrier(n)

    def writer(w: int):
        session = spark.newSession()  # one session per job, as separate jobs have
        barrier.wait()
        keys = _keys(w)
        for s in range(0, len(keys), 30):
            df = session.createDataFrame(_rows(keys[s : s + 30], w))
            write_delta(df, path, merge_keys=["k"], metadata={"writer": w})

    run_threads([lambda w=w: writer(w) for w in range(n)])
    _assert_exactly_once([r.k for r in read_delta(spark, path).collect()], n)
