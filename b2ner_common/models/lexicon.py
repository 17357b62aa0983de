"""`lexicon` family: a gazetteer matcher (exact, case-insensitive, longest match first).

A real baseline for closed vocabularies (product names, drug lists) and the cheap deterministic predictor
the batch-job tests and engine-overhead benchmarks use. Gazetteer file (`model.path`): JSON or YAML
mapping label -> list of terms, or TSV lines `term<TAB>label`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from b2ner_common.models.base import LabelSpec, per_text_label_sets
from b2ner_common.schema import PredictedEntity

# A Latin term next to a CJK character is still a whole word ("去了Tokyo"): CJK characters are \w to
# Python's regex, so the word boundary of a Latin term excludes them (a letter or digit of another script
# still joins the word).
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"


class LexiconPredictor:
    """Finds gazetteer terms of the requested labels; whole words for Latin script, anywhere for CJK."""

    def __init__(self, lexicon: Mapping[str, Sequence[str]], name: str = "lexicon") -> None:
        self.name = name
        self._by_label: dict[str, list[str]] = {}
        for label, terms in lexicon.items():
            clean = sorted({t for t in terms if t and t.strip()}, key=len, reverse=True)
            self._by_label[" ".join(label.lower().split())] = clean
        self._cache: dict[tuple[str, ...], list[tuple[re.Pattern, str]]] = {}

    def _patterns(self, labels: Sequence[str]) -> list[tuple[re.Pattern, str]]:
        key = tuple(labels)
        if key not in self._cache:
            pats = []
            for label in labels:
                for term in self._by_label.get(" ".join(label.lower().split()), []):
                    body = re.escape(term)
                    left = rf"(?<![^\W{_CJK}])" if term[0].isascii() and term[0].isalnum() else ""
                    right = rf"(?![^\W{_CJK}])" if term[-1].isascii() and term[-1].isalnum() else ""
                    pats.append((re.compile(left + body + right, re.IGNORECASE), label))
            # Longest term first so "New York City" wins over "New York".
            pats.sort(key=lambda p: len(p[0].pattern), reverse=True)
            self._cache[key] = pats
        return self._cache[key]

    def predict(self, texts: Sequence[str], labels: LabelSpec) -> list[list[PredictedEntity]]:
        """Per text, non-overlapping gazetteer matches of the requested labels, in text order."""
        out = []
        for text, label_set in zip(texts, per_text_label_sets(texts, labels), strict=True):
            taken = [False] * len(text)
            ents = []
            for pat, label in self._patterns(list(label_set)):
                for m in pat.finditer(text):
                    if not any(taken[m.start() : m.end()]):
                        taken[m.start() : m.end()] = [True] * (m.end() - m.start())
                        ents.append(PredictedEntity(m.start(), m.end(), label, m.group(0), 1.0))
            out.append(sorted(ents, key=lambda e: (e.start, e.end, e.label)))
        return out


def read_lexicon(path: str | Path) -> dict[str, list[str]]:
    """Read a gazetteer file (JSON/YAML label -> terms, or TSV term<TAB>label); errors name the line."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"lexicon file {p} does not exist (set model.path to a JSON/YAML/TSV gazetteer)"
        )
    if p.suffix in {".tsv", ".txt"}:
        lex: dict[str, list[str]] = {}
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 2:
                raise ValueError(f"{p}:{n}: expected 'term<TAB>label', got {line!r}")
            lex.setdefault(parts[1].strip(), []).append(parts[0].strip())
        return lex
    data = (
        json.loads(p.read_text(encoding="utf-8"))
        if p.suffix == ".json"
        else yaml.safe_load(p.read_text("utf-8"))
    )
    if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
        raise ValueError(f"{p}: expected a mapping label -> list of terms")
    return {str(k): [str(t) for t in v] for k, v in data.items()}


def load_lexicon_predictor(model_cfg) -> LexiconPredictor:
    """Factory for the registry: `model.family: lexicon`, `model.path: gazetteer file`."""
    return LexiconPredictor(read_lexicon(model_cfg.path), name=f"lexicon:{Path(model_cfg.path).name}")
