"""Benchmark: documents/s of the batch predict engines vs calling the predictor in one process.

Engines on the same inputs: `in-process` (predict_documents over batches, no tables: the predictor's own
cost), `local` (the local engine: + input read, resume check, Delta MERGE commits), `spark` (mapInPandas,
one commit per slice) and `ray` (Ray Data actors, streamed commits). Scales 1x and 10x. Predictors: the
lexicon matcher (cheap: the numbers are engine overhead), the tiny random Llama (generation-bound) and the
span encoder (MiniLM-based, untrained weights: same compute as a trained model).
Engine start-up (SparkSession, ray.init, a first warm-up job) is measured apart and not counted in docs/s;
model loading is excluded for in-process/local and included for Spark/Ray (each worker loads its model).

    .venv/bin/python bench/predict.py [--docs 200] [--llm-docs 16] [--span-docs 32] [--engines in-process,local,spark,ray]

Prints a table and writes bench/results/predict.json.

Issue 18.5's check (`--separate`): the lexicon predictor only, each (engine, scale) in a fresh process
timed from after the SparkSession started (the first Delta use in that JVM is counted, as in
bench/ingest.py), with the process tree's CPU seconds and the Python driver's peak RSS. `spark-collect`
is the pre-issue-18 write path kept as the baseline: each slice's predictions collected on the driver as
Arrow and committed with delta-rs (`b2ner_common.predict.job.commit_slice`).

    .venv/bin/python bench/predict.py --separate --engines spark,spark-collect --scales 1,4,10 --out bench/results/predict_delta_spark.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SENTENCES = [
    "Barack Obama visited Paris in June 2015 with the United Nations delegation.",
    "Angela Merkel stayed in Berlin for a week before flying to Washington.",
    "The Transformer model was trained on WMT data using PyTorch and TensorFlow.",
    "叶老桂博士在北京见到了浙商银行的代表。",
    "Nobody else was there, not even the press.",
]
LEXICON = {
    "person": ["Barack Obama", "Angela Merkel", "叶老桂"],
    "location": ["Paris", "Berlin", "Washington", "北京"],
    "organization": ["United Nations", "浙商银行"],
    "software": ["PyTorch", "TensorFlow"],
}
LABELS = ["person", "location", "organization", "software"]


def make_input(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(
                json.dumps({"doc_id": f"d{i:07d}", "text": f"{SENTENCES[i % 5]} (#{i})"}, ensure_ascii=False)
                + "\n"
            )
    return path


def lexicon_factory():
    from b2ner_common.models.lexicon import LexiconPredictor

    return LexiconPredictor(LEXICON)


def make_llm_factory(model_dir: str):
    def llm_factory():
        from b2ner_common.config import ModelConfig
        from b2ner_common.models.llm.predictor import load_llm_predictor

        return load_llm_predictor(ModelConfig(family="llm", path=model_dir, max_new_tokens=8, batch_size=8))

    return llm_factory


def span_factory():
    from b2ner_common.config import ModelConfig
    from b2ner_common.models.span_encoder.model import load_span_encoder_predictor

    # Untrained span encoder over the packaged MiniLM: same compute as a trained one (throughput only).
    return load_span_encoder_predictor(ModelConfig(family="span-encoder"))


def run_collect(cfg, spark, predictor_factory):
    """The Spark predict before issue 18 (slices collected as Arrow, delta-rs commits): the baseline only."""
    import math

    from pyspark.sql import functions as F

    from b2ner_common import schema, tables
    from b2ner_common.predict.job import PredictSummary, commit_slice, count_table_rows, output_path
    from spark_jobs.predict import PREDICTIONS_DDL, _partition_fn, read_input

    t0 = time.perf_counter()
    out = output_path(cfg)
    summary = PredictSummary(run_id=cfg.predict.run_id, output=out)
    docs = read_input(spark, cfg)
    summary.input_docs = docs.count()
    unique = docs.dropDuplicates(["doc_id"])
    n_unique = unique.count()
    summary.duplicate_ids = summary.input_docs - n_unique
    if tables.table_exists(out):
        # Resume (not exercised here: every measured run starts on an empty table); no retry_errors.
        done = tables.read_table(out).to_pandas()
        done = done[done["run_id"] == cfg.predict.run_id][["doc_id"]]
        todo = unique.join(spark.createDataFrame(done), "doc_id", "left_anti") if len(done) else unique
    else:
        todo = unique
    todo = todo.persist()
    n_todo = todo.count()
    summary.skipped_done = n_unique - n_todo
    n_slices = max(1, math.ceil(n_todo / max(1, cfg.predict.commit_every)))
    todo = todo.withColumn("_slice", F.pmod(F.xxhash64("doc_id"), F.lit(n_slices)))
    fn = _partition_fn(cfg.model_dump_json(), predictor_factory)
    problems: dict[str, int] = {}
    for k in range(n_slices if n_todo else 0):
        part = todo.filter(F.col("_slice") == k).drop("_slice").repartition(max(1, cfg.predict.workers))
        rows = part.mapInPandas(fn, PREDICTIONS_DDL).toArrow()
        if rows.num_rows == 0:
            continue
        rows = rows.select(schema.PREDICTIONS.names).cast(schema.PREDICTIONS)
        commit_slice(out, rows, cfg, summary, problems, t0)
    todo.unpersist()
    summary.problems = problems
    summary.seconds = time.perf_counter() - t0
    return count_table_rows(summary)


def run_engine(engine: str, inp: Path, n: int, factory, workdir: Path, spark=None) -> dict:
    from b2ner_common.config import load_config
    from b2ner_common.predict.chunking import predict_documents

    cfg = load_config(
        None,
        [
            f"warehouse={workdir / engine}",
            f"predict.input={inp}",
            "predict.labels=[" + ", ".join(LABELS) + "]",
            "predict.batch_size=8",
            f"predict.commit_every={max(50, n // 4)}",
            "predict.workers=2" if engine.startswith("spark") else "predict.workers=1",
            "ray.num_cpus=2",
        ],
    )
    t0 = time.perf_counter()
    if engine == "in-process":
        texts = [json.loads(line)["text"] for line in inp.read_text(encoding="utf-8").splitlines()]
        predictor = factory()
        t0 = time.perf_counter()  # model load is not inference
        for s in range(0, len(texts), 8):
            predict_documents(predictor, texts[s : s + 8], LABELS)
        predicted = len(texts)
    elif engine == "local":
        from b2ner_common.predict.job import run_local

        predictor = factory()
        t0 = time.perf_counter()  # as in-process: the model load is not counted
        predicted = run_local(cfg, predictor=predictor).predicted
    elif engine == "spark":
        from spark_jobs.predict import run_predict as run_spark

        predicted = run_spark(cfg, spark, predictor_factory=factory).predicted
    elif engine == "spark-collect":
        predicted = run_collect(cfg, spark, factory).predicted
    else:
        from ray_train.predict import run_predict as run_ray

        predicted = run_ray(cfg, predictor_factory=factory).predicted
    secs = time.perf_counter() - t0
    assert predicted == n, f"{engine}: predicted {predicted} of {n}"
    return {"engine": engine, "docs": n, "seconds": round(secs, 2), "docs_per_s": round(n / secs, 1)}


def measure_one(engine: str, n: int) -> dict:
    """One issue-18 measurement in this process (lexicon predictor): CPU s of the tree, driver peak RSS."""
    from ingest import PeakRSS

    from b2ner_common.config import SparkConfig
    from spark_jobs.session import get_spark

    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as mem:
        work = Path(tmp)
        t = time.perf_counter()
        spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=2))
        spark.range(1).count()
        startup = time.perf_counter() - t
        inp = make_input(work / f"lexicon_{n}.jsonl", n)
        time.sleep(2 * mem.interval)
        cpu0 = mem.cpu
        r = run_engine(engine, inp, n, lexicon_factory, work / "out", spark)
        time.sleep(2 * mem.interval)
        r.update(
            cpu_s=round(mem.cpu - cpu0, 1),
            docs_per_cpu_s=round(n / max(mem.cpu - cpu0, 1e-9), 1),
            engine_startup_s=round(startup, 2),
            peak_rss_mib=round(mem.peak / 2**20),
            driver_rss_mib=round(mem.peak_self / 2**20),
        )
        spark.stop()
    return r


def main_separate(args) -> None:
    """Issue 18.5: every (scale, engine) in its own process; writes args.out."""
    rows = []
    for scale in [int(x) for x in args.scales.split(",")]:
        for engine in args.engines.split(","):
            n = args.docs * scale
            cmd = [sys.executable, __file__, "--one", engine, str(n)]
            out = subprocess.run(
                cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}
            )
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"{engine} x{scale} failed:\n{out.stderr[-3000:]}")
            r = json.loads(line[len("RESULT ") :]) | {"predictor": "lexicon", "scale": f"{scale}x"}
            rows.append(r)
            print(
                f"{engine:>13} {scale:>3d}x {n:6d} docs {r['seconds']:7.2f} s {r['docs_per_s']:8.1f} docs/s"
                f" {r['cpu_s']:6.1f} CPU-s  driver {r['driver_rss_mib']} MiB  tree {r['peak_rss_mib']} MiB",
                flush=True,
            )
    load = os.getloadavg()
    result = {
        "benchmark": "predict (issue 18.5)",
        "machine": f"{os.cpu_count()} cores; load average at end {load[0]:.1f}",
        "command": " ".join(["bench/predict.py", *sys.argv[1:]]),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200, help="1x input size for the lexicon predictor")
    ap.add_argument("--llm-docs", type=int, default=16, help="1x input size for the tiny LLM (0 = skip)")
    ap.add_argument("--span-docs", type=int, default=32, help="1x input size for the span encoder (0 = skip)")
    ap.add_argument("--engines", default="in-process,local,spark,ray")
    ap.add_argument("--scales", default="1,10", help="input multiples of the 1x sizes")
    ap.add_argument("--separate", action="store_true", help="issue 18.5: lexicon, one process per run")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "predict.json"))
    ap.add_argument("--one", nargs=2, metavar=("ENGINE", "DOCS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print("RESULT " + json.dumps(measure_one(args.one[0], int(args.one[1]))), flush=True)
        return
    if args.separate:
        main_separate(args)
        return
    engines = args.engines.split(",")
    results: list[dict] = []
    startup: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spark = None
        if any(e.startswith("spark") for e in engines):
            from b2ner_common.config import SparkConfig
            from spark_jobs.session import get_spark

            t = time.perf_counter()
            spark = get_spark(SparkConfig(master="local[2]", shuffle_partitions=2))
            startup["spark_session_s"] = round(time.perf_counter() - t, 2)
        if "ray" in engines:
            import ray

            t = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            startup["ray_init_s"] = round(time.perf_counter() - t, 2)
        # Warm-up (not reported): the first Spark job and the first Ray Data pipeline pay JIT/worker start-up.
        warm = make_input(work / "warm.jsonl", 16)
        for engine in [e for e in engines if e in ("spark", "spark-collect", "ray")]:
            t = time.perf_counter()
            run_engine(engine, warm, 16, lexicon_factory, work / "warm", spark)
            startup[f"{engine}_first_job_s"] = round(time.perf_counter() - t, 2)
        predictors = [("lexicon", lexicon_factory, args.docs)]
        if args.llm_docs:
            from conftest import build_tiny_llm

            llm_dir = build_tiny_llm(work / "tiny_llm")
            predictors.append(("tiny-llm", make_llm_factory(str(llm_dir)), args.llm_docs))
        if args.span_docs:
            predictors.append(("span-enc", span_factory, args.span_docs))
        for pname, factory, base in predictors:
            for scale in [int(x) for x in args.scales.split(",")]:
                n = base * scale
                inp = make_input(work / f"{pname}_{n}.jsonl", n)
                for engine in engines:
                    r = run_engine(engine, inp, n, factory, work / f"{pname}_{n}", spark)
                    r.update(predictor=pname, scale=f"{scale}x")
                    results.append(r)
                    print(
                        f"{pname:9s} {scale:>3d}x {engine:11s} {n:6d} docs {r['seconds']:8.2f} s {r['docs_per_s']:9.1f} docs/s",
                        flush=True,
                    )
        if spark is not None:
            spark.stop()
        if "ray" in engines:
            import ray

            ray.shutdown()
    print()
    print(
        f"{'predictor':10s} {'scale':>5s} {'engine':11s} {'docs':>6s} {'seconds':>8s} {'docs/s':>9s} {'vs in-process':>13s}"
    )
    for r in results:
        base = (
            next(
                x
                for x in results
                if x["predictor"] == r["predictor"]
                and x["scale"] == r["scale"]
                and x["engine"] == "in-process"
            )
            if "in-process" in engines
            else None
        )
        rel = f"{r['docs_per_s'] / base['docs_per_s']:.2f}x" if base else "-"
        r["relative_to_in_process"] = rel
        print(
            f"{r['predictor']:10s} {r['scale']:>5s} {r['engine']:11s} {r['docs']:6d} {r['seconds']:8.2f} {r['docs_per_s']:9.1f} {rel:>13s}"
        )
    print("startup (not counted):", startup)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, no GPU",
        "python": platform.python_version(),
        "note": "shared machine: other jobs were running",
    }
    out.write_text(
        json.dumps({"meta": meta, "startup": startup, "results": results}, indent=2), encoding="utf-8"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
