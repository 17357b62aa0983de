"""Spark job: silver/samples + gold/embeddings -> gold/selection (+ a markdown report with coverage plots).

Grouping and per-dataset selection run on the executors (groupBy(dataset).applyInPandas with
`b2ner_common.selection.select_dataset`); the executors write the selected rows as a replaceWhere of the
run (idempotent re-runs). Only the per-dataset stats rows come back to the driver (for the report).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from b2ner_common import tables
from b2ner_common.config import ConfigError, PipelineConfig, config_json, save_resolved
from b2ner_common.schema import SELECTION
from b2ner_common.selection import SelectionError
from b2ner_common.tables import Table
from spark_jobs.delta import read_delta, table_exists, write_delta

GROUP_SCHEMA = (
    "sample_id string, dataset string, stage string, category string, cluster int, selection_run string, "
    "stats string"
)
_RUN_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass
class SelectResult:
    run_id: str
    selected: int
    stats: list[dict]
    report: Path | None
    seconds: float
    notes: list[str] = field(default_factory=list)


def _group_fn(params, eval_hashes_bc, threads: int):
    """The applyInPandas body (a closure so Spark pickles the params with it)."""

    def fn(pdf):
        import faiss
        import numpy as np
        import pandas as pd

        from b2ner_common.selection.two_stage import SELECTION_COLUMNS, select_dataset, stats_json

        faiss.omp_set_num_threads(threads)
        dataset = str(pdf["dataset"].iloc[0])
        missing = int(pdf["vector"].isna().sum())
        if missing:
            out = pd.DataFrame(columns=SELECTION_COLUMNS)
            stats = {"dataset": dataset, "missing_embeddings": missing}
        else:
            vectors = np.stack(pdf["vector"].to_numpy()).astype(np.float32, copy=False)
            out, stats = select_dataset(pdf, vectors, params, eval_hashes_bc.value)
        # One extra row per dataset carries its stats (sample_id null): the result comes back in one pass.
        cols = ["sample_id", "dataset", "stage", "category", "selection_run"]
        frame = {c: pd.array(list(out[c]) + [None], dtype="string") for c in cols}
        frame["dataset"] = pd.array([dataset] * (len(out) + 1), dtype="string")
        frame["cluster"] = pd.array(list(out["cluster"]) + [None], dtype="Int32")
        frame["stats"] = pd.array([None] * len(out) + [stats_json(stats)], dtype="string")
        return pd.DataFrame(frame)

    return fn


def run_select(cfg: PipelineConfig, spark=None) -> SelectResult:
    """Clean and select per dataset on Spark, write gold/selection for `cfg.select.run_id`, write the report."""
    from pyspark.sql import functions as F

    from b2ner_common.selection.dedup import text_hash
    from b2ner_common.selection.report import write_report
    from b2ner_common.selection.two_stage import SelectParams
    from spark_jobs.candidates import excluded_datasets, selection_candidates
    from spark_jobs.embed import task_threads
    from spark_jobs.session import get_spark

    s = cfg.select
    if not _RUN_ID.match(s.run_id):
        raise ConfigError(f"select.run_id={s.run_id!r}: use letters, digits, '_', '.', '-' only")
    spark = spark or get_spark(cfg.spark)
    silver_path = tables.table_path(cfg.warehouse, Table.SILVER_SAMPLES)
    emb_path = tables.table_path(cfg.warehouse, Table.GOLD_EMBEDDINGS)
    for p, cmd in ((silver_path, "b2ner taxonomy"), (emb_path, "b2ner embed")):
        if not table_exists(spark, p):
            raise FileNotFoundError(f"{p} does not exist: run `{cmd}` first")
    t0 = time.perf_counter()
    notes: list[str] = []

    silver = read_delta(spark, silver_path)
    evals, excluded = excluded_datasets(cfg)
    present = {r["dataset"] for r in silver.select("dataset").distinct().collect()}
    if missing_evals := sorted(set(evals) - present):
        notes.append(
            f"evaluation datasets not in silver/samples (nothing to decontaminate against): {missing_evals}"
        )
    eval_texts = silver.filter(F.col("dataset").isin(evals)).select("text")
    hash_udf = F.udf(lambda t: text_hash(t), "string")  # a lambda: no type hints for Spark to misread
    eval_hashes = {r[0] for r in eval_texts.select(hash_udf("text")).distinct().collect()}
    notes.append(
        f"decontaminated against {len(eval_hashes)} distinct texts of {sorted(set(evals) & present)}"
    )

    cand = selection_candidates(silver, cfg, excluded).select(
        "sample_id",
        "dataset",
        "text",
        F.array_distinct(F.filter(F.transform("entities", lambda e: e["type"]), lambda t: t != "")).alias(
            "types"
        ),
    )
    emb = read_delta(spark, emb_path).filter(F.col("model") == s.embed_model).select("sample_id", "vector")
    joined = cand.join(emb, "sample_id", "left")

    params = SelectParams.from_config(s)
    bc = spark.sparkContext.broadcast(frozenset(eval_hashes))
    fn = _group_fn(params, bc, task_threads(spark, s.embed_threads))
    result = joined.groupBy("dataset").applyInPandas(fn, GROUP_SCHEMA).persist()
    stats = [json.loads(r[0]) for r in result.filter(F.col("stats").isNotNull()).select("stats").collect()]
    missing = {st["dataset"]: st["missing_embeddings"] for st in stats if "missing_embeddings" in st}
    if missing:
        result.unpersist()
        raise SelectionError(
            f"samples without a {s.embed_model!r} embedding: {missing}; run `b2ner embed` (same select.embed_model)"
        )
    if not stats:
        result.unpersist()
        raise SelectionError(
            f"no candidate samples: splits {s.splits}, datasets {s.datasets or 'all'}, langs {s.langs or 'all'},"
            f" excluded {sorted(excluded)}"
        )
    sel = result.filter(F.col("stats").isNull())
    n_selected = sel.count()
    write_delta(
        sel,
        tables.table_path(cfg.warehouse, Table.GOLD_SELECTION),
        mode="overwrite",
        predicate=f"selection_run = '{s.run_id}'",
        schema=SELECTION,
        metadata={"stage": "select", "run_id": s.run_id, "config": config_json(cfg)},
    )
    result.unpersist()
    out_dir = Path(s.report_dir) / s.run_id
    report = write_report(stats, out_dir, s.run_id, notes)
    save_resolved(cfg, out_dir)
    return SelectResult(s.run_id, n_selected, stats, report, time.perf_counter() - t0, notes)


def selection_counts(sel: pa.Table) -> dict[str, int]:
    """Selected samples per dataset (for summaries)."""
    grouped = sel.group_by("dataset").aggregate([("sample_id", "count")])
    return dict(zip(grouped["dataset"].to_pylist(), grouped["sample_id_count"].to_pylist(), strict=True))
