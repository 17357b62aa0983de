"""JSON corpora: span lists, nested dict spans (CLUENER), per-character tag lists (Taobao, CCKS) and B2NERD.

JSON lines: one record per line, `source = file:line`. B2NERD files are one JSON array; each item's
`source` is the line where the item starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from b2ner_common.ingest.readers.base import (
    ReaderOptions,
    ReadSpec,
    bump,
    check_spans,
    count,
    make_reject,
    make_sample,
    numbered_lines,
)
from b2ner_common.ingest.readers.tags import TagError, decode_tags
from b2ner_common.schema import ReadStats, Reject, Sample


class JsonlSpansOptions(ReaderOptions):
    """Generic JSON lines: {"text": ..., "entities": [{"start", "end", "label"}, ...]}."""

    text_key: str = "text"
    spans_key: str = "entities"
    start_key: str = "start"
    end_key: str = "end"
    label_key: str = "label"
    mention_key: str = "text"  # checked against text[start:end] when present in a span
    end_inclusive: bool = False


class ClueNerOptions(ReaderOptions):
    """CLUENER: {"text": ..., "label": {type: {mention: [[start, end_inclusive], ...]}}}."""

    text_key: str = "text"
    label_key: str = "label"
    end_inclusive: bool = True


class CharTagsOptions(ReaderOptions):
    """One tag per character: {"text": ..., "tags": ["B-HP", "E-HP", "O", ...]} (BIOES by default)."""

    text_key: str = "text"
    tags_key: str = "tags"
    scheme: Literal["bio", "iob1", "bioes", "bmes", "auto"] = "bioes"


class B2nerdOptions(ReaderOptions):
    """B2NERD: a JSON array of {"sentence", "entities": [{"name", "type", "pos": [start, end_exclusive]}]}."""

    text_key: str = "sentence"
    spans_key: str = "entities"


def _json_lines(lines: Iterable[str | bytes], spec: ReadSpec) -> Iterator[tuple[int, Any, str, str | None]]:
    """Yield (line, parsed object or None, raw line, error reason or None) for each non-blank line."""
    for n, line, raw in numbered_lines(lines, spec):
        if line is None:
            yield n, None, raw, f"line {n}: cannot decode as {spec.encoding}"
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, None, raw, f"line {n}: invalid JSON ({e.msg} at column {e.colno})"
            continue
        if not isinstance(obj, dict):
            yield n, None, raw, f"line {n}: expected a JSON object, got {type(obj).__name__}"
            continue
        yield n, obj, raw, None


def _text(obj: dict, key: str, n: int) -> tuple[str | None, str | None]:
    text = obj.get(key)
    if not isinstance(text, str):
        return None, f"line {n}: no string field {key!r}"
    if not text:
        return None, f"line {n}: empty text"
    return text, None


def _finish(spec: ReadSpec, n: int, text: str, spans, raw: str, repairs: dict[str, int], stats):
    ents, reason, fixed = check_spans(text, spans, spec.options.overlaps)
    if reason:
        return make_reject(spec, n, f"line {n}: {reason}", raw)
    for k, v in fixed.items():
        repairs[k] = repairs.get(k, 0) + v
    n_rep = sum(repairs.values())
    if n_rep:
        bump(stats, repairs)
    return make_sample(spec, n, text, ents, n_rep)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def read_jsonl_spans(
    lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """Generic JSON lines with a list of span objects per record."""
    o = spec.options
    assert isinstance(o, JsonlSpansOptions)
    for n, obj, raw, err in _json_lines(lines, spec):
        out = make_reject(spec, n, err, raw) if err else _spans_record(spec, n, obj, raw, stats)
        yield count(stats, out)


def _spans_record(spec: ReadSpec, n: int, obj: dict, raw: str, stats) -> Sample | Reject:
    o = spec.options
    text, err = _text(obj, o.text_key, n)
    if err:
        return make_reject(spec, n, err, raw)
    items = obj.get(o.spans_key, [])
    if not isinstance(items, list):
        return make_reject(spec, n, f"line {n}: {o.spans_key!r} is not a list", raw)
    spans = []
    for it in items:
        if not isinstance(it, dict):
            return make_reject(spec, n, f"line {n}: span {it!r} is not an object", raw)
        s, e, lab = it.get(o.start_key), it.get(o.end_key), it.get(o.label_key)
        if not (_is_int(s) and _is_int(e) and isinstance(lab, str)):
            return make_reject(
                spec, n, f"line {n}: span {it!r} needs integer start/end and a string label", raw
            )
        e = e + 1 if o.end_inclusive else e
        mention = it.get(o.mention_key)
        if isinstance(mention, str) and 0 <= s < e <= len(text) and text[s:e] != mention:
            return make_reject(
                spec, n, f"line {n}: span [{s},{e}) is {text[s:e]!r}, mention is {mention!r}", raw
            )
        spans.append((s, e, lab))
    return _finish(spec, n, text, spans, raw, {}, stats)


def read_cluener(
    lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """CLUENER nested dict spans (end inclusive by default); every mention is checked against the text."""
    o = spec.options
    assert isinstance(o, ClueNerOptions)
    for n, obj, raw, err in _json_lines(lines, spec):
        out = make_reject(spec, n, err, raw) if err else _cluener_record(spec, n, obj, raw, stats)
        yield count(stats, out)


def _cluener_record(spec: ReadSpec, n: int, obj: dict, raw: str, stats) -> Sample | Reject:
    o = spec.options
    text, err = _text(obj, o.text_key, n)
    if err:
        return make_reject(spec, n, err, raw)
    if o.label_key not in obj:
        return make_reject(spec, n, f"line {n}: no {o.label_key!r} field (unlabeled record)", raw)
    labels = obj[o.label_key]
    if not isinstance(labels, dict):
        return make_reject(spec, n, f"line {n}: {o.label_key!r} is not an object", raw)
    spans = []
    for lab, mentions in labels.items():
        if not isinstance(mentions, dict):
            return make_reject(spec, n, f"line {n}: label {lab!r} does not map mentions to spans", raw)
        for mention, pairs in mentions.items():
            if not isinstance(pairs, list):
                return make_reject(spec, n, f"line {n}: spans of {mention!r} are not a list", raw)
            for p in pairs:
                if not (isinstance(p, list) and len(p) == 2 and _is_int(p[0]) and _is_int(p[1])):
                    return make_reject(
                        spec, n, f"line {n}: span {p!r} of {mention!r} is not [start, end]", raw
                    )
                s, e = p[0], p[1] + 1 if o.end_inclusive else p[1]
                if 0 <= s < e <= len(text) and text[s:e] != mention:
                    return make_reject(
                        spec, n, f"line {n}: span [{s},{e}) is {text[s:e]!r}, mention is {mention!r}", raw
                    )
                spans.append((s, e, str(lab)))
    return _finish(spec, n, text, spans, raw, {}, stats)


def read_char_tags(
    lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """JSON lines with one tag per character of `text` (Taobao e-commerce, CCKS2021 address)."""
    o = spec.options
    assert isinstance(o, CharTagsOptions)
    for n, obj, raw, err in _json_lines(lines, spec):
        out = make_reject(spec, n, err, raw) if err else _char_tags_record(spec, n, obj, raw, stats)
        yield count(stats, out)


def _char_tags_record(spec: ReadSpec, n: int, obj: dict, raw: str, stats) -> Sample | Reject:
    o = spec.options
    text, err = _text(obj, o.text_key, n)
    if err:
        return make_reject(spec, n, err, raw)
    tags = obj.get(o.tags_key)
    if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        return make_reject(spec, n, f"line {n}: {o.tags_key!r} is not a list of strings", raw)
    if len(tags) != len(text):
        return make_reject(spec, n, f"line {n}: {len(tags)} tags for {len(text)} characters", raw)
    try:
        spans, repairs = decode_tags(tags, o.scheme)
    except TagError as e:
        return make_reject(spec, n, f"line {n}: unknown tag {e.tag!r} at character {e.index}", raw)
    return _finish(spec, n, text, spans, raw, repairs, stats)


def read_b2nerd(
    lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """B2NERD JSON array. A syntax error rejects the rest of the file as one record (file:line of the error)."""
    o = spec.options
    assert isinstance(o, B2nerdOptions)
    parts: list[str] = []
    # Undecodable bytes are replaced by U+FFFD, which keeps the JSON structure readable; only the records
    # that hold one of those replacements are rejected (a real file is one large array, maybe one line).
    bad_at: list[tuple[int, int]] = []  # (offset in doc, line)
    offset = 0
    for n, line, raw in numbered_lines(lines, spec):
        if line is None:
            line = raw
            bad_at += [(offset + k, n) for k, ch in enumerate(line) if ch == "\ufffd"]
        parts.append(line)
        offset += len(line) + 1
    doc = "\n".join(parts)
    dec = json.JSONDecoder()
    line_at = spec.first_line
    pos = 0

    def skip_ws(i: int) -> int:
        while i < len(doc) and doc[i] in " \t\r\n":
            i += 1
        return i

    def fail(i: int, msg: str) -> Reject:
        ln = spec.first_line + doc.count("\n", 0, i)
        return make_reject(spec, ln, f"line {ln}: {msg}", doc[i : i + 200])

    i = skip_ws(0)
    if i == len(doc):
        return
    if doc[i] != "[":
        yield count(stats, fail(i, "expected a JSON array of records"))
        return
    i = skip_ws(i + 1)
    first = True
    while True:
        if i < len(doc) and doc[i] == "]":
            if skip_ws(i + 1) != len(doc):
                yield count(stats, fail(skip_ws(i + 1), "extra data after the JSON array"))
            return
        if not first:
            if i >= len(doc) or doc[i] != ",":
                yield count(stats, fail(i, "expected ',' or ']' between records"))
                return
            i = skip_ws(i + 1)
        first = False
        try:
            obj, end = dec.raw_decode(doc, i)
        except json.JSONDecodeError as e:
            yield count(stats, fail(e.pos, f"invalid JSON ({e.msg})"))
            return
        line_at += doc.count("\n", pos, i)
        pos = i
        raw = doc[i:end]
        bad = [ln for at, ln in bad_at if i <= at < end]
        if bad:
            reason = f"line {bad[0]}: cannot decode as {spec.encoding}"
            yield count(stats, make_reject(spec, line_at, reason, raw))
        elif not isinstance(obj, dict):
            yield count(stats, make_reject(spec, line_at, f"line {line_at}: record is not an object", raw))
        else:
            yield count(stats, _b2nerd_record(spec, line_at, obj, raw, stats))
        i = skip_ws(end)


def _b2nerd_record(spec: ReadSpec, n: int, obj: dict, raw: str, stats) -> Sample | Reject:
    o = spec.options
    text, err = _text(obj, o.text_key, n)
    if err:
        return make_reject(spec, n, err, raw)
    items = obj.get(o.spans_key, [])
    if not isinstance(items, list):
        return make_reject(spec, n, f"line {n}: {o.spans_key!r} is not a list", raw)
    spans = []
    for it in items:
        pos = it.get("pos") if isinstance(it, dict) else None
        if not (isinstance(pos, list) and len(pos) == 2 and _is_int(pos[0]) and _is_int(pos[1])):
            return make_reject(spec, n, f"line {n}: entity {it!r} has no [start, end] 'pos'", raw)
        lab, name = it.get("type"), it.get("name")
        if not isinstance(lab, str):
            return make_reject(spec, n, f"line {n}: entity {it!r} has no string 'type'", raw)
        s, e = pos
        if isinstance(name, str) and 0 <= s < e <= len(text) and text[s:e] != name:
            return make_reject(spec, n, f"line {n}: pos [{s},{e}) is {text[s:e]!r}, name is {name!r}", raw)
        spans.append((s, e, lab))
    return _finish(spec, n, text, spans, raw, {}, stats)
