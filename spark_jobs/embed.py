"""Spark job: silver/samples -> gold/embeddings (incremental, one row per (sample_id, model)).

Only samples without a vector for the configured model are embedded (left anti-join), in Arrow batches
with mapInArrow (no pandas round trip); each Python worker loads the encoder once (process cache in
b2ner_common.selection.embeddings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from b2ner_common import tables
from b2ner_common.config import PipelineConfig, config_json
from b2ner_common.schema import EMBEDDINGS
from b2ner_common.selection.embeddings import embed_arrow_batches, resolve_model_path
from b2ner_common.tables import Table
from spark_jobs.delta import read_delta, table_exists, write_delta

EMBED_SCHEMA = "sample_id string, model string, vector array<float>"


@dataclass
class EmbedResult:
    model: str
    candidates: int  # silver samples
    computed: int  # embedded in this run
    seconds: float
    version: int | None


def task_threads(spark, configured: int | None = None) -> int:
    """Torch/FAISS threads per Spark task so that concurrent tasks x threads = cores.

    Spark runs cores / spark.task.cpus tasks at once per executor, so each task may use spark.task.cpus
    threads (1 by default: local[2] runs 2 single-threaded tasks on 2 cores).
    """
    if configured:
        return configured
    return max(1, int(spark.conf.get("spark.task.cpus", "1")))


def run_embed(cfg: PipelineConfig, spark=None) -> EmbedResult:
    """Embed the silver samples without a vector for `cfg.select.embed_model` yet; merge into gold.

    `select.embed_scope=candidates` (default) embeds only what selection can draw from (spark_jobs.candidates).
    """
    from pyspark.sql import functions as F

    from spark_jobs.session import get_spark

    s = cfg.select
    resolve_model_path(s.embed_model)  # fail fast (ConfigError) before starting any task
    spark = spark or get_spark(cfg.spark)
    silver_path = tables.table_path(cfg.warehouse, Table.SILVER_SAMPLES)
    if not table_exists(spark, silver_path):
        raise FileNotFoundError(
            f"{silver_path} does not exist: run `b2ner ingest` and `b2ner taxonomy` first"
        )
    gold_path = tables.table_path(cfg.warehouse, Table.GOLD_EMBEDDINGS)
    t0 = time.perf_counter()
    samples = read_delta(spark, silver_path)
    if s.embed_scope == "candidates":
        from spark_jobs.candidates import excluded_datasets, selection_candidates

        samples = selection_candidates(samples, cfg, excluded_datasets(cfg)[1])
    # Cached: the two counts and the embedding pass would each recompute the candidate window over silver.
    samples = samples.select("sample_id", "text").dropDuplicates(["sample_id"]).persist()
    try:
        todo = samples
        if table_exists(spark, gold_path):
            done = read_delta(spark, gold_path).filter(F.col("model") == s.embed_model).select("sample_id")
            todo = samples.join(done, "sample_id", "left_anti")
        candidates = samples.count()
        n = todo.count()
        version = None
        if n:
            version = _embed_and_merge(spark, todo, n, cfg, gold_path)
    finally:
        samples.unpersist()
    return EmbedResult(s.embed_model, candidates, n, time.perf_counter() - t0, version)


def _embed_and_merge(spark, todo, n: int, cfg: PipelineConfig, gold_path: str) -> int:
    """mapInArrow over the rows to embed, MERGE into gold/embeddings; returns the new table version."""
    s = cfg.select
    parallelism = spark.sparkContext.defaultParallelism
    # At least one partition per core; more for big inputs so a slow task does not hold the stage.
    parts = max(parallelism, min(n // 20000, parallelism * 8))
    name, bs, threads = s.embed_model, s.embed_batch_size, task_threads(spark, s.embed_threads)
    precision, max_tokens = s.embed_precision, s.embed_max_tokens

    def embed(batches):
        yield from embed_arrow_batches(batches, name, bs, threads, precision, max_tokens)

    out = todo.repartition(parts).mapInArrow(embed, EMBED_SCHEMA)
    return write_delta(
        out,
        gold_path,
        merge_keys=["sample_id", "model"],
        schema=EMBEDDINGS,
        metadata={"stage": "embed", "config": config_json(cfg)},
    )
