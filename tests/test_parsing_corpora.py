"""Offset round trips on real corpora: gold entities -> B2NER answer -> parse_answer -> the same spans.

The answer format names mentions, not positions, so a mention whose first occurrence after the previous
entity is unannotated cannot round-trip ("speech" inside an earlier "speech synthesis"); that is a property
of the format, measured here at well under 2 % of entities. Everything located must match the text exactly.
"""

import pytest

from b2ner_common.parsing import parse_answer
from b2ner_common.prompts import format_answer

pytestmark = [pytest.mark.corpora, pytest.mark.slow]


@pytest.mark.parametrize("dataset", ["crossner_ai", "cluener", "weibo", "mit_restaurant", "conll2003"])
def test_parsing_corpora_round_trip_offsets(corpora_dir, dataset):
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_entry

    samples = ingest_entry(load_catalog(), dataset, corpora_dir).samples[:1500]
    assert samples
    total = exact = 0
    for s in samples:
        gold = sorted((e.start, e.end, e.label) for e in s.entities)
        answer = format_answer([(label, s.text[a:b]) for a, b, label in gold])
        ents, problems = parse_answer(s.text, answer, sorted({label for _, _, label in gold}))
        assert problems == [], (s.source, problems)
        assert all(s.text[e.start : e.end] == e.text for e in ents)
        assert len(ents) == len(gold)
        total += len(gold)
        exact += len(set(gold) & {(e.start, e.end, e.label) for e in ents})
    assert total > 500
    assert exact / total >= 0.985, f"{dataset}: {exact}/{total} spans recovered"
