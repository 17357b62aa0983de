"""storage: folders and small files on local disk or object storage (file:// URIs stand in for s3:// here)."""

from __future__ import annotations

import pytest

from b2ner_common.storage import is_uri, localize, read_text, upload_dir, write_text


def test_storage_text_round_trip_on_a_uri(tmp_path):
    uri = (tmp_path / "run" / "mlflow_run_id").as_uri()
    assert is_uri(uri) and read_text(uri) is None
    write_text(uri, "abc123")
    assert read_text(uri) == "abc123"


def test_storage_upload_then_localize_downloads_once(tmp_path, monkeypatch):
    src = tmp_path / "adapter"
    src.mkdir()
    (src / "adapter_config.json").write_text("{}")
    (src / "adapter_model.safetensors").write_bytes(b"x" * 10)
    dest = (tmp_path / "bucket" / "runs" / "r" / "adapter").as_uri()
    assert upload_dir(src, dest) == dest
    upload_dir(src, dest)  # replacing an existing export works
    cache = tmp_path / "cache"
    local = localize(dest, cache)
    assert (local / "adapter_model.safetensors").read_bytes() == b"x" * 10
    import pyarrow.fs

    def no_copy(*a, **k):
        raise AssertionError("downloaded twice")

    monkeypatch.setattr(pyarrow.fs, "copy_files", no_copy)
    assert localize(dest, cache) == local  # second worker on the machine: the cached copy
    assert localize(str(src)) == src  # local paths pass through
    with pytest.raises(FileNotFoundError, match="not found"):
        localize((tmp_path / "nope").as_uri(), cache)
