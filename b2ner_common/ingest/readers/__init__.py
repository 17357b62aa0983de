"""Format readers: `read_xxx(lines, spec, stats=None) -> Iterator[Sample | Reject]`, one module per family.

`FORMATS` maps the short format name used in catalogs to its reader, its options class and how a file
may be cut into chunks for parallel reading ("block": at blank lines, "line": at any line, "file": never).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from b2ner_common.ingest.readers.base import ReaderOptions, ReadSpec, join_tokens
from b2ner_common.ingest.readers.inline import InlineOptions, parse_inline, read_inline
from b2ner_common.ingest.readers.span_json import (
    B2nerdOptions,
    CharTagsOptions,
    ClueNerOptions,
    JsonlSpansOptions,
    read_b2nerd,
    read_char_tags,
    read_cluener,
    read_jsonl_spans,
)
from b2ner_common.ingest.readers.tags import TagError, decode_tags
from b2ner_common.ingest.readers.token_lines import ConllOptions, read_conll
from b2ner_common.schema import ReadStats, Reject, Sample

Reader = Callable[[Iterable[str | bytes], ReadSpec, ReadStats | None], Iterator[Sample | Reject]]


@dataclass(frozen=True)
class Format:
    name: str
    read: Reader
    options: type[ReaderOptions]
    unit: str  # "block" | "line" | "file": where a file may be cut into chunks
    doc: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format("conll", read_conll, ConllOptions, "block", "token-per-line, blank line between sentences"),
        Format("jsonl_spans", read_jsonl_spans, JsonlSpansOptions, "line", "JSON lines, text + span list"),
        Format("cluener", read_cluener, ClueNerOptions, "line", "JSON lines, {type: {mention: [[s, e]]}}"),
        Format("char_tags", read_char_tags, CharTagsOptions, "line", "JSON lines, text + one tag per char"),
        Format("inline", read_inline, InlineOptions, "line", "one passage per line, {{type:mention}}"),
        Format("b2nerd", read_b2nerd, B2nerdOptions, "file", "B2NERD JSON array"),
    )
}


class FormatError(ValueError):
    """Unknown format name or invalid format options; the message names them."""


def make_options(fmt: str, options: dict[str, Any] | None = None) -> ReaderOptions:
    """Validated options for format `fmt`. Raises FormatError naming the bad key."""
    if fmt not in FORMATS:
        raise FormatError(f"unknown format {fmt!r}; known: {', '.join(sorted(FORMATS))}")
    try:
        return FORMATS[fmt].options(**(options or {}))
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors())
        raise FormatError(f"format {fmt!r} options: {msgs}") from None


def read_records(
    fmt: str, lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """Dispatch to the reader of format `fmt`."""
    return FORMATS[fmt].read(lines, spec, stats)


__all__ = [
    "FORMATS",
    "Format",
    "FormatError",
    "ReadSpec",
    "ReaderOptions",
    "TagError",
    "decode_tags",
    "join_tokens",
    "make_options",
    "parse_inline",
    "read_b2nerd",
    "read_char_tags",
    "read_cluener",
    "read_conll",
    "read_inline",
    "read_jsonl_spans",
    "read_records",
    "ConllOptions",
    "JsonlSpansOptions",
    "ClueNerOptions",
    "CharTagsOptions",
    "InlineOptions",
    "B2nerdOptions",
]
