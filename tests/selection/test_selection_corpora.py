"""Integration: real corpus text (CoNLL-2003, WNUT-17 train; CrossNER-AI as the evaluation set) through
silver -> `embed` (Spark, MiniLM) -> `select` (Spark), checked against independent counts."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.schema import SILVER_SAMPLES, make_sample_id
from b2ner_common.selection import selected_samples

pytestmark = [pytest.mark.slow, pytest.mark.corpora]

# Enough of a label map for this test; the taxonomy stage owns the real one.
TYPES = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous",
         "person": "person", "location": "location", "corporation": "organization", "group": "group",
         "product": "product", "creative-work": "creative work", "algorithm": "algorithm", "field": "field",
         "task": "task", "researcher": "person", "university": "organization", "programlang": "programming language",
         "misc": "miscellaneous", "metrics": "metric", "organisation": "organization", "country": "country",
         "conference": "conference", "product_ai": "product"}  # fmt: skip


def read_bio(path: Path, limit: int) -> list[tuple[str, list[dict]]]:
    """(text, entities) from a token<ws>tag file; tokens joined with one space, tags BIO or IOB1."""
    out, toks, tags = [], [], []

    def flush():
        if not toks:
            return
        text, ents, pos, cur = "", [], 0, None
        for tok, tag in zip(toks, tags, strict=True):
            start = pos + (1 if text else 0)
            text += (" " if text else "") + tok
            pos = len(text)
            kind = tag.split("-", 1)[1] if "-" in tag else None
            if kind and (tag.startswith("B-") or cur is None or cur["kind"] != kind):
                cur = {"start": start, "end": pos, "kind": kind}
                ents.append(cur)
            elif kind:
                cur["end"] = pos
            else:
                cur = None
        out.append(
            (
                text,
                [
                    {
                        "start": e["start"],
                        "end": e["end"],
                        "label": e["kind"],
                        "text": text[e["start"] : e["end"]],
                        "type": TYPES.get(e["kind"], e["kind"].lower()),
                    }
                    for e in ents
                ],
            )  # fmt: skip
        )
        toks.clear()
        tags.clear()

    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or parts[0] == "-DOCSTART-":
            flush()
            if len(out) >= limit:
                break
            continue
        toks.append(parts[0])
        tags.append(parts[-1])
    flush()
    return out[:limit]


def silver_table(dataset: str, items: list[tuple[str, list[dict]]]) -> list[dict]:
    return [
        {
            "sample_id": make_sample_id(dataset, "train", f"train:{i}", text),
            "dataset": dataset,
            "split": "train",
            "lang": "en",
            "text": text,
            "entities": ents,
            "source": f"train:{i}",
            "repairs": 0,
            "label_set": sorted({e["type"] for e in ents}),
        }
        for i, (text, ents) in enumerate(items)
    ]


def norm(text: str) -> str:
    return re.sub(r"\s+", "", text.lower())


def test_selection_corpora_embed_and_select_end_to_end(corpora_dir, spark, warehouse, tmp_path):
    from spark_jobs.embed import run_embed
    from spark_jobs.select import run_select

    conll = read_bio(corpora_dir / "conll2003" / "eng.train", 260)
    wnut = read_bio(corpora_dir / "wnut17" / "wnut17train.conll", 160)
    ai = read_bio(corpora_dir / "crossner_ai" / "train.txt", 60)
    # Five CrossNER-AI sentences slipped into the CoNLL candidates: decontamination must catch exactly these.
    conll_all = conll + ai[:5]
    rows = (
        silver_table("conll2003", conll_all) + silver_table("wnut17", wnut) + silver_table("crossner_ai", ai)
    )
    tables.write_table(
        tables.table_path(warehouse, "silver/samples"), pa.Table.from_pylist(rows, schema=SILVER_SAMPLES)
    )

    cfg = load_config(
        None,
        [
            f"warehouse={warehouse}",
            "select.budget_per_dataset=50",
            f"select.report_dir={tmp_path}",
            "select.run_id=real",
        ],
    )
    emb = run_embed(cfg, spark)
    # Only selection candidates are embedded: CrossNER-AI is OOD-DEV, used for decontamination by text alone.
    assert emb.computed == len(conll_all) + len(wnut)
    res = run_select(cfg, spark)
    stats = {s["dataset"]: s for s in res.stats}
    assert set(stats) == {"conll2003", "wnut17"}

    eval_norm = {norm(t) for t, _ in ai}
    for name, items in (("conll2003", conll_all), ("wnut17", wnut)):
        c = stats[name]["cleaning"]
        # Independent counts: contaminated = texts also in CrossNER-AI; exact duplicates among the rest.
        contaminated = sum(norm(t) in eval_norm for t, _ in items)
        rest = [norm(t) for t, _ in items if norm(t) not in eval_norm]
        assert c["input"] == len(items)
        assert c["contaminated"] == contaminated
        assert c["exact_duplicate"] == len(rest) - len(set(rest))
        assert c["input"] == c["contaminated"] + c["exact_duplicate"] + c["near_duplicate"] + c["kept"]
        assert stats[name]["selected"] == 50
        # Every type still present after cleaning is represented in the selection (types seen only in the
        # contaminated rows, e.g. CrossNER's `algorithm` in conll2003, are gone with them).
        picked = {t for t, v in stats[name]["types"].items() if v["selected"] > 0}
        assert picked == {t for t, v in stats[name]["types"].items() if v["after_cleaning"] > 0}
        # On real embeddings both strategies leave samples closer to their nearest pick than random does at
        # equal size (on 160 tweets the margins are small: MiniLM spreads tweets far apart).
        cov = stats[name]["coverage"]
        assert cov["kmeans"]["mean"] < cov["random"]["mean"]
        assert cov["kcenter"]["mean"] < cov["random"]["mean"]
    assert stats["conll2003"]["cleaning"]["contaminated"] >= 5
    assert stats["conll2003"]["types"]["algorithm"]["after_cleaning"] == 0

    got = selected_samples(warehouse, "real")
    assert got.num_rows == 100
    assert not {norm(t) for t in got["text"].to_pylist()} & eval_norm
    assert "Coverage" in res.report.read_text()
