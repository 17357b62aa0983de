"""Batch NER, pure: documents (Arrow/pandas batches) -> rows of gold/predictions.

- `predict_batch` is the one function every engine runs per batch: per-row failures become rows with
  status "error: ..." (never a failed job), long documents are chunked (`chunking.predict_documents`).
- `normalize_documents` gives every engine the same doc_id, text[, labels, lang] columns and ids;
  `pending_documents` drops the doc_ids a run already has (resume).
No tables, no paths: the local job (`job.py`) and the Spark and Ray shells do the I/O around these.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from b2ner_common import schema
from b2ner_common.config import PipelineConfig, config_json
from b2ner_common.models.base import Predictor, load_predictor
from b2ner_common.parsing import summarize_problems
from b2ner_common.predict.chunking import predict_documents

_PREDICTORS: dict[str, Predictor] = {}  # per process: a Spark Python worker / Ray actor loads its model once


class InputError(ValueError):
    """The input cannot be read as documents (missing file or column); the message names it and the fix."""


NULL_TEXT_ID = "null-text-" + hashlib.sha256(b"\x00null").hexdigest()[:14]  # 24 chars, like a content id


def stable_doc_id(text: str | None) -> str:
    """Id for inputs without an id column: a content hash (same text, same id, on every engine).

    Content addressing keeps resume correct when the input is re-read in another order or appended to;
    identical texts collapse to one prediction (counted as duplicate ids). Spark computes the same value
    with `substring(sha2(text, 256), 1, 24)`.
    """
    if text is None:  # a null text must not share the empty text's id (it would be dropped as a duplicate)
        return NULL_TEXT_ID
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def parse_labels(value) -> list[str] | None:
    """A per-document label set from a list/array or a comma-separated string; None when absent.

    Absent covers None, NaN and pd.NA (what Ray Data passes for a null list); any other scalar is one
    label, so no input value can raise here and kill a job.
    """
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    if isinstance(value, (list, tuple, np.ndarray, pa.Array)):
        items = value.to_pylist() if isinstance(value, pa.Array) else list(value)
        return [str(x).strip() for x in items if x is not None and str(x).strip()]
    if value is None or pd.isna(value):
        return None
    return [str(value).strip()] if str(value).strip() else None


def normalize_documents(data: pa.Table, pc_, source: str = "input") -> pa.Table:
    """Select/rename the configured columns to doc_id, text[, labels, lang]; derive ids when absent."""
    if pc_.text_column not in data.column_names:
        raise InputError(
            f"{source}: no text column {pc_.text_column!r} (columns: {data.column_names}); set predict.text_column"
        )
    texts = data[pc_.text_column].cast(pa.string())
    text_list = texts.to_pylist()
    if pc_.id_column in data.column_names:
        raw_ids = data[pc_.id_column].cast(pa.string()).to_pylist()
        # Rows with a null id still get a stable id so they are predicted and reported, not dropped.
        ids = [i if i is not None else stable_doc_id(t) for i, t in zip(raw_ids, text_list, strict=True)]
    else:
        ids = [stable_doc_id(t) for t in text_list]
    cols = {"doc_id": pa.array(ids, pa.string()), "text": texts}
    if pc_.labels_column:
        if pc_.labels_column not in data.column_names:
            raise InputError(f"{source}: no labels column {pc_.labels_column!r}; set predict.labels_column")
        cols["labels"] = pa.array(
            [parse_labels(v) for v in data[pc_.labels_column].to_pylist()], pa.list_(pa.string())
        )
    if pc_.lang_column:
        if pc_.lang_column not in data.column_names:
            raise InputError(f"{source}: no language column {pc_.lang_column!r}; set predict.lang_column")
        cols["lang"] = data[pc_.lang_column].cast(pa.string())
    return pa.table(cols)


def pending_documents(docs: pa.Table, done: set[str]) -> tuple[pa.Table, int, int]:
    """(documents still to predict, skipped because done, duplicate ids dropped), first occurrence wins."""
    ids = docs["doc_id"].to_pylist()
    seen: set[str] = set()
    keep, skipped, dups = [], 0, 0
    for n, i in enumerate(ids):
        if i in seen:
            dups += 1
            continue
        seen.add(i)
        if i in done:
            skipped += 1
            continue
        keep.append(n)
    return docs.take(pa.array(keep, pa.int64())), skipped, dups


def get_predictor(cfg: PipelineConfig, factory: Callable[[], Predictor] | None = None) -> Predictor:
    """The predictor of this process for `cfg.model` (or `factory`), loaded once and reused."""
    key = config_json(cfg.model) + (f"|{getattr(factory, '__qualname__', id(factory))}" if factory else "")
    if key not in _PREDICTORS:
        _PREDICTORS[key] = factory() if factory is not None else load_predictor(cfg.model)
    return _PREDICTORS[key]


def predict_batch(
    batch: pd.DataFrame, predictor: Predictor, *, run_id: str, labels: list[str], cfg: PipelineConfig
) -> pd.DataFrame:
    """Predict one batch of documents (columns doc_id, text[, labels, lang]) -> PREDICTIONS rows.

    A failing batch is retried document by document, so one bad document becomes one error row.
    """
    pc_ = cfg.predict
    n = len(batch)
    ids = batch["doc_id"].astype(str).tolist()
    texts = batch["text"].tolist()
    row_labels = batch["labels"].tolist() if "labels" in batch.columns else [None] * n
    row_langs = batch["lang"].tolist() if "lang" in batch.columns else None
    parsed = [parse_labels(x) for x in row_labels]
    label_sets = [x if x else list(labels) for x in parsed]
    model_name = getattr(predictor, "name", type(predictor).__name__)
    rows: list[dict | None] = [None] * n
    todo = []
    for i in range(n):
        if not isinstance(texts[i], str):  # None, NaN or pd.NA, depending on the pandas string dtype
            rows[i] = _error_row(run_id, ids[i], model_name, "error: no text", "text is null")
        elif not label_sets[i]:
            rows[i] = _error_row(
                run_id, ids[i], model_name, "error: no labels", "no label set: pass --labels"
            )
        else:
            todo.append(i)

    def run(idx: list[int]) -> None:
        preds = predict_documents(
            predictor,
            [texts[i] for i in idx],
            [label_sets[i] for i in idx],
            max_chars=pc_.max_chars,
            overlap_chars=pc_.overlap_chars,
            max_chunks=pc_.max_chunks,
            langs=[row_langs[i] for i in idx] if row_langs is not None else None,
        )
        for i, p in zip(idx, preds, strict=True):
            counts = summarize_problems(p.problems)
            status = "truncated" if p.truncated else ("parse_error" if counts else "ok")
            rows[i] = {
                "run_id": run_id,
                "doc_id": ids[i],
                "entities": [
                    {"start": e.start, "end": e.end, "label": e.label, "text": e.text, "score": e.score}
                    for e in p.entities
                ],
                "raw_output": p.raw_output,
                "model": model_name,
                "status": status,
                "error": json.dumps(counts, ensure_ascii=False) if counts else "",
            }

    try:
        if todo:
            run(todo)
    except Exception:  # noqa: BLE001 - isolate the failing document(s) below
        for i in todo:
            try:
                run([i])
            except Exception as e:  # noqa: BLE001 - a bad document is an output row, not a failed job
                rows[i] = _error_row(run_id, ids[i], model_name, f"error: {type(e).__name__}", str(e)[:2000])
    return pd.DataFrame(rows, columns=schema.PREDICTIONS.names)


def _error_row(run_id: str, doc_id: str, model: str, status: str, error: str) -> dict:
    return {
        "run_id": run_id,
        "doc_id": doc_id,
        "entities": [],
        "raw_output": "",
        "model": model,
        "status": status,
        "error": error,
    }


def rows_to_arrow(rows: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(rows, schema=schema.PREDICTIONS, preserve_index=False)


def iter_slices(docs: pa.Table, size: int) -> Iterator[pa.Table]:
    for s in range(0, docs.num_rows, max(1, size)):
        yield docs.slice(s, size)


def count_problems(rows: pd.DataFrame, acc: dict[str, int]) -> None:
    """Add up the problem counts in `error` (JSON); an `n` column weights aggregated rows."""
    weights = rows["n"] if "n" in rows else [1] * len(rows)
    for status, err, n in zip(rows["status"], rows["error"], weights, strict=True):
        if status in ("parse_error", "truncated", "ok") and err:
            for k, v in json.loads(err).items():
                acc[k] = acc.get(k, 0) + int(v) * int(n)
