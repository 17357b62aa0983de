"""Integration over every corpus in ../shared/corpora (core path, no Spark): counts against the
SOURCE.txt figures in the catalog, the offset property for every entity, stable unique ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2ner_common.ingest.catalog import load_catalog
from b2ner_common.ingest.units import expected_counts, ingest_tasks, plan_units
from b2ner_common.schema import Sample, check_offsets

pytestmark = pytest.mark.corpora
# Reading all ~330k sentences takes ~10 s of CPU (more on a busy machine): slow suite.
FULL = pytest.mark.slow


@pytest.fixture(scope="module")
def ingested(corpora_dir: Path):
    cat = load_catalog()
    tasks = cat.tasks(corpora_dir, roles=("train_pool", "ood_dev", "duplicate"))
    return tasks, ingest_tasks(tasks)


@FULL
def test_ingest_corpora_counts_match_source_figures(ingested):
    tasks, res = ingested
    expected = expected_counts(tasks)
    assert set(res.stats) == set(expected)
    for key, st in res.stats.items():
        assert st.records_read == st.accepted + st.rejected, key
        exp = expected[key]
        # A malformed record can split a sentence in two (broad_twitter_corpus dev): the difference
        # to the published count is bounded by the records rejected, and is exactly 0 everywhere else.
        assert abs(st.records_read - exp) <= st.rejected, (key, st, exp)
        assert st.accepted >= exp - st.rejected, key
    total_rejected = sum(st.rejected for st in res.stats.values())
    assert total_rejected == len(res.rejects) and total_rejected < 20


@FULL
def test_ingest_corpora_every_entity_matches_its_offsets(ingested):
    _, res = ingested
    bad = [
        (s.source, check_offsets(s.text, s.entities))
        for s in res.samples
        if check_offsets(s.text, s.entities)
    ]
    assert bad == []
    assert all(s.text and s.text == s.text.strip() or s.dataset == "boson" for s in res.samples)
    assert sum(len(s.entities) for s in res.samples) == sum(st.entities for st in res.stats.values())


@FULL
def test_ingest_corpora_sample_ids_unique_and_sources_point_at_lines(ingested, corpora_dir: Path):
    tasks, res = ingested
    ids = [s.sample_id for s in res.samples]
    assert len(ids) == len(set(ids))
    # Spot-check that `source` names the record's first line: its first token starts the text.
    by_path = {t.source: t for t in tasks}
    checked = 0
    for s in res.samples[:: max(1, len(res.samples) // 300)]:
        path, line = s.source.rsplit(":", 1)
        t = by_path[path]
        if (
            t.format != "conll"
            or t.options.token_col != 0
            or t.options.token_prefix
            or t.options.strip_trailing_digit
        ):
            continue
        raw = (corpora_dir / path).read_bytes().split(b"\n")[int(line) - 1].decode()
        first_token = raw.split("\t")[0].split(" ")[0].strip()
        assert s.text.startswith(first_token), (s.source, raw, s.text[:40])
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("dataset", ["conll2003", "multiconer22_de", "resume", "cluener", "boson"])
def test_ingest_corpora_chunked_reading_equals_whole_file(corpora_dir: Path, dataset: str):
    tasks = load_catalog().tasks(corpora_dir, [dataset])
    small = plan_units(tasks, chunk_bytes=50_000)
    assert len(small) > len(tasks)
    whole = ingest_tasks(tasks, chunk_bytes=1 << 40)
    chunked = ingest_tasks(tasks, chunk_bytes=50_000)
    assert [s.sample_id for s in chunked.samples] == [s.sample_id for s in whole.samples]
    assert [(r.source, r.reason) for r in chunked.rejects] == [(r.source, r.reason) for r in whole.rejects]
    assert all(isinstance(s, Sample) for s in chunked.samples)
