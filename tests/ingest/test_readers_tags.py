"""Tag-scheme decoder: spans and the repair kinds it counts."""

from __future__ import annotations

import pytest

from b2ner_common.ingest.readers import TagError, decode_tags


@pytest.mark.parametrize(
    ("tags", "scheme", "spans", "repairs"),
    [
        (["B-A", "I-A", "O", "B-B"], "bio", [(0, 2, "A"), (3, 4, "B")], {}),
        (["I-A", "I-A", "B-A", "O"], "iob1", [(0, 2, "A"), (2, 3, "A")], {"iob1_to_bio": 1}),
        (["O", "I-A", "I-B"], "bio", [(1, 2, "A"), (2, 3, "B")], {"i_after_o": 1, "type_switch": 1}),
        (["B-A", "M-A", "E-A", "S-B"], "bmes", [(0, 3, "A"), (3, 4, "B")], {}),
        (["B-A", "I-A", "O"], "bioes", [(0, 2, "A")], {"unclosed": 1}),
        (["O", "E-A"], "bioes", [(1, 2, "A")], {"e_without_b": 1}),
        (["B_Time", "I_Time"], "auto", [(0, 2, "Time")], {}),
        (["U-A", "B-B", "L-B"], "auto", [(0, 1, "A"), (1, 3, "B")], {}),
        (["O", "O"], "bio", [], {}),
    ],
)
def test_readers_tags_decode(tags, scheme, spans, repairs):
    assert decode_tags(tags, scheme) == (spans, repairs)


@pytest.mark.parametrize("bad", ["X", "B-", "Q-PER", "b-per", ""])
def test_readers_tags_unknown_tag_raises_with_index(bad):
    with pytest.raises(TagError) as e:
        decode_tags(["O", bad], "bio")
    assert e.value.index == 1
