"""Hypothesis fuzzing: on arbitrary input every reader yields only Samples and Rejects (never raises),
one per record, and every accepted entity satisfies text[start:end] == entity.text."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from b2ner_common.ingest.readers import FORMATS, ReadSpec, make_options, read_records
from b2ner_common.schema import ReadStats, Reject, Sample, check_offsets

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text built from the characters the formats treat specially, so the fuzzer hits the parsers' edges.
PIECE = st.sampled_from(
    list('ab 中文\t\r{}:_-#"[],0123456789') + ["B-", "I-", "E-", "S-", "M-", "O", "{{", "}}", "\n"]
)
LINES = st.lists(st.lists(PIECE, max_size=15).map("".join), max_size=20)
TAG = st.sampled_from(["O", "B-X", "I-X", "E-Y", "S-Y", "M-X", "B_Z", "I_Z", "junk", ""])


def _check(fmt: str, lines, opts=None):
    spec = ReadSpec("fz", "train", "en", "fz/f", make_options(fmt, opts or {}))
    stats = ReadStats()
    out = list(read_records(fmt, lines, spec, stats))
    assert stats.records_read == len(out) == stats.accepted + stats.rejected
    for o in out:
        assert isinstance(o, Sample | Reject)
        if isinstance(o, Sample):
            assert check_offsets(o.text, o.entities) is None
            assert o.source.startswith("fz/f:")
        else:
            assert o.reason and o.source.startswith("fz/f:")


@SETTINGS
@given(lines=LINES, fmt=st.sampled_from(sorted(FORMATS)))
def test_readers_fuzz_arbitrary_text_never_crashes(lines, fmt):
    _check(fmt, lines)


@SETTINGS
@given(data=st.binary(max_size=200), fmt=st.sampled_from(sorted(FORMATS)))
def test_readers_fuzz_arbitrary_bytes_never_crash(data, fmt):
    _check(fmt, data.split(b"\n"))


@SETTINGS
@given(
    rows=st.lists(
        st.lists(st.tuples(st.text("abc中 ", min_size=0, max_size=4), TAG), min_size=1, max_size=8),
        max_size=6,
    ),
    scheme=st.sampled_from(["bio", "iob1", "bioes", "bmes", "auto"]),
    join=st.sampled_from(["auto", "space", "none"]),
    via_text=st.booleans(),
)
def test_readers_fuzz_conll_structured(rows, scheme, join, via_text):
    text = "\n\n".join("\n".join(f"{tok}\t{tag}" for tok, tag in sent) for sent in rows)
    _check(
        "conll", text if via_text else text.split("\n"), {"scheme": scheme, "join": join, "delimiter": "tab"}
    )


@SETTINGS
@given(
    text=st.text("ab中 ", max_size=12),
    spans=st.lists(
        st.tuples(st.integers(-2, 14), st.integers(-2, 14), st.sampled_from(["A", "B", ""])), max_size=4
    ),
    inclusive=st.booleans(),
)
def test_readers_fuzz_span_records(text, spans, inclusive):
    row = {"text": text, "entities": [{"start": s, "end": e, "label": lab} for s, e, lab in spans]}
    _check("jsonl_spans", [json.dumps(row)], {"end_inclusive": inclusive})
    clue = {
        "text": text,
        "label": {lab or "L": {text[s : e + 1] if 0 <= s else "m": [[s, e]]} for s, e, lab in spans},
    }
    _check("cluener", [json.dumps(clue)])
