"""parse_answer: realistic model outputs (well-formed and malformed) -> entities with character offsets."""

from hypothesis import given, settings
from hypothesis import strategies as st

from b2ner_common.parsing import parse_answer, split_answer, summarize_problems
from b2ner_common.prompts import format_answer

EN = "Barack Obama visited Paris in June 2015 with the United Nations delegation."
ZH = "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。"


def spans(ents):
    return [(e.start, e.end, e.label, e.text) for e in ents]


def test_parsing_well_formed_answer_gets_offsets():
    ents, problems = parse_answer(
        EN,
        " person: Barack Obama; location: Paris; date or period: June 2015",
        ["person", "location", "date or period"],
    )
    assert problems == []
    assert spans(ents) == [
        (0, 12, "person", "Barack Obama"),
        (21, 26, "location", "Paris"),
        (30, 39, "date or period", "June 2015"),
    ]


def test_parsing_none_means_no_entities_and_no_problem():
    for answer in (" None", "None.", "none", " 无"):
        assert parse_answer(EN, answer, ["person"]) == ([], [])


def test_parsing_repeated_mentions_take_successive_occurrences():
    text = "John met John and then john again."
    ents, problems = parse_answer(text, "person: John; person: John; person: john", ["person"])
    assert problems == []
    assert [(e.start, e.end) for e in ents] == [(0, 4), (9, 13), (23, 27)]


def test_parsing_case_insensitive_fallback_keeps_text_spelling():
    ents, _ = parse_answer(EN, "Person: barack obama; LOCATION: paris", ["person", "location"])
    assert spans(ents) == [(0, 12, "person", "Barack Obama"), (21, 26, "location", "Paris")]


def test_parsing_chinese_fullwidth_punctuation_and_inserted_spaces():
    ents, problems = parse_answer(
        ZH, "组织机构名->公司：浙商 银行；人名: 叶老桂", ["组织机构名->公司", "人名"]
    )
    assert problems == []
    assert spans(ents) == [(0, 4, "组织机构名->公司", "浙商银行"), (9, 12, "人名", "叶老桂")]


def test_parsing_malformed_segments_are_reported_not_fatal():
    answer = (
        "person Barack Obama; : Paris; location: ; person: Obama; organization: Unicef; location: Paris;;"
    )
    ents, problems = parse_answer(EN, answer, ["person", "location"])
    assert spans(ents) == [(7, 12, "person", "Obama"), (21, 26, "location", "Paris")]
    assert summarize_problems(problems) == {
        "empty_entity": 1,
        "empty_label": 1,
        "no_separator": 1,
        "not_in_text": 1,
        "unknown_label": 1,
    }


def test_parsing_unknown_label_is_flagged_and_kept():
    ents, problems = parse_answer(EN, "politician: Barack Obama", ["person"])
    assert spans(ents) == [(0, 12, "politician", "Barack Obama")]
    assert [p.kind for p in problems] == ["unknown_label"]


def test_parsing_known_label_allows_colon_in_mention():
    text = "We watched Star Wars: Episode IV twice."
    ents, problems = parse_answer(text, "movie: Star Wars: Episode IV", ["movie"])
    assert problems == [] and spans(ents) == [(11, 32, "movie", "Star Wars: Episode IV")]


def test_parsing_prefers_whole_words():
    text = "A Parisian cafe in Paris."
    ents, _ = parse_answer(text, "location: Paris", ["location"])
    assert [(e.start, e.end) for e in ents] == [(19, 24)]


def test_parsing_mention_inside_an_earlier_entity_takes_the_free_occurrence():
    text = "The New York Times opened an office in New York."
    ents, problems = parse_answer(text, "organization: New York Times; location: New York", LABELS)
    assert problems == []
    assert spans(ents) == [(4, 18, "organization", "New York Times"), (39, 47, "location", "New York")]
    zh = "北京大学的学生来自北京。"
    ents, problems = parse_answer(zh, "组织机构: 北京大学; 地点: 北京", ["组织机构", "地点"])
    assert problems == [] and spans(ents) == [(0, 4, "组织机构", "北京大学"), (9, 11, "地点", "北京")]


def test_parsing_nested_gold_entity_still_found_when_no_free_occurrence():
    # Nested annotation (the inner mention listed first, as format_answer orders by start then end).
    text = "北京大学发布了通知。"
    ents, problems = parse_answer(text, "地点: 北京; 组织机构: 北京大学", ["组织机构", "地点"])
    assert problems == [] and spans(ents) == [(0, 2, "地点", "北京"), (0, 4, "组织机构", "北京大学")]
    ents, _ = parse_answer(
        "University of Oxford", "organization: University of Oxford; location: Oxford", LABELS
    )
    assert spans(ents)[1] == (14, 20, "location", "Oxford")


def test_parsing_truncated_generation_drops_cut_segment():
    ents, problems = parse_answer(
        EN, "person: Barack Obama; location: Par", ["person", "location"], truncated=True
    )
    assert spans(ents) == [(0, 12, "person", "Barack Obama")]
    assert [p.kind for p in problems] == ["truncated"]


def test_parsing_quoted_mention_and_out_of_order_answer():
    ents, problems = parse_answer(EN, 'location: "Paris"; person: Barack Obama', ["person", "location"])
    assert problems == []
    assert sorted(spans(ents)) == [(0, 12, "person", "Barack Obama"), (21, 26, "location", "Paris")]


def test_parsing_empty_output_is_a_problem():
    assert split_answer("   ", ["person"]) == ([], split_answer("", ["person"])[1])
    assert [p.kind for p in split_answer("", ["person"])[1]] == ["empty_output"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80), st.text(max_size=120), st.lists(st.text(max_size=10), max_size=4))
def test_parsing_never_raises(text, answer, labels):
    ents, problems = parse_answer(text, answer, labels)
    for e in ents:
        assert text[e.start : e.end] == e.text


ENT_WORDS = st.sampled_from(
    ["Obama", "Paris", "United Nations", "Star Wars: IV", "北京", "上海市", "叶老桂", "WMT-14"]
    # Mentions inside other mentions: the later occurrence clear of every entity so far is the one meant.
    + ["New York", "New York Times", "北京大学"]
)
FILLER = st.sampled_from(["the", "of a", "visited", "and", "的", "在", "是", "in 2015 ,"])
# Digits stay inside CJK characters: "WMT-14" glued to "2015" would be a different token, not a mention.
ZH_FILLER = st.sampled_from(["的", "在", "是", "，", "于2015年"])
LABELS = ["person", "location", "organization", "date or period"]


@settings(max_examples=200, deadline=None)
@given(st.data(), st.booleans())
def test_parsing_round_trip_format_answer_recovers_spans(data, spaced):
    # Spaced: English-like text. Unspaced: Chinese-like text (CJK filler glued to the mentions).
    filler = FILLER if spaced else ZH_FILLER
    parts = data.draw(st.lists(st.tuples(filler, ENT_WORDS, st.sampled_from(LABELS)), min_size=1, max_size=8))
    tail = data.draw(filler)
    sep = " " if spaced else ""
    text, gold = "", []
    for filler, word, label in parts:
        text += filler + sep
        gold.append((len(text), len(text) + len(word), label, word))
        text += word + sep
    text += tail
    answer = format_answer([(label, word) for _, _, label, word in gold])
    ents, problems = parse_answer(text, answer, LABELS)
    assert problems == []
    assert spans(ents) == gold
