"""Speed of the span-encoder family on CPU: training samples/s and inference sentences/s.

Real sentences (CoNLL-2003 train for training, CoNLL-2003 dev for inference, read through the catalog),
the packaged all-MiniLM-L6-v2 backbone, torch limited to `--threads` threads. Reference figures for
gliner 0.2.29 with the same backbone on this machine (issue 8): 8.3 training samples/s (batch 16),
~24 inference sentences/s.

    .venv/bin/python bench/span_encoder.py            # prints a table, writes bench/results/span_encoder.json

Each figure is the wall-clock rate; `cpu_s` is the process CPU time and `load` the 1-minute load average
at the end of the measurement, because the 2-core machine is often shared with other jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

GLINER_TRAIN_SAMPLES_S = 8.3
GLINER_INFER_SENT_S = 24.0
CONLL_TYPES = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"}


def conll_rows(corpora: Path, split: str, limit: int) -> list[dict]:
    """CoNLL-2003 sentences as silver-style rows (types = readable names of the four labels)."""
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_tasks

    tasks = [t for t in load_catalog().tasks(corpora, ["conll2003"]) if t.split == split]
    samples = ingest_tasks(tasks).samples[:limit]
    return [
        {
            "dataset": "conll2003",
            "text": s.text,
            "entities": [
                {
                    "start": e.start,
                    "end": e.end,
                    "label": e.label,
                    "type": CONLL_TYPES.get(e.label, e.label.lower()),
                }
                for e in s.entities
            ],
            "label_set": sorted(CONLL_TYPES.values()),
        }
        for s in samples
    ]


def _measure(fn) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def bench_train(rows: list[dict], batch_size: int, steps: int, freeze_layers: int) -> dict:
    from b2ner_common.models.span_encoder.model import SpanEncoderSettings, build_span_encoder
    from b2ner_common.models.span_encoder.train import SpanTrainer, SpanTrainOptions, examples_from_rows

    model = build_span_encoder(settings=SpanEncoderSettings(freeze_layers=freeze_layers))
    examples, _ = examples_from_rows(rows, model)
    trainer = SpanTrainer(model, examples, SpanTrainOptions(batch_size=batch_size, steps=steps + 3))
    trainer.fit(steps=3)  # warm-up: allocator, first-call overheads
    out: dict = {}
    wall, cpu = _measure(lambda: out.update(trainer.fit()))
    n = steps * batch_size
    return {
        "what": f"train batch {batch_size}, freeze {freeze_layers}",
        "items": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "rate": n / wall,
        "unit": "samples/s",
        "vs_gliner": n / wall / GLINER_TRAIN_SAMPLES_S,
        "load": os.getloadavg()[0],
    }


def bench_infer(model, texts: list[str], labels: list[str], batch_size: int, what: str) -> dict:
    model.predict(texts[:64], labels, batch_size=batch_size)  # warm-up and label cache
    out: list = []
    wall, cpu = _measure(lambda: out.extend(model.predict(texts, labels, batch_size=batch_size)))
    return {
        "what": what,
        "items": len(texts),
        "wall_s": wall,
        "cpu_s": cpu,
        "rate": len(texts) / wall,
        "unit": "sentences/s",
        "vs_gliner": len(texts) / wall / GLINER_INFER_SENT_S,
        "load": os.getloadavg()[0],
        "entities": sum(len(p) for p in out),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpora", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpora"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=40)
    ap.add_argument("--infer-sentences", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "span_encoder.json"))
    args = ap.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from b2ner_common.models.span_encoder.model import build_span_encoder, quantize_for_inference
    from b2ner_common.models.span_encoder.train import SpanTrainer, SpanTrainOptions, examples_from_rows

    torch.set_num_threads(args.threads)
    random.seed(0)
    corpora = Path(args.corpora)
    train_rows = conll_rows(corpora, "train", 4000)
    dev_rows = conll_rows(corpora, "dev", args.infer_sentences)
    results = [
        bench_train(train_rows, 16, args.train_steps, 3),
        bench_train(train_rows, 32, args.train_steps, 3),
        bench_train(train_rows, 32, args.train_steps // 2, 0),
    ]
    # Inference on a briefly trained model (an untrained one predicts nothing, which would flatter decoding).
    model = build_span_encoder()
    examples, _ = examples_from_rows(train_rows, model)
    SpanTrainer(model, examples, SpanTrainOptions(batch_size=32, steps=60)).fit()
    texts = [r["text"] for r in dev_rows]
    labels = sorted(CONLL_TYPES.values())
    results.append(bench_infer(model, texts, labels, 64, "inference fp32, batch 64"))
    results.append(bench_infer(model, texts, labels, 16, "inference fp32, batch 16"))
    results.append(
        bench_infer(quantize_for_inference(model), texts, labels, 64, "inference int8 dynamic, batch 64")
    )

    table = Table(
        title=f"span-encoder speed ({args.threads} threads; gliner 0.2.29: 8.3 train/s, 24 infer/s)"
    )
    for col in ("what", "items", "wall s", "cpu s", "rate", "x gliner", "load"):
        table.add_column(col)
    for r in results:
        table.add_row(
            r["what"],
            str(r["items"]),
            f"{r['wall_s']:.1f}",
            f"{r['cpu_s']:.1f}",
            f"{r['rate']:.1f} {r['unit']}",
            f"{r['vs_gliner']:.1f}",
            f"{r['load']:.2f}",
        )
    Console().print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "train_sentences": "conll2003 train",
        "infer": "conll2003 dev",
    }
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2), encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
