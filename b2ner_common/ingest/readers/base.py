"""What every reader shares: the read spec, line decoding, token joining, span checks, record builders.

A reader turns the lines (or records) of one file, or of one chunk of it, into `Sample | Reject`:
exactly one output per input record, so `records_read == accepted + rejected` always holds.
Repairs of the annotation (IOB1 -> BIO, I- after O, trimmed spans, ...) are counted in
`Sample.repairs` and per kind in `ReadStats.extra`, never applied silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from pydantic import BaseModel, ConfigDict

from b2ner_common.schema import Entity, ReadStats, Reject, Sample, make_sample_id

RAW_LIMIT = 4000  # characters of the raw record kept in a reject row


class ReaderOptions(BaseModel):
    """Options every reader accepts; each format adds its own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Overlapping or nested spans: "reject" the record (default) or "keep" them (nested NER data).
    overlaps: Literal["reject", "keep"] = "reject"


@dataclass(frozen=True)
class ReadSpec:
    """Where the records come from and how to read them.

    source: the file's path relative to the corpora root (rows get `source = f"{source}:{line}"`).
    first_line: line number of the first line handed to the reader (chunks start mid-file).
    """

    dataset: str
    split: str
    lang: str
    source: str
    options: ReaderOptions
    first_line: int = 1
    encoding: str = "utf-8"


def numbered_lines(lines: Iterable[str | bytes], spec: ReadSpec) -> Iterator[tuple[int, str | None, str]]:
    """Yield (line number, text or None when it cannot be decoded, raw text for reject rows)."""
    n = spec.first_line - 1
    for line in lines:
        n += 1
        if line.__class__ is str:  # fast path: already decoded
            if n == 1 and line.startswith("\ufeff"):
                line = line[1:]
            if line and line[-1] in "\r\n":
                line = line.rstrip("\r\n")
            yield n, line, line
            continue
        if isinstance(line, bytes):
            try:
                line = line.decode(spec.encoding)
            except UnicodeDecodeError:
                yield n, None, line.decode(spec.encoding, "replace").rstrip("\r\n")
                continue
        if n == 1 and line.startswith("\ufeff"):
            line = line[1:]
        line = line.rstrip("\r\n")
        yield n, line, line


_CJK_RANGES = (
    (0x3000, 0x303F),  # CJK punctuation
    (0x3040, 0x30FF),  # kana
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),  # full-width forms
    (0x20000, 0x2FA1F),
)


def is_cjk(ch: str) -> bool:
    o = ord(ch)
    if o < 0x3000:
        return False
    return any(lo <= o <= hi for lo, hi in _CJK_RANGES)


def join_tokens(tokens: list[str], mode: str) -> tuple[str, list[int]]:
    """Join tokens into text; returns (text, start offset of every token).

    mode "space": one space between tokens; "none": no separator (character corpora);
    "auto": one space, except between two CJK characters (mixed Chinese/Latin token corpora).
    """
    starts: list[int] = []
    pos = 0
    if not tokens:
        return "", starts
    if mode == "none":
        starts = [0, *accumulate(map(len, tokens[:-1]))]
        return "".join(tokens), starts
    if mode == "space":
        starts = [0, *accumulate(len(t) + 1 for t in tokens[:-1])]
        return " ".join(tokens), starts
    spaced = " ".join(tokens)
    if spaced.isascii():  # no CJK possible: plain one-space join
        return spaced, [0, *accumulate(len(t) + 1 for t in tokens[:-1])]
    parts: list[str] = []
    prev = ""
    for t in tokens:
        if parts and not (is_cjk(prev[-1]) and is_cjk(t[0])):
            parts.append(" ")
            pos += 1
        starts.append(pos)
        parts.append(t)
        pos += len(t)
        prev = t
    return "".join(parts), starts


def bump(stats: ReadStats | None, kinds: dict[str, int]) -> None:
    """Add per-kind repair counts to the stats."""
    if stats is None:
        return
    for k, v in kinds.items():
        stats.extra[k] = stats.extra.get(k, 0) + v


def make_sample(spec: ReadSpec, line: int, text: str, entities: list[Entity], repairs: int = 0) -> Sample:
    source = f"{spec.source}:{line}"
    return Sample(
        sample_id=make_sample_id(spec.dataset, spec.split, source, text),
        dataset=spec.dataset,
        split=spec.split,
        lang=spec.lang,
        text=text,
        entities=entities,
        source=source,
        repairs=repairs,
    )


def make_reject(spec: ReadSpec, line: int, reason: str, raw: str) -> Reject:
    return Reject(
        dataset=spec.dataset,
        split=spec.split,
        source=f"{spec.source}:{line}",
        reason=reason,
        raw=raw[:RAW_LIMIT],
    )


def count(stats: ReadStats | None, out: Sample | Reject) -> Sample | Reject:
    """Account one output record in the stats (one call per input record)."""
    if stats is not None:
        stats.records_read += 1
        if isinstance(out, Sample):
            stats.accepted += 1
            stats.entities += len(out.entities)
            stats.repairs += out.repairs
        else:
            stats.rejected += 1
    return out


def check_spans(
    text: str, spans: list[tuple[int, int, str]], overlaps: str
) -> tuple[list[Entity] | None, str | None, dict[str, int]]:
    """Validate character spans [start, end) against `text`.

    Returns (entities, None, repairs) or (None, reason, {}) when the record must be rejected.
    Exact duplicates (same start, end and label) are dropped and counted as `duplicate_span` repairs;
    overlapping or nested spans reject the record unless overlaps == "keep".
    """
    n = len(text)
    repairs: dict[str, int] = {}
    for s, e, lab in spans:
        if not (0 <= s < e <= n):
            return None, f"span [{s},{e}) {lab!r} out of range for text of length {n}", {}
        if not lab:
            return None, f"span [{s},{e}) has an empty label", {}
    ordered = sorted(set(spans), key=lambda x: (x[0], -x[1], x[2]))
    if len(ordered) < len(spans):
        repairs["duplicate_span"] = len(spans) - len(ordered)
    if overlaps == "reject":
        for a, b in zip(ordered, ordered[1:], strict=False):
            if b[0] < a[1]:
                kind = "nested" if b[1] <= a[1] else "overlapping"
                return None, f"{kind} spans [{a[0]},{a[1]}) {a[2]!r} and [{b[0]},{b[1]}) {b[2]!r}", {}
    ents = [Entity(start=s, end=e, label=lab, text=text[s:e]) for s, e, lab in ordered]
    return ents, None, repairs


def trim_span(text: str, s: int, e: int) -> tuple[int, int]:
    """Shrink [s, e) so it neither starts nor ends with whitespace."""
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e
