"""Benchmark: sentences/s of the Spark embedding job vs a plain in-process batch encode of the same model,
and vs the model's compute limit on this CPU (FLOPs per sentence / measured float32 matmul peak).

Sentences: the first N of the CoNLL-2003 train file (real text, ../shared/corpora), or synthetic
sentences when the corpora are absent.

    .venv/bin/python bench/embed.py --n 8000
Writes bench/results/embed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from b2ner_common.selection.embeddings import DEFAULT_MODEL, encode_texts, load_encoder  # noqa: E402

CONLL = ROOT.parent / "shared" / "corpora" / "conll2003" / "eng.train"


def load_sentences(n: int) -> tuple[list[str], str]:
    if CONLL.is_file():
        out, toks = [], []
        for line in CONLL.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                if toks:
                    out.append(" ".join(toks))
                    toks = []
                if len(out) >= n:
                    break
                continue
            toks.append(parts[0])
        return out[:n], "conll2003/eng.train"
    words = "the of bank river model data city team market court study report season".split()
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=int(rng.integers(5, 30)))) for _ in range(n)], "synthetic"


def matmul_peak_gflops(threads: int) -> float:
    """Best float32 GEMM rate (GFLOP/s) of torch on this CPU with `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    best = 0.0
    for _ in range(8):
        t = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * 1024**3 / (time.perf_counter() - t) / 1e9)
    return best


def flops_per_sentence(texts: list[str], model) -> tuple[float, float]:
    """Forward FLOPs per sentence (mean) and mean token count, from the encoder's config and real lengths."""
    cfg = model[0].auto_model.config
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    max_len = model.max_seq_length
    lens = np.array([min(len(ids), max_len) for ids in model.tokenizer(texts)["input_ids"]], dtype=np.float64)
    # Per layer per token: QKV + output projections 4 d^2, FFN 2 d ff (multiply-adds x 2);
    # attention scores and weighted sum 2 L d per token.
    per_layer = 2 * (4 * d * d + 2 * d * ff) * lens + 2 * 2 * lens**2 * d
    return float((layers * per_layer).mean()), float(lens.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--master", default="local[2]")
    args = ap.parse_args()
    import torch

    cores = os.cpu_count() or 1
    texts, source = load_sentences(args.n)
    n = len(texts)

    # 1) Plain: one process, torch threads = cores, model already loaded (load time excluded).
    torch.set_num_threads(cores)
    model = load_encoder(DEFAULT_MODEL)
    encode_texts(texts[:64], batch_size=args.batch_size)
    t = time.perf_counter()
    encode_texts(texts, batch_size=args.batch_size)
    plain_s = time.perf_counter() - t

    # 2) Spark job on a fresh warehouse (session start excluded; worker model loads and Delta I/O included).
    import pyarrow as pa

    from b2ner_common import tables
    from b2ner_common.config import load_config
    from b2ner_common.schema import SILVER_SAMPLES, make_sample_id
    from spark_jobs.embed import run_embed
    from spark_jobs.session import get_spark

    wh = Path(tempfile.mkdtemp(prefix="bench_embed_"))
    rows = [
        {
            "sample_id": make_sample_id("bench", "train", f"b:{i}", s),
            "dataset": "bench",
            "split": "train",
            "lang": "en",
            "text": s,
            "entities": [],
            "source": f"b:{i}",
            "repairs": 0,
            "label_set": [],
        }
        for i, s in enumerate(texts)
    ]
    tables.write_table(
        tables.table_path(wh, tables.Table.SILVER_SAMPLES), pa.Table.from_pylist(rows, schema=SILVER_SAMPLES)
    )
    cfg = load_config(
        None, [f"warehouse={wh}", f"spark.master={args.master}", f"select.embed_batch_size={args.batch_size}"]
    )
    spark = get_spark(cfg.spark)
    res = run_embed(cfg, spark)
    spark_s = res.seconds
    again = run_embed(cfg, spark)  # incremental: nothing left to embed
    spark.stop()

    # 3) Compute limit of this CPU for this model.
    flops, mean_tokens = flops_per_sentence(texts, model)
    peak = matmul_peak_gflops(cores)
    limit = peak * 1e9 / flops

    row = {
        "sentences": n,
        "source": source,
        "mean_tokens": round(mean_tokens, 1),
        "batch_size": args.batch_size,
        "cores": cores,
        "plain_sent_per_s": round(n / plain_s, 1),
        "spark_sent_per_s": round(n / spark_s, 1),
        "spark_over_plain": round(plain_s / spark_s, 3),
        "spark_job_seconds": round(spark_s, 1),
        "spark_rerun_computed": again.computed,
        "spark_rerun_seconds": round(again.seconds, 1),
        "gflop_per_sentence": round(flops / 1e9, 4),
        "matmul_peak_gflops": round(peak, 1),
        "compute_limit_sent_per_s": round(limit, 1),
        "plain_fraction_of_limit": round(n / plain_s / limit, 3),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }
    print(f"{'metric':<26} value")
    for k, v in row.items():
        print(f"{k:<26} {v}")
    out = ROOT / "bench" / "results" / "embed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
