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
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
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
            "predict.workers=2" if engine == "spark" else "predict.workers=1",
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
    else:
        from ray_train.predict import run_predict as run_ray

        predicted = run_ray(cfg, predictor_factory=factory).predicted
    secs = time.perf_counter() - t0
    assert predicted == n, f"{engine}: predicted {predicted} of {n}"
    return {"engine": engine, "docs": n, "seconds": round(secs, 2), "docs_per_s": round(n / secs, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200, help="1x input size for the lexicon predictor")
    ap.add_argument("--llm-docs", type=int, default=16, help="1x input size for the tiny LLM (0 = skip)")
    ap.add_argument("--span-docs", type=int, default=32, help="1x input size for the span encoder (0 = skip)")
    ap.add_argument("--engines", default="in-process,local,spark,ray")
    args = ap.parse_args()
    engines = args.engines.split(",")
    results: list[dict] = []
    startup: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spark = None
        if "spark" in engines:
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
        for engine in [e for e in engines if e in ("spark", "ray")]:
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
            for scale in (1, 10):
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
    out = ROOT / "bench" / "results" / "predict.json"
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
