"""The out-of-domain benchmark runner (the B2NER protocol) and B2NER prediction-file scoring.

- Gold: samples of the OOD-DEV datasets from silver/samples (or bronze/samples + the taxonomy mappings),
  first split found of `evaluate.splits`. Labels are shown and scored as taxonomy natural names in the
  dataset's language (CrossNER `programlang` -> "programming language").
- Scores per dataset: `b2ner_f1` (string pairs; from the raw answer for generative models, as B2NER does)
  and strict `span_f1`; per language: the unweighted mean over datasets; over seeds: mean +/- sd.
- Protocol "ours" (default): labels shuffled per sentence by the seed; per-language averages.
  Protocol "official" (`official.py`): each dataset's labels in one fixed order for every sentence and
  seed; the official group, sub-group and overall averages, with missing official members named.
- B2NER's own `predict_eval_predictions.jsonl` files (fields Task, Dataset, Language, Instance.sentence,
  Instance.ground_truth, Prediction) are scored with the same b2ner_f1, one file per seed.
The report (`report.md`, `report.png`, `scores.json`) is written by `report.write_report`.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from b2ner_common.evaluation import official
from b2ner_common.metrics import PRF, b2ner_f1, language_average, mean_sd, pairs_answer, span_f1
from b2ner_common.models.base import predict_detailed
from b2ner_common.ood import OOD_DATASETS
from b2ner_common.tables import Table


@dataclass
class GoldSet:
    """One dataset's evaluation sentences with gold entities labelled by their displayed names."""

    dataset: str
    lang: str
    split: str
    label_names: list[str]
    texts: list[str]
    entities: list[list[tuple[int, int, str, str]]]  # (start, end, label name, text) per sentence


@dataclass
class DatasetScore:
    dataset: str
    lang: str
    seed: int
    n: int
    b2ner: PRF
    span: PRF
    parse_problems: int = 0


@dataclass
class EvalResult:
    """Scores of one model over datasets and seeds, aggregated for the report."""

    name: str
    scores: list[DatasetScore] = field(default_factory=list)
    protocol: str = "ours"  # "official": fixed label order, the official aggregation in the report

    def per_dataset(self) -> dict[str, dict]:
        by: dict[str, list[DatasetScore]] = defaultdict(list)
        for s in self.scores:
            by[s.dataset].append(s)
        out = {}
        for ds, runs in by.items():
            b_mean, b_sd = mean_sd([100 * r.b2ner.f1 for r in runs])
            s_mean, s_sd = mean_sd([100 * r.span.f1 for r in runs])
            out[ds] = {
                "lang": runs[0].lang,
                "n": runs[0].n,
                "seeds": len(runs),
                "b2ner_f1": b_mean,
                "b2ner_f1_sd": b_sd,
                "span_f1": s_mean,
                "span_f1_sd": s_sd,
                "precision": mean_sd([100 * r.b2ner.precision for r in runs])[0],
                "recall": mean_sd([100 * r.b2ner.recall for r in runs])[0],
                "parse_problems": sum(r.parse_problems for r in runs),
            }
        return out

    def per_language(self) -> dict[str, dict]:
        """Per language: the mean over datasets computed per seed, then mean +/- sd over seeds."""
        seeds = sorted({s.seed for s in self.scores})
        out = {}
        for lang in sorted({s.lang for s in self.scores}):
            b, sp = [], []
            for seed in seeds:
                runs = [s for s in self.scores if s.lang == lang and s.seed == seed]
                if runs:
                    b.append(100 * language_average({r.dataset: r.b2ner.f1 for r in runs}))
                    sp.append(100 * language_average({r.dataset: r.span.f1 for r in runs}))
            datasets = sorted({s.dataset for s in self.scores if s.lang == lang})
            out[lang] = {
                "datasets": datasets,
                "b2ner_f1": mean_sd(b)[0],
                "b2ner_f1_sd": mean_sd(b)[1],
                "span_f1": mean_sd(sp)[0],
                "span_f1_sd": mean_sd(sp)[1],
            }
        return out

    def official_groups(self) -> list[dict]:
        """The official averages (b2ner F1 x 100) per run, then mean +/- sd over runs (`official.py`)."""
        runs = []
        for seed in sorted({s.seed for s in self.scores}):
            mine = [s for s in self.scores if s.seed == seed]
            runs.append(({s.dataset: 100 * s.b2ner.f1 for s in mine}, {s.dataset: s.lang for s in mine}))
        return official.official_over_runs(runs)

    def as_dict(self) -> dict:
        out = {
            "name": self.name,
            "protocol": self.protocol,
            "per_dataset": self.per_dataset(),
            "per_language": self.per_language(),
        }
        if self.protocol == "official":
            out["official"] = self.official_groups()
        return out


# ------------------------------------------------------------------------------------------ gold


def ood_datasets(lang: str | None = None) -> list[str]:
    """The OOD-DEV benchmark datasets (one language or all)."""
    return list(OOD_DATASETS[lang]) if lang else [d for ds in OOD_DATASETS.values() for d in ds]


def canonical_dataset(name: str) -> str:
    """Our dataset name for a B2NER one: CrossNER_AI -> crossner_ai, mit-movie -> mit_movie, CBLUE -> cmeee."""
    return official.canonical_dataset(name)


def dataset_lang(dataset: str) -> str:
    for lang, names in OOD_DATASETS.items():
        if dataset in names:
            return lang
    return "zh" if dataset.endswith("_zh") else "en"


def gold_from_rows(
    rows: Sequence[Mapping],
    dataset: str,
    *,
    splits: Sequence[str],
    max_samples: int | None = None,
    taxonomy=None,
    mappings: Mapping | None = None,
) -> GoldSet:
    """Build a GoldSet from silver/bronze sample rows of one dataset (taxonomy names for labels).

    Rows without `type` on their entities (bronze) are mapped with the dataset's taxonomy mapping.
    Entities whose raw label is deliberately not kept (type null) are not gold and not offered as labels.
    `taxonomy`/`mappings` default to the shipped v1 ones (pass the config's for user datasets).
    """
    from b2ner_common.taxonomy import dataset_label_set, find_mapping, load_mappings, load_taxonomy

    present = {r["split"] for r in rows}
    split = next((s for s in splits if s in present), None)
    if split is None:
        raise ValueError(
            f"dataset {dataset!r}: none of the splits {list(splits)} present (found {sorted(present)})"
        )
    rows = sorted((r for r in rows if r["split"] == split), key=lambda r: r["sample_id"])
    if max_samples is not None and len(rows) > max_samples:
        # Fixed sampling seed: every model and every seed sees the same sentences.
        rows = sorted(random.Random(0).sample(rows, max_samples), key=lambda r: r["sample_id"])
    lang = rows[0]["lang"] if rows and rows[0].get("lang") in ("en", "zh") else dataset_lang(dataset)
    taxonomy = taxonomy or load_taxonomy()
    mapping = find_mapping(mappings if mappings is not None else load_mappings(), dataset)
    types_by_raw = {raw: m.type for raw, m in mapping.labels.items()}
    label_types: list[str] = []
    texts, ents = [], []
    for r in rows:
        sent = []
        for e in r["entities"] or []:
            t = e.get("type") or types_by_raw.get(e["label"])
            if not t:
                continue
            sent.append((int(e["start"]), int(e["end"]), taxonomy.name(t, lang), e["text"]))
        texts.append(r["text"])
        ents.append(sorted(sent))
        for t in r.get("label_set") or []:
            if t not in label_types:
                label_types.append(t)
    if not label_types:
        raw_present = {e["label"] for r in rows for e in (r["entities"] or [])}
        label_types = dataset_label_set(mapping, raw_present)
    return GoldSet(dataset, lang, split, [taxonomy.name(t, lang) for t in label_types], texts, ents)


def load_gold(cfg, datasets: Sequence[str]) -> dict[str, GoldSet]:
    """Gold sets for `datasets` from silver/samples (else bronze/samples) under cfg.warehouse."""
    from deltalake import DeltaTable

    from b2ner_common import tables
    from b2ner_common.taxonomy import load_mappings, load_taxonomy

    taxonomy = load_taxonomy(cfg.taxonomy.version)
    mappings = load_mappings(cfg.taxonomy.version, cfg.taxonomy.mappings)
    candidates = [cfg.evaluate.table] if cfg.evaluate.table else [Table.SILVER_SAMPLES, Table.BRONZE_SAMPLES]
    for name in candidates:
        path = name if "/" in name and Path(name).is_absolute() else tables.table_path(cfg.warehouse, name)
        if not tables.table_exists(path):
            continue
        t = DeltaTable(path).to_pyarrow_table(filters=[("dataset", "in", list(datasets))])
        rows = t.to_pylist()
        out = {}
        for ds in datasets:
            mine = [r for r in rows if r["dataset"] == ds]
            if mine:
                out[ds] = gold_from_rows(
                    mine,
                    ds,
                    splits=cfg.evaluate.splits,
                    max_samples=cfg.evaluate.max_samples,
                    taxonomy=taxonomy,
                    mappings=mappings,
                )
        missing = [d for d in datasets if d not in out]
        if missing:
            raise FileNotFoundError(f"{path}: no samples for {missing}; run `b2ner ingest` for them first")
        return out
    raise FileNotFoundError(
        f"no samples table under {cfg.warehouse} (looked for {candidates}); run `b2ner ingest` (and taxonomy) first"
    )


# ------------------------------------------------------------------------------------------ scoring


def score_gold(
    gold: GoldSet,
    predictor,
    *,
    seed: int = 0,
    batch_size: int = 16,
    label_order: Sequence[str] | None = None,
) -> DatasetScore:
    """Predict every sentence of `gold` and score it.

    Labels are shown shuffled per sentence by `seed` (our protocol), or, with `label_order`, in that one
    order for every sentence (the official protocol; `seed` then changes nothing).
    """
    rng = random.Random(seed)
    b_gold, b_pred, s_gold, s_pred = [], [], [], []
    problems = 0
    for s in range(0, len(gold.texts), batch_size):
        texts = gold.texts[s : s + batch_size]
        label_sets = []
        for _ in texts:
            names = list(gold.label_names if label_order is None else label_order)
            if label_order is None:
                rng.shuffle(names)
            label_sets.append(names)
        preds = predict_detailed(predictor, texts, label_sets, [gold.lang] * len(texts))
        for ents, p in zip(gold.entities[s : s + batch_size], preds, strict=True):
            b_gold.append(pairs_answer([(lbl, txt) for _, _, lbl, txt in ents]))
            # Generative models are scored on their answer text, as B2NER does; others on their entities.
            b_pred.append(
                p.raw_output if p.raw_output else pairs_answer([(e.label, e.text) for e in p.entities])
            )
            s_gold.append([(a, b, lbl) for a, b, lbl, _ in ents])
            s_pred.append([(e.start, e.end, e.label) for e in p.entities])
            problems += len(p.problems)
    return DatasetScore(
        gold.dataset,
        gold.lang,
        seed,
        len(gold.texts),
        b2ner_f1(b_gold, b_pred),
        span_f1(s_gold, s_pred),
        problems,
    )


def evaluate_predictor(
    predictor,
    golds: Mapping[str, GoldSet],
    seeds: Iterable[int],
    *,
    name: str,
    batch_size: int = 16,
    progress=None,
    protocol: str = "ours",
    label_orders: Mapping[str, Sequence[str]] | None = None,
) -> EvalResult:
    """Score `predictor` on every gold set for every seed.

    `protocol="official"`: each dataset's labels in one fixed order (`official.fixed_label_order`: the
    gold set's order, or `label_orders[dataset]` where given) and the official aggregation in the report.
    """
    if protocol not in ("ours", "official"):
        raise ValueError(f"evaluate.protocol: {protocol!r} is not one of 'ours', 'official'")
    orders = {
        ds: official.fixed_label_order(ds, g.label_names, (label_orders or {}).get(ds))
        for ds, g in golds.items()
        if protocol == "official"
    }
    result = EvalResult(name, protocol=protocol)
    for seed in seeds:
        for gold in golds.values():
            result.scores.append(
                score_gold(
                    gold, predictor, seed=seed, batch_size=batch_size, label_order=orders.get(gold.dataset)
                )
            )
            if progress:
                progress(gold.dataset, seed)
    return result


def read_b2ner_predictions(path: str | Path) -> list[dict]:
    """Records of a B2NER `predict_eval_predictions.jsonl`; errors name the file and line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"prediction file {p} does not exist")
    out = []
    with p.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                inst = rec["Instance"]
                out.append(
                    {
                        "task": rec.get("Task", "NER"),
                        "dataset": rec["Dataset"],
                        "lang": rec.get("Language") or "",
                        "sentence": inst.get("sentence", ""),
                        "ground_truth": inst["ground_truth"],
                        "prediction": rec.get("Prediction") or "",
                    }
                )
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(
                    f"{p}:{n}: not a B2NER prediction record ({type(e).__name__}: {e}); expected "
                    "Task, Dataset, Instance.ground_truth, Prediction"
                ) from None
    return out


def score_b2ner_predictions(
    paths: Sequence[str | Path], name: str = "predictions", protocol: str = "ours"
) -> EvalResult:
    """Score B2NER prediction files (one per seed) with b2ner_f1, per dataset and language.

    The prompts' label order is whatever the files were generated with; `protocol="official"` adds the
    official aggregation to the report. Only NER records count. Language: the record's `Language`, else detected from the sentence.
    Span F1 is not defined for these files (no offsets) and is reported as 0.
    """
    from b2ner_common.models.llm.predictor import detect_lang

    result = EvalResult(name, protocol=protocol)
    for seed, path in enumerate(paths):
        by: dict[str, list[dict]] = defaultdict(list)
        for r in read_b2ner_predictions(path):
            if "NER" in r["task"]:
                by[r["dataset"]].append(r)
        for ds, recs in sorted(by.items()):
            lang = recs[0]["lang"] or detect_lang(recs[0]["sentence"])
            score = b2ner_f1([r["ground_truth"] for r in recs], [r["prediction"] for r in recs])
            result.scores.append(DatasetScore(ds, lang, seed, len(recs), score, PRF()))
    return result
