"""JSON readers (span lists, CLUENER, char tags, B2NERD) and inline markup on tiny inline samples."""

from __future__ import annotations

import json

import pytest

from b2ner_common.ingest.readers import ReadSpec, make_options, read_records
from b2ner_common.schema import ReadStats, Reject, Sample, check_offsets


def _read(fmt: str, lines: list[str], **opts):
    spec = ReadSpec("ds", "train", "zh", "ds/f.json", make_options(fmt, opts))
    stats = ReadStats()
    out = list(read_records(fmt, lines, spec, stats))
    assert stats.records_read == stats.accepted + stats.rejected == len(out)
    for o in out:
        if isinstance(o, Sample):
            assert check_offsets(o.text, o.entities) is None
    return out, stats


def _ents(s):
    return [(e.start, e.end, e.label, e.text) for e in s.entities]


def test_readers_cluener_inclusive_ends_and_mismatch_reject():
    good = {
        "text": "浙商银行叶老桂",
        "label": {"company": {"浙商银行": [[0, 3]]}, "name": {"叶老桂": [[4, 6]]}},
    }
    wrong = {"text": "浙商银行", "label": {"company": {"浙商": [[0, 3]]}}}
    unlabeled = {"id": 0, "text": "没有标注"}
    out, _ = _read("cluener", [json.dumps(x, ensure_ascii=False) for x in (good, wrong, unlabeled)])
    assert _ents(out[0]) == [(0, 4, "company", "浙商银行"), (4, 7, "name", "叶老桂")]
    assert isinstance(out[1], Reject) and out[1].source == "ds/f.json:2" and "mention" in out[1].reason
    assert isinstance(out[2], Reject) and "unlabeled" in out[2].reason


def test_readers_jsonl_spans_exclusive_inclusive_overlap_range():
    rows = [
        {"text": "Paris is big", "entities": [{"start": 0, "end": 5, "label": "LOC", "text": "Paris"}]},
        {"text": "Paris", "entities": [{"start": 0, "end": 9, "label": "LOC"}]},
        {
            "text": "New York",
            "entities": [{"start": 0, "end": 8, "label": "LOC"}, {"start": 4, "end": 8, "label": "X"}],
        },
        {
            "text": "ab",
            "entities": [{"start": 0, "end": 2, "label": "A"}, {"start": 0, "end": 2, "label": "A"}],
        },
    ]
    out, stats = _read("jsonl_spans", [json.dumps(r) for r in rows] + ["", "{not json", "[1]"])
    assert _ents(out[0]) == [(0, 5, "LOC", "Paris")]
    assert "out of range" in out[1].reason
    assert "nested spans" in out[2].reason
    assert (
        _ents(out[3]) == [(0, 2, "A", "ab")] and out[3].repairs == 1 and stats.extra == {"duplicate_span": 1}
    )
    assert "invalid JSON" in out[4].reason and out[4].source == "ds/f.json:6"
    assert "JSON object" in out[5].reason
    out, _ = _read(
        "jsonl_spans",
        [json.dumps({"text": "New York", "entities": [{"s": 0, "e": 7, "t": "LOC"}]})],
        start_key="s",
        end_key="e",
        label_key="t",
        end_inclusive=True,
    )
    assert _ents(out[0]) == [(0, 8, "LOC", "New York")]
    out, _ = _read("jsonl_spans", [json.dumps(rows[2])], overlaps="keep")
    assert len(out[0].entities) == 2


def test_readers_char_tags_bioes_and_length_mismatch():
    good = {"text": "飞利浦 qc", "tags": ["B-HP", "I-HP", "E-HP", "O", "B-HC", "E-HC"]}
    short = {"text": "abc", "tags": ["O"]}
    out, _ = _read("char_tags", [json.dumps(good, ensure_ascii=False), json.dumps(short)])
    assert _ents(out[0]) == [(0, 3, "HP", "飞利浦"), (4, 6, "HC", "qc")]
    assert "1 tags for 3 characters" in out[1].reason


def test_readers_inline_markup_boson_quirks():
    lines = [
        "{{time:4月25日}}讯（记者{{person_name: 施宇翔}}）",
        "{{product_name:{{product_name:腾讯汽车}}}}讯",
        "坏}}了",
        "{{time:未闭合",
    ]
    out, stats = _read("inline", lines)
    assert out[0].text == "4月25日讯（记者 施宇翔）"
    assert _ents(out[0]) == [(0, 5, "time", "4月25日"), (10, 13, "person_name", "施宇翔")]
    assert stats.extra == {"span_trimmed": 1, "duplicate_span": 1}
    assert out[1].text == "腾讯汽车讯" and _ents(out[1]) == [(0, 4, "product_name", "腾讯汽车")]
    assert "unbalanced" in out[2].reason and out[2].source == "ds/f.json:3"
    assert "unclosed" in out[3].reason


def test_readers_b2nerd_array_with_line_numbers():
    doc = json.dumps(
        [
            {
                "sentence": "Obama visited Paris",
                "entities": [{"name": "Paris", "type": "location", "pos": [14, 19]}],
            },
            {"sentence": "x", "entities": [{"name": "y", "type": "t", "pos": [0, 1]}]},
        ],
        indent=1,
    )
    out, _ = _read("b2nerd", doc.split("\n"))
    assert _ents(out[0]) == [(14, 19, "location", "Paris")] and out[0].source == "ds/f.json:2"
    assert isinstance(out[1], Reject) and "name is 'y'" in out[1].reason
    out, _ = _read("b2nerd", ['[{"sentence": "a", "entities": []},', "{broken"])
    assert isinstance(out[0], Sample) and isinstance(out[1], Reject) and out[1].source == "ds/f.json:2"


@pytest.mark.parametrize("fmt", ["jsonl_spans", "cluener", "char_tags", "inline", "b2nerd"])
def test_readers_span_formats_empty_input_yields_nothing(fmt):
    assert _read(fmt, [])[0] == [] and _read(fmt, ["", "  "])[0] == []
