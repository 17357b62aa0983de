"""One tag-scheme decoder for IOB1, BIO, BIOES/BILOU and BMES sequences, with counted repairs.

Tags are `O` or `<P><sep><type>` with P in B I M E S (L, U accepted as E, S) and sep `-` or `_`.
The decoder is tolerant (any sequence decodes to spans) and reports every place where it had to
interpret an ill-formed sequence, by kind:

- iob1_to_bio: an entity opened by I- (the IOB1 convention; scheme "iob1").
- i_after_o: an entity opened by I-/M- after O or at the start (a BIO/BIOES error).
- type_switch: I-/M-/E- whose type differs from the open entity's (closes it, opens a new one).
- e_without_b: E- with no open entity of its type (a one-token entity).
- unclosed: a BIOES/BMES entity that ends without E- (scheme "bioes"/"bmes" only).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

SCHEMES = ("bio", "iob1", "bioes", "bmes", "auto")


class TagError(ValueError):
    """A tag that is not O and not prefix+separator+type; `index` is its position."""

    def __init__(self, index: int, tag: str):
        super().__init__(f"unknown tag {tag!r}")
        self.index = index
        self.tag = tag


_PREFIX = {"B": "B", "I": "I", "M": "I", "E": "E", "L": "E", "S": "S", "U": "S"}


@lru_cache(maxsize=4096)
def parse_tag(tag: str) -> tuple[str, str] | None:
    """("O", "") for outside, (prefix, type) for an entity tag, None when unparseable."""
    if tag == "O":
        return "O", ""
    if len(tag) >= 3 and tag[1] in "-_":
        p = _PREFIX.get(tag[0])
        label = tag[2:].strip()
        if p and label:
            return p, label
    return None


def decode_tags(
    tags: Sequence[str], scheme: str = "auto"
) -> tuple[list[tuple[int, int, str]], dict[str, int]]:
    """Decode a tag sequence to spans (token index start, end exclusive, type) and repair counts.

    Raises TagError for an unparseable tag.
    """
    spans: list[tuple[int, int, str]] = []
    repairs: dict[str, int] = {}
    strict_end = scheme in ("bioes", "bmes")
    cur_type = ""
    cur_start = -1

    def fix(kind: str) -> None:
        repairs[kind] = repairs.get(kind, 0) + 1

    def close(i: int, switched: bool = False) -> None:
        nonlocal cur_type, cur_start
        if cur_type:
            spans.append((cur_start, i, cur_type))
            if strict_end and not switched:
                fix("unclosed")
        cur_type, cur_start = "", -1

    if tags.count("O") == len(tags):  # most sentences of character corpora
        return spans, repairs
    for i, tag in enumerate(tags):
        parsed = parse_tag(tag)
        if parsed is None:
            raise TagError(i, tag)
        p, label = parsed
        if p == "O":
            if cur_type:
                close(i)
        elif p == "B":
            close(i)
            cur_type, cur_start = label, i
        elif p == "S":
            close(i)
            spans.append((i, i + 1, label))
        elif p == "I":
            if cur_type == label:
                continue
            if cur_type:
                fix("type_switch")
            elif scheme == "iob1":
                fix("iob1_to_bio")
            else:
                fix("i_after_o")
            close(i, switched=True)
            cur_type, cur_start = label, i
        else:  # E
            if cur_type == label:
                spans.append((cur_start, i + 1, label))
                cur_type, cur_start = "", -1
                continue
            fix("type_switch" if cur_type else "e_without_b")
            close(i, switched=True)
            spans.append((i, i + 1, label))
    close(len(tags))
    return spans, repairs
