"""Taxonomy jobs on a temporary warehouse: check, apply (idempotent), conflicts, report, CLI exit codes."""

from __future__ import annotations

import pytest

from b2ner_cli.main import main
from b2ner_common import tables
from b2ner_common.schema import (
    LABEL_CONFLICTS,
    SILVER_SAMPLES,
)
from b2ner_common.taxonomy.job import (
    CONFLICTS,
    SILVER,
    CheckFailed,
    apply_local,
    bronze_label_counts,
    check_counts,
    conflicts_local,
    read_conflicts,
)
from b2ner_common.taxonomy.report import write_report


def test_taxonomy_job_apply_local_is_idempotent(warehouse, bronze_kit):
    bronze_kit._write_bronze(warehouse)
    cfg = bronze_kit._cfg(warehouse)
    assert check_counts(cfg, bronze_label_counts(cfg)) == []
    first = apply_local(cfg)
    again = apply_local(cfg)
    silver = tables.read_table(tables.table_path(warehouse, SILVER))
    assert silver.schema == SILVER_SAMPLES
    assert first.rows == again.rows == silver.num_rows == len(bronze_kit.BRONZE_ROWS)
    rows = {r["sample_id"]: r for r in silver.to_pylist()}
    assert [e["type"] for e in rows["conll2003-1"]["entities"]] == ["person", "location", "organization"]
    assert [e["type"] for e in rows["wnut17-1"]["entities"]] == ["person", "location", "company"]
    # label sets list the types of the raw labels each dataset actually uses
    assert rows["wnut17-2"]["label_set"] == ["person", "location", "company"]
    assert rows["weibo-1"]["label_set"] == ["person nominal mention", "geo-political entity"]
    assert again.datasets["conll2003"] == {
        "samples": 2,
        "entities": 4,
        "untyped": 0,
        "label_set": ["person", "location", "organization", "miscellaneous named entity"],
    }


def test_taxonomy_job_apply_fails_on_unmapped_labels(warehouse, bronze_kit):
    bronze_kit._write_bronze(
        warehouse,
        [*bronze_kit.BRONZE_ROWS, bronze_kit._s("conll2003", "en", "Foo bar .", [("Foo", "GEO")], 9)],
    )
    cfg = bronze_kit._cfg(warehouse)
    with pytest.raises(CheckFailed, match="conll2003:GEO"):
        apply_local(cfg)
    assert not tables.table_exists(tables.table_path(warehouse, SILVER))
    assert main(["taxonomy", "check", f"warehouse={warehouse}"]) == 1
    assert main(["taxonomy", "apply", f"warehouse={warehouse}", "--engine", "local"]) == 1


def test_taxonomy_job_conflicts_and_report(warehouse, tmp_path, bronze_kit):
    bronze_kit._write_bronze(warehouse)
    cfg = bronze_kit._cfg(warehouse, "taxonomy.min_self_ratio=0")
    apply_local(cfg)
    rep = conflicts_local(cfg)
    conflicts_local(cfg)  # idempotent: the rows of both modes are replaced
    stored = read_conflicts(cfg)
    assert (
        len(stored) == len(rep.rows)
        and tables.read_table(tables.table_path(warehouse, CONFLICTS)).schema == LABEL_CONFLICTS
    )
    s = rep.summary
    # conll vs wnut17 (Obama, Paris, Reuters both ways): raw label strings differ, universal types agree
    assert (
        s["raw"]["type_conflict"] == 8 and s["raw"]["agree"] == 0
    )  # + weibo GPE.NAM vs msra LOC (北京), both ways
    assert s["mapped"]["type_conflict"] == 0 and s["mapped"]["agree"] == 8
    assert s["mapped"]["type_conflict_rate"] < s["raw"]["type_conflict_rate"]
    from b2ner_common.taxonomy.job import load_stage

    taxonomy, mappings = load_stage(cfg)
    md = write_report(stored, mappings, taxonomy, tmp_path / "rep", ["conll2003", "wnut17", "weibo", "msra"])
    text = md.read_text(encoding="utf-8")
    assert "| raw | 8 |" in text or "| raw |" in text
    assert "### weibo (zh, ood-dev)" in text and "person nominal mention" in text
    assert (tmp_path / "rep" / "conflict_heatmap.png").stat().st_size > 1000


def test_taxonomy_cli_local_end_to_end(warehouse, tmp_path, bronze_kit):
    bronze_kit._write_bronze(warehouse)
    w = f"warehouse={warehouse}"
    assert main(["taxonomy", "check", w]) == 0
    assert main(["taxonomy", "apply", w, "--engine", "local"]) == 0
    assert main(["taxonomy", "conflicts", w, "--engine", "local", "--mode", "both"]) == 0
    assert main(["taxonomy", "report", w, "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").is_file()
    assert main(["taxonomy", "conflicts", w, "--engine", "local", "--mode", "bogus"]) == 2


def test_taxonomy_cli_show(capsys):
    assert main(["taxonomy", "show", "programming"]) == 0
    assert "编程语言" in capsys.readouterr().out
    assert main(["taxonomy", "show", "--dataset", "weibo"]) == 0
    assert "person nominal mention" in capsys.readouterr().out
    assert main(["taxonomy", "show", "no such type at all"]) == 2
