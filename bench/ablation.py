"""The B2NER data ablation with the span-encoder family, at equal training compute, zero-shot on OOD-DEV.

Arms (same steps x batch size for every arm, same model, same evaluation):
  a  raw corpus labels, samples drawn from all train-pool data
  b  taxonomy labels,   samples drawn from all train-pool data
  c  taxonomy labels,   the two-stage selection (gold/selection, category quotas + k-means diversity)
  d  taxonomy labels,   a random selection of the same size as (c), per dataset
Evaluation: `b2ner_common.evaluation.benchmark` on the OOD-DEV sets (CrossNER dev, MIT movie/restaurant train, weibo
dev, CLUENER train, CCKS2021 address train), labels shown as taxonomy names, b2ner_f1 and span_f1;
mean +/- sd over training seeds.

Pipeline (run once, resumable): ingest (local) -> taxonomy apply (local) into <work>/full; the decontaminated
train-pool rows (en + zh, train split, at most --pool-cap per dataset to bound CPU time) are written as
silver/samples of <work>/pool, then embed + select (Spark jobs) produce gold/selection there.
Each finished arm/seed is saved as <results>/<arm>_s<seed>.json and not re-run.

    .venv/bin/python bench/ablation.py --quick      # 1 seed, short training, subsampled evaluation
    .venv/bin/python bench/ablation.py              # 3 seeds x 300 steps (see docs/benchmarks.md for time)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
ARMS = {
    "a": ("raw labels, all data", "label", "all"),
    "b": ("taxonomy labels, all data", "type", "all"),
    "c": ("taxonomy labels, two-stage selection", "type", "selection"),
    "d": ("taxonomy labels, random selection (size of c)", "type", "random"),
}
SELECTION_RUN = "ablation"


def _cfg(warehouse: Path, args, extra: list[str] | None = None):
    from b2ner_common.config import load_config

    return load_config(
        None,
        [
            f"warehouse={warehouse}",
            f"ingest.corpora={args.corpora}",
            f"select.budget_per_dataset={args.budget}",
            f"select.run_id={SELECTION_RUN}",
            "select.compare_strategies=false",
            f"select.report_dir={args.work / 'reports'}",
            "spark.master=local[2]",
        ]
        + (extra or []),
    )


def prepare(args) -> dict:
    """Run the pipeline stages once; returns (and caches) the sizes of what they produced."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from b2ner_common import tables
    from b2ner_common.evaluation.benchmark import ood_datasets
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.selection.training_rows import silver_pool

    state_file = args.work / "prepared.json"
    if state_file.is_file():
        return json.loads(state_file.read_text())
    full, pool_wh = args.work / "full", args.work / "pool"
    roles = load_catalog().roles()
    pool_names = sorted(d for d, r in roles.items() if r == "train_pool")
    info: dict = {"pool_datasets": pool_names, "eval_datasets": ood_datasets(), "timings_s": {}}
    t = time.perf_counter()
    if not tables.table_exists(tables.table_path(full, tables.Table.SILVER_SAMPLES)):
        from b2ner_common.ingest.job import run_local
        from b2ner_common.taxonomy.job import apply_local

        cfg = _cfg(full, args, [f"ingest.datasets={json.dumps(pool_names + ood_datasets())}"])
        run_local(cfg)
        info["timings_s"]["ingest"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        apply_local(cfg)
        info["timings_s"]["taxonomy"] = round(time.perf_counter() - t, 1)
    pool = silver_pool(full, splits=["train"], datasets=pool_names)
    pool = pool.filter(pc.is_in(pool["lang"], pa.array(["en", "zh"])))
    # Cap per dataset (seeded): bounds embedding/selection time; arms a/b draw from this same pool.
    keep = []
    by_ds: dict[str, list[int]] = defaultdict(list)
    for i, d in enumerate(pool["dataset"].to_pylist()):
        by_ds[d].append(i)
    rng = random.Random(0)
    for _, idx in sorted(by_ds.items()):
        keep.extend(sorted(rng.sample(idx, min(len(idx), args.pool_cap))))
    pool = pool.take(pa.array(sorted(keep)))
    from b2ner_common.schema import SILVER_SAMPLES

    silver = tables.read_table(tables.table_path(full, tables.Table.SILVER_SAMPLES))
    silver = silver.filter(pc.is_in(silver["sample_id"], pool["sample_id"])).select(SILVER_SAMPLES.names)
    tables.write_table(tables.table_path(pool_wh, tables.Table.SILVER_SAMPLES), silver, mode="overwrite")
    info["pool_rows"] = silver.num_rows
    info["pool_per_dataset"] = {
        d["values"]: d["counts"] for d in pc.value_counts(silver["dataset"]).to_pylist()
    }
    t = time.perf_counter()
    from spark_jobs.embed import run_embed
    from spark_jobs.select import run_select

    cfg = _cfg(pool_wh, args)
    run_embed(cfg)
    info["timings_s"]["embed"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    res = run_select(cfg)
    info["timings_s"]["select"] = round(time.perf_counter() - t, 1)
    info["selected_rows"] = res.selected
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(info, indent=2))
    return info


def arm_rows(arm: str, seed: int, args) -> list[dict]:
    """The training rows of one arm (seed only matters for the random arm)."""
    from b2ner_common import tables
    from b2ner_common.selection.output import selected_samples
    from b2ner_common.selection.training_rows import ROW_COLUMNS

    pool_wh = args.work / "pool"
    kind = ARMS[arm][2]
    pool = tables.read_table(
        tables.table_path(pool_wh, tables.Table.SILVER_SAMPLES), columns=ROW_COLUMNS
    ).to_pylist()
    if kind == "all":
        return pool
    selected = selected_samples(pool_wh, SELECTION_RUN).select(ROW_COLUMNS).to_pylist()
    if kind == "selection":
        return selected
    per_ds: dict[str, int] = defaultdict(int)
    for r in selected:
        per_ds[r["dataset"]] += 1
    rng = random.Random(1000 + seed)
    by_ds: dict[str, list[dict]] = defaultdict(list)
    for r in pool:
        by_ds[r["dataset"]].append(r)
    out = []
    for d, n in sorted(per_ds.items()):
        out.extend(rng.sample(by_ds[d], n))
    return out


class ThresholdSweep:
    """Predicts once at the lowest threshold, then answers for any higher one by filtering on the score.

    Exact for the span encoder: greedy best-first decoding picks a span only against higher-scoring
    spans, so the entities kept at threshold t are those kept at t0 < t whose score is > t (the
    property is pinned by test_span_encoder_higher_threshold_only_filters_lower_one).
    """

    def __init__(self, model, name: str, thresholds: list[float], batch_size: int = 64):
        self.model, self.name, self.batch_size = model, name, batch_size
        self.floor = min(thresholds)
        self.threshold = self.floor
        self._cache: dict = {}

    def predict(self, texts, labels):
        key = (tuple(texts), json.dumps(labels, sort_keys=True, default=str))
        if key not in self._cache:
            self._cache[key] = self.model.predict(
                texts, labels, batch_size=self.batch_size, threshold=self.floor
            )
        return [[e for e in ents if e.score > self.threshold] for ents in self._cache[key]]


def run_arm(arm: str, seed: int, golds, args) -> dict:
    import torch

    from b2ner_common.evaluation.benchmark import evaluate_predictor
    from b2ner_common.models.span_encoder.model import build_span_encoder
    from b2ner_common.models.span_encoder.train import (
        SpanTrainer,
        SpanTrainOptions,
        examples_from_rows,
    )
    from b2ner_common.taxonomy import load_taxonomy

    torch.set_num_threads(args.threads)
    rows = arm_rows(arm, seed, args)
    model = build_span_encoder(seed=seed)
    examples, stats = examples_from_rows(rows, model, ARMS[arm][1], load_taxonomy("v1").label_namer())
    opts = SpanTrainOptions(
        batch_size=args.batch_size,
        steps=args.steps,
        label_field=ARMS[arm][1],
        seed=seed,
        focal_gamma=args.focal_gamma,
        positive_weight=args.positive_weight,
    )
    res = SpanTrainer(model, examples, opts).fit()
    t0 = time.perf_counter()
    thresholds = sorted({args.threshold, *args.sweep})
    pred = ThresholdSweep(model, f"arm-{arm}-s{seed}", thresholds)
    sweep = {}
    for thr in thresholds:
        pred.threshold = thr
        ev = evaluate_predictor(pred, golds, [0], name=f"{arm}/s{seed}@{thr}", batch_size=64)
        sweep[str(thr)] = {"per_dataset": ev.per_dataset(), "per_language": ev.per_language()}
    main = sweep[str(args.threshold)]
    return {
        "arm": arm,
        "seed": seed,
        "description": ARMS[arm][0],
        "train_rows": len(rows),
        "train_segments": stats.segments,
        "entities": stats.entities,
        "entities_skipped": stats.skipped_unaligned_or_wide + stats.skipped_unlabelled,
        "label_pool": len({x for s in examples for x in s.labels}),
        "steps": res["steps"],
        "batch_size": args.batch_size,
        "train_seconds": round(res["seconds"], 1),
        "samples_per_s": round(res["samples_per_s"], 1),
        "first_loss": res["first_loss"],
        "last_loss": res["last_loss"],
        "eval_seconds": round(time.perf_counter() - t0, 1),
        "threshold": args.threshold,
        "prior_weight": model.settings.prior_weight,
        "per_dataset": main["per_dataset"],
        "per_language": main["per_language"],
        "sweep": sweep,
    }


def aggregate(results: list[dict]) -> dict:
    """Per arm: mean +/- sd over seeds of every dataset's and language's F1."""
    from b2ner_common.metrics import mean_sd

    out: dict = {}
    for arm in ARMS:
        runs = [r for r in results if r["arm"] == arm]
        if not runs:
            continue
        agg: dict = {"description": ARMS[arm][0], "seeds": [r["seed"] for r in runs]}
        for key in ("train_rows", "train_seconds", "samples_per_s"):
            agg[key] = mean_sd([float(r[key]) for r in runs])[0]
        for level in ("per_dataset", "per_language"):
            agg[level] = {}
            for name in runs[0][level]:
                agg[level][name] = {
                    m: mean_sd([r[level][name][m] for r in runs]) for m in ("b2ner_f1", "span_f1")
                }
        # Threshold sensitivity: language averages at every swept threshold (runs that have a sweep).
        swept = [r for r in runs if "sweep" in r]
        if swept:
            agg["sweep"] = {
                thr: {
                    lang: {
                        m: mean_sd([r["sweep"][thr]["per_language"][lang][m] for r in swept])
                        for m in ("b2ner_f1", "span_f1")
                    }
                    for lang in swept[0]["sweep"][thr]["per_language"]
                }
                for thr in swept[0]["sweep"]
            }
        out[arm] = agg
    return out


def markdown(agg: dict, meta: dict) -> str:
    """The result tables for docs/benchmarks.md (b2ner_f1 / span_f1 mean +/- sd over seeds)."""
    arms = list(agg)
    head = "| dataset | " + " | ".join(f"({a}) {agg[a]['description']}" for a in arms) + " |"
    lines = [head, "|---" * (len(arms) + 1) + "|"]
    lines.append("| training rows | " + " | ".join(f"{agg[a]['train_rows']:,.0f}" for a in arms) + " |")
    lines.append("| train s (mean) | " + " | ".join(f"{agg[a]['train_seconds']:.0f}" for a in arms) + " |")
    names = list(agg[arms[0]]["per_dataset"]) + ["en", "zh"]
    for d in names:
        level = "per_language" if d in ("en", "zh") else "per_dataset"
        cells = []
        for a in arms:
            (bm, bs), (sm, ss) = (agg[a][level][d][m] for m in ("b2ner_f1", "span_f1"))
            cells.append(f"{bm:.1f} ± {bs:.1f} / {sm:.1f} ± {ss:.1f}")
        label = f"**avg {d}**" if d in ("en", "zh") else d
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    out = [
        f"b2ner_f1 / span_f1 (%), mean ± sd over seeds {meta['seeds']}, threshold {meta['threshold']}:",
        "",
        *lines,
    ]
    if all("sweep" in agg[a] for a in arms):
        out += ["", "Threshold sensitivity, avg b2ner_f1 en / zh (mean ± sd over seeds):", ""]
        out += ["| threshold | " + " | ".join(f"({a})" for a in arms) + " |", "|---" * (len(arms) + 1) + "|"]
        for thr in agg[arms[0]]["sweep"]:
            cells = []
            for a in arms:
                sw = agg[a]["sweep"][thr]
                cells.append(
                    " / ".join(
                        f"{sw[lg]['b2ner_f1'][0]:.1f} ± {sw[lg]['b2ner_f1'][1]:.1f}" for lg in ("en", "zh")
                    )
                )
            out.append(f"| {thr} | " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def chart(agg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(agg)
    datasets = list(next(iter(agg.values()))["per_dataset"]) + ["avg en", "avg zh"]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(datasets)), 4))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        vals, errs = [], []
        for d in datasets:
            src = (
                agg[arm]["per_language"].get(d[4:])
                if d.startswith("avg ")
                else agg[arm]["per_dataset"].get(d)
            )
            m, sd = src["b2ner_f1"] if src else (0.0, 0.0)
            vals.append(m)
            errs.append(sd)
        xs = [j + i * width for j in range(len(datasets))]
        ax.bar(xs, vals, width, yerr=errs, label=f"({arm}) {agg[arm]['description']}")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(datasets))])
    ax.set_xticklabels(datasets, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("b2ner_f1 (zero-shot, %)")
    ax.set_title("span-encoder ablation at equal compute (mean +/- sd over seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, fewer steps, subsampled evaluation")
    ap.add_argument("--corpora", default=str(ROOT.parent / "shared" / "corpora"))
    ap.add_argument("--work", type=Path, default=ROOT / "warehouse" / "ablation")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--seeds", type=int, nargs="*", default=None)
    ap.add_argument("--arms", default="abcd")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--pool-cap", type=int, default=None, help="max train-pool rows per dataset")
    ap.add_argument("--budget", type=int, default=None, help="select.budget_per_dataset")
    ap.add_argument("--eval-samples", type=int, default=None, help="sentences per OOD dataset")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.3, help="decision threshold of the main table")
    ap.add_argument("--sweep", type=float, nargs="*", default=[0.1, 0.2, 0.3, 0.5], help="also scored")
    ap.add_argument(
        "--focal-gamma", type=float, default=None, help="default: the trainer's (SpanTrainOptions)"
    )
    ap.add_argument("--positive-weight", type=float, default=None, help="default: the trainer's")
    ap.add_argument("--prepare-only", action="store_true", help="run the pipeline stages, train nothing")
    ap.add_argument("--name", default=None, help="results and work folder name (default: quick or full)")
    args = ap.parse_args()
    q = args.quick
    from b2ner_common.models.span_encoder.train import SpanTrainOptions

    defaults = SpanTrainOptions()
    args.focal_gamma = defaults.focal_gamma if args.focal_gamma is None else args.focal_gamma
    args.positive_weight = defaults.positive_weight if args.positive_weight is None else args.positive_weight
    args.seeds = args.seeds if args.seeds is not None else ([0] if q else [0, 1, 2])
    args.steps = args.steps or (150 if q else 300)
    args.pool_cap = args.pool_cap or (1500 if q else 4000)
    args.budget = args.budget or (300 if q else 1000)
    args.eval_samples = args.eval_samples or (150 if q else 300)
    mode = args.name or ("quick" if q else "full")
    args.results = args.results or ROOT / "bench" / "results" / f"ablation_{mode}"
    args.work = args.work / mode

    from rich.console import Console
    from rich.table import Table

    from b2ner_common.evaluation.benchmark import load_gold, ood_datasets

    console = Console()
    t0 = time.perf_counter()
    info = prepare(args)
    console.print(f"pipeline ready: {info.get('pool_rows')} pool rows, {info.get('selected_rows')} selected")
    if args.prepare_only:
        return
    gold_cfg = _cfg(args.work / "full", args, [f"evaluate.max_samples={args.eval_samples}"])
    golds = load_gold(gold_cfg, ood_datasets())
    args.results.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in args.seeds:
        for arm in args.arms:
            out = args.results / f"{arm}_s{seed}.json"
            if out.is_file():
                results.append(json.loads(out.read_text()))
                continue
            console.print(f"arm {arm} seed {seed}: {ARMS[arm][0]}")
            r = run_arm(arm, seed, golds, args)
            out.write_text(json.dumps(r, indent=2))
            results.append(r)
    agg = aggregate(results)
    meta = {
        "mode": mode,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seeds": args.seeds,
        "pool_cap": args.pool_cap,
        "budget_per_dataset": args.budget,
        "eval_samples_per_dataset": args.eval_samples,
        "threads": args.threads,
        "threshold": args.threshold,
        "focal_gamma": args.focal_gamma,
        "positive_weight": args.positive_weight,
        "gold_splits": {d: g.split for d, g in golds.items()},
        "pipeline": info,
        "wall_s_this_invocation": round(time.perf_counter() - t0, 1),
    }
    (ROOT / "bench" / "results" / f"ablation_{mode}.json").write_text(
        json.dumps({"meta": meta, "arms": agg}, indent=2)
    )
    chart(agg, ROOT / "docs" / f"ablation_{mode}.png")
    (ROOT / "bench" / "results" / f"ablation_{mode}.md").write_text(markdown(agg, meta), encoding="utf-8")

    table = Table(title=f"ablation ({mode}): b2ner_f1 / span_f1, mean +/- sd over seeds {args.seeds}")
    table.add_column("dataset")
    for arm in agg:
        table.add_column(f"({arm}) n={agg[arm]['train_rows']:.0f}")
    names = list(next(iter(agg.values()))["per_dataset"]) + ["en", "zh"]
    for d in names:
        cells = []
        for arm in agg:
            src = agg[arm]["per_language" if d in ("en", "zh") else "per_dataset"][d]
            (bm, bs), (sm, ss) = src["b2ner_f1"], src["span_f1"]
            cells.append(f"{bm:.1f}±{bs:.1f} / {sm:.1f}±{ss:.1f}")
        table.add_row(d if d not in ("en", "zh") else f"avg {d}", *cells)
    console.print(table)
    if all("sweep" in a for a in agg.values()):
        sens = Table(title="threshold sensitivity: avg b2ner_f1 en / zh (mean over seeds)")
        sens.add_column("threshold")
        for arm in agg:
            sens.add_column(f"({arm})")
        for thr in next(iter(agg.values()))["sweep"]:
            cells = []
            for arm in agg:
                langs = agg[arm]["sweep"][thr]
                cells.append(
                    " / ".join(f"{langs[lg]['b2ner_f1'][0]:.1f}" for lg in ("en", "zh") if lg in langs)
                )
            sens.add_row(thr, *cells)
        console.print(sens)


if __name__ == "__main__":
    main()
