"""Benchmark: sentences/s of the Spark embedding job vs a plain in-process batch encode of the same model,
per encoder variant (float32 / bfloat16 / dynamic int8, optional token cap), and vs the model's compute limit on this
CPU (FLOPs per sentence / measured float32 matmul peak).

Sentences (--source):
- conll: the first N of the CoNLL-2003 train file (../shared/corpora), synthetic when the corpora are absent;
- warehouse: a seeded draw of N selection candidates of an existing warehouse (--warehouse, read only): the
  rows that have a vector in its gold/embeddings (what the main job embedded), else its train rows.
The Spark job runs on a fresh warehouse under /tmp holding those rows as silver/samples.

    .venv/bin/python bench/embed.py --n 4000
    .venv/bin/python bench/embed.py --source warehouse --warehouse /work/wt13_wh --n 6000 \
        --variants fp32,bf16,int8,bf16:128
Writes bench/results/embed.json (one entry per source, replaced by key).
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


def parse_variant(text: str) -> tuple[str, int | None]:
    """'int8:128' -> ('int8', 128); 'fp32' -> ('fp32', None)."""
    q, _, tok = text.partition(":")
    return q, (int(tok) if tok else None)


def warehouse_candidates(warehouse: Path, n: int, seed: int):
    """A seeded draw of n candidate rows (silver/samples schema) of `warehouse`, and their source label."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from b2ner_common import tables

    silver = tables.read_table(str(tables.table_path(warehouse, tables.Table.SILVER_SAMPLES)))
    gold = tables.table_path(warehouse, tables.Table.GOLD_EMBEDDINGS)
    try:
        emb = tables.read_table(str(gold), columns=["sample_id", "model"])
        ids = pc.filter(emb["sample_id"], pc.equal(emb["model"], DEFAULT_MODEL))
        rows = silver.filter(pc.is_in(silver["sample_id"], value_set=pc.unique(ids)))
        what = "gold/embeddings candidates"
    except Exception:  # no gold/embeddings table: the train rows
        rows = silver.filter(pc.equal(silver["split"], "train"))
        what = "train rows"
    rows = rows.take(pc.sort_indices(rows, [("sample_id", "ascending")]))  # independent of file order
    pick = np.sort(
        np.random.default_rng(seed).choice(rows.num_rows, size=min(n, rows.num_rows), replace=False)
    )
    return rows.take(pa.array(pick)), f"{warehouse} ({what}, {rows.num_rows} in all, seed {seed})"


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


def flops_per_sentence(texts: list[str], model, max_len: int | None = None) -> tuple[float, float]:
    """Forward FLOPs per sentence (mean) and mean token count, from the encoder's config and real lengths."""
    cfg = model[0].auto_model.config
    d, ff, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    max_len = min(max_len or model.max_seq_length, model.max_seq_length)
    lens = np.array([min(len(ids), max_len) for ids in model.tokenizer(texts)["input_ids"]], dtype=np.float64)
    # Per layer per token: QKV + output projections 4 d^2, FFN 2 d ff (multiply-adds x 2);
    # attention scores and weighted sum 2 L d per token.
    per_layer = 2 * (4 * d * d + 2 * d * ff) * lens + 2 * 2 * lens**2 * d
    return float((layers * per_layer).mean()), float(lens.mean())


def silver_table(texts: list[str]):
    """Bench rows in the silver/samples schema (one dataset, train split, no entities)."""
    import pyarrow as pa

    from b2ner_common.schema import SILVER_SAMPLES, make_sample_id

    rows = [
        {
            "sample_id": make_sample_id("bench", "train", f"b:{i}", t),
            "dataset": "bench",
            "split": "train",
            "lang": "en",
            "text": t,
            "entities": [],
            "source": f"b:{i}",
            "repairs": 0,
            "label_set": [],
        }
        for i, t in enumerate(texts)
    ]
    return pa.Table.from_pylist(rows, schema=SILVER_SAMPLES)


def plain_rate(texts: list[str], batch_size: int, precision: str, max_tokens: int | None, cores: int):
    """(sentences/s, vectors, load + first 64 seconds) of one in-process encode: torch threads = cores,
    model load excluded from the rate."""
    import torch

    torch.set_num_threads(cores)
    t = time.perf_counter()
    encode_texts(texts[:64], batch_size=batch_size, precision=precision, max_tokens=max_tokens)  # load + warm
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    vecs = encode_texts(texts, batch_size=batch_size, precision=precision, max_tokens=max_tokens)
    return len(texts) / (time.perf_counter() - t), vecs, load_s


def spark_run(spark, silver, args, precision: str, max_tokens: int | None):
    """(first run, incremental re-run) of run_embed on a fresh warehouse holding `silver`."""
    from b2ner_common import tables
    from b2ner_common.config import load_config
    from spark_jobs.embed import run_embed

    wh = Path(tempfile.mkdtemp(prefix="bench_embed_"))
    tables.write_table(tables.table_path(wh, tables.Table.SILVER_SAMPLES), silver)
    overrides = [
        f"warehouse={wh}",
        f"spark.master={args.master}",
        f"select.embed_batch_size={args.batch_size}",
        f"select.embed_precision={precision}",
        "select.embed_scope=all",  # the rows are candidates already (the cap and exclusions were applied)
    ]
    if max_tokens:
        overrides.append(f"select.embed_max_tokens={max_tokens}")
    if args.threads:
        overrides.append(f"select.embed_threads={args.threads}")
    cfg = load_config(None, overrides)
    first = run_embed(cfg, spark)
    again = run_embed(cfg, spark)  # incremental: nothing left to embed
    return first, again


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=8000)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--source", choices=["conll", "warehouse"], default="conll")
    ap.add_argument(
        "--warehouse", type=Path, default=None, help="--source warehouse: read from here (read only)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--variants",
        default="fp32,bf16,int8",
        help="comma-separated PRECISION[:MAX_TOKENS] (fp32, bf16, int8); the first is the reference for cosines",
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="select.embed_threads (default spark.task.cpus)"
    )
    ap.add_argument("--no-spark", action="store_true", help="plain encodes only")
    ap.add_argument("--conf", action="append", default=[], help="extra spark.conf KEY=VALUE")
    args = ap.parse_args()

    cores = os.cpu_count() or 1
    if args.source == "warehouse":
        if args.warehouse is None:
            ap.error("--source warehouse needs --warehouse PATH")
        silver, source = warehouse_candidates(args.warehouse, args.n, args.seed)
        texts = silver["text"].to_pylist()
    else:
        texts, source = load_sentences(args.n)
        silver = silver_table(texts)
    n = len(texts)
    variants = [parse_variant(v) for v in args.variants.split(",")]

    spark = None
    if not args.no_spark:
        from b2ner_common.config import load_config
        from spark_jobs.session import get_spark

        scfg = load_config(None, [f"spark.master={args.master}"]).spark
        scfg.conf.update(dict(kv.split("=", 1) for kv in args.conf))
        spark = get_spark(scfg)

    ref = None
    results = []
    for precision, max_tokens in variants:
        load_before = os.getloadavg()[0]
        rate, vecs, load_s = plain_rate(texts, args.batch_size, precision, max_tokens, cores)
        row = {
            "variant": f"{precision}" + (f":{max_tokens}" if max_tokens else ""),
            "precision": precision,
            "max_tokens": max_tokens,
            "plain_sent_per_s": round(rate, 1),
            "plain_load_and_warmup_seconds": round(load_s, 1),
        }
        if ref is None:
            ref = vecs
        cos = (vecs * ref).sum(axis=1)
        row["cosine_to_first_mean"] = round(float(cos.mean()), 4)
        row["cosine_to_first_min"] = round(float(cos.min()), 4)
        if spark is not None:
            first, again = spark_run(spark, silver, args, precision, max_tokens)
            row["spark_sent_per_s"] = round(n / first.seconds, 1)
            row["spark_over_plain"] = round(n / first.seconds / rate, 3)
            row["spark_job_seconds"] = round(first.seconds, 1)
            row["spark_rerun_computed"] = again.computed
            row["spark_rerun_seconds"] = round(again.seconds, 1)
        row["load_avg_1m_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        results.append(row)
        print(json.dumps(row))
    if spark is not None:
        spark.stop()

    # Compute limit of this CPU for this model (float32 GEMM peak; int8 can go beyond it).
    model = load_encoder(DEFAULT_MODEL)
    flops, mean_tokens = flops_per_sentence(texts, model)
    peak = matmul_peak_gflops(cores)
    limit = peak * 1e9 / flops
    out = {
        "sentences": n,
        "source": source,
        "mean_tokens": round(mean_tokens, 1),
        "batch_size": args.batch_size,
        "master": args.master,
        "threads": args.threads,
        "spark_conf": args.conf,
        "cores": cores,
        "gflop_per_sentence": round(flops / 1e9, 4),
        "matmul_peak_gflops": round(peak, 1),
        "compute_limit_fp32_sent_per_s": round(limit, 1),
        "variants": results,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
    }
    for r in results:
        r["plain_fraction_of_fp32_limit"] = round(r["plain_sent_per_s"] / limit, 3)
    print(json.dumps({k: v for k, v in out.items() if k != "variants"}, indent=1))
    path = ROOT / "bench" / "results" / "embed.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        prev = json.loads(path.read_text())
    except (OSError, ValueError):
        prev = {}
    if "runs" not in prev:
        prev = {"runs": {}, "previous": prev} if prev else {"runs": {}}
    prev["runs"][args.source] = out
    path.write_text(json.dumps(prev, indent=1))


if __name__ == "__main__":
    main()
