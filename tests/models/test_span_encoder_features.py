"""Span-encoder words: one rule for every tokenizer (BERT's), so SentencePiece backbones such as
multilingual-e5 get Chinese characters and punctuation as words of their own."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from b2ner_common.models.span_encoder.features import align_entities, segment_texts, word_spans

MIXED = [
    "Barack Obama visited Paris.",
    "去了Tokyo，北京大学很好。",
    "浙商银行企业信贷部叶老桂博士则从另一个角度对五道门槛进行了解读。",
    "  Leading   spaces, e.g. U.S.A. $5,000 (café)!  ",
]


def _words(tok, text):
    return [text[a:b] for seg in segment_texts(tok, [text], 64)[0] for a, b in seg.word_spans]


def test_span_encoder_features_words_are_the_same_for_wordpiece_and_sentencepiece(
    minilm_path, tiny_unigram_encoder_dir
):
    wordpiece = AutoTokenizer.from_pretrained(minilm_path)
    unigram = AutoTokenizer.from_pretrained(tiny_unigram_encoder_dir)
    for text in MIXED:
        assert _words(unigram, text) == _words(wordpiece, text)
    assert _words(unigram, MIXED[0]) == ["Barack", "Obama", "visited", "Paris", "."]
    assert _words(unigram, MIXED[1]) == ["去", "了", "Tokyo", "，", "北", "京", "大", "学", "很", "好", "。"]


def test_span_encoder_features_sentencepiece_words_start_at_their_own_piece(tiny_unigram_encoder_dir):
    tok = AutoTokenizer.from_pretrained(tiny_unigram_encoder_dir)
    (seg,) = segment_texts(tok, [MIXED[1]], 64)[0]
    firsts = tok.convert_ids_to_tokens([seg.token_ids[i] for i in seg.word_first_token])
    # A CJK character is tokenized "▁" + "北" when split into words; the bare "▁" is dropped, so each
    # word is represented by its character, never by a shared space piece.
    assert "▁" not in tok.convert_ids_to_tokens(seg.token_ids)
    assert firsts[4:8] == ["北", "京", "大", "学"]
    assert firsts[2] == "T"  # "Tokyo": no "▁T" piece, so "▁" "T" "o" ... and the "▁" goes


def test_span_encoder_features_chinese_entities_align_under_sentencepiece(tiny_unigram_encoder_dir):
    # Regression: with the tokenizer's own words (whitespace only) a Chinese sentence was one word, so
    # every Chinese gold entity was skipped as unaligned.
    tok = AutoTokenizer.from_pretrained(tiny_unigram_encoder_dir)
    text = MIXED[2]
    (seg,) = segment_texts(tok, [text], 64)[0]
    ents = [(text.index("浙商银行"), text.index("浙商银行") + 4, "company"), (9, 12, "person")]
    aligned, skipped = align_entities(seg, ents, max_width=8)
    assert skipped == 0 and aligned == [(0, 3, "company"), (9, 11, "person")]


def test_span_encoder_features_wordpiece_input_ids_are_the_tokenizers_own(minilm_path, corpora_dir):
    """On real English and Chinese sentences, splitting into words first changes no token MiniLM sees."""
    tok = AutoTokenizer.from_pretrained(minilm_path)
    texts = _corpus_sentences(corpora_dir)
    segs = segment_texts(tok, texts, 10_000)
    whole = tok(texts, add_special_tokens=False)["input_ids"]
    for text, ss, ids in zip(texts, segs, whole, strict=True):
        assert [t for s in ss for t in s.token_ids] == ids, text


def test_span_encoder_features_word_spans_cover_every_non_space_character():
    text = "x\u200by 去了Tokyo，ｆｕｌｌ（ｗ） a-b"
    spans = word_spans(text)
    covered = "".join(text[a:b] for a, b in spans)
    assert covered == "".join(c for c in text if not c.isspace())
    assert all(a < b for a, b in spans) and spans == sorted(spans)


def _corpus_sentences(corpora_dir, per_file: int = 400) -> list[str]:
    """Sentences of CoNLL-2003 (English) and MSRA (Chinese) read from the shared corpora's token files."""
    out = []
    for rel, sep in (("conll2003/eng.testb", " "), ("msra/msra_test_bio.txt", "")):
        path = corpora_dir / rel
        if not path.exists():
            pytest.skip(f"{path} not in the shared corpora")
        sentences, words = [], []
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts and not parts[0].startswith("-DOCSTART-"):
                words.append(parts[0])
            elif words:
                sentences.append(sep.join(words))
                words = []
            if len(sentences) == per_file:
                break
        out += sentences
    return out
