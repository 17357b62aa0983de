"""Inline markup corpora: one passage per line with entities written in place as `{{type:mention}}` (Boson).

The markup is removed from the text and each mention becomes a span. Nested markup is parsed with a
stack: Boson doubly annotates some mentions (`{{time:{{time:本周}}}}`), which decode to one span plus a
counted `duplicate_span` repair. Whitespace just inside the markup is kept in the text but trimmed
from the span (`span_trimmed` repair). Unbalanced or malformed markup rejects the passage.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from b2ner_common.ingest.readers.base import (
    ReaderOptions,
    ReadSpec,
    bump,
    check_spans,
    count,
    make_reject,
    make_sample,
    numbered_lines,
    trim_span,
)
from b2ner_common.schema import ReadStats, Reject, Sample


class InlineOptions(ReaderOptions):
    open: str = "{{"
    close: str = "}}"
    sep: str = ":"  # between the type and the mention
    max_label_chars: int = 40  # a longer "type" means the `{{` was not markup


def read_inline(
    lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """One Sample or Reject per non-blank line."""
    o = spec.options
    assert isinstance(o, InlineOptions)
    for n, line, raw in numbered_lines(lines, spec):
        if line is None:
            yield count(stats, make_reject(spec, n, f"line {n}: cannot decode as {spec.encoding}", raw))
            continue
        if not line.strip():
            continue
        yield count(stats, _passage(spec, n, line, o, stats))


def parse_inline(line: str, o: InlineOptions) -> tuple[str, list[tuple[int, int, str]]]:
    """Strip markup from `line`; returns (text, spans). Raises ValueError naming the column on bad markup."""
    out: list[str] = []
    size = 0
    stack: list[tuple[str, int]] = []
    spans: list[tuple[int, int, str]] = []
    i = 0
    n = len(line)
    while i < n:
        j_open = line.find(o.open, i)
        j_close = line.find(o.close, i)
        if j_open < 0 and j_close < 0:
            break
        if j_close >= 0 and (j_open < 0 or j_close < j_open):
            if not stack:
                raise ValueError(f"unbalanced {o.close!r} at column {j_close + 1}")
            out.append(line[i:j_close])
            size += j_close - i
            label, start = stack.pop()
            spans.append((start, size, label))
            i = j_close + len(o.close)
            continue
        out.append(line[i:j_open])
        size += j_open - i
        k = line.find(o.sep, j_open + len(o.open))
        label = line[j_open + len(o.open) : k] if k >= 0 else ""
        if (
            k < 0
            or not label.strip()
            or len(label) > o.max_label_chars
            or o.close in label
            or o.open in label
        ):
            raise ValueError(f"malformed markup at column {j_open + 1}: {line[j_open : j_open + 30]!r}")
        stack.append((label.strip(), size))
        i = k + len(o.sep)
    if stack:
        raise ValueError(f"unclosed {o.open!r} for type {stack[-1][0]!r}")
    out.append(line[i:])
    return "".join(out), spans


def _passage(spec: ReadSpec, n: int, line: str, o: InlineOptions, stats: ReadStats | None) -> Sample | Reject:
    try:
        text, spans = parse_inline(line, o)
    except ValueError as e:
        return make_reject(spec, n, f"line {n}: {e}", line)
    repairs: dict[str, int] = {}
    fixed = []
    for s, e, lab in spans:
        ts, te = trim_span(text, s, e)
        if (ts, te) != (s, e):
            repairs["span_trimmed"] = repairs.get("span_trimmed", 0) + 1
        if ts == te:
            repairs["empty_span_dropped"] = repairs.get("empty_span_dropped", 0) + 1
            continue
        fixed.append((ts, te, lab))
    if not text.strip():
        return make_reject(spec, n, f"line {n}: no text left after removing markup", line)
    ents, reason, dup = check_spans(text, fixed, o.overlaps)
    if reason:
        return make_reject(spec, n, f"line {n}: {reason}", line)
    for k, v in dup.items():
        repairs[k] = repairs.get(k, 0) + v
    n_rep = sum(repairs.values())
    if n_rep:
        bump(stats, repairs)
    return make_sample(spec, n, text, ents, n_rep)
