"""Folders and small files on local disk or object storage (s3://, gs://, abfss://, hdfs://, file://).

pyarrow's filesystems (already a dependency; the same ones the tables use) for: copying a run's final
model to `<output_dir>/<run_name>/adapter` on any storage, downloading a model folder from object
storage once per machine (`localize`), and small text files such as the MLflow run id.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CACHE_ENV = "B2NER_MODEL_CACHE"  # where `localize` keeps downloaded model folders
_DONE = ".b2ner_complete"


def is_uri(path: str | os.PathLike) -> bool:
    """True for "<scheme>://..." (object storage, or file:// URIs); False for plain local paths."""
    return "://" in str(path)


def _fs(uri: str):
    from pyarrow import fs

    return fs.FileSystem.from_uri(uri)  # (filesystem, path inside it)


def read_text(path: str) -> str | None:
    """A small text file's content, or None when it does not exist."""
    if not is_uri(path):
        p = Path(path)
        return p.read_text() if p.is_file() else None
    from pyarrow import fs as pafs

    filesystem, inner = _fs(path)
    if filesystem.get_file_info(inner).type != pafs.FileType.File:
        return None
    with filesystem.open_input_stream(inner) as f:
        return f.read().decode("utf-8")


def write_text(path: str, text: str) -> None:
    """Write a small text file (parents created)."""
    if not is_uri(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text)
        return
    filesystem, inner = _fs(path)
    filesystem.create_dir(inner.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(inner) as f:
        f.write(text.encode("utf-8"))


def upload_dir(local_dir: str | Path, dest: str) -> str:
    """Copy a local folder to `dest` (a URI or a local path), replacing what is there; returns dest."""
    if not is_uri(dest):
        if Path(dest).exists():
            shutil.rmtree(dest)
        shutil.copytree(local_dir, dest)
        return dest
    from pyarrow import fs as pafs

    filesystem, inner = _fs(dest)
    if filesystem.get_file_info(inner).type != pafs.FileType.NotFound:
        filesystem.delete_dir(inner)
    filesystem.create_dir(inner, recursive=True)
    pafs.copy_files(str(local_dir), inner, destination_filesystem=filesystem)
    return dest


def localize(path: str, cache_dir: str | Path | None = None) -> Path:
    """A local folder with the content of `path`: itself when local, else a copy downloaded once per
    machine into the cache (`$B2NER_MODEL_CACHE`, default ~/.cache/b2ner/models/<hash of the URI>).

    Concurrent callers (several predict actors on one node) may download at the same time; each writes
    to its own temporary folder and the first complete one is renamed into place.
    Raises FileNotFoundError naming the URI when nothing is there.
    """
    if not is_uri(path):
        return Path(path)
    from pyarrow import fs as pafs

    root = Path(cache_dir or os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "b2ner" / "models")
    key = hashlib.sha256(str(path).rstrip("/").encode()).hexdigest()[:16]
    name = str(path).rstrip("/").rsplit("/", 1)[-1] or "model"
    target = root / f"{name}-{key}"
    if (target / _DONE).is_file():
        return target
    filesystem, inner = _fs(str(path))
    if filesystem.get_file_info(inner).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"model folder {path} not found on its storage")
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    pafs.copy_files(inner, str(tmp), source_filesystem=filesystem)
    (tmp / _DONE).write_text(str(path))
    try:
        tmp.rename(target)
    except OSError:  # another process finished first (or a stale partial copy is in the way)
        if not (target / _DONE).is_file():
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
