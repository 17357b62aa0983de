"""Bad input found by probes (issue 14): every record read is accepted or rejected, keys stay unique."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from b2ner_common import tables
from b2ner_common.config import ConfigError, load_config
from b2ner_common.ingest.job import run_local
from b2ner_common.tables import Table

B2NERD_RECORDS = [
    {
        "sentence": f"Alice met Bob in Paris {i}.",
        "entities": [{"name": "Alice", "type": "PER", "pos": [0, 5]}],
    }
    for i in range(6)
]


def _cfg(warehouse: Path, catalog: Path):
    return load_config(
        None,
        [
            f"warehouse={warehouse}",
            "ingest.engine=local",
            "ingest.builtin_catalog=false",
            f"ingest.catalogs=[{catalog}]",
            f"ingest.corpora={catalog.parent}",
        ],
    )


def _catalog(folder: Path, files: str, fmt: str = "conll", encoding: str = "utf-8") -> Path:
    cat = folder / "cat.yaml"
    cat.write_text(
        f"root: .\ndatasets:\n  probe:\n    lang: en\n    format: {fmt}\n    encoding: {encoding}\n"
        f"    files:\n{files}"
    )
    return cat


def test_ingest_same_file_listed_twice_is_a_catalog_error(tmp_path: Path, warehouse: Path):
    (tmp_path / "a.txt").write_text("Alice B-PER\nsmiled O\n\nBob B-PER\n\n")
    twice = "      - {path: a.txt, split: train}\n      - {path: a.txt, split: train}\n"
    with pytest.raises(ConfigError, match="lists file a.txt twice"):
        run_local(_cfg(warehouse, _catalog(tmp_path, twice)))


def test_ingest_merge_source_duplicates_keep_sample_id_unique(tmp_path: Path):
    # Every MERGE de-duplicates its source, not only the first write into a new table.
    path = str(tmp_path / "t")
    import pyarrow as pa

    first = pa.table({"sample_id": ["a"], "v": [1]})
    tables.write_table(path, first, merge_keys=["sample_id"])
    again = pa.table({"sample_id": ["b", "b", "a"], "v": [2, 3, 4]})
    tables.write_table(path, again, merge_keys=["sample_id"])
    ids = tables.read_table(path)["sample_id"].to_pylist()
    assert sorted(ids) == ["a", "b"]


def test_ingest_b2nerd_bad_byte_rejects_only_its_record(tmp_path: Path, warehouse: Path):
    body = json.dumps(B2NERD_RECORDS, ensure_ascii=False).encode("utf-8")
    marker = b"Paris 3."
    body = body.replace(marker, b"Par\xffis 3.")  # one undecodable byte inside record 4 of 6
    (tmp_path / "b.json").write_bytes(body)  # one line, as the real B2NERD files are large one-line arrays
    report = run_local(
        _cfg(warehouse, _catalog(tmp_path, "      - {path: b.json, split: train}\n", "b2nerd"))
    )
    samples = tables.read_table(tables.table_path(warehouse, Table.BRONZE_SAMPLES)).to_pylist()
    rejects = tables.read_table(tables.table_path(warehouse, Table.BRONZE_REJECTS)).to_pylist()
    assert len(samples) == 5 and len(rejects) == 1
    assert "cannot decode as utf-8" in rejects[0]["reason"]
    assert "Par" in rejects[0]["raw"] and "Paris 3" not in "".join(s["text"] for s in samples)
    recon = report.reconciliation.to_pylist()[0]
    assert recon["records_read"] == 6 == recon["accepted"] + recon["rejected"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_ingest_non_ascii_compatible_encoding_is_refused_at_catalog_load(tmp_path, warehouse, encoding):
    (tmp_path / "a.txt").write_bytes("Alice B-PER\n\n".encode(encoding))
    cat = _catalog(tmp_path, "      - {path: a.txt, split: train}\n", encoding=encoding)
    with pytest.raises(ConfigError, match="not ASCII-compatible.*iconv"):
        run_local(_cfg(warehouse, cat))


def test_ingest_first_write_with_duplicate_keys_keeps_each_first_row(tmp_path: Path):
    import pyarrow as pa

    path = str(tmp_path / "t")
    tables.write_table(
        path, pa.table({"sample_id": ["b", "b", "a"], "v": [2, 3, 4]}), merge_keys=["sample_id"]
    )
    rows = sorted(tables.read_table(path).to_pylist(), key=lambda r: r["sample_id"])
    assert rows == [{"sample_id": "a", "v": 4}, {"sample_id": "b", "v": 2}]
