"""The ingest job on the local engine over the generated sample corpus: Delta tables, idempotent
re-runs, reconciliation, rejects for missing/empty files, replication, CLI exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2ner_cli.main import main
from b2ner_common import tables
from b2ner_common.config import ConfigError, load_config
from b2ner_common.ingest.job import run_local
from b2ner_common.ingest.sample_corpus import write_sample_corpus
from b2ner_common.schema import check_offsets, row_to_sample


@pytest.fixture(scope="module")
def sample_catalog(tmp_path_factory) -> Path:
    return write_sample_corpus(tmp_path_factory.mktemp("corpus"), n=40)


def _cfg(warehouse: Path, catalog: Path, *extra: str):
    return load_config(
        None,
        [
            f"warehouse={warehouse}",
            "ingest.engine=local",
            "ingest.builtin_catalog=false",
            f"ingest.catalogs=[{catalog}]",
            f"ingest.corpora={catalog.parent}",
            *extra,
        ],
    )


def _rows(warehouse: Path, name: str) -> list[dict]:
    return tables.read_table(tables.table_path(warehouse, name)).to_pylist()


def test_ingest_local_writes_bronze_tables_that_reconcile(warehouse: Path, sample_catalog: Path):
    report = run_local(_cfg(warehouse, sample_catalog))
    assert report.problems == []
    recon = {(r["dataset"], r["split"]): r for r in _rows(warehouse, "bronze/reconciliation")}
    samples = _rows(warehouse, "bronze/samples")
    rejects = _rows(warehouse, "bronze/rejects")
    assert set(recon) == {
        ("sample_en", "train"),
        ("sample_en", "dev"),
        ("sample_zh_chars", "train"),
        ("sample_zh_spans", "train"),
        ("sample_de_inline", "train"),
    }
    for (ds, sp), r in recon.items():
        assert r["records_read"] == r["accepted"] + r["rejected"] == r["expected"]
        assert r["accepted"] == sum(1 for s in samples if (s["dataset"], s["split"]) == (ds, sp))
        assert r["rejected"] == sum(1 for x in rejects if (x["dataset"], x["split"]) == (ds, sp))
        assert r["entities"] == sum(
            len(s["entities"]) for s in samples if (s["dataset"], s["split"]) == (ds, sp)
        )
    bad_line = (
        (sample_catalog.parent / "sample_en_train.tsv")
        .read_text()
        .split("\n")
        .index("malformed-line-without-tag")
    )
    assert {x["source"] for x in rejects} == {
        f"sample_en_train.tsv:{bad_line + 1}",
        "sample_zh_spans.jsonl:6",
    }
    assert {s["lang"] for s in samples} == {"en", "zh", "de"}
    for row in samples:
        s = row_to_sample(row)
        assert check_offsets(s.text, s.entities) is None
    zh = next(s for s in samples if s["dataset"] == "sample_zh_chars")
    assert " " not in zh["text"]
    config = (warehouse / "bronze" / "_ingest_config.yaml").read_text()
    assert "engine: local" in config
    meta = tables.table_history(tables.table_path(warehouse, "bronze/samples"))[0]
    assert json.loads(meta["b2ner.config"])["ingest"]["engine"] == "local"


def test_ingest_local_rerun_adds_no_rows(warehouse: Path, sample_catalog: Path):
    cfg = _cfg(warehouse, sample_catalog)
    run_local(cfg)
    counts = [len(_rows(warehouse, t)) for t in ("bronze/samples", "bronze/rejects", "bronze/reconciliation")]
    report = run_local(cfg)
    assert report.problems == []
    assert [
        len(_rows(warehouse, t)) for t in ("bronze/samples", "bronze/rejects", "bronze/reconciliation")
    ] == counts
    ids = [r["sample_id"] for r in _rows(warehouse, "bronze/samples")]
    assert len(ids) == len(set(ids))


def test_ingest_local_replicate_reads_files_as_distinct_sources(warehouse: Path, sample_catalog: Path):
    report = run_local(_cfg(warehouse, sample_catalog, "ingest.replicate=3", "ingest.datasets=[sample_en]"))
    recon = {r["split"]: r for r in report.reconciliation.to_pylist()}
    assert recon["train"]["records_read"] == 3 * 40 == recon["train"]["expected"]
    sources = {r["source"].rsplit(":", 1)[0] for r in _rows(warehouse, "bronze/samples")}
    assert sources == {f"sample_en_{s}.tsv{r}" for s in ("train", "dev") for r in ("", "#r1", "#r2")}


def test_ingest_local_missing_and_empty_files_become_rejects(warehouse: Path, tmp_path: Path):
    (tmp_path / "empty.txt").write_text("")
    cat = tmp_path / "cat.yaml"
    cat.write_text(
        "root: .\ndatasets:\n  broken:\n    lang: en\n    format: conll\n    files:\n"
        "      - {path: empty.txt, split: train}\n      - {path: gone.txt, split: test}\n"
    )
    report = run_local(_cfg(warehouse, cat))
    rejects = {r["source"]: r["reason"] for r in _rows(warehouse, "bronze/rejects")}
    assert rejects["empty.txt:0"] == "empty file"
    assert rejects["gone.txt:0"].startswith("file not found")
    assert [r["rejected"] for r in report.reconciliation.to_pylist()] == [1, 1]


def test_ingest_config_errors_are_clear(warehouse: Path, sample_catalog: Path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        run_local(_cfg(warehouse, sample_catalog, "ingest.datasets=[nope]"))
    with pytest.raises(ConfigError, match="corpora folder"):
        run_local(
            load_config(
                None, [f"warehouse={warehouse}", "ingest.corpora=/no/such/dir", "ingest.engine=local"]
            )
        )
    with pytest.raises(ConfigError, match="replicate"):
        _cfg(warehouse, sample_catalog, "ingest.replicate=0")


def test_ingest_cli_exit_codes(warehouse: Path, sample_catalog: Path, capsys):
    base = [
        "ingest",
        "--engine",
        "local",
        "--warehouse",
        str(warehouse),
        "--catalog",
        str(sample_catalog),
        "ingest.builtin_catalog=false",
    ]
    assert main([*base, "--dataset", "sample_de_inline"]) == 0
    assert "sample_de_inline" in capsys.readouterr().out
    assert main([*base, "--dataset", "nope"]) == 2
    assert (
        main(["ingest", "--corpora", "/no/such/dir", "--engine", "local", "--warehouse", str(warehouse)]) == 2
    )


def test_ingest_run_pipeline_falls_back_to_generated_corpus(tmp_path: Path, monkeypatch):
    from b2ner_cli.commands.ingest import wide_console
    from b2ner_cli.commands.run import run_pipeline

    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["ingest.corpora=/no/such/corpora", "ingest.engine=local", "warehouse=wh"])
    results = run_pipeline(cfg, wide_console(), stages=["ingest"])
    report = results["ingest"]
    assert report.problems == [] and report.records > 0
    assert (tmp_path / "sample_corpus" / "catalog.yaml").is_file()
    assert tables.read_table(tables.table_path(tmp_path / "wh", "bronze/samples")).num_rows == sum(
        report.reconciliation["accepted"].to_pylist()
    )


def test_ingest_sample_corpus_is_deterministic(tmp_path: Path):
    a = write_sample_corpus(tmp_path / "a", n=30).parent
    b = write_sample_corpus(tmp_path / "b", n=30).parent
    files = sorted(p.name for p in a.iterdir())
    assert len(files) == 6
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def test_ingest_payload_blobs_carry_the_unit_output(sample_catalog: Path):
    import pyarrow as pa

    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import payloads_output, plan_units, unit_output, unit_payloads, units_table

    units = plan_units(load_catalog([sample_catalog], builtin=False).tasks("/unused"), chunk_bytes=500)
    blobs = pa.Table.from_batches(list(unit_payloads(units_table(units).to_batches(max_chunksize=3))))
    assert blobs.num_rows == len(units) > 5
    assert payloads_output(blobs).equals(pa.concat_tables([unit_output(u) for u in units]))
