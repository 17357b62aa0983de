"""Chunking: coverage and bounds of chunks, offsets mapped back, duplicates merged, truncation flagged."""

from hypothesis import given, settings
from hypothesis import strategies as st

from b2ner_common.models.lexicon import LexiconPredictor
from b2ner_common.predict.chunking import chunk_text, predict_documents

LEX = LexiconPredictor({"person": ["Barack Obama", "Angela Merkel"], "location": ["Paris", "北京"]})
SENTENCES = [
    "Barack Obama visited Paris in June.",
    "Angela Merkel stayed in Berlin for a week.",
    "他们在北京见面了。",
    "Nobody else was there, not even Paris Hilton.",
]


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=400), st.integers(5, 120), st.integers(0, 60))
def test_chunking_chunks_cover_text_within_bounds(text, max_chars, overlap):
    chunks = chunk_text(text, max_chars, overlap)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.start < b.start <= a.end  # no gap, always progress
    for c in chunks:
        assert len(c.text) <= max_chars and text[c.start : c.end] == c.text


def test_chunking_prefers_sentence_boundaries():
    text = " ".join(SENTENCES * 3)
    chunks = chunk_text(text, 100, 20)
    assert len(chunks) > 2
    # Every interior cut falls right after a sentence end (".", "。") and its space.
    for c in chunks[:-1]:
        assert c.text.rstrip()[-1] in ".。"


def test_chunking_long_document_same_entities_as_whole():
    text = " ".join(SENTENCES * 20)
    whole = LEX.predict([text], ["person", "location"])[0]
    [doc] = predict_documents(LEX, [text], ["person", "location"], max_chars=120, overlap_chars=40)
    assert doc.chunks > 10
    assert [(e.start, e.end, e.label) for e in doc.entities] == [(e.start, e.end, e.label) for e in whole]
    assert all(text[e.start : e.end] == e.text for e in doc.entities)
    assert not doc.truncated


def test_chunking_hard_cut_entity_is_found_whole_in_overlap():
    # No sentence end and one space: the first chunk is cut inside the mention, after "Barack ".
    text = "x" * 90 + "-Barack Obama-" + "y" * 95
    chunks = [c.text for c in chunk_text(text, 100, 30)]
    assert chunks[0].endswith("-Barack ")
    [doc] = predict_documents(LEX, [text], ["person"], max_chars=100, overlap_chars=30)
    assert [(e.start, e.end, e.text) for e in doc.entities] == [(91, 103, "Barack Obama")]


def test_chunking_per_text_label_sets_and_max_chunks_truncation():
    texts = [SENTENCES[0], " ".join(SENTENCES * 10)]
    docs = predict_documents(
        LEX, texts, [["location"], ["person"]], max_chars=100, overlap_chars=20, max_chunks=2
    )
    assert [e.label for e in docs[0].entities] == ["location"]
    assert {e.label for e in docs[1].entities} == {"person"}
    assert not docs[0].truncated and docs[1].truncated
    assert max(e.end for e in docs[1].entities) <= 200  # nothing past the two predicted chunks
