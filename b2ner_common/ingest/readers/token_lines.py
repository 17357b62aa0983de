"""Token-per-line corpora (CoNLL family): one token and its tag per line, a blank line between sentences.

Covers `token<TAB>tag`, space-separated `token tag`, 4-column CoNLL-2003 (`token POS chunk NER`,
IOB1, `-DOCSTART-` lines), label-first MIT files (`B-ACTOR<TAB>bruce`), WikiANN `en:` token
prefixes, Weibo `char+digit` tokens (`节1`), MultiCoNER `# id ...` header lines, character corpora
with BIO/BMES/BIOES tags and `B_X` underscore tags.

A sentence is one record. A line that cannot be read (no tag column, empty token, unknown tag,
undecodable bytes) rejects its whole sentence with `source = file:line` of the bad line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal

from b2ner_common.ingest.readers.base import (
    ReaderOptions,
    ReadSpec,
    bump,
    count,
    join_tokens,
    make_reject,
    make_sample,
    numbered_lines,
)
from b2ner_common.ingest.readers.tags import TagError, decode_tags
from b2ner_common.schema import Entity, ReadStats, Reject, Sample


class ConllOptions(ReaderOptions):
    # Column separator: "tab", "space" (any run of whitespace) or "auto" (tab when the line has one).
    delimiter: Literal["tab", "space", "auto"] = "auto"
    token_col: int = 0
    tag_col: int = -1  # 0 for label-first files (MIT)
    scheme: Literal["bio", "iob1", "bioes", "bmes", "auto"] = "auto"
    token_prefix: str = ""  # stripped from every token when present (WikiANN "en:")
    strip_trailing_digit: bool = False  # Weibo: the first column is the character + a word-position digit
    comment_prefix: str = ""  # header lines to skip, e.g. "# id " (MultiCoNER)
    # How tokens become text: "auto" = one space except between CJK characters; "none" for char corpora.
    join: Literal["auto", "space", "none"] = "auto"


def read_conll(
    lines: Iterable[str | bytes], spec: ReadSpec, stats: ReadStats | None = None
) -> Iterator[Sample | Reject]:
    """Read token-per-line sentences; one Sample or Reject per sentence.

    `lines` may also be the whole decoded text of a file or chunk (one str): the same records come
    out, faster, because blank-line boundaries are found by a regex instead of line by line.
    """
    opts = spec.options
    assert isinstance(opts, ConllOptions)
    if isinstance(lines, str):
        yield from _read_text(lines, spec, opts, stats)
        return
    # A block is (first line number, lines); an undecodable line is kept as None with its raw text aside.
    block: list[str | None] = []
    first = 0
    bad: dict[int, str] = {}
    comment = opts.comment_prefix
    for n, line, raw in numbered_lines(lines, spec):
        if line is None:
            if not block:
                first = n
            bad[n] = raw
            block.append(None)
            continue
        if (
            not line
            or line.isspace()
            or line.startswith("-DOCSTART-")
            or (comment and line.startswith(comment))
        ):
            if block:
                yield count(stats, _sentence(first, block, bad, spec, opts, stats))
                block, bad = [], {}
            continue
        if not block:
            first = n
        block.append(line)
    if block:
        yield count(stats, _sentence(first, block, bad, spec, opts, stats))


_SEPARATOR = re.compile(r"\n(?:[^\S\n]*\n)+")


def _read_text(
    text: str, spec: ReadSpec, opts: ConllOptions, stats: ReadStats | None
) -> Iterator[Sample | Reject]:
    """Fast path over a whole text: split at blank lines, hand line-wise parsing to the general path
    only for blocks that hold a -DOCSTART- or comment line anywhere but in first position."""
    if spec.first_line == 1 and text.startswith("\ufeff"):
        text = text[1:]
    comment = opts.comment_prefix
    line = spec.first_line
    pos = 0
    for m in [*_SEPARATOR.finditer(text), None]:
        end = m.start() if m else len(text)
        chunk = text[pos:end]
        block = chunk.split("\n")
        first = line
        line += len(block) - 1 + (m.group().count("\n") if m else 0)
        pos = m.end() if m else end
        while block and (
            not block[0]
            or block[0].isspace()
            or block[0].startswith("-DOCSTART-")
            or (comment and block[0].startswith(comment))
        ):
            block.pop(0)
            first += 1
        while block and (not block[-1] or block[-1].isspace()):
            block.pop()
        if not block:
            continue
        if ("-DOCSTART-" in chunk or (comment and comment in chunk)) and any(
            b.startswith("-DOCSTART-") or (comment and b.startswith(comment)) for b in block
        ):
            sub = spec.__class__(**{**spec.__dict__, "first_line": first})
            yield from read_conll(block, sub, stats)
            continue
        yield count(stats, _sentence(first, block, {}, spec, opts, stats))


def _split(block: list[str], delimiter: str) -> list[list[str]]:
    if delimiter == "space":
        return [ln.split() for ln in block]
    if delimiter == "tab":
        return [ln.split("\t") for ln in block]
    return [ln.split("\t") if "\t" in ln else ln.split() for ln in block]


def _sentence(
    first: int,
    block: list[str | None],
    bad: dict[int, str],
    spec: ReadSpec,
    opts: ConllOptions,
    stats: ReadStats | None,
) -> Sample | Reject:
    if bad:
        n = min(bad)
        return _reject(spec, first, block, bad, n, f"line {n}: cannot decode as {spec.encoding}")
    rows = _split(block, opts.delimiter)  # type: ignore[arg-type]
    tc, gc = opts.token_col, opts.tag_col
    need = max(tc if tc >= 0 else -tc - 1, gc if gc >= 0 else -gc - 1) + 1
    if min(map(len, rows)) < max(need, 2):
        i = next(i for i, r in enumerate(rows) if len(r) < max(need, 2))
        n = first + i
        return _reject(
            spec, first, block, bad, n, f"line {n}: expected token and tag columns, got {len(rows[i])}"
        )
    tokens = [r[tc].strip() for r in rows]
    tags = [r[gc].strip() for r in rows]
    prefix = opts.token_prefix
    if prefix:
        k = len(prefix)
        tokens = [t[k:] if t.startswith(prefix) else t for t in tokens]
    if opts.strip_trailing_digit:
        tokens = [t[:-1] if len(t) > 1 and t[-1].isdigit() else t for t in tokens]
    if not all(tokens):
        n = first + tokens.index("")
        return _reject(spec, first, block, bad, n, f"line {n}: empty token")
    try:
        spans, repairs = decode_tags(tags, opts.scheme)
    except TagError as e:
        n = first + e.index
        return _reject(spec, first, block, bad, n, f"line {n}: unknown tag {e.tag!r}")
    text, starts = join_tokens(tokens, opts.join)
    ents = []
    for i, j, label in spans:
        s = starts[i]
        e = starts[j - 1] + len(tokens[j - 1])
        ents.append(Entity(start=s, end=e, label=label, text=text[s:e]))
    n_rep = sum(repairs.values())
    if n_rep:
        bump(stats, repairs)
    return make_sample(spec, first, text, ents, n_rep)


def _reject(
    spec: ReadSpec, first: int, block: list[str | None], bad: dict[int, str], n: int, reason: str
) -> Reject:
    raw = "\n".join(bad.get(first + i, "") if ln is None else ln for i, ln in enumerate(block))
    return make_reject(spec, n, reason, raw)
