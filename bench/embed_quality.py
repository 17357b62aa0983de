"""Benchmark: does selection stay as good with fast embeddings? fp32 vectors vs bf16 / int8 / token-capped ones
on the real selection candidates of a warehouse.

Reference: the warehouse's own gold/embeddings vectors (the main job's fp32 MiniLM vectors of every
candidate; checked against a fresh fp32 encode of a sample). For each variant, the candidates are encoded
again and compared:
- vectors: cosine to the reference (mean, 1st percentile, min);
- neighbours: share of candidates whose nearest other candidate of the same dataset is unchanged;
- selection: `select_dataset` (the core of `b2ner select`: cleaning, quotas, k-means, the report's coverage
  of all three strategies) per dataset with the same parameters, on reference and on variant vectors.
  Coverage is reported as the selection report gives it (each run in its own vectors) and, fairer, with
  both runs' picks measured in the reference vectors (mean / p95 distance from every candidate to its
  nearest pick); plus the overlap of the selected ids and the change in near-duplicate counts. The noise
  floor is the fp32 selection with the next seed (same vectors, another k-means start).

    .venv/bin/python bench/embed_quality.py --warehouse /work/wt13_wh --variants int8,bf16:128
    .venv/bin/python bench/embed_quality.py --warehouse /work/wt13_wh --variants wh:/tmp/embwh  # its job's vectors
Writes bench/results/embed_quality.json. The warehouse is only read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from b2ner_common.selection.embeddings import DEFAULT_MODEL, arrow_to_vectors, encode_texts  # noqa: E402


def load_candidates(warehouse: Path, datasets: list[str]) -> tuple[pd.DataFrame, np.ndarray, set[str]]:
    """(candidates: sample_id, dataset, lang, text, types; their reference vectors; eval text hashes)."""
    import pyarrow.compute as pc

    from b2ner_common import tables
    from b2ner_common.config import load_config
    from b2ner_common.selection.dedup import catalog_roles, eval_datasets, text_hashes

    silver = tables.read_table(
        str(tables.table_path(warehouse, tables.Table.SILVER_SAMPLES)),
        columns=["sample_id", "dataset", "lang", "text", "entities"],
    )
    emb = tables.read_table(str(tables.table_path(warehouse, tables.Table.GOLD_EMBEDDINGS)))
    emb = emb.filter(pc.equal(emb["model"], DEFAULT_MODEL))
    cand = silver.filter(pc.is_in(silver["sample_id"], value_set=emb["sample_id"])).to_pandas()
    if datasets:
        cand = cand[cand["dataset"].isin(datasets)]
    cand = cand.sort_values("sample_id", kind="stable").reset_index(drop=True)
    cand["types"] = [sorted({e["type"] for e in ents if e["type"]}) for ents in cand.pop("entities")]
    vec_of = dict(zip(emb["sample_id"].to_pylist(), arrow_to_vectors(emb["vector"]), strict=True))
    ref = np.stack([vec_of[i] for i in cand["sample_id"]]).astype(np.float32)

    cfg = load_config(None)
    roles = catalog_roles(cfg.ingest.catalogs, builtin=cfg.ingest.builtin_catalog)
    evals = eval_datasets(cfg.select.decontaminate, roles)
    ev = silver.filter(pc.is_in(silver["dataset"], value_set=__import__("pyarrow").array(evals)))
    return cand, ref, set(text_hashes(pd.Series(ev["text"].to_pylist())))


def stored_vectors(warehouse: Path, cand: pd.DataFrame) -> np.ndarray:
    """The gold/embeddings vectors of `warehouse` for the candidates, in `cand` order."""
    import pyarrow.compute as pc

    from b2ner_common import tables

    emb = tables.read_table(str(tables.table_path(warehouse, tables.Table.GOLD_EMBEDDINGS)))
    emb = emb.filter(pc.equal(emb["model"], DEFAULT_MODEL))
    vec_of = dict(zip(emb["sample_id"].to_pylist(), arrow_to_vectors(emb["vector"]), strict=True))
    return np.stack([vec_of[i] for i in cand["sample_id"]]).astype(np.float32)


def nearest_other(vectors: np.ndarray) -> np.ndarray:
    """Index of each row's nearest other row (inner product, exact)."""
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    return sims.argmax(axis=1)


def select_groups(cand: pd.DataFrame, vectors: np.ndarray, params, eval_hashes) -> dict[str, tuple]:
    """Per dataset: (selected sample ids, stats) of `select_dataset` on `vectors`."""
    from b2ner_common.selection.two_stage import select_dataset

    out = {}
    for ds, idx in cand.groupby("dataset").indices.items():
        sel, stats = select_dataset(cand.iloc[idx].reset_index(drop=True), vectors[idx], params, eval_hashes)
        out[ds] = (sel["sample_id"].tolist(), stats)
    return out


def ref_space_coverage(cand, ref, picks: dict[str, tuple]) -> dict[str, float]:
    """Candidate-weighted mean over datasets of mean / p95 distance (reference vectors) to the nearest pick."""
    from b2ner_common.selection.diversity import coverage

    pos = {s: i for i, s in enumerate(cand["sample_id"])}
    means, p95s, ns = [], [], []
    for ds, idx in cand.groupby("dataset").indices.items():
        chosen = np.array([pos[s] for s in picks[ds][0]])
        local = {g: j for j, g in enumerate(idx)}
        cov = coverage(ref[idx], np.array([local[c] for c in chosen]))
        means.append(cov["mean"])
        p95s.append(cov["p95"])
        ns.append(len(idx))
    w = np.array(ns, dtype=float)
    return {"mean": float(np.average(means, weights=w)), "p95": float(np.average(p95s, weights=w))}


def report_coverage(picks: dict[str, tuple]) -> dict:
    from b2ner_common.selection.report import coverage_summary

    return {
        k: {m: round(v[m], 4) for m in ("mean", "p95")}
        for k, v in coverage_summary([p[1] for p in picks.values()]).items()
    }


def near_dups(picks: dict[str, tuple]) -> int:
    return int(sum(p[1]["cleaning"].get("near_duplicate", 0) for p in picks.values()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", type=Path, required=True)
    ap.add_argument(
        "--variants",
        default="int8,bf16:128",
        help="comma-separated PRECISION[:MAX_TOKENS] (encoded here) or wh:PATH (the vectors in PATH's gold/embeddings)",
    )
    ap.add_argument("--datasets", default="", help="comma-separated (default: every candidate dataset)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "embed_quality.json")
    ap.add_argument(
        "--cache", type=Path, default=Path("/tmp/embed_quality_cache"), help="vectors per variant"
    )
    args = ap.parse_args()
    import torch

    from b2ner_common.config import load_config
    from b2ner_common.selection.two_stage import SelectParams

    torch.set_num_threads(os.cpu_count() or 1)
    cand, ref, eval_hashes = load_candidates(args.warehouse, [d for d in args.datasets.split(",") if d])
    check = np.random.default_rng(0).choice(len(cand), size=min(200, len(cand)), replace=False)
    fresh = encode_texts(cand["text"].iloc[check].tolist(), batch_size=args.batch_size)
    ref_check = float((fresh * ref[check]).sum(axis=1).min())
    params = SelectParams.from_config(load_config(None).select)
    print(
        f"{len(cand)} candidates, {cand['dataset'].nunique()} datasets; fresh fp32 vs stored min cos {ref_check:.5f}"
    )

    t = time.perf_counter()
    ref_picks = select_groups(cand, ref, params, eval_hashes)
    print(f"reference selection {time.perf_counter() - t:.0f} s", flush=True)
    nn_ref = {ds: nearest_other(ref[idx]) for ds, idx in cand.groupby("dataset").indices.items()}
    rows = [
        {
            "variant": "fp32 (stored)",
            "report_coverage": report_coverage(ref_picks),
            "coverage_in_fp32_vectors": ref_space_coverage(cand, ref, ref_picks),
            "near_duplicates": near_dups(ref_picks),
            "selected": sum(len(p[0]) for p in ref_picks.values()),
        }
    ]
    # Noise floor: the same fp32 vectors selected with another seed (k-means start, subsamples, random).
    import dataclasses

    seed_picks = select_groups(cand, ref, dataclasses.replace(params, seed=params.seed + 1), eval_hashes)
    rows.append(
        {
            "variant": f"fp32 (stored), seed {params.seed + 1}",
            "report_coverage": report_coverage(seed_picks),
            "coverage_in_fp32_vectors": ref_space_coverage(cand, ref, seed_picks),
            "near_duplicates": near_dups(seed_picks),
            "selected": sum(len(p[0]) for p in seed_picks.values()),
            "selected_same_as_fp32": round(
                sum(len(set(seed_picks[d][0]) & set(ref_picks[d][0])) for d in ref_picks)
                / rows[0]["selected"],
                4,
            ),
        }
    )
    print(json.dumps(rows[-1]), flush=True)
    args.cache.mkdir(parents=True, exist_ok=True)
    for variant in args.variants.split(","):
        precision, _, tok = variant.partition(":")
        max_tokens = int(tok) if tok and precision != "wh" else None
        path = (
            args.cache
            / f"{args.warehouse.name}_{len(cand)}_{variant.replace(':', '_').replace('/', '_')}.npy"
        )
        load0 = os.getloadavg()[0]
        if precision == "wh":  # the vectors another warehouse's embed job wrote (e.g. with the new defaults)
            vecs, secs = stored_vectors(Path(tok), cand), None
        elif path.is_file():
            vecs, secs = np.load(path), None
        else:
            t = time.perf_counter()
            vecs = encode_texts(
                cand["text"].tolist(), batch_size=args.batch_size, precision=precision, max_tokens=max_tokens
            )
            secs = time.perf_counter() - t
            np.save(path, vecs)
        cos = (vecs * ref).sum(axis=1)
        same_nn = [
            (nearest_other(vecs[idx]) == nn_ref[ds]).mean() * len(idx)
            for ds, idx in cand.groupby("dataset").indices.items()
        ]
        picks = select_groups(cand, vecs, params, eval_hashes)
        overlap = [len(set(picks[ds][0]) & set(ref_picks[ds][0])) for ds in ref_picks]
        row = {
            "variant": variant,
            "encode_seconds": round(secs, 1) if secs else None,
            "encode_sent_per_s": round(len(cand) / secs, 1) if secs else None,
            "load_avg_1m_before_after": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "cosine_mean": round(float(cos.mean()), 4),
            "cosine_p1": round(float(np.percentile(cos, 1)), 4),
            "cosine_min": round(float(cos.min()), 4),
            "same_nearest_neighbour": round(float(sum(same_nn) / len(cand)), 4),
            "report_coverage": report_coverage(picks),
            "coverage_in_fp32_vectors": ref_space_coverage(cand, ref, picks),
            "near_duplicates": near_dups(picks),
            "selected": sum(len(p[0]) for p in picks.values()),
            "selected_same_as_fp32": round(sum(overlap) / max(1, rows[0]["selected"]), 4),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = {
        "warehouse": str(args.warehouse),
        "candidates": len(cand),
        "datasets": int(cand["dataset"].nunique()),
        "fresh_fp32_vs_stored_min_cosine": round(ref_check, 5),
        "select_params": {
            k: getattr(params, k) for k in ("budget_per_dataset", "strategy", "seed", "dedup_threshold")
        },
        "rows": rows,
    }
    path = args.out
    path.write_text(json.dumps(out, indent=1))
    print(json.dumps(rows[0]))
    print(json.dumps({k: round(v, 4) for k, v in rows[0]["coverage_in_fp32_vectors"].items()}))


if __name__ == "__main__":
    main()
