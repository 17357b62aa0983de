"""SparkSession from config: local[2] by default, a cluster master by config (never a code fork).

Every session carries delta-spark: the jars `make install` put in `<venv>/jars` go on `spark.jars` (never
`spark.jars.packages`: Ivy would download at run time, and dies when Maven left POMs without jars in ~/.m2).
Tables stay in the protocol both delta-spark 4.4 and deltalake 1.6 read and write (docs/tables.md): no
deletion vectors, no column mapping, reader 1 / writer 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from b2ner_common.config import ConfigError, SparkConfig

# Must match the Makefile's DELTA_* variables (tests/test_spark_session.py checks it).
DELTA_VERSION = "4.4.0"
DELTA_SCALA = "4.2_2.13"  # delta-spark for Spark 4.2, Scala 2.13 (pyspark 4.2.0)
DELTA_JARS = (f"delta-spark_{DELTA_SCALA}-{DELTA_VERSION}.jar", f"delta-storage-{DELTA_VERSION}.jar")

# Session defaults for new tables: keep them in the delta-spark / deltalake overlap (see module doc).
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    "spark.databricks.delta.properties.defaults.columnMapping.mode": "none",
    "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "false",
}


# Driver JVM flags for local masters (the JVM is the executor too); cluster JVMs keep their defaults.
LOCAL_JIT = "-XX:TieredStopAtLevel=1"


def delta_jar_paths(cfg: SparkConfig) -> list[str]:
    """The Delta jars for `spark.jars` ([] when the cluster provides Delta); raises ConfigError if missing."""
    if cfg.delta_jars == "provided":
        return []
    folder = Path(cfg.delta_jars or os.environ.get("B2NER_DELTA_JARS") or Path(sys.prefix) / "jars")
    paths = [folder / name for name in DELTA_JARS]
    if missing := [p.name for p in paths if not p.is_file()]:
        raise ConfigError(
            f"Delta jars missing in {folder}: {', '.join(missing)}. Run `make install` (or `make jars`), which"
            " fetches them with mvn; or point spark.delta_jars=DIR at a folder holding them, or set"
            " spark.delta_jars=provided where the cluster ships Delta (EMR, Databricks, Dataproc, --jars)"
        )
    return [str(p) for p in paths]


def driver_java_options(cfg: SparkConfig) -> dict[str, str]:
    """`spark.driver.extraJavaOptions` for `cfg`: local masters get LOCAL_JIT before the user's own flags.

    C1 only, no C2: a local job is short, and C2 compiling Spark's and Delta's hot code was ~18 CPU-s of a
    ~40 CPU-s ingest of CoNLL-2003 (docs/benchmarks.md, issue 18). A flag in the user's
    spark.driver.extraJavaOptions comes later and wins (-XX:TieredStopAtLevel=4 for a long local run).
    """
    user = cfg.conf.get("spark.driver.extraJavaOptions", "")
    if not cfg.master.startswith("local"):
        return {"spark.driver.extraJavaOptions": user} if user else {}
    return {"spark.driver.extraJavaOptions": f"{LOCAL_JIT} {user}".strip()}


def get_spark(cfg: SparkConfig):
    """Build (or reuse) the SparkSession described by `cfg`, with delta-spark."""
    # Python workers must run the driver's interpreter (the venv), not whatever python3 is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    jars = delta_jar_paths(cfg)
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(cfg.master)
        .appName(cfg.app_name)
        .config("spark.sql.shuffle.partitions", str(cfg.shuffle_partitions))
        # Delta rebuilds a snapshot's state in this many tasks (default 50): match the shuffle width.
        .config("spark.databricks.delta.snapshotPartitions", str(cfg.shuffle_partitions))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
    )
    if cfg.master.startswith("local"):
        builder = builder.config("spark.driver.memory", "4g")
        # The embedded default listens on loopback only (the driver would bind the machine's address).
        builder = builder.config("spark.driver.bindAddress", "127.0.0.1").config(
            "spark.driver.host", "127.0.0.1"
        )
    for k, v in DELTA_CONF.items():
        builder = builder.config(k, v)
    conf = dict(cfg.conf)
    conf.update(driver_java_options(cfg))
    if jars:
        conf["spark.jars"] = ",".join([*jars, *filter(None, conf.get("spark.jars", "").split(","))])
    for k, v in conf.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
