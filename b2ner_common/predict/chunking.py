"""Long documents -> overlapping chunks -> entities mapped back to document offsets.

Every predictor runs through `predict_documents`: documents longer than `max_chars` are cut into chunks
(at a sentence end where possible, else at whitespace, else hard), consecutive chunks overlap by about
`overlap_chars` so an entity cut by one boundary is whole in the neighbouring chunk, entity offsets are
shifted back into the document, and the same (start, end, label) found by two chunks is kept once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from b2ner_common.models.base import (
    LabelSpec,
    PredictedEntity,
    Prediction,
    per_text_label_sets,
    predict_detailed,
)

_SENTENCE_END = re.compile(r"[.!?。！？；;…]+[\"'”’)）\]]*\s*|\n+")


@dataclass(frozen=True, slots=True)
class Chunk:
    start: int  # offset of the chunk in the document
    text: str

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _cut_point(text: str, lo: int, hi: int) -> int:
    """Best cut in (lo, hi]: after the last sentence end, else after the last whitespace, else hi."""
    window = text[lo:hi]
    best = None
    for m in _SENTENCE_END.finditer(window):
        best = lo + m.end()
    if best is not None and best > lo:
        return best
    ws = max(window.rfind(" "), window.rfind("\t"), window.rfind("\n"))
    if ws > 0:
        return lo + ws + 1
    return hi


def chunk_text(text: str, max_chars: int, overlap_chars: int = 0) -> list[Chunk]:
    """Split `text` into chunks of at most `max_chars` characters overlapping by about `overlap_chars`.

    A text that fits is one chunk. Chunks cover the whole text; `chunk.text == text[start:end]`.
    """
    if max_chars <= 0:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    overlap_chars = max(0, min(overlap_chars, max_chars // 2))
    if len(text) <= max_chars:
        return [Chunk(0, text)]
    chunks: list[Chunk] = []
    start = 0
    while True:
        hard_end = start + max_chars
        if hard_end >= len(text):
            chunks.append(Chunk(start, text[start:]))
            return chunks
        # Look for a natural cut only in the second half so chunks do not shrink to slivers.
        end = _cut_point(text, start + max_chars // 2, hard_end)
        chunks.append(Chunk(start, text[start:end]))
        nxt = end - overlap_chars
        if overlap_chars:
            # Start the next chunk at a word start inside the overlap, not mid-word.
            ws = text.find(" ", nxt, end)
            if 0 <= ws < end - 1:
                nxt = ws + 1
        start = max(nxt, start + 1)


def merge_chunk_entities(chunks: Sequence[Chunk], per_chunk: Sequence[Sequence[PredictedEntity]], text: str):
    """Shift chunk-local entities to document offsets and merge duplicates from overlapping chunks.

    An entity touching an interior cut edge (possibly cut in half) is dropped when a neighbouring chunk
    covers that region; among duplicates of (start, end, label) the highest score is kept.
    Returns entities sorted by (start, end, label).
    """
    best: dict[tuple[int, int, str], PredictedEntity] = {}
    last = len(chunks) - 1
    for i, (chunk, ents) in enumerate(zip(chunks, per_chunk, strict=True)):
        for e in ents:
            if i < last and e.end >= len(chunk.text) and chunks[i + 1].start < chunk.start + e.end:
                continue  # touches the right cut; the next chunk sees it whole
            if i > 0 and e.start <= 0 and chunks[i - 1].end > chunk.start:
                continue  # touches the left cut; the previous chunk sees it whole
            s, t = chunk.start + e.start, chunk.start + e.end
            doc_e = PredictedEntity(s, t, e.label, text[s:t], e.score)
            key = (s, t, e.label)
            old = best.get(key)
            if old is None or (e.score or 0.0) > (old.score or 0.0):
                best[key] = doc_e
    return [best[k] for k in sorted(best)]


@dataclass(slots=True)
class DocumentPrediction:
    """One document's result: entities in document offsets plus what the predictor reported."""

    entities: list[PredictedEntity]
    raw_output: str = ""
    truncated: bool = False
    problems: list = field(default_factory=list)
    chunks: int = 1


def predict_documents(
    predictor,
    texts: Sequence[str],
    labels: LabelSpec,
    *,
    max_chars: int = 2000,
    overlap_chars: int = 200,
    max_chunks: int | None = None,
    langs: Sequence[str | None] | None = None,
) -> list[DocumentPrediction]:
    """Run `predictor` over whole documents: chunk, predict all chunks in one batch, map back, merge.

    labels: one label set for all texts or one per text (per-text sets follow their chunks).
    max_chunks: cap per document; chunks past it are not predicted and the document is flagged truncated.
    langs: optional language per document ("en"/"zh"), passed to families that take it (the LLM prompt).
    """
    label_sets = per_text_label_sets(texts, labels)
    flat_texts: list[str] = []
    flat_labels: list[dict[str, str]] = []
    flat_langs: list[str | None] = []
    owners: list[tuple[int, Chunk]] = []
    cut_docs: set[int] = set()
    doc_chunks: list[list[Chunk]] = []
    for i, text in enumerate(texts):
        chunks = chunk_text(text or "", max_chars, overlap_chars)
        if max_chunks is not None and len(chunks) > max_chunks:
            chunks = chunks[:max_chunks]
            cut_docs.add(i)
        doc_chunks.append(chunks)
        for c in chunks:
            flat_texts.append(c.text)
            flat_labels.append(label_sets[i])
            flat_langs.append(langs[i] if langs is not None else None)
            owners.append((i, c))
    preds: list[Prediction] = (
        predict_detailed(predictor, flat_texts, flat_labels, flat_langs if langs is not None else None)
        if flat_texts
        else []
    )
    out: list[DocumentPrediction] = []
    k = 0
    for i, text in enumerate(texts):
        n = len(doc_chunks[i])
        mine = preds[k : k + n]
        k += n
        ents = merge_chunk_entities(doc_chunks[i], [p.entities for p in mine], text or "")
        raw = (
            mine[0].raw_output
            if n == 1
            else "\n".join(
                f"[chunk {c.start}] {p.raw_output}" for c, p in zip(doc_chunks[i], mine, strict=True)
            )
        )
        out.append(
            DocumentPrediction(
                entities=ents,
                raw_output=raw,
                truncated=i in cut_docs or any(p.truncated for p in mine),
                problems=[q for p in mine for q in p.problems],
                chunks=n,
            )
        )
    return out
