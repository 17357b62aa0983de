"""Benchmark: two-stage selection over N synthetic 384-d vectors (B2NERD scale: 1.4M samples, 28 datasets).

Synthetic data shaped like the real pool: dataset sizes skewed (a few big corpora), vectors from a
Gaussian mixture per dataset (topics), Zipf-distributed universal types (1-3 per sample, ~20 % none),
0.5 % planted near duplicates. Measures wall time and peak memory (RSS of this process and every child:
Spark's JVM and Python workers included) of:
- engine local: `select_dataset` per dataset in this process (the core function alone);
- engine spark: the real `spark_jobs.select.run_select` job on a temporary warehouse (tables written
  first, not timed).

    .venv/bin/python bench/selection.py --n 1400000              # the target: <= 10 min
    .venv/bin/python bench/selection.py --n 200000 --engine spark
Writes bench/results/selection.json (one entry per configuration, appended by key).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from b2ner_common.selection import SelectParams, select_dataset  # noqa: E402


class PeakRss:
    """Samples the RSS of this process and all its descendants every 0.2 s; `peak` in bytes."""

    def __init__(self) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            try:
                for p in [self.proc, *self.proc.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def dataset_sizes(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """Skewed sizes (log-normal) summing to n, the largest capped at 15 % of n (real pools: a few big
    corpora, none holding most of the data)."""
    w = rng.lognormal(0.0, 1.0, k)
    sizes = w / w.sum() * n
    cap = 0.15 * n
    for _ in range(20):
        over = sizes > cap
        if not over.any():
            break
        excess = (sizes[over] - cap).sum()
        sizes[over] = cap
        sizes[~over] += excess * sizes[~over] / sizes[~over].sum()
    sizes = np.maximum(200, sizes.astype(int))
    sizes[np.argmin(sizes)] += n - sizes.sum()
    return sizes


def make_dataset(name: str, n: int, dim: int, rng: np.random.Generator) -> tuple[pd.DataFrame, np.ndarray]:
    topics = int(rng.integers(20, 80))
    centers = rng.normal(size=(topics, dim)).astype(np.float32)
    weights = rng.dirichlet(np.full(topics, 0.5))
    lab = rng.choice(topics, size=n, p=weights)
    x = centers[lab]
    x += 0.9 * rng.standard_normal(size=(n, dim), dtype=np.float32)
    dup = rng.choice(n, size=n // 200, replace=False)  # 0.5 % near duplicates of a random other row
    x[dup] = x[rng.integers(0, n, size=len(dup))] + 0.05 * rng.standard_normal(
        (len(dup), dim), dtype=np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    n_types = int(rng.integers(3, 20))
    names = np.array([f"type_{j}" for j in range(n_types)])
    p = 1.0 / np.arange(1, n_types + 1) ** 1.3
    p /= p.sum()
    m = rng.choice([0, 1, 2, 3], size=n, p=[0.2, 0.45, 0.25, 0.1])
    types = [list(set(names[rng.choice(n_types, size=c, p=p)])) for c in m]
    df = pd.DataFrame(
        {
            "sample_id": [f"{name}-{i:08d}" for i in range(n)],
            "dataset": name,
            "text": [f"{name} synthetic sentence {i}" for i in range(n)],
            "types": types,
        }
    )
    return df, x


def run_local(data, params: SelectParams) -> dict:
    t0 = time.perf_counter()
    selected, per_ds = 0, []
    for df, x in data:
        t = time.perf_counter()
        out, stats = select_dataset(df, x, params)
        selected += len(out)
        per_ds.append(
            {"dataset": stats["dataset"], "n": len(df), "seconds": round(time.perf_counter() - t, 2)}
        )
    return {"seconds": time.perf_counter() - t0, "selected": selected, "per_dataset": per_ds}


def run_spark(data, params: SelectParams, master: str) -> dict:
    import pyarrow as pa

    from b2ner_common import tables
    from b2ner_common.config import load_config
    from b2ner_common.schema import EMBEDDINGS, SILVER_SAMPLES
    from b2ner_common.selection.embeddings import vectors_to_arrow
    from spark_jobs.select import run_select

    wh = Path(tempfile.mkdtemp(prefix="bench_select_"))
    for df, x in data:
        ents = [
            [{"start": 0, "end": 1, "label": t, "text": "s", "type": t} for t in ts] for ts in df["types"]
        ]
        silver = pa.table(
            {
                "sample_id": df["sample_id"],
                "dataset": df["dataset"],
                "split": ["train"] * len(df),
                "lang": ["en"] * len(df),
                "text": df["text"],
                "entities": ents,
                "source": [""] * len(df),
                "repairs": pa.array(np.zeros(len(df), dtype=np.int32)),
                "label_set": [[]] * len(df),
            },
            schema=SILVER_SAMPLES,
        )
        tables.write_table(tables.table_path(wh, tables.Table.SILVER_SAMPLES), silver)
        emb = pa.table(
            {
                "sample_id": df["sample_id"],
                "model": ["all-minilm-l6-v2"] * len(df),
                "vector": vectors_to_arrow(x),
            },
            schema=EMBEDDINGS,
        )
        tables.write_table(tables.table_path(wh, tables.Table.GOLD_EMBEDDINGS), emb)
    cfg = load_config(
        None,
        [
            f"warehouse={wh}",
            f"spark.master={master}",
            f"select.strategy={params.strategy}",
            f"select.budget_per_dataset={params.budget_per_dataset}",
            f"select.compare_strategies={str(params.compare_strategies).lower()}",
            f"select.report_dir={wh / 'reports'}",
            "select.run_id=bench",
        ],
    )
    t0 = time.perf_counter()
    res = run_select(cfg)
    return {"seconds": time.perf_counter() - t0, "selected": res.selected, "warehouse": str(wh)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_400_000)
    ap.add_argument("--datasets", type=int, default=28)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--budget", type=int, default=1300)
    ap.add_argument("--strategy", default="kmeans", choices=["kmeans", "kcenter", "random"])
    ap.add_argument("--compare", action="store_true", help="also run the other strategies (coverage report)")
    ap.add_argument("--engine", default="local", choices=["local", "spark"])
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    sizes = dataset_sizes(args.n, args.datasets, rng)
    data = [make_dataset(f"ds{i:02d}", int(s), args.dim, rng) for i, s in enumerate(sizes)]
    gen_s = time.perf_counter() - t
    params = SelectParams(
        budget_per_dataset=args.budget,
        strategy=args.strategy,
        compare_strategies=args.compare,
        seed=args.seed,
    )
    cpu0 = time.process_time()
    with PeakRss() as mem:
        res = run_local(data, params) if args.engine == "local" else run_spark(data, params, args.master)
    cpu_s = time.process_time() - cpu0  # this process only (Spark's JVM and workers are not counted)
    row = {
        "n": int(sizes.sum()),
        "datasets": args.datasets,
        "dim": args.dim,
        "engine": args.engine,
        "strategy": args.strategy,
        "compare_strategies": args.compare,
        "budget_per_dataset": args.budget,
        "largest_dataset": int(sizes.max()),
        "selected": res["selected"],
        "seconds": round(res["seconds"], 1),
        "samples_per_s": round(sizes.sum() / res["seconds"]),
        "cpu_seconds_this_process": round(cpu_s, 1),
        "peak_rss_gib": round(mem.peak / 2**30, 2),
        "generate_seconds": round(gen_s, 1),
        "load_avg_1m": round(os.getloadavg()[0], 1),
        "cpus": os.cpu_count(),
    }
    if "per_dataset" in res:
        row["slowest_dataset_s"] = max(d["seconds"] for d in res["per_dataset"])
    print(f"{'metric':<22} value")
    for k, v in row.items():
        print(f"{k:<22} {v}")
    out = ROOT / "bench" / "results" / "selection.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    results = json.loads(out.read_text()) if out.is_file() else {}
    key = f"{args.engine}-{args.strategy}{'-compare' if args.compare else ''}-n{row['n']}"
    results[key] = row
    out.write_text(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
