"""A real Spark standalone cluster on loopback: master + 2 workers, each its own JVM, bound to 127.0.0.1.

ingest -> taxonomy -> predict run against it by configuration alone (`spark.master=spark://...`), in a fresh
driver process. What works only because driver and executors share one JVM in local mode (jars on the
driver's classpath, files only the driver can see, state in the driver) fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent

JOB = textwrap.dedent(
    """
    import json, sys, time
    from b2ner_common import tables
    from b2ner_common.config import load_config
    from b2ner_common.ingest.sample_corpus import write_sample_corpus, write_sample_mappings
    from b2ner_common.models.lexicon import LexiconPredictor
    from spark_jobs.ingest import run_ingest
    from spark_jobs.predict import run_predict
    from spark_jobs.session import get_spark
    from spark_jobs.taxonomy import run_taxonomy

    tmp, master = sys.argv[1], sys.argv[2]
    catalog = write_sample_corpus(f"{tmp}/corpus", n=60)
    maps = ",".join(str(m) for m in write_sample_mappings(catalog))
    cfg = load_config(None, [
        f"warehouse={tmp}/wh", f"spark.master={master}", "spark.shuffle_partitions=4",
        "ingest.builtin_catalog=false", f"ingest.catalogs=[{catalog}]", "ingest.chunk_mb=0.002",
        f"taxonomy.mappings=[{maps}]",
        f"predict.input={tmp}/wh/silver/samples", "predict.id_column=sample_id",
        "predict.labels=[person, location]", "predict.commit_every=100", "predict.run_id=cluster",
    ])
    spark = get_spark(cfg.spark)
    status = spark.sparkContext._jsc.sc().getExecutorMemoryStatus
    deadline = time.time() + 180
    while status().size() - 1 < 2 and time.time() < deadline:  # executors register asynchronously
        time.sleep(1)
    executors = status().size() - 1  # minus the driver
    ing = run_ingest(cfg, spark)
    tax = run_taxonomy(cfg, spark)
    lex = {"person": ["Barack Obama"], "location": ["Paris", "Berlin"]}
    pred = run_predict(cfg, spark, predictor_factory=lambda: LexiconPredictor(lex))
    out = {
        "executors": executors,
        "problems": ing.problems,
        "accepted": sum(ing.reconciliation["accepted"].to_pylist()),
        "silver": tax.rows,
        "predicted": pred.predicted,
        "predictions": tables.read_table(f"{tmp}/wh/gold/predictions").num_rows,
    }
    print("RESULT " + json.dumps(out))
    spark.stop()
    """
)


def test_spark_standalone_cluster_runs_ingest_taxonomy_predict(tmp_path: Path, port_kit):
    import pyspark

    spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",  # every listener (RPC, block manager, web UIs) on loopback
        "PYSPARK_PYTHON": sys.executable,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SPARK_WORKER_DIR": str(tmp_path / "work"),
    }
    port = port_kit.free()
    master_url = f"spark://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = []

    def start(name: str, *args: str) -> None:
        log = open(logs / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        procs.append((subprocess.Popen([str(spark_class), *args], env=env, stdout=log, stderr=log), log))

    try:
        start(
            "master",
            *("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)),
            *("--webui-port", str(port_kit.free())),
        )
        port_kit.wait(port)
        for i in range(2):
            start(
                f"worker{i}",
                *("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1"),
                *("--memory", "1g", "--webui-port", str(port_kit.free()), master_url),
            )
        script = tmp_path / "job.py"
        script.write_text(JOB)
        res = subprocess.run(
            [sys.executable, str(script), str(tmp_path), master_url],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line, res.stderr[-4000:]
        out = json.loads(line[len("RESULT ") :])
    finally:
        for p, log in reversed(procs):
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
            log.close()
    assert out["executors"] == 2
    assert out["problems"] == [] and out["accepted"] > 0
    assert out["silver"] == out["accepted"]
    assert out["predicted"] == out["predictions"] == out["silver"]
