"""Conflict screening on synthetic datasets with planted type, boundary and missing conflicts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from b2ner_common.schema import Entity, Sample
from b2ner_common.taxonomy import load_taxonomy
from b2ner_common.taxonomy.conflicts import (
    ConflictScreen,
    build_mention_index,
    find_mentions,
    label_sets_of,
    mention_counts,
    merge_partials,
    pair_matrix,
    screen_conflicts,
    summarize,
)


def _s(ds: str, lang: str, text: str, ents: list[tuple[str, str, str]], n: int = 0) -> Sample:
    out, pos = [], 0
    for mention, label, typ in ents:
        start = text.index(mention, pos)
        out.append(Entity(start, start + len(mention), label, mention, typ))
        pos = start + len(mention)
    return Sample(f"{ds}-{n}", ds, "train", lang, text, out, f"{ds}:{n}")


def planted() -> list[Sample]:
    return [
        _s(
            "ds_a",
            "en",
            "Paris and Acme Corp and Bob .",
            [("Paris", "LOC", "location"), ("Acme Corp", "ORG", "organization"), ("Bob", "PER", "person")],
            1,
        ),
        _s("ds_a", "en", "He saw the show .", [("the", "PER", "person")], 2),  # a slip: "the" tagged once
        _s("ds_a", "en", "the end .", [], 3),
        _s("ds_a", "en", "the sky .", [], 4),
        _s(
            "ds_b", "en", "Paris is big .", [("Paris", "GPE", "geo-political entity")], 1
        ),  # type (raw) / agree (mapped)
        _s(
            "ds_b", "en", "Acme Corp Inc is a firm .", [("Acme Corp Inc", "ORG", "organization")], 2
        ),  # boundary
        _s("ds_b", "en", "Bob slept .", [], 3),  # missing: B annotates persons (Alice)
        _s("ds_b", "en", "Alice ran .", [("Alice", "PER", "person")], 4),
        _s("ds_b", "en", "Carol met Bob .", [("Bob", "ORG", "organization")], 5),  # type conflict both modes
        _s("ds_b", "en", "the sun .", [], 6),
        _s("ds_b", "en", "Parisian food .", [], 7),  # no match: word boundary
        _s("zh_c", "zh", "我在北京工作", [("北京", "LOC", "location")], 1),
        _s("zh_d", "zh", "北京市很大", [("北京市", "GPE", "geo-political entity")], 1),  # boundary
        _s("zh_d", "zh", "他去北京了", [], 2),  # missing only in mapped mode (raw: D has no LOC label)
        _s("zh_d", "zh", "Paris很美", [], 3),  # English mentions are not searched in Chinese text
    ]


def _by_key(rows):
    return {(r["mode"], r["dataset_a"], r["label_a"], r["dataset_b"], r["label_b"]): r for r in rows}


def _counts(r):
    return (r["agree"], r["type_conflict"], r["boundary_conflict"], r["missing"])


def test_conflicts_planted_exact_counts():
    rows = screen_conflicts(planted(), load_taxonomy("v1").compatible, examples=2)
    got = {k: _counts(r) for k, r in _by_key(rows).items()}
    assert got == {
        ("raw", "ds_a", "loc", "ds_b", "gpe"): (0, 1, 0, 0),
        ("raw", "ds_a", "org", "ds_b", "org"): (0, 0, 1, 0),
        ("raw", "ds_a", "per", "ds_b", ""): (0, 0, 0, 1),
        ("raw", "ds_a", "per", "ds_b", "org"): (0, 1, 0, 0),
        ("raw", "ds_b", "gpe", "ds_a", "loc"): (0, 1, 0, 0),
        ("raw", "ds_b", "org", "ds_a", "per"): (0, 1, 0, 0),
        ("raw", "zh_c", "loc", "zh_d", "gpe"): (0, 0, 1, 0),
        ("mapped", "ds_a", "location", "ds_b", "geo-political entity"): (1, 0, 0, 0),
        ("mapped", "ds_a", "organization", "ds_b", "organization"): (0, 0, 1, 0),
        ("mapped", "ds_a", "person", "ds_b", ""): (0, 0, 0, 1),
        ("mapped", "ds_a", "person", "ds_b", "organization"): (0, 1, 0, 0),
        ("mapped", "ds_b", "geo-political entity", "ds_a", "location"): (1, 0, 0, 0),
        ("mapped", "ds_b", "organization", "ds_a", "person"): (0, 1, 0, 0),
        ("mapped", "zh_c", "location", "zh_d", "geo-political entity"): (0, 0, 1, 0),
        ("mapped", "zh_c", "location", "zh_d", ""): (0, 0, 0, 1),
    }
    s = summarize(rows)
    assert (s["raw"]["mentions"], s["raw"]["type_conflict"], s["raw"]["type_conflict_rate"]) == (7, 4, 1.0)
    assert (s["mapped"]["mentions"], s["mapped"]["type_conflict"], s["mapped"]["type_conflict_rate"]) == (
        8,
        2,
        0.5,
    )


def test_conflicts_self_consistency_filter_drops_rare_tags():
    rows = screen_conflicts(planted(), load_taxonomy("v1").compatible, min_self_ratio=0)
    got = _by_key(rows)
    # "the" (tagged in 1 of its 3 occurrences in ds_a) is screened only without the filter.
    assert _counts(got[("raw", "ds_a", "per", "ds_b", "")]) == (0, 0, 0, 2)
    assert _counts(got[("mapped", "ds_a", "person", "ds_b", "")]) == (0, 0, 0, 2)


def test_conflicts_examples_and_ratios():
    rows = _by_key(screen_conflicts(planted(), load_taxonomy("v1").compatible, examples=2))
    r = rows[("raw", "ds_a", "loc", "ds_b", "gpe")]
    assert r["mentions"] == 1 and r["conflict_ratio"] == 1.0
    assert r["examples"] == ["type_conflict: ...[Paris] is big ...."]
    assert rows[("mapped", "ds_a", "location", "ds_b", "geo-political entity")]["conflict_ratio"] == 0.0


def test_conflicts_equality_without_taxonomy():
    rows = _by_key(screen_conflicts(planted()))
    assert _counts(rows[("mapped", "ds_a", "location", "ds_b", "geo-political entity")]) == (0, 1, 0, 0)


def test_conflicts_partials_merge_independent_of_partitioning():
    samples = planted()
    counts, sets = mention_counts(samples), label_sets_of(samples)
    index = build_mention_index(counts, sets)
    compat = load_taxonomy("v1").compatible
    whole = merge_partials(ConflictScreen(index, compat, 2).add_samples(samples).rows(), 2)
    parts = []
    for chunk in (samples[::2], samples[1::2]):
        parts += ConflictScreen(index, compat, 2).add_samples(chunk).rows()
    assert merge_partials(parts, 2) == whole


def test_conflicts_find_mentions_word_boundaries_and_chars():
    samples = planted()
    index = build_mention_index(mention_counts(samples), label_sets_of(samples))
    assert [(s, e) for s, e, _, _ in find_mentions(index, "Parisian Paris, Bob's", "en")] == [
        (9, 14),
        (16, 19),
    ]
    assert [(s, e, k) for s, e, k, _ in find_mentions(index, "去北京市", "zh")] == [
        (1, 3, "北京"),
        (1, 4, "北京市"),
    ]
    assert find_mentions(index, "Paris", "de") == []


def test_conflicts_pair_matrix():
    rows = screen_conflicts(planted(), load_taxonomy("v1").compatible)
    names, m = pair_matrix(rows, "mapped")
    assert names == ["ds_a", "ds_b", "zh_c", "zh_d"]
    assert m[0][1] == pytest.approx(0.5) and m[1][0] == pytest.approx(0.5)
    assert m[0][0] != m[0][0]  # NaN: no co-annotation


# ------------------------------------------------------------------ the index finds exactly what brute force finds

WORDS = ["New", "York", "Times", "the", "Paris", "-", ",", "Bob", "s"]
CHARS = "北京市中国银行人"


def _index_of(mentions, lang):
    counts = {("ds", lang, m, "X", "x"): 1 for m in mentions}
    return build_mention_index(counts, {"ds": {"raw": {"x"}, "mapped": {"x"}}}, min_chars=1)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS), max_size=25),
    st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4), max_size=8),
)
def test_conflicts_find_mentions_token_level_equals_brute_force(words, mentions):
    text = " ".join(words)
    keys = {" ".join(m) for m in mentions if any(c.isalnum() for c in "".join(m))}
    got = {(s, e) for s, e, _, _ in find_mentions(_index_of(keys, "en"), text, "en")}
    spans, pos = [], 0
    for w in words:
        start = text.index(w, pos)
        spans.append((start, start + len(w)))
        pos = start + len(w)
    want = {
        (spans[i][0], spans[j - 1][1])
        for i in range(len(words))
        for j in range(i + 1, len(words) + 1)
        if " ".join(words[i:j]) in keys
    }
    assert got == want


@settings(max_examples=60, deadline=None)
@given(
    st.text(alphabet=CHARS, max_size=30),
    st.lists(st.text(alphabet=CHARS, min_size=2, max_size=5), max_size=8),
)
def test_conflicts_find_mentions_char_level_equals_brute_force(text, mentions):
    keys = set(mentions)
    got = {(s, e) for s, e, _, _ in find_mentions(_index_of(keys, "zh"), text, "zh")}
    want = {(i, j) for i in range(len(text)) for j in range(i + 2, len(text) + 1) if text[i:j] in keys}
    assert got == want
