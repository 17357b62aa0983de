"""Spark batch NER: input column -> mapInPandas(predict_batch) -> gold/predictions, committed in slices.

Resumable and exactly-once: doc_ids this run already has are anti-joined away, the rest is split into
slices of about `predict.commit_every` documents (hash of doc_id), and each slice is one MERGE commit on
(run_id, doc_id), written by the executors (the driver sees status counts only). A killed job loses at most the slice in flight; a rerun ends with the rows of an
uninterrupted run. The model is loaded once per Python worker (worker reuse + a per-process cache).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import pandas as pd

from b2ner_common import schema
from b2ner_common.config import PipelineConfig
from b2ner_common.predict.batch import NULL_TEXT_ID, InputError, get_predictor, predict_batch
from b2ner_common.predict.job import (
    OUTPUT_KEYS,
    PredictSummary,
    commit_metadata,
    fold_slice,
    input_source,
    output_path,
    replace_errors,
)
from spark_jobs.delta import read_delta, table_exists, write_delta

PREDICTIONS_DDL = (
    "run_id string, doc_id string, "
    "entities array<struct<start:int,end:int,label:string,text:string,score:float>>, "
    "raw_output string, model string, status string, error string"
)


def read_input(spark, cfg: PipelineConfig):
    """DataFrame doc_id, text[, labels, lang] from a Delta table, Parquet or JSONL (same ids as local)."""
    from pyspark.sql import functions as F

    pc_ = cfg.predict
    src = input_source(cfg)
    path = src.path
    if src.format == "delta":
        df = read_delta(spark, path)
    elif src.format == "jsonl":
        df = spark.read.json(path)
    else:
        df = spark.read.parquet(path)
    if pc_.limit is not None:
        df = df.limit(pc_.limit)
    if pc_.text_column not in df.columns:
        raise InputError(
            f"{path}: no text column {pc_.text_column!r} (columns: {df.columns}); set predict.text_column"
        )
    text = F.col(pc_.text_column).cast("string")
    # == batch.stable_doc_id: a content hash, and its own id for a null text
    content_id = F.when(text.isNull(), F.lit(NULL_TEXT_ID)).otherwise(F.substring(F.sha2(text, 256), 1, 24))
    doc_id = (
        F.coalesce(F.col(pc_.id_column).cast("string"), content_id)
        if pc_.id_column in df.columns
        else content_id
    )
    cols = [doc_id.alias("doc_id"), text.alias("text")]
    for name, key in ((pc_.labels_column, "labels"), (pc_.lang_column, "lang")):
        if name:
            if name not in df.columns:
                raise InputError(f"{path}: no column {name!r} (set predict.{key}_column)")
            cols.append(F.col(name).alias(key))
    return df.select(*cols)


def _partition_fn(cfg_json: str, factory: Callable | None):
    def predict_partition(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        cfg = PipelineConfig.model_validate_json(cfg_json)
        predictor = get_predictor(cfg, factory)  # once per Python worker process
        for batch in batches:
            for s in range(0, len(batch), cfg.predict.batch_size):
                part = batch.iloc[s : s + cfg.predict.batch_size]
                yield predict_batch(
                    part, predictor, run_id=cfg.predict.run_id, labels=cfg.predict.labels, cfg=cfg
                )

    return predict_partition


def run_predict(
    cfg: PipelineConfig,
    spark=None,
    predictor_factory: Callable | None = None,
    on_commit: Callable[[PredictSummary, int], None] | None = None,
) -> PredictSummary:
    """The Spark job: read, skip done doc_ids, predict slice by slice, one MERGE commit per slice."""
    from pyspark.sql import functions as F

    from spark_jobs.session import get_spark

    t0 = time.perf_counter()
    spark = spark or get_spark(cfg.spark)
    out = output_path(cfg)
    summary = PredictSummary(run_id=cfg.predict.run_id, output=out)
    docs = read_input(spark, cfg)
    summary.input_docs = docs.count()
    unique = docs.dropDuplicates(["doc_id"])
    n_unique = unique.count()
    summary.duplicate_ids = summary.input_docs - n_unique
    if table_exists(spark, out):
        done = (
            read_delta(spark, out)
            .filter(F.col("run_id") == cfg.predict.run_id)
            .filter(
                F.lit(not cfg.predict.retry_errors)
                | ~F.coalesce(F.col("status").startswith("error"), F.lit(False))
            )
            .select("doc_id")
        )
        todo = unique.join(done, "doc_id", "left_anti")
    else:
        todo = unique
    # Cut the lineage to the output table: each slice's commit refreshes every cached plan that reads the
    # table, which would re-run the anti-join and drop the slice just written from what is being counted.
    todo = todo.localCheckpoint(eager=True)
    n_todo = todo.count()
    summary.skipped_done = n_unique - n_todo
    n_slices = max(1, math.ceil(n_todo / max(1, cfg.predict.commit_every)))
    todo = todo.withColumn("_slice", F.pmod(F.xxhash64("doc_id"), F.lit(n_slices)))
    fn = _partition_fn(cfg.model_dump_json(), predictor_factory)
    problems: dict[str, int] = {}
    for k in range(n_slices if n_todo else 0):
        part = todo.filter(F.col("_slice") == k).drop("_slice").repartition(max(1, cfg.predict.workers))
        rows = part.mapInPandas(fn, PREDICTIONS_DDL).persist()  # predicted once, even if the MERGE retries
        write_delta(
            rows,
            out,
            merge_keys=OUTPUT_KEYS,
            schema=schema.PREDICTIONS,
            metadata=commit_metadata(cfg),
            replace_matched_when=replace_errors(cfg),
        )
        counts = rows.groupBy("status", "error").count().toPandas().rename(columns={"count": "n"})
        rows.unpersist()
        if counts.empty:
            continue
        fold_slice(counts, summary, problems, t0)
        if on_commit:
            on_commit(summary, n_todo)
    summary.problems = problems
    summary.seconds = time.perf_counter() - t0
    # What the table holds for this run now, counted by the executors.
    table = read_delta(spark, out).filter(F.col("run_id") == cfg.predict.run_id)
    row = table.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.coalesce(F.col("status").startswith("error"), F.lit(False)).cast("int")).alias("errors"),
    ).head()
    summary.table_rows, summary.table_errors = int(row["rows"]), int(row["errors"] or 0)
    return summary
