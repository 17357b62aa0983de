"""Batch NER core: documents (pandas/Arrow batches) -> rows of gold/predictions, plus the local engine.

- `predict_batch` is the one function every engine runs per batch: per-row failures become rows with
  status "error: ..." (never a failed job), long documents are chunked (`chunking.predict_documents`).
- Exactly-once output: rows are committed with MERGE on (run_id, doc_id), insert-if-absent; a rerun first
  drops the doc_ids this run already has (`pending_documents`), so a killed job resumed ends with exactly
  the rows of an uninterrupted run. Commits happen every `predict.commit_every` documents.
- `run_local` is the in-process engine (`--engine local`); spark_jobs/predict.py and ray_train/predict.py
  wire the same functions into Spark and Ray Data.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from b2ner_common import schema, tables
from b2ner_common.config import PipelineConfig, config_json
from b2ner_common.models.base import Predictor, load_predictor
from b2ner_common.parsing import summarize_problems
from b2ner_common.predict.chunking import predict_documents
from b2ner_common.tables import Table

OUTPUT_KEYS = ("run_id", "doc_id")
_PREDICTORS: dict[str, Predictor] = {}  # per process: a Spark Python worker / Ray actor loads its model once


class InputError(ValueError):
    """The input cannot be read as documents (missing file or column); the message names it and the fix."""


@dataclass(slots=True)
class PredictSummary:
    run_id: str
    output: str
    input_docs: int = 0
    skipped_done: int = 0  # already in the output for this run (resume)
    duplicate_ids: int = 0  # input rows whose doc_id repeats an earlier row (predicted once)
    predicted: int = 0
    ok: int = 0
    truncated: int = 0
    parse_error: int = 0
    errors: int = 0
    commits: int = 0
    seconds: float = 0.0
    problems: dict[str, int] = field(default_factory=dict)

    @property
    def docs_per_s(self) -> float:
        return self.predicted / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"docs_per_s": self.docs_per_s}

    def add_rows(self, rows: pd.DataFrame) -> None:
        self.predicted += len(rows)
        st = rows["status"].fillna("")
        self.ok += int((st == "ok").sum())
        self.truncated += int((st == "truncated").sum())
        self.parse_error += int((st == "parse_error").sum())
        self.errors += int(st.str.startswith("error").sum())


def output_path(cfg: PipelineConfig) -> str:
    return cfg.predict.output or tables.table_path(cfg.warehouse, Table.GOLD_PREDICTIONS)


def stable_doc_id(text: str | None) -> str:
    """Id for inputs without an id column: a content hash (same text, same id, on every engine).

    Content addressing keeps resume correct when the input is re-read in another order or appended to;
    identical texts collapse to one prediction (counted as duplicate ids). Spark computes the same value
    with `substring(sha2(text, 256), 1, 24)`.
    """
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:24]


def parse_labels(value) -> list[str] | None:
    """A per-document label set from a list/array or a comma-separated string; None when absent."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str):
        return [x.strip() for x in value.split(",") if x.strip()]
    return [str(x).strip() for x in value if str(x).strip()]


def is_delta(path: str) -> bool:
    """True for a Delta table (local folder with _delta_log, or an object-store table)."""
    if "://" not in path:
        return (Path(path) / "_delta_log").is_dir()
    try:
        return tables.table_exists(path)
    except Exception:  # noqa: BLE001 - delta-rs raises several kinds for "not a table here"
        return False


@dataclass(frozen=True)
class InputSource:
    """Where predict reads from and in which format; every engine reads it with its own reader."""

    path: str
    format: str  # "delta" | "jsonl" | "parquet"


def input_source(cfg: PipelineConfig) -> InputSource:
    """Check `predict.input` and tell its format: a Delta table, JSON lines (file or folder) or Parquet."""
    path = cfg.predict.input
    if not path:
        raise InputError("no input: pass --input (a Delta table, Parquet file/folder or .jsonl file)")
    p = Path(path)
    if "://" not in path and not p.exists():
        raise InputError(f"input {path} does not exist: pass --input (Delta table, Parquet, or .jsonl)")
    if is_delta(path):
        return InputSource(path, "delta")
    if p.suffix in {".jsonl", ".json"} or ("://" not in path and p.is_dir() and any(p.glob("*.jsonl"))):
        return InputSource(path, "jsonl")
    return InputSource(path, "parquet")


def read_documents(cfg: PipelineConfig) -> pa.Table:
    """The input as Arrow columns doc_id, text[, labels, lang]: a Delta table, Parquet file/dir or JSONL."""
    pc_ = cfg.predict
    src = input_source(cfg)
    path, p = src.path, Path(src.path)
    if src.format == "delta":
        data = tables.read_table(path)
    elif src.format == "jsonl":
        import pyarrow.json as pj

        files = [p] if p.is_file() else sorted(p.glob("*.jsonl"))
        try:
            data = pa.concat_tables([pj.read_json(f) for f in files], promote_options="permissive")
        except pa.ArrowInvalid as e:
            raise InputError(f"input {path}: not valid JSON lines ({e}); one JSON object per line") from e
    else:
        import pyarrow.dataset as ds

        data = ds.dataset(path, format="parquet").to_table()
    if pc_.limit is not None:
        data = data.slice(0, pc_.limit)
    return normalize_documents(data, pc_, source=path)


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


def done_doc_ids(out_path: str, run_id: str) -> set[str]:
    """doc_ids this run already has in the output table (empty when the table does not exist)."""
    if not tables.table_exists(out_path):
        return set()
    from deltalake import DeltaTable

    t = DeltaTable(out_path).to_pyarrow_table(columns=["doc_id"], filters=[("run_id", "=", run_id)])
    return set(t["doc_id"].to_pylist())


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


def commit_rows(out_path: str, rows: pa.Table, cfg: PipelineConfig) -> int:
    """Insert-if-absent on (run_id, doc_id): a re-committed slice adds nothing (exactly-once)."""
    meta = {"stage": "predict", "run_id": cfg.predict.run_id, "config": cfg.model_dump(mode="json")}
    return tables.write_table(out_path, rows, merge_keys=OUTPUT_KEYS, metadata=meta)


def iter_slices(docs: pa.Table, size: int) -> Iterator[pa.Table]:
    for s in range(0, docs.num_rows, max(1, size)):
        yield docs.slice(s, size)


def run_local(
    cfg: PipelineConfig,
    predictor: Predictor | None = None,
    docs: pa.Table | None = None,
    on_commit: Callable[[PredictSummary, int], None] | None = None,
) -> PredictSummary:
    """In-process engine: read, skip finished doc_ids, predict in batches, commit every `commit_every` docs."""
    t0 = time.perf_counter()
    docs = read_documents(cfg) if docs is None else docs
    out = output_path(cfg)
    summary = PredictSummary(run_id=cfg.predict.run_id, output=out, input_docs=docs.num_rows)
    todo, summary.skipped_done, summary.duplicate_ids = pending_documents(
        docs, done_doc_ids(out, cfg.predict.run_id)
    )
    if todo.num_rows and predictor is None:
        predictor = get_predictor(cfg)
    problems: dict[str, int] = {}
    for piece in iter_slices(todo, cfg.predict.commit_every):
        frames = [
            predict_batch(
                b.to_pandas(), predictor, run_id=cfg.predict.run_id, labels=cfg.predict.labels, cfg=cfg
            )
            for b in iter_slices(piece, cfg.predict.batch_size)
        ]
        commit_slice(out, rows_to_arrow(pd.concat(frames, ignore_index=True)), cfg, summary, problems, t0)
        if on_commit:
            on_commit(summary, todo.num_rows)
    summary.problems = problems
    summary.seconds = time.perf_counter() - t0
    return summary


def commit_slice(
    out_path: str, rows: pa.Table, cfg: PipelineConfig, summary, problems: dict[str, int], t0: float
) -> None:
    """Commit one slice of prediction rows (every engine) and fold its statuses into the run summary."""
    commit_rows(out_path, rows, cfg)
    frame = rows.select(["status", "error"]).to_pandas()
    summary.commits += 1
    summary.add_rows(frame)
    count_problems(frame, problems)
    summary.seconds = time.perf_counter() - t0


def count_problems(rows: pd.DataFrame, acc: dict[str, int]) -> None:
    for status, err in zip(rows["status"], rows["error"], strict=True):
        if status in ("parse_error", "truncated", "ok") and err:
            for k, v in json.loads(err).items():
                acc[k] = acc.get(k, 0) + int(v)


def read_predictions(out_path: str, run_id: str | None = None) -> pa.Table:
    """The predictions of one run (or all), sorted by (run_id, doc_id)."""
    t = tables.read_table(out_path)
    if run_id is not None:
        t = t.filter(pc.equal(t["run_id"], run_id))
    return t.sort_by([("run_id", "ascending"), ("doc_id", "ascending")])
