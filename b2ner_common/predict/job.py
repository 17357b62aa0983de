"""The predict job around the pure batch functions: input resolution, the local engine, exactly-once commits.

- Exactly-once output: rows are committed with MERGE on (run_id, doc_id), insert-if-absent; a rerun first
  drops the doc_ids this run already has (`batch.pending_documents`), so a killed job resumed ends with
  exactly the rows of an uninterrupted run. Commits happen every `predict.commit_every` documents.
- `run_local` is the in-process engine (`--engine local`); spark_jobs/predict.py and ray_train/predict.py
  wire the same functions into Spark and Ray Data; `input_source` says where and in which format every
  engine reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from b2ner_common import tables
from b2ner_common.config import PipelineConfig
from b2ner_common.models.base import Predictor
from b2ner_common.predict.batch import (
    InputError,
    count_problems,
    get_predictor,
    iter_slices,
    normalize_documents,
    pending_documents,
    predict_batch,
    rows_to_arrow,
)
from b2ner_common.tables import Table

OUTPUT_KEYS = ("run_id", "doc_id")


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
    table_rows: int = 0  # rows of this run in the output table after the job (what is there, not what ran)
    table_errors: int = 0  # of which error rows

    @property
    def docs_per_s(self) -> float:
        return self.predicted / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        return asdict(self) | {"docs_per_s": self.docs_per_s}

    def add_rows(self, rows: pd.DataFrame) -> None:
        """Count rows by status; an `n` column weights each row (aggregated (status, error, n) rows)."""
        n = rows["n"] if "n" in rows else pd.Series(1, index=rows.index)
        self.predicted += int(n.sum())
        st = rows["status"].fillna("")
        self.ok += int(n[st == "ok"].sum())
        self.truncated += int(n[st == "truncated"].sum())
        self.parse_error += int(n[st == "parse_error"].sum())
        self.errors += int(n[st.str.startswith("error")].sum())


def output_path(cfg: PipelineConfig) -> str:
    return cfg.predict.output or tables.table_path(cfg.warehouse, Table.GOLD_PREDICTIONS)


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
    path = tables.absolute(path)  # Spark and Ray workers do not share this process's working directory
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


ERROR_ROW = "t.status LIKE 'error%'"  # a row whose document failed (replaced when a re-run retries it)


def done_doc_ids(out_path: str, run_id: str, retry_errors: bool = True) -> set[str]:
    """doc_ids this run already has in the output table (empty when the table does not exist).

    With retry_errors, documents whose row is an error are not done: a re-run predicts them again.
    """
    if not tables.table_exists(out_path):
        return set()
    from deltalake import DeltaTable

    t = DeltaTable(out_path).to_pyarrow_table(columns=["doc_id", "status"], filters=[("run_id", "=", run_id)])
    if retry_errors:
        failed = pc.fill_null(pc.starts_with(t["status"], "error"), False)
        t = t.filter(pc.invert(failed))
    return set(t["doc_id"].to_pylist())


def commit_rows(out_path: str, rows: pa.Table, cfg: PipelineConfig) -> int:
    """Insert-if-absent on (run_id, doc_id): a re-committed slice adds nothing (exactly-once).

    With predict.retry_errors an error row of the same document is replaced by the new row.
    """
    return tables.write_table(
        out_path,
        rows,
        merge_keys=OUTPUT_KEYS,
        metadata=commit_metadata(cfg),
        replace_matched_when=replace_errors(cfg),
    )


def replace_errors(cfg: PipelineConfig) -> str | None:
    """The MERGE's matched-row condition: replace this run's error rows when predict.retry_errors."""
    return ERROR_ROW if cfg.predict.retry_errors else None


def count_table_rows(summary: PredictSummary) -> PredictSummary:
    """Fill summary.table_rows / table_errors from the output table (local and Ray engines, at the end)."""
    if tables.table_exists(summary.output):
        from deltalake import DeltaTable

        t = DeltaTable(summary.output).to_pyarrow_table(
            columns=["status"], filters=[("run_id", "=", summary.run_id)]
        )
        summary.table_rows = t.num_rows
        summary.table_errors = int(
            pc.sum(pc.fill_null(pc.starts_with(t["status"], "error"), False)).as_py() or 0
        )
    return summary


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
        docs, done_doc_ids(out, cfg.predict.run_id, cfg.predict.retry_errors)
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
    return count_table_rows(summary)


def commit_slice(
    out_path: str, rows: pa.Table, cfg: PipelineConfig, summary, problems: dict[str, int], t0: float
) -> None:
    """Commit one slice of prediction rows (local and Ray engines) and fold its statuses into the summary."""
    commit_rows(out_path, rows, cfg)
    fold_slice(rows.select(["status", "error"]).to_pandas(), summary, problems, t0)


def commit_metadata(cfg: PipelineConfig) -> dict:
    return {"stage": "predict", "run_id": cfg.predict.run_id, "config": cfg.model_dump(mode="json")}


def fold_slice(frame: pd.DataFrame, summary, problems: dict[str, int], t0: float) -> None:
    """Fold a committed slice's status/error rows (optionally weighted by `n`) into the run summary."""
    summary.commits += 1
    summary.add_rows(frame)
    count_problems(frame, problems)
    summary.seconds = time.perf_counter() - t0


def read_predictions(out_path: str, run_id: str | None = None) -> pa.Table:
    """The predictions of one run (or all), sorted by (run_id, doc_id)."""
    t = tables.read_table(out_path)
    if run_id is not None:
        t = t.filter(pc.equal(t["run_id"], run_id))
    return t.sort_by([("run_id", "ascending"), ("doc_id", "ascending")])
