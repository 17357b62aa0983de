"""LLM answer text -> entities with character offsets into the input text.

The B2NER answer format is ``label: entity; label: entity`` in text order, or ``None``. Real model output
strays from it (fullwidth punctuation, wrong case, a label the prompt never offered, a mention the text does
not contain, a segment cut by the token limit). `parse_answer` never raises: every segment it cannot use
becomes a `ParseProblem`, counted and reported by the caller.

Locating mentions: left to right from the start of the previous entity, preferring an occurrence that
overlaps no entity placed so far ("New York" after "New York Times" is the later one, not the one inside the
organization), so repeated mentions take successive occurrences; then case-insensitive; then whitespace-insensitive (Chinese output with spaces
inserted, English with spaces around punctuation); then anywhere in the text; then without wrapping quotes.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from b2ner_common.schema import PredictedEntity

# Whole answers meaning "no entity" (B2NER's None, plus what models say instead).
_EMPTY_ANSWERS = frozenset({"none", "none.", "无", "没有", "[]", "n/a", "na", "null"})
_SEGMENT_SPLIT = re.compile(r"[;；]")
_COLON = re.compile(r"[:：]")
_QUOTES = "\"'`“”‘’《》「」『』<>()（）[]【】"


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """One segment of an answer that could not be turned into an entity (or was suspicious)."""

    kind: str  # no_separator | empty_label | empty_entity | unknown_label | not_in_text | truncated | empty_output
    segment: str
    detail: str = ""


def summarize_problems(problems: Iterable[ParseProblem]) -> dict[str, int]:
    """Count problems by kind (for run summaries and the predictions table's `error` column)."""
    return dict(sorted(Counter(p.kind for p in problems).items()))


def _norm_label(s: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", s).lower().split())


def split_answer(
    answer: str, labels: Sequence[str] | Mapping[str, str] | None = None, *, truncated: bool = False
) -> tuple[list[tuple[str, str]], list[ParseProblem]]:
    """Split an answer into (label, mention) pairs in answer order.

    labels: the label set offered in the prompt. A segment whose label matches one case-insensitively gets
    the canonical spelling; a label outside the set is kept and flagged (`unknown_label`). Known labels also
    let a mention contain a colon ("movie: Star Wars: Episode IV").
    truncated: the generation hit its token limit, so the last segment may be cut; it is dropped and flagged.
    """
    problems: list[ParseProblem] = []
    body = (answer or "").strip()
    if not body:
        return [], [ParseProblem("empty_output", "", "the model produced no text")]
    if _norm_label(body).strip(" .") in _EMPTY_ANSWERS:
        return [], []
    known = {_norm_label(lbl): str(lbl) for lbl in (labels or [])}
    # Longest first so "date or period" wins over "date" when both are offered.
    known_sorted = sorted(known, key=len, reverse=True)
    segments = [s.strip() for s in _SEGMENT_SPLIT.split(body)]
    if truncated and segments:
        cut = segments.pop()
        if cut:
            problems.append(
                ParseProblem("truncated", cut, "generation hit max_new_tokens; last segment dropped")
            )
    pairs: list[tuple[str, str]] = []
    for seg in segments:
        if not seg:
            continue  # "a: b; ; c: d" or a trailing ";"
        if _norm_label(seg).strip(" .") in _EMPTY_ANSWERS:
            continue  # a stray "None" among entities carries no information
        label, mention = _split_segment(seg, known, known_sorted)
        if label is None:
            problems.append(ParseProblem("no_separator", seg, "segment has no 'label: entity' colon"))
            continue
        if not label:
            problems.append(ParseProblem("empty_label", seg))
            continue
        if not mention:
            problems.append(ParseProblem("empty_entity", seg))
            continue
        if known and _norm_label(label) not in known:
            problems.append(ParseProblem("unknown_label", seg, f"label {label!r} is not in the label set"))
        else:
            label = known.get(_norm_label(label), label)
        pairs.append((label, mention))
    return pairs, problems


def _split_segment(seg: str, known: dict[str, str], known_sorted: list[str]) -> tuple[str | None, str]:
    norm = unicodedata.normalize("NFKC", seg)
    # NFKC maps the fullwidth colon to ":" and keeps length for these scripts in practice; fall back to the
    # raw segment when it does not, so offsets into `seg` stay valid.
    if len(norm) != len(seg):
        norm = seg
    low = norm.lower()
    for key in known_sorted:
        # Compare with collapsed whitespace: "date  or period:" still names "date or period".
        m = re.match(r"\s*" + r"\s+".join(map(re.escape, key.split())) + r"\s*[:：]", low)
        if m:
            return known[key], seg[m.end() :].strip()
    m = _COLON.search(seg)
    if m is None:
        return None, ""
    return seg[: m.start()].strip(), seg[m.end() :].strip()


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF


def _glued(a: str, b: str) -> bool:
    """Two adjacent characters of one word: letter+letter or digit+digit (CJK never counts as glued:
    Chinese entities sit inside other characters; "Obama2015" splits fine)."""
    if _is_cjk(a) or _is_cjk(b):
        return False
    return (a.isalpha() and b.isalpha()) or (a.isdigit() and b.isdigit())


def _on_boundary(text: str, start: int, end: int) -> bool:
    """True unless the span cuts a word ("Paris" inside "Parisian")."""
    left_cut = start > 0 and _glued(text[start - 1], text[start])
    right_cut = end < len(text) and _glued(text[end - 1], text[end])
    return not (left_cut or right_cut)


def _patterns(mention: str) -> list[re.Pattern]:
    exact = re.escape(mention)
    chars = [re.escape(c) for c in mention if not c.isspace()]
    loose = r"\s*".join(chars) if chars else exact
    return [
        re.compile(exact),
        re.compile(exact, re.IGNORECASE),
        re.compile(loose, re.IGNORECASE),
    ]


def _overlaps(span: tuple[int, int], spans: Iterable[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in spans)


def _find(
    text: str,
    pattern: re.Pattern,
    pos: int,
    taken: set[tuple[int, int]],
    avoid: set[tuple[int, int]] | None = None,
) -> tuple[int, int] | None:
    """First match at or after pos that is not taken (and, when `avoid` is given, overlaps none of its
    spans), preferring matches on word boundaries."""
    fallback = None
    p = pos
    while p <= len(text):
        m = pattern.search(text, p)
        if m is None:
            break
        span = (m.start(), m.end())
        if span[1] > span[0] and span not in taken and not (avoid and _overlaps(span, avoid)):
            if _on_boundary(text, *span):
                return span
            fallback = fallback or span
        p = m.start() + 1
    return fallback


def locate(text: str, pairs: Sequence[tuple[str, str]]) -> tuple[list[PredictedEntity], list[ParseProblem]]:
    """Place (label, mention) pairs in `text`, left to right; mentions not found become problems.

    A span already given to an entity is reused (with another label) only when the mention occurs nowhere
    else: "person: Obama; location: Obama" over a text with two "Obama" takes both occurrences.
    """
    entities: list[PredictedEntity] = []
    problems: list[ParseProblem] = []
    cursor = 0
    taken_any: set[tuple[int, int]] = set()
    taken: dict[str, set[tuple[int, int]]] = {}
    for label, mention in pairs:
        used = taken.setdefault(label, set())
        candidates = [mention]
        stripped = mention.strip(_QUOTES).strip()
        if stripped and stripped != mention:
            candidates.append(stripped)
        span = None
        # Tiers, best first: a fresh occurrence clear of every entity so far ("New York" after "New York
        # Times" takes the later, free occurrence, not the one inside the organization); then one nested
        # in an earlier entity; then, only when the mention occurs nowhere else, a span another label holds.
        for excluded, avoid in ((taken_any, taken_any), (taken_any, None), (used, None)):
            for cand in candidates:
                span = _search(text, _patterns(cand), cursor, excluded, avoid)
                if span:
                    break
            if span:
                break
        if span is None:
            problems.append(
                ParseProblem("not_in_text", f"{label}: {mention}", "mention not found in the text")
            )
            continue
        used.add(span)
        taken_any.add(span)
        cursor = span[0]
        entities.append(PredictedEntity(span[0], span[1], label, text[span[0] : span[1]]))
    return entities, problems


def _search(
    text: str,
    pats: list[re.Pattern],
    cursor: int,
    excluded: set[tuple[int, int]],
    avoid: set[tuple[int, int]] | None,
) -> tuple[int, int] | None:
    # Prefer "after the previous entity" over "anywhere": the answer lists entities in text order.
    for start_at in (cursor, 0):
        for pat in pats:
            span = _find(text, pat, start_at, excluded, avoid)
            if span:
                return span
    return None


def parse_answer(
    text: str,
    answer: str,
    labels: Sequence[str] | Mapping[str, str] | None = None,
    *,
    truncated: bool = False,
) -> tuple[list[PredictedEntity], list[ParseProblem]]:
    """Parse a B2NER-format answer for `text` into entities with character offsets (end exclusive).

    Returns (entities in answer order, problems). Never raises on any answer string.
    """
    pairs, problems = split_answer(answer, labels, truncated=truncated)
    entities, missing = locate(text or "", pairs)
    return entities, problems + missing
