"""The Spark ingest job: Delta round trip, idempotent re-run, reconciliation, parity with the local engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.ingest.job import run_local
from b2ner_common.ingest.sample_corpus import write_sample_corpus

pytestmark = pytest.mark.slow


def _cfg(warehouse: Path, catalog: Path, engine: str, *extra: str):
    return load_config(
        None,
        [
            f"warehouse={warehouse}",
            f"ingest.engine={engine}",
            "ingest.builtin_catalog=false",
            f"ingest.catalogs=[{catalog}]",
            "ingest.chunk_mb=0.002",  # many small work units: several per file and per partition
            "spark.master=local[2]",
            *extra,
        ],
    )


def _snapshot(warehouse: Path) -> dict[str, list[tuple]]:
    out = {}
    for name, key in (
        ("bronze/samples", "sample_id"),
        ("bronze/rejects", "source"),
        ("bronze/reconciliation", "split"),
    ):
        t = tables.read_table(tables.table_path(warehouse, name))
        out[name] = sorted(tuple(str(v) for v in r.values()) for r in t.to_pylist())
        assert key in t.column_names
    return out


def test_ingest_spark_round_trip_idempotent_and_equal_to_local(spark, tmp_path: Path):
    from spark_jobs.delta import read_delta
    from spark_jobs.ingest import run_ingest

    catalog = write_sample_corpus(tmp_path / "corpus", n=60)
    wh_spark, wh_local = tmp_path / "wh_spark", tmp_path / "wh_local"
    report = run_ingest(_cfg(wh_spark, catalog, "spark"), spark)
    assert report.problems == [] and report.units > 5
    for r in report.reconciliation.to_pylist():
        assert r["records_read"] == r["accepted"] + r["rejected"] == r["expected"]

    # Delta round trip: Spark wrote with delta-spark; it reads back exactly the committed rows.
    path = tables.table_path(wh_spark, "bronze/samples")
    df = read_delta(spark, path)
    assert df.count() == sum(r["accepted"] for r in report.reconciliation.to_pylist())
    assert df.select("sample_id").distinct().count() == df.count()
    assert (wh_spark / "bronze/samples/_delta_log").is_dir()
    # delta-spark's commit userMetadata carries the resolved config, read here with delta-rs.
    for name in ("bronze/samples", "bronze/rejects", "bronze/reconciliation"):
        meta = tables.commit_metadata(tables.table_path(wh_spark, name))
        assert json.loads(meta["b2ner.config"])["ingest"]["engine"] == "spark"

    first = _snapshot(wh_spark)
    report2 = run_ingest(_cfg(wh_spark, catalog, "spark"), spark)
    assert report2.problems == []
    assert _snapshot(wh_spark) == first  # re-run: no duplicate or changed rows

    run_local(_cfg(wh_local, catalog, "local"))
    assert _snapshot(wh_local) == first  # the same rows from the local engine


@pytest.mark.corpora
def test_ingest_spark_real_corpora_reconcile(spark, corpora_dir: Path, warehouse: Path):
    from spark_jobs.ingest import run_ingest

    cfg = load_config(
        None,
        [
            f"warehouse={warehouse}",
            f"ingest.corpora={corpora_dir}",
            "ingest.datasets=[broad_twitter_corpus, boson, weibo, cluener]",
            "ingest.chunk_mb=0.25",
        ],
    )
    report = run_ingest(cfg, spark)
    assert report.problems == []
    rows = {(r["dataset"], r["split"]): r for r in report.reconciliation.to_pylist()}
    assert rows[("broad_twitter_corpus", "dev")]["rejected"] == 3
    assert rows[("boson", "train")]["records_read"] == 2000
    rejects = tables.read_table(tables.table_path(warehouse, "bronze/rejects")).to_pylist()
    assert len(rejects) == sum(r["rejected"] for r in rows.values())
    assert all(":" in r["source"] and r["reason"] for r in rejects)
