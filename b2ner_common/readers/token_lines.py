"""Token-per-line corpora (CoNLL family): one token and its tag per line, a blank line between sentences.

Covers `token<TAB>tag`, space-separated `token tag`, 4-column CoNLL-2003 (`token POS chunk NER`,
IOB1, `-DOCSTART-` lines), label-first MIT files (`B-ACTOR<TAB>bruce`), WikiANN `en:` token
prefixes, Weibo `char+digit` tokens (`节1`), MultiCoNER `# id ...` header lines, character corpora
with BIO/BMES/BIOES tags and `B_X` underscore tags.

A sentence is one record. A line that cannot be read (no tag column, empty token, unknown tag,
undecodable bytes) rejects its whole sentence with `source = file:line` of the bad line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from b2ner_common.readers.base import (
    ReaderOptions,
    ReadSpec,
    bump,
    count,
    join_tokens,
    make_reject,
    make_sample,
    numbered_lines,
)
from b2ner_common.readers.tags import TagError, decode_tags
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
    """Read token-per-line sentences; one Sample or Reject per sentence."""
    opts = spec.options
    assert isinstance(opts, ConllOptions)
    block: list[tuple[int, str | None, str]] = []
    comment = opts.comment_prefix
    for n, line, raw in numbered_lines(lines, spec):
        if line is not None:
            if not line.strip():
                if block:
                    yield count(stats, _sentence(block, spec, opts, stats))
                    block = []
                continue
            if line.startswith("-DOCSTART-") or (comment and line.startswith(comment)):
                if block:
                    yield count(stats, _sentence(block, spec, opts, stats))
                    block = []
                continue
        block.append((n, line, raw))
    if block:
        yield count(stats, _sentence(block, spec, opts, stats))


def _sentence(
    block: list[tuple[int, str | None, str]], spec: ReadSpec, opts: ConllOptions, stats: ReadStats | None
) -> Sample | Reject:
    first = block[0][0]
    tokens: list[str] = []
    tags: list[str] = []
    tab = opts.delimiter == "tab"
    auto = opts.delimiter == "auto"
    prefix = opts.token_prefix
    tc, gc = opts.token_col, opts.tag_col
    for n, line, _raw in block:
        if line is None:
            return _reject(spec, block, n, f"line {n}: cannot decode as {spec.encoding}")
        cols = line.split("\t") if (tab or (auto and "\t" in line)) else line.split()
        if len(cols) < 2:
            return _reject(
                spec, block, n, f"line {n}: expected token and tag columns, got {len(cols)} column"
            )
        try:
            tok = cols[tc].strip()
            tag = cols[gc].strip()
        except IndexError:
            return _reject(spec, block, n, f"line {n}: {len(cols)} columns, no column {tc} or {gc}")
        if prefix and tok.startswith(prefix):
            tok = tok[len(prefix) :]
        if opts.strip_trailing_digit and len(tok) > 1 and tok[-1].isdigit():
            tok = tok[:-1]
        if not tok:
            return _reject(spec, block, n, f"line {n}: empty token")
        tokens.append(tok)
        tags.append(tag)
    try:
        spans, repairs = decode_tags(tags, opts.scheme)
    except TagError as e:
        n = block[e.index][0]
        return _reject(spec, block, n, f"line {n}: unknown tag {e.tag!r}")
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


def _reject(spec: ReadSpec, block: list[tuple[int, str | None, str]], n: int, reason: str) -> Reject:
    return make_reject(spec, n, reason, "\n".join(raw for _, _, raw in block))
