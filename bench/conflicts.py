"""Benchmark: cross-dataset conflict screening time over all shared corpora, at 1x and 4x replicated input.

The screening must be sub-quadratic: it scans every text once against a hash index of mentions instead
of comparing sentence pairs, so 4x the input should cost about 4x the time (a pairwise method: 16x).
Samples come from the ingest core (train pool + OOD-dev catalog datasets of ../shared/corpora), are
mapped with the taxonomy (vectorized), and are replicated in memory with distinct sample ids.

    .venv/bin/python bench/conflicts.py               # all corpora, replication 1 and 4
    .venv/bin/python bench/conflicts.py --fraction 0.1 --replicas 1 2
Writes bench/results/conflicts.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CORPORA = ROOT.parent / "shared" / "corpora"


def load_rows(fraction: float) -> tuple[list[dict], float]:
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_tasks, samples_table
    from b2ner_common.taxonomy import load_mappings, map_table

    t0 = time.perf_counter()
    res = ingest_tasks(load_catalog().tasks(CORPORA))
    silver = map_table(samples_table(res.samples), load_mappings("v1"))
    if fraction < 1:
        silver = silver.take(list(range(0, silver.num_rows, round(1 / fraction))))
    rows = silver.select(["sample_id", "dataset", "lang", "text", "entities"]).to_pylist()
    return rows, time.perf_counter() - t0


def replicate(rows: list[dict], k: int) -> list[dict]:
    return [dict(r, sample_id=f"{r['sample_id']}#{i}") for i in range(k) for r in rows]


def screen(rows: list[dict], min_self_ratio: float) -> dict:
    from b2ner_common.taxonomy import load_taxonomy
    from b2ner_common.taxonomy.conflicts import screen as screen_samples
    from b2ner_common.taxonomy.conflicts import summarize

    found = screen_samples(rows, load_taxonomy("v1").compatible, examples=3, min_self_ratio=min_self_ratio)
    chars = sum(len(r["text"]) for r in rows)
    return {
        "samples": len(rows),
        "chars": chars,
        "indexed_mentions": found.indexed_mentions,
        "screened_mentions": found.screened_mentions,
        "rows": len(found.rows),
        **{k: round(v, 2) for k, v in found.seconds.items()},
        "chars_per_s": round(chars / found.seconds["total_s"]),
        "summary": summarize(found.rows),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fraction", type=float, default=1.0, help="share of the samples (every n-th)")
    ap.add_argument("--replicas", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--min-self-ratio", type=float, default=0.5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "conflicts.json"))
    args = ap.parse_args()
    if not CORPORA.is_dir():
        sys.exit(f"corpora not found at {CORPORA}")
    rows, load_s = load_rows(args.fraction)
    results = []
    for k in args.replicas:
        r = screen(replicate(rows, k), args.min_self_ratio)
        r["replicas"] = k
        results.append(r)
        print(
            f"x{k}: {r['samples']:,} samples {r['chars']:,} chars | index {r['index_s']} s, self {r['self_consistency_s']} s, "
            f"scan {r['scan_s']} s, merge {r['merge_s']} s | total {r['total_s']} s ({r['chars_per_s']:,} chars/s)",
            flush=True,
        )
    base = results[0]
    for r in results[1:]:
        r["time_ratio_vs_x1"] = round(r["total_s"] / base["total_s"], 2)
        r["input_ratio_vs_x1"] = round(r["samples"] / base["samples"], 2)
    print(f"\n{'replicas':>8} {'samples':>10} {'total s':>9} {'x time':>7} | raw tc-rate | mapped tc-rate")
    for r in results:
        s = r["summary"]
        print(
            f"{r['replicas']:>8} {r['samples']:>10,} {r['total_s']:>9} {r.get('time_ratio_vs_x1', 1.0):>7} | "
            f"{100 * s['raw']['type_conflict_rate']:10.1f}% | {100 * s['mapped']['type_conflict_rate']:12.1f}%"
        )
    out = {
        "machine": f"{platform.machine()} {platform.processor() or ''} (shared with other jobs)".strip(),
        "python": platform.python_version(),
        "fraction": args.fraction,
        "load_and_map_s": round(load_s, 1),
        "min_self_ratio": args.min_self_ratio,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
