"""Real corpora (../shared/corpora): every raw label is mapped, and mapping removes type conflicts."""

from __future__ import annotations

import pytest

from b2ner_common.taxonomy import check_mappings, load_mappings, load_taxonomy, map_table, raw_label_counts
from b2ner_common.taxonomy.conflicts import screen_conflicts, summarize

pytestmark = [pytest.mark.corpora, pytest.mark.slow]

# Datasets whose texts and label vocabularies overlap (news, Wikipedia, tweets; Chinese news/social).
SCREENED = [
    "conll2003",
    "wikiann_en",
    "wnut16",
    "wnut17",
    "broad_twitter_corpus",
    "msra",
    "peoples_daily_1998",
    "boson",
    "weibo",
    "resume",
    "cluener",
]


@pytest.fixture(scope="module")
def bronze(corpora_dir):
    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_tasks, samples_table

    cat = load_catalog()
    tasks = cat.tasks(corpora_dir, roles=("train_pool", "ood_dev", "duplicate"))
    return samples_table(ingest_tasks(tasks).samples)


def test_taxonomy_check_passes_on_every_corpus(bronze):
    counts = raw_label_counts(bronze)
    assert len(counts) >= 28
    problems = [p for p in check_mappings(counts, load_taxonomy("v1"), load_mappings("v1")) if p.fatal]
    assert problems == []


def test_taxonomy_conflicts_fewer_after_mapping_on_real_corpora(bronze):
    import pyarrow as pa
    import pyarrow.compute as pc

    sub = bronze.filter(pc.is_in(bronze["dataset"], value_set=pa.array(SCREENED)))
    rows = (
        map_table(sub, load_mappings("v1"))
        .select(["sample_id", "dataset", "lang", "text", "entities"])
        .to_pylist()
    )
    s = summarize(screen_conflicts(rows, load_taxonomy("v1").compatible))
    raw, mapped = s["raw"], s["mapped"]
    print(f"\nraw: {raw}\nmapped: {mapped}")
    assert mapped["type_conflict"] < raw["type_conflict"]
    assert mapped["type_conflict_rate"] < raw["type_conflict_rate"]
    assert mapped["agree"] > raw["agree"]
