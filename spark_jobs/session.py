"""SparkSession from config: local[2] by default, a cluster master by config (never a code fork)."""

from __future__ import annotations

import os
import sys

from b2ner_common.config import SparkConfig


def get_spark(cfg: SparkConfig):
    """Build (or reuse) the SparkSession described by `cfg`."""
    # Python workers must run the driver's interpreter (the venv), not whatever python3 is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(cfg.master)
        .appName(cfg.app_name)
        .config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if cfg.master.startswith("local"):
        builder = builder.config("spark.driver.memory", "4g").config("spark.ui.showConsoleProgress", "false")
        # The embedded default listens on loopback only (the driver would bind the machine's address).
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    if cfg.table_backend == "delta-spark":
        # Cluster path: the JVM Delta extension. The cluster provides its jars (EMR/Databricks bundle
        # them); elsewhere add `spark.jars.packages: io.delta:delta-spark_2.13:<version>` to spark.conf.
        # We never add Maven coordinates ourselves: an offline driver would hang resolving them.
        builder = builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension").config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
    for k, v in cfg.conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
