"""A small generated multilingual NER corpus (English, Chinese, German) in four real formats + its catalog.

`b2ner run` ingests it when ../shared/corpora is absent, so the main job runs anywhere. Sentences are
built from templates and gazetteers with a fixed seed (same bytes every time). Two deliberately
malformed records (a tag-less line, an out-of-range span) show the rejects path.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import yaml

EN_PER = ["Barack Obama", "Angela Merkel", "Ada Lovelace", "Alan Turing", "Marie Curie", "Lionel Messi"]
EN_LOC = ["Paris", "New York", "Berlin", "the Alps", "Lake Geneva", "Tokyo"]
EN_ORG = ["the United Nations", "Google", "Reuters", "the World Bank", "Siemens", "NASA"]
EN_TEMPLATES = [
    "{PER} visited {LOC} with a delegation from {ORG} .",
    "{ORG} said on Monday that {PER} would stay in {LOC} .",
    "In {LOC} , {PER} met reporters .",
    "{PER} joined {ORG} last year .",
]
ZH_PER = ["李明", "王芳", "张伟", "刘洋", "陈静"]
ZH_LOC = ["北京", "上海", "杭州", "广州", "成都"]
ZH_ORG = ["浙商银行", "清华大学", "新华社", "国家统计局", "阿里巴巴"]
ZH_TEMPLATES = [
    "{PER}昨天在{LOC}参观了{ORG}。",
    "{ORG}表示，{PER}将前往{LOC}。",
    "记者从{ORG}了解到，{LOC}天气晴朗。",
]
DE_PER = ["Angela Merkel", "Thomas Mann", "Clara Schumann"]
DE_LOC = ["Berlin", "Hamburg", "München"]
DE_ORG = ["die Bundesbank", "Siemens", "der FC Bayern"]
DE_TEMPLATES = ["{PER} besuchte {LOC} mit {ORG} .", "In {LOC} sprach {PER} über {ORG} ."]


def _fill(rng: random.Random, template: str, pools: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Template -> [(piece, type or "")] in order."""
    out: list[tuple[str, str]] = []
    rest = template
    while "{" in rest:
        pre, _, tail = rest.partition("{")
        typ, _, rest = tail.partition("}")
        if pre:
            out.append((pre, ""))
        out.append((rng.choice(pools[typ]), typ))
    if rest:
        out.append((rest, ""))
    return out


def _conll_lines(pieces: list[tuple[str, str]], chars: bool) -> list[str]:
    lines = []
    for text, typ in pieces:
        toks = list(text.replace(" ", "")) if chars else text.split()
        for i, t in enumerate(toks):
            tag = "O" if not typ else ("B-" if i == 0 else "I-") + typ
            lines.append(f"{t}\t{tag}")
    return lines


def _spans(pieces: list[tuple[str, str]], sep: str) -> tuple[str, list[dict]]:
    text, ents = "", []
    for piece, typ in pieces:
        piece = piece.strip() if sep else piece
        if text and sep and piece:
            text += sep
        if typ:
            ents.append({"start": len(text), "end": len(text) + len(piece), "label": typ, "text": piece})
        text += piece
    return text, ents


def write_sample_corpus(out_dir: str | Path, n: int = 200, seed: int = 0) -> Path:
    """Write the sample corpus and its `catalog.yaml` under `out_dir`; returns the catalog path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    en = {"PER": EN_PER, "LOC": EN_LOC, "ORG": EN_ORG}
    zh = {"PER": ZH_PER, "LOC": ZH_LOC, "ORG": ZH_ORG}
    de = {"PER": DE_PER, "LOC": DE_LOC, "ORG": DE_ORG}

    # English token<TAB>tag (BIO), train/dev.
    for split, k in (("train", n), ("dev", n // 4)):
        blocks = [
            "\n".join(_conll_lines(_fill(rng, rng.choice(EN_TEMPLATES), en), chars=False)) for _ in range(k)
        ]
        if split == "train":
            blocks[3] = blocks[3] + "\nmalformed-line-without-tag"  # shows the rejects path
        (out / f"sample_en_{split}.tsv").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    # Chinese characters, one per line, BIO.
    blocks = ["\n".join(_conll_lines(_fill(rng, rng.choice(ZH_TEMPLATES), zh), chars=True)) for _ in range(n)]
    (out / "sample_zh_chars.txt").write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    # Chinese JSON lines with span lists.
    rows = []
    for i in range(n // 2):
        text, ents = _spans(_fill(rng, rng.choice(ZH_TEMPLATES), zh), sep="")
        if i == 5:
            ents.append(
                {"start": len(text) + 2, "end": len(text) + 4, "label": "LOC"}
            )  # out of range: rejected
        rows.append(json.dumps({"text": text, "entities": ents}, ensure_ascii=False))
    (out / "sample_zh_spans.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    # German inline markup.
    lines = []
    for _ in range(n // 2):
        text, ents = _spans(_fill(rng, rng.choice(DE_TEMPLATES), de), sep=" ")
        for e in sorted(ents, key=lambda e: -e["start"]):
            text = text[: e["start"]] + "{{" + e["label"] + ":" + e["text"] + "}}" + text[e["end"] :]
        lines.append(text)
    (out / "sample_de_inline.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    catalog = {
        "version": 1,
        "root": ".",
        "datasets": {
            "sample_en": {
                "lang": "en",
                "role": "train_pool",
                "format": "conll",
                "options": {"delimiter": "tab"},
                "files": [
                    {"path": "sample_en_train.tsv", "split": "train", "expected": n},
                    {"path": "sample_en_dev.tsv", "split": "dev", "expected": n // 4},
                ],
            },
            "sample_zh_chars": {
                "lang": "zh",
                "role": "train_pool",
                "format": "conll",
                "options": {"delimiter": "tab", "join": "none"},
                "files": [{"path": "sample_zh_chars.txt", "split": "train", "expected": n}],
            },
            "sample_zh_spans": {
                "lang": "zh",
                "role": "train_pool",
                "format": "jsonl_spans",
                "files": [{"path": "sample_zh_spans.jsonl", "split": "train", "expected": n // 2}],
            },
            "sample_de_inline": {
                "lang": "de",
                "role": "train_pool",
                "format": "inline",
                "files": [{"path": "sample_de_inline.txt", "split": "train", "expected": n // 2}],
            },
        },
    }
    path = out / "catalog.yaml"
    header = "# Generated by b2ner_common.ingest.sample_corpus (b2ner run without ../shared/corpora).\n"
    path.write_text(header + yaml.safe_dump(catalog, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


SAMPLE_TYPES = {"PER": "person", "LOC": "location", "ORG": "organization"}


def write_sample_mappings(catalog_path: str | Path) -> list[Path]:
    """Taxonomy mapping files for the datasets of a generated sample corpus (next to its catalog).

    The generated corpora use CoNLL-style PER/LOC/ORG; without these files `taxonomy check` would
    (rightly) stop the main job on unmapped labels.
    """
    catalog_path = Path(catalog_path)
    catalog = yaml.safe_load(catalog_path.read_text(encoding="utf-8"))
    out = catalog_path.parent / "mappings"
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, entry in catalog["datasets"].items():
        doc = {
            "dataset": name,
            "lang": "zh" if entry["lang"] == "zh" else "en",  # label names shown in Chinese or English
            "role": "train-pool",
            "source": "generated by b2ner_common.ingest.sample_corpus",
            "aliases": [],
            "labels": dict(SAMPLE_TYPES),
        }
        p = out / f"{name}.yaml"
        p.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
        paths.append(p)
    return paths
