"""Zero-shot quality of the span-encoder family under a training-time budget (issue 13).

Trains from the pipeline's selection (gold/selection joined with silver/samples of `--warehouse`, as
`b2ner train` does) for `--minutes` of training time on this machine, evaluates checkpoints along the way
(b2ner_f1 against training time: would more compute still help?), then scores the final model zero-shot
on the OOD-DEV sets (CrossNER dev, MIT movie/restaurant train, weibo dev, CLUENER train, CCKS2021 address
train: the first split of evaluate.splits present; the full splits unless --eval-samples is given), with
b2ner_f1 and span_f1 per dataset, English and Chinese averages, a threshold sweep, mean +/- sd over
training seeds, and inference sentences/s (fp32 and int8) on the CoNLL-2003 test sentences.

    # the warehouse comes from: b2ner run warehouse=WH 'run.stages=[ingest,taxonomy,embed,select]'
    .venv/bin/python bench/quality.py --warehouse WH --minutes 30 --seeds 0 1 2 --name uni30
    .venv/bin/python bench/quality.py --warehouse WH --minutes 3 --eval-samples 200 --name quick  # iterate

Budget = training steps' wall time only (checkpoint evaluations are not counted); samples seen are
reported with it. Prints a table; writes bench/results/quality_<name>.json (and the models under --work).
The machine's 1-minute load average is recorded with every timing: the 2-core box is often shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _cfg(args, extra: list[str] | None = None):
    from b2ner_common.config import load_config

    return load_config(
        None, [f"warehouse={args.warehouse}", f"select.run_id={args.selection_run}"] + (extra or [])
    )


def training_rows(args, seed: int) -> list[dict]:
    """The pipeline's selection (default), or a seeded per-dataset sample of the train-pool silver rows."""
    from b2ner_common.selection.training_rows import silver_pool, training_table

    cfg = _cfg(args)
    if args.source == "selection":
        return training_table(cfg).to_pylist()
    t = silver_pool(cfg.warehouse, splits=cfg.select.splits, decontaminate=cfg.select.decontaminate)
    rows = t.to_pylist()
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["dataset"], []).append(r)
    rng = random.Random(seed)
    out = []
    for _, rs in sorted(by.items()):
        out.extend(rng.sample(rs, min(len(rs), args.per_dataset)))
    return out


def subsample(golds: dict, n: int | None) -> dict:
    """The same fixed sentences of every gold set for every model (n per dataset)."""
    from b2ner_common.evaluation.benchmark import GoldSet

    if n is None:
        return golds
    out = {}
    for ds, g in golds.items():
        idx = sorted(random.Random(0).sample(range(len(g.texts)), min(n, len(g.texts))))
        out[ds] = GoldSet(
            g.dataset, g.lang, g.split, g.label_names, [g.texts[i] for i in idx], [g.entities[i] for i in idx]
        )
    return out


def evaluate(model, golds: dict, thresholds: list[float], name: str) -> dict:
    """{threshold: EvalResult.as_dict()} from one prediction at the lowest threshold."""
    from ablation import ThresholdSweep

    from b2ner_common.evaluation.benchmark import evaluate_predictor

    sweep = ThresholdSweep(model, name, thresholds)
    out = {}
    t0 = time.perf_counter()
    for thr in sorted(thresholds):
        sweep.threshold = thr
        out[str(thr)] = evaluate_predictor(sweep, golds, [0], name=name, batch_size=64).as_dict()
    n = sum(len(g.texts) for g in golds.values())
    out["_seconds"] = round(time.perf_counter() - t0, 1)
    out["_sentences"] = n
    return out


def _avg(res: dict, lang: str, key: str = "b2ner_f1") -> float:
    v = res["per_language"].get(lang)
    return round(v[key], 2) if v else float("nan")


def settings(args):
    from b2ner_common.models.span_encoder.model import SpanEncoderSettings

    return SpanEncoderSettings(
        architecture=args.architecture,
        label_pooling=args.label_pooling,
        span_dim=args.span_dim,
        max_width=args.max_width,
        freeze_layers=args.freeze_layers,
        freeze_word_embeddings=not args.train_word_embeddings,
        threshold=args.threshold,
        use_definitions=False,
        prior_weight=args.prior_weight,
    )


def options(args, seed: int):
    from b2ner_common.models.span_encoder.train import SpanTrainOptions

    return SpanTrainOptions(
        batch_size=args.batch_size,
        steps=args.steps or 1000,
        max_seconds=None if args.steps else args.minutes * 60,
        lr_encoder=args.lr_encoder,
        lr_head=args.lr_head,
        warmup_fraction=args.warmup,
        max_labels=args.max_labels,
        pool_negatives=args.pool_negatives,
        drop_positive=args.drop_positive,
        focal_gamma=args.focal_gamma,
        positive_weight=args.positive_weight,
        seed=seed,
    )


def train_and_score(args, seed: int, golds_full: dict, golds_curve: dict) -> dict:
    import torch

    from b2ner_common.models.span_encoder.model import build_span_encoder, save_span_encoder
    from b2ner_common.models.span_encoder.train import SpanTrainer, examples_from_rows
    from b2ner_common.taxonomy import load_taxonomy

    torch.set_num_threads(args.threads)
    rows = training_rows(args, seed)
    model = build_span_encoder(args.base_model, settings(args), seed=seed)
    examples, stats = examples_from_rows(rows, model, "type", load_taxonomy().label_namer())
    trainer = SpanTrainer(model, examples, options(args, seed))
    curve = []
    budget_min = args.minutes
    if args.steps:
        marks = [m for m in args.curve_steps if m < args.steps]
    else:
        marks = [m for m in args.curve_at if m < budget_min]
    for mark in marks:
        if args.steps:
            trainer.fit(steps=int(mark))
        else:
            trainer.fit(until_seconds=mark * 60)
        res = evaluate(model, golds_curve, [args.threshold], f"s{seed}@{mark}m")[str(args.threshold)]
        curve.append(
            {
                "train_minutes": round(trainer.train_seconds / 60, 2),
                "step": trainer.step,
                "samples_seen": trainer.samples_seen,
                "en": _avg(res, "en"),
                "zh": _avg(res, "zh"),
                "load": _load(),
            }
        )
        print(f"  seed {seed} curve {curve[-1]}", flush=True)
        if trainer.done:
            break
    fit = trainer.fit()
    train_info = {
        "train_rows": len(rows),
        "segments": stats.segments,
        "entities_aligned": stats.aligned,
        "entities_skipped": stats.skipped_unaligned_or_wide + stats.skipped_unlabelled,
        "steps": trainer.step,
        "samples_seen": trainer.samples_seen,
        "train_minutes": round(trainer.train_seconds / 60, 2),
        "samples_per_s": round(trainer.samples_seen / max(trainer.train_seconds, 1e-9), 1),
        "last_loss": fit["last_loss"],
        "load_end_of_training": _load(),
    }
    print(f"  seed {seed} trained: {train_info}", flush=True)
    final = evaluate(model, golds_full, sorted({args.threshold, *args.sweep}), f"s{seed}")
    # The same model typed without / with other prior weights (inference-only knob), main threshold.
    final["_prior"] = {}
    chosen = model.settings.prior_weight
    for w in [w for w in args.prior_sweep if w != chosen]:
        model.settings.prior_weight = w
        final["_prior"][str(w)] = evaluate(model, golds_full, [args.threshold], f"s{seed}p{w}")[
            str(args.threshold)
        ]
        print(
            f"  seed {seed} prior {w}: en {_avg(final['_prior'][str(w)], 'en')} zh {_avg(final['_prior'][str(w)], 'zh')}"
        )
    model.settings.prior_weight = chosen
    if not curve or curve[-1]["step"] != trainer.step:
        main = final[str(args.threshold)]
        curve.append(
            {
                "train_minutes": train_info["train_minutes"],
                "step": trainer.step,
                "samples_seen": trainer.samples_seen,
                "en": _avg(main, "en"),
                "zh": _avg(main, "zh"),
                "load": _load(),
                "eval": "final (full sets)"
                if args.eval_samples is None
                else f"final ({args.eval_samples}/set)",
            }
        )
    out_dir = Path(args.work) / f"{args.name}_s{seed}"
    save_span_encoder(model, out_dir)
    return {
        "seed": seed,
        "train": train_info,
        "curve": curve,
        "final": final,
        "model_dir": str(out_dir),
        "model": model,
    }


def conll_test_texts(limit: int | None = None) -> list[str]:
    from b2ner_common.config import DEFAULT_CORPORA
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_tasks

    tasks = [t for t in load_catalog().tasks(Path(DEFAULT_CORPORA), ["conll2003"]) if t.split == "test"]
    texts = [s.text for s in ingest_tasks(tasks).samples if s.text.strip()]
    return texts[:limit] if limit else texts


def inference_speed(model_dir: str, threads: int, n: int | None) -> list[dict]:
    """Sentences/s of a saved model, fp32 and int8, CoNLL-2003 test sentences, the 4 CoNLL label names."""
    import torch

    from b2ner_common.models.span_encoder.model import load_span_encoder, quantize_for_inference

    torch.set_num_threads(threads)
    texts = conll_test_texts(n)
    labels = ["person", "location", "organization", "miscellaneous named entity"]
    out = []
    for kind in ("fp32", "int8"):
        m = load_span_encoder(model_dir)
        if kind == "int8":
            m = quantize_for_inference(m)
        m.predict(texts[:64], labels, batch_size=64)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        m.predict(texts, labels, batch_size=64)
        wall = time.perf_counter() - t0
        out.append(
            {
                "kind": kind,
                "sentences": len(texts),
                "wall_s": round(wall, 2),
                "cpu_s": round(time.process_time() - c0, 2),
                "sentences_per_s": round(len(texts) / wall, 1),
                "threads": threads,
                "load": _load(),
            }
        )
        print(f"  inference {out[-1]}", flush=True)
    return out


def aggregate(runs: list[dict], threshold: float) -> dict:
    from b2ner_common.metrics import mean_sd

    thr_keys = [k for k in runs[0]["final"] if not k.startswith("_")]
    per_thr = {}
    for k in thr_keys:
        per_thr[k] = {lang: mean_sd([_avg(r["final"][k], lang) for r in runs]) for lang in ("en", "zh")}
    main = [r["final"][str(threshold)] for r in runs]
    per_ds = {}
    for ds in main[0]["per_dataset"]:
        v = [m["per_dataset"][ds] for m in main]
        per_ds[ds] = {
            "lang": v[0]["lang"],
            "n": v[0]["n"],
            "b2ner_f1": mean_sd([x["b2ner_f1"] for x in v]),
            "span_f1": mean_sd([x["span_f1"] for x in v]),
            "precision": mean_sd([x["precision"] for x in v])[0],
            "recall": mean_sd([x["recall"] for x in v])[0],
        }
    per_prior = {
        w: {lang: mean_sd([_avg(r["final"]["_prior"][w], lang) for r in runs]) for lang in ("en", "zh")}
        for w in runs[0]["final"].get("_prior", {})
    }
    return {"per_dataset": per_ds, "per_threshold": per_thr, "per_prior_weight": per_prior}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--warehouse", required=True, help="warehouse with silver/samples and gold/selection")
    ap.add_argument("--selection-run", default="default")
    ap.add_argument("--source", choices=["selection", "silver"], default="selection")
    ap.add_argument("--per-dataset", type=int, default=1300, help="--source silver: rows per dataset")
    ap.add_argument("--name", default="quality")
    ap.add_argument("--work", default=str(ROOT / "runs" / "quality"), help="where models are saved")
    ap.add_argument("--minutes", type=float, default=30.0, help="training-time budget per seed")
    ap.add_argument("--steps", type=int, default=0, help="fixed step count instead of a time budget")
    ap.add_argument("--curve-at", type=float, nargs="*", default=[2, 4, 8, 15, 22], help="checkpoint minutes")
    ap.add_argument("--curve-steps", type=int, nargs="*", default=[50, 100, 200, 400], help="with --steps")
    ap.add_argument("--curve-samples", type=int, default=200, help="sentences per set at checkpoints")
    ap.add_argument(
        "--eval-samples", type=int, default=None, help="final eval sentences per set (default all)"
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--base-model", default="", help="encoder directory (default: packaged MiniLM)")
    ap.add_argument("--architecture", choices=["uni", "bi"], default="bi")
    ap.add_argument("--label-pooling", choices=["marker", "mean"], default="marker")
    ap.add_argument("--span-dim", type=int, default=256)
    ap.add_argument("--max-width", type=int, default=12)
    ap.add_argument("--freeze-layers", type=int, default=3)
    ap.add_argument("--train-word-embeddings", action="store_true")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr-encoder", type=float, default=1e-4)
    ap.add_argument("--lr-head", type=float, default=2e-3)
    ap.add_argument("--warmup", type=float, default=0.05)
    ap.add_argument("--max-labels", type=int, default=12)
    ap.add_argument("--pool-negatives", type=int, default=2)
    ap.add_argument("--drop-positive", type=float, default=0.1)
    ap.add_argument("--focal-gamma", type=float, default=2.0)
    ap.add_argument("--positive-weight", type=float, default=3.0)
    ap.add_argument("--threshold", type=float, default=0.2)
    ap.add_argument("--sweep", type=float, nargs="*", default=[0.1, 0.3, 0.4, 0.5])
    ap.add_argument(
        "--prior-weight", type=float, default=None, help="label prior (default: the model's; 0: off)"
    )
    ap.add_argument("--prior-sweep", type=float, nargs="*", default=[0.0], help="final eval also with these")
    ap.add_argument("--speed-sentences", type=int, default=None, help="CoNLL test sentences for speed (all)")
    ap.add_argument("--no-speed", action="store_true")
    args = ap.parse_args()

    from rich.console import Console
    from rich.table import Table

    from b2ner_common.evaluation.benchmark import load_gold, ood_datasets

    t0 = time.perf_counter()
    golds_full = subsample(load_gold(_cfg(args), ood_datasets()), args.eval_samples)
    golds_curve = subsample(golds_full, args.curve_samples)
    runs = []
    for seed in args.seeds:
        runs.append(train_and_score(args, seed, golds_full, golds_curve))
    speed = [] if args.no_speed else inference_speed(runs[0]["model_dir"], args.threads, args.speed_sentences)
    agg = aggregate(runs, args.threshold)
    result = {
        "name": args.name,
        "command": " ".join(["bench/quality.py", *sys.argv[1:]]),
        "args": {k: v for k, v in vars(args).items()},
        "seeds": args.seeds,
        "eval_sentences": {ds: len(g.texts) for ds, g in golds_full.items()},
        "eval_splits": {ds: g.split for ds, g in golds_full.items()},
        "runs": [{k: v for k, v in r.items() if k != "model"} for r in runs],
        "aggregate": agg,
        "inference": speed,
        "cpu_count": os.cpu_count(),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    out = ROOT / "bench" / "results" / f"quality_{args.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))

    console = Console()
    table = Table(
        title=f"span encoder zero-shot, {args.minutes} min/seed, seeds {args.seeds}, threshold {args.threshold}"
    )
    for col in ("dataset", "lang", "sentences", "b2ner F1", "span F1", "P", "R"):
        table.add_column(col, justify="left" if col in ("dataset", "lang") else "right")
    for ds, v in sorted(agg["per_dataset"].items(), key=lambda kv: (kv[1]["lang"], kv[0])):
        b, s = v["b2ner_f1"], v["span_f1"]
        table.add_row(
            ds,
            v["lang"],
            str(v["n"]),
            f"{b[0]:.1f} ± {b[1]:.1f}",
            f"{s[0]:.1f} ± {s[1]:.1f}",
            f"{v['precision']:.1f}",
            f"{v['recall']:.1f}",
        )
    for thr, langs in agg["per_threshold"].items():
        table.add_row(
            f"avg b2ner F1 @ {thr}", "en", "", f"{langs['en'][0]:.1f} ± {langs['en'][1]:.1f}", "", "", ""
        )
        table.add_row(
            f"avg b2ner F1 @ {thr}", "zh", "", f"{langs['zh'][0]:.1f} ± {langs['zh'][1]:.1f}", "", "", ""
        )
    console.print(table)
    for w, langs in agg["per_prior_weight"].items():
        console.print(f"prior_weight {w} @ {args.threshold}: en {langs['en']} zh {langs['zh']}", markup=False)
    for r in runs:
        console.print(f"seed {r['seed']}: {r['train']}", markup=False)
        for c in r["curve"]:
            console.print(f"  curve {c}", markup=False)
    console.print(f"wrote {out}", markup=False)


if __name__ == "__main__":
    main()
