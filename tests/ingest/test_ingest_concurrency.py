"""Concurrent ingests of different datasets into the bronze tables (local and Spark engines): conflicting commits are retried, nothing is lost or duplicated (2 and 4 writers)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from b2ner_common import tables

pytestmark = pytest.mark.slow


DATASETS = ["sample_en", "sample_zh_chars", "sample_zh_spans", "sample_de_inline"]


def _ingest_cfgs(tmp_path: Path, n: int, engine: str):
    from b2ner_common.config import load_config
    from b2ner_common.ingest.sample_corpus import write_sample_corpus

    catalog = write_sample_corpus(tmp_path / "corpus", n=40)
    return [
        load_config(
            None,
            [
                f"warehouse={tmp_path / 'wh'}",
                f"ingest.engine={engine}",
                "ingest.builtin_catalog=false",
                f"ingest.catalogs=[{catalog}]",
                f"ingest.datasets=[{d}]",
                "ingest.chunk_mb=0.002",
            ],
        )
        for d in DATASETS[:n]
    ]


def _assert_ingested(cfg, reports, n: int) -> None:
    assert all(r.problems == [] for r in reports)
    wh = cfg.warehouse
    samples = tables.read_table(tables.table_path(wh, "bronze/samples"), columns=["sample_id", "dataset"])
    ids = samples["sample_id"].to_pylist()
    assert len(ids) == len(set(ids))
    accepted = Counter()
    for r in reports:
        for row in r.reconciliation.to_pylist():
            accepted[row["dataset"]] += row["accepted"]
    assert Counter(samples["dataset"].to_pylist()) == accepted
    recon = tables.read_table(tables.table_path(wh, "bronze/reconciliation"))
    assert set(recon["dataset"].to_pylist()) == set(DATASETS[:n])  # concurrent replaceWhere per dataset


@pytest.mark.parametrize("n", [2, 4])
def test_ingest_concurrent_datasets_local(tmp_path: Path, n: int, run_threads):
    from b2ner_common.ingest.job import run_local

    cfgs = _ingest_cfgs(tmp_path, n, "local")
    reports: list = []
    run_threads([lambda c=c: reports.append(run_local(c)) for c in cfgs])
    _assert_ingested(cfgs[0], reports, n)


@pytest.mark.parametrize("n", [2, 4])
def test_ingest_concurrent_datasets_spark(spark, tmp_path: Path, n: int, run_threads):
    from spark_jobs.ingest import run_ingest

    cfgs = _ingest_cfgs(tmp_path, n, "spark")
    reports: list = []
    run_threads([lambda c=c: reports.append(run_ingest(c, spark.newSession())) for c in cfgs])
    _assert_ingested(cfgs[0], reports, n)
