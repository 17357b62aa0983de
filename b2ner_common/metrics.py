"""F1 definitions: `b2ner_f1` (B2NER's string-pair F1, for comparison with published numbers) and
strict `span_f1` (exact character offsets and type).

b2ner_f1 follows the B2NER evaluation protocol: per sentence, the answer string (gold or predicted,
``label: entity; label: entity``) is normalized, split on ";" and every piece with a ":" becomes one
"label:entity" string; the sentence contributes the set of those strings (duplicates collapse), and
TP/FP/FN are summed over the dataset (micro P/R/F1). A language's score is the unweighted mean of its
datasets' F1. The normalization (`b2ner_normalize`) reproduces B2NER's rules, quirks included
("organisation" -> "organization" anywhere in the string), because published numbers were computed with them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from b2ner_common.prompts import format_answer

_SPACE_AROUND = re.compile(r"\s*([,:().;'_-])\s*")
_TRANSLATE = str.maketrans({"；": ";", "：": ":", "，": ",", "’": "'", "‘": "'", "“": '"', "”": '"'})
_BOOK_TITLE = re.compile(r"《(.+?)》")
_WRAPPED = re.compile(r"^[《》<>（）()]+(.+?)[《》<>（）()]+$")


def b2ner_normalize(s: str) -> str:
    """B2NER's normalization of one answer string or piece.

    Whitespace runs -> one space; no space next to , : ( ) . ; ' _ -; lower case; braces removed; repeated
    , . ; collapsed; fullwidth ；：， and curly quotes -> ASCII; "located"/"organisation" spelled as
    "location"/"organization"; in the part after the last ":", leading/trailing @ and #, a 《book title》
    wrapper and wrapping brackets are removed.
    """
    s = " ".join(s.split())
    s = _SPACE_AROUND.sub(r"\1", s)
    s = s.lower().replace("{", "").replace("}", "")
    s = re.sub(",+", ",", s)
    s = re.sub(r"\.+", ".", s)
    s = re.sub(";+", ";", s)
    # Order matters (B2NER quirk): fullwidth marks become ASCII only after the spacing rule, so a space
    # after "：" survives this pass and is removed when the piece is normalized again.
    s = s.translate(_TRANSLATE)
    s = s.replace("located", "location").replace("organisation", "organization")
    if ":" in s:
        head, _, last = s.rpartition(":")
        last = re.sub(r"^[@#]+", "", last)
        last = re.sub(r"[@#]+$", "", last)
        book = _BOOK_TITLE.findall(last)
        if book:
            last = book[0]
        wrapped = _WRAPPED.findall(last)
        if wrapped:
            last = wrapped[0]
        s = f"{head}:{last}"
    return s


def b2ner_pairs(answer: str) -> set[str]:
    """The set of normalized "label:entity" strings of one answer (gold or predicted)."""
    out = set()
    for piece in b2ner_normalize(answer).split(";"):
        piece = b2ner_normalize(piece)
        if ":" in piece:
            out.add(piece)
    return out


def pairs_answer(pairs: Iterable[tuple[str, str]]) -> str:
    """(label, entity text) pairs -> the B2NER answer string (what a perfect model would generate)."""
    return format_answer(list(pairs))


@dataclass(slots=True)
class PRF:
    """Micro counts and the scores derived from them (0 where a denominator is 0, as in B2NER)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, gold: set, pred: set) -> None:
        self.tp += len(gold & pred)
        self.fn += len(gold - pred)
        self.fp += len(pred - gold)

    def as_dict(self) -> dict[str, float]:
        return {
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
        }


def b2ner_f1(
    gold: Sequence[str | Iterable[tuple[str, str]]], pred: Sequence[str | Iterable[tuple[str, str]]]
) -> PRF:
    """B2NER F1 over sentences; each item is an answer string or a list of (label, entity text) pairs."""
    if len(gold) != len(pred):
        raise ValueError(f"b2ner_f1: {len(gold)} gold sentences but {len(pred)} predictions")
    score = PRF()
    for g, p in zip(gold, pred, strict=True):
        ga = g if isinstance(g, str) else pairs_answer(g)
        pa_ = p if isinstance(p, str) else pairs_answer(p)
        score.add(b2ner_pairs(ga), b2ner_pairs(pa_))
    return score


def span_f1(
    gold: Sequence[Iterable[tuple[int, int, str]]], pred: Sequence[Iterable[tuple[int, int, str]]]
) -> PRF:
    """Strict F1: a prediction counts only with the exact (start, end, type) of a gold entity."""
    if len(gold) != len(pred):
        raise ValueError(f"span_f1: {len(gold)} gold sentences but {len(pred)} predictions")
    score = PRF()
    for g, p in zip(gold, pred, strict=True):
        score.add({(int(s), int(e), str(t)) for s, e, t in g}, {(int(s), int(e), str(t)) for s, e, t in p})
    return score


def language_average(f1_by_dataset: dict[str, float]) -> float:
    """Unweighted mean over datasets (B2NER's per-language score); 0.0 for no datasets."""
    return sum(f1_by_dataset.values()) / len(f1_by_dataset) if f1_by_dataset else 0.0


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n-1) over seeds; sd is 0.0 for a single seed."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    mean = sum(values) / n
    if n == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
