"""CoNLL-family reader on tiny inline samples of every variant found in ../shared/corpora."""

from __future__ import annotations

from b2ner_common.ingest.readers import ReadSpec, make_options, read_conll
from b2ner_common.schema import ReadStats, Reject, Sample, check_offsets


def _read(text: str, lang: str = "en", via_text: bool = False, **opts):
    spec = ReadSpec("ds", "train", lang, "ds/file.txt", make_options("conll", opts))
    stats = ReadStats()
    src = text if via_text else text.split("\n")
    out = list(read_conll(src, spec, stats))
    for o in out:
        if isinstance(o, Sample):
            assert check_offsets(o.text, o.entities) is None
    return out, stats


def _ents(s: Sample) -> list[tuple[str, str]]:
    return [(e.label, e.text) for e in s.entities]


def test_readers_conll_iob1_four_columns_with_docstart_counts_repairs():
    text = (
        "-DOCSTART- -X- O O\n\nEU NNP I-NP I-ORG\nrejects VBZ I-VP O\nGerman JJ I-NP I-MISC\n"
        "call NN I-NP O\n\nPeter NNP I-NP I-PER\nBlackburn NNP I-NP I-PER\n"
    )
    out, stats = _read(text, delimiter="space", scheme="iob1")
    assert [o.text for o in out] == ["EU rejects German call", "Peter Blackburn"]
    assert _ents(out[0]) == [("ORG", "EU"), ("MISC", "German")]
    assert _ents(out[1]) == [("PER", "Peter Blackburn")]
    assert out[0].repairs == 2 and stats.extra == {"iob1_to_bio": 3}
    assert out[0].source == "ds/file.txt:3" and out[1].source == "ds/file.txt:8"
    assert (stats.records_read, stats.accepted, stats.rejected, stats.entities) == (2, 2, 0, 3)


def test_readers_conll_iob1_b_tag_splits_adjacent_same_type():
    out, _ = _read("A x x I-PER\nB x x B-PER\nC x x I-PER\n", delimiter="space", scheme="iob1")
    assert _ents(out[0]) == [("PER", "A"), ("PER", "B C")]


def test_readers_conll_label_first_mit():
    out, _ = _read("O\twhat\nB-ACTOR\tbruce\nI-ACTOR\twillis\n", token_col=1, tag_col=0)
    assert out[0].text == "what bruce willis" and _ents(out[0]) == [("ACTOR", "bruce willis")]


def test_readers_conll_token_prefix_and_weibo_digits():
    out, _ = _read("en:Sioux\tB-ORG\nen:Falls\tI-ORG\n", token_prefix="en:")
    assert out[0].text == "Sioux Falls" and _ents(out[0]) == [("ORG", "Sioux Falls")]
    out, _ = _read(
        "北0\tB-GPE.NAM\n京1\tI-GPE.NAM\n好0\tO\n20\tO\n", "zh", strip_trailing_digit=True, join="none"
    )
    assert out[0].text == "北京好2" and _ents(out[0]) == [("GPE.NAM", "北京")]


def test_readers_conll_multiconer_header_and_mixed_cjk_join():
    text = "# id 59\tdomain=dev\n2016 _ _ O\n年 _ _ O\n版 _ _ O\ntriángulo _ _ B-CORP\nde _ _ I-CORP\n\n# id 60\tdomain=dev\nx _ _ O\n"
    for via_text in (False, True):
        out, stats = _read(
            text, "zh", via_text=via_text, delimiter="space", tag_col=3, comment_prefix="# id "
        )
        assert [o.text for o in out] == ["2016 年版 triángulo de", "x"]
        assert _ents(out[0]) == [("CORP", "triángulo de")]
        assert out[0].source == "ds/file.txt:2" and out[1].source == "ds/file.txt:9"


def test_readers_conll_bmes_and_underscore_tags():
    out, stats = _read("叶 B-NAME\n老 M-NAME\n桂 E-NAME\n说 O\n京 S-LOC\n", "zh", join="none", scheme="bmes")
    assert _ents(out[0]) == [("NAME", "叶老桂"), ("LOC", "京")] and stats.repairs == 0
    out, _ = _read("我 O\n上 B_Time\n午 I_Time\n", "zh", join="none")
    assert _ents(out[0]) == [("Time", "上午")]


def test_readers_conll_i_after_o_is_repaired_and_counted():
    out, stats = _read("a\tO\nb\tI-LOC\nc\tI-LOC\n")
    assert _ents(out[0]) == [("LOC", "b c")] and out[0].repairs == 1 and stats.extra == {"i_after_o": 1}


def test_readers_conll_malformed_lines_reject_their_sentence_with_file_line():
    text = "ok\tO\n\nbad line without tag\n\n\tO\nx\tO\n\nfine\tB-PER\n\nz\tQ-X\n"
    for via_text in (False, True):
        out, stats = _read(text, via_text=via_text, delimiter="tab")
        rejects = [o for o in out if isinstance(o, Reject)]
        assert [r.source for r in rejects] == ["ds/file.txt:3", "ds/file.txt:5", "ds/file.txt:10"]
        assert "tag columns" in rejects[0].reason and "empty token" in rejects[1].reason
        assert "unknown tag 'Q-X'" in rejects[2].reason
        assert rejects[1].raw == "\tO\nx\tO"
        assert (stats.records_read, stats.accepted, stats.rejected) == (5, 2, 3)


def test_readers_conll_undecodable_line_rejected_not_crashing():
    lines = [b"good\tO", b"", "caf\xe9".encode("latin-1") + b"\tO", b"next\tO", b"", b"ok\tB-LOC"]
    spec = ReadSpec("ds", "dev", "en", "ds/f", make_options("conll", {}))
    out = list(read_conll(lines, spec))
    assert isinstance(out[1], Reject) and out[1].source == "ds/f:3" and "decode" in out[1].reason
    assert [o.text for o in out if isinstance(o, Sample)] == ["good", "ok"]


def test_readers_conll_text_fast_path_matches_line_path():
    text = (
        "-DOCSTART- O\n\n\nA\tB-X\r\nb\tI-X\r\n\t\nc\tO\nd\tI-Y\n-DOCSTART- O\ne\tO\n \n\nf\tS-Z\ng\tE-Z\n\n"
    )
    a, sa = _read(text, via_text=False)
    b, sb = _read(text, via_text=True)
    assert [(type(o), o.source, getattr(o, "text", None)) for o in a] == [
        (type(o), o.source, getattr(o, "text", None)) for o in b
    ]
    assert sa == sb and sa.records_read == 4
