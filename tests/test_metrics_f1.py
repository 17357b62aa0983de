"""b2ner_f1 / span_f1 against values worked out by hand, B2NER's normalization edge cases included."""

import math

import pytest

from b2ner_common.metrics import (
    PRF,
    b2ner_f1,
    b2ner_normalize,
    b2ner_pairs,
    language_average,
    mean_sd,
    span_f1,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Person :  Barack   Obama", "person:barack obama"),  # spaces collapse, none around ":"
        ("organisation: U.N.", "organization:u.n."),  # British spelling folded, "." spacing
        ("书名：《红楼梦》", "书名:红楼梦"),  # fullwidth colon, book-title marks removed
        ("person: @obama#", "person:obama"),  # @/# stripped from the entity
        ("location: (Paris)", "location:paris"),  # wrapping brackets removed
        ("person: Dr.. Who", "person:dr.who"),  # repeated "." collapsed, space after "." removed
        ("location: relocated", "location:relocation"),  # B2NER quirk: replaced inside words too
        ("misc: {x}-ray , scan", "misc:x-ray,scan"),  # braces dropped, no space around "-" and ","
        ("person: “Li”", 'person:"li"'),  # curly quotes -> straight
    ],
)
def test_metrics_b2ner_normalize_cases(raw, expected):
    assert b2ner_normalize(raw) == expected


def test_metrics_b2ner_pairs_split_and_dedupe():
    assert b2ner_pairs(" person: A; None; location：B；person: A ;") == {"person:a", "location:b"}
    assert b2ner_pairs(" None") == set()


def test_metrics_b2ner_f1_hand_computed():
    gold = [
        " person: Barack Obama; location: Paris",
        " None",
        [("organisation", "United Nations")],
    ]
    pred = [
        "Person: barack  obama; location: France",  # TP 1, FP 1, FN 1
        "organization: UN",  # FP 1
        " organization: United Nations",  # TP 1 (organisation folded to organization)
    ]
    s = b2ner_f1(gold, pred)
    assert (s.tp, s.fp, s.fn) == (2, 2, 1)
    assert s.precision == pytest.approx(0.5)
    assert s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(4 / 7)


def test_metrics_span_f1_strict_offsets_and_type():
    gold = [[(0, 5, "person"), (10, 15, "location")], [(1, 2, "x")]]
    pred = [[(0, 5, "person"), (10, 14, "location"), (20, 25, "organization")], []]
    s = span_f1(gold, pred)
    assert (s.tp, s.fp, s.fn) == (1, 2, 2)
    assert s.f1 == pytest.approx(1 / 3)
    # Same span, other type: no credit.
    assert span_f1([[(0, 5, "person")]], [[(0, 5, "location")]]).f1 == 0.0


def test_metrics_zero_denominators_give_zero():
    assert PRF().f1 == 0.0 and PRF().precision == 0.0 and PRF().recall == 0.0
    assert b2ner_f1([" None"], [" None"]).f1 == 0.0  # as in B2NER: nothing to find scores 0, not 1


def test_metrics_language_average_and_seeds():
    assert language_average({"a": 0.5, "b": 1.0, "c": 0.0}) == pytest.approx(0.5)
    mean, sd = mean_sd([0.5, 0.7])
    assert mean == pytest.approx(0.6) and sd == pytest.approx(math.sqrt(0.02))
    assert mean_sd([0.4]) == (0.4, 0.0)


def test_metrics_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 gold"):
        span_f1([[], []], [[]])
