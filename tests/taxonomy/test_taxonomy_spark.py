"""Spark shells give the same silver/samples and silver/label_conflicts rows as the local path."""

from __future__ import annotations

import pytest

from b2ner_common import tables
from b2ner_common.taxonomy.job import SILVER, apply_local, conflicts_local, read_conflicts

pytestmark = pytest.mark.slow


def _silver(wh):
    rows = tables.read_table(tables.table_path(wh, SILVER)).to_pylist()
    return sorted(rows, key=lambda r: r["sample_id"])


def test_taxonomy_spark_matches_local(spark, tmp_path, bronze_kit):
    from spark_jobs.conflicts import run_conflicts
    from spark_jobs.taxonomy import run_taxonomy

    samples = [
        *bronze_kit.BRONZE_ROWS,
        bronze_kit._s("msra", "zh", "我爱北京天安门", [("北京", "LOC"), ("天安门", "LOC")], 2),
    ]
    local_wh, spark_wh = tmp_path / "local", tmp_path / "spark"
    for wh in (local_wh, spark_wh):
        bronze_kit._write_bronze(wh, samples)
    local_cfg, spark_cfg = bronze_kit._cfg(local_wh), bronze_kit._cfg(spark_wh)
    apply_local(local_cfg)
    run_taxonomy(spark_cfg, spark)
    run_taxonomy(spark_cfg, spark)  # idempotent
    assert _silver(spark_wh) == _silver(local_wh)

    conflicts_local(local_cfg)
    rep = run_conflicts(spark_cfg, spark)
    key = lambda r: (r["mode"], r["dataset_a"], r["label_a"], r["dataset_b"], r["label_b"])  # noqa: E731
    assert sorted(read_conflicts(spark_cfg), key=key) == sorted(read_conflicts(local_cfg), key=key)
    assert rep.summary["mapped"]["type_conflict_rate"] < rep.summary["raw"]["type_conflict_rate"]
