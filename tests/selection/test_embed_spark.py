"""The Spark embedding job: silver/samples -> gold/embeddings, incremental and equal to local encoding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.schema import SILVER_SAMPLES, make_sample_id
from b2ner_common.selection.embeddings import arrow_to_vectors, encode_texts

pytestmark = pytest.mark.slow

SUBJECTS = ["Angela Merkel", "The Bundesbank", "Microsoft", "A striker from Lyon", "Doctors in Boston"]
VERBS = ["announced", "criticised", "welcomed", "postponed", "reported"]
OBJECTS = ["a new budget plan", "the merger talks", "record profits", "a vaccine trial", "the final match"]


def silver_rows(n: int, dataset: str = "news", offset: int = 0) -> pa.Table:
    rows = []
    for i in range(offset, offset + n):
        subj = SUBJECTS[i % 5]
        text = f"{subj} {VERBS[(i // 5) % 5]} {OBJECTS[(i // 25) % 5]} on day {i}."
        ents = [{"start": 0, "end": len(subj), "label": "PER", "text": subj, "type": "person"}]
        rows.append(
            {
                "sample_id": make_sample_id(dataset, "train", f"f.txt:{i}", text),
                "dataset": dataset,
                "split": "train",
                "lang": "en",
                "text": text,
                "entities": ents,
                "source": f"f.txt:{i}",
                "repairs": 0,
                "label_set": ["person"],
            }
        )
    return pa.Table.from_pylist(rows, schema=SILVER_SAMPLES)


def test_embed_spark_incremental_and_matches_local(spark, warehouse):
    from spark_jobs.embed import run_embed

    cfg = load_config(None, [f"warehouse={warehouse}", "select.embed_batch_size=16"])
    silver = tables.table_path(warehouse, "silver/samples")
    first = silver_rows(40)
    tables.write_table(silver, first)

    res = run_embed(cfg, spark)
    assert (res.candidates, res.computed) == (40, 40)
    gold = tables.read_table(tables.table_path(warehouse, "gold/embeddings"))
    assert gold.num_rows == 40 and set(gold["model"].to_pylist()) == {"all-minilm-l6-v2"}

    again = run_embed(cfg, spark)
    assert again.computed == 0
    assert tables.read_table(tables.table_path(warehouse, "gold/embeddings")).num_rows == 40

    tables.write_table(silver, silver_rows(10, offset=40))
    more = run_embed(cfg, spark)
    assert (more.candidates, more.computed) == (50, 10)
    gold = tables.read_table(tables.table_path(warehouse, "gold/embeddings"))
    assert gold.num_rows == 50 and len(set(gold["sample_id"].to_pylist())) == 50

    # Same vectors as a plain local encode with the same encoder settings (Spark is only the shell).
    by_id = dict(zip(gold["sample_id"].to_pylist(), arrow_to_vectors(gold["vector"]), strict=True))
    ids = first["sample_id"].to_pylist()[:8]
    s = cfg.select
    local = encode_texts(
        first["text"].to_pylist()[:8], precision=s.embed_precision, max_tokens=s.embed_max_tokens
    )
    assert np.allclose(np.stack([by_id[i] for i in ids]), local, atol=1e-4)


def test_embed_cli_summary_and_bad_model(spark, warehouse, capsys):
    from b2ner_cli.main import main

    tables.write_table(tables.table_path(warehouse, "silver/samples"), silver_rows(12))
    assert main(["embed", f"warehouse={warehouse}", "--batch-size", "8"]) == 0
    assert "12" in capsys.readouterr().out
    assert tables.read_table(tables.table_path(warehouse, "gold/embeddings")).num_rows == 12
    assert main(["embed", f"warehouse={warehouse}", "--model", "/no/such/encoder"]) == 2
    assert main(["embed", f"warehouse={warehouse / 'empty'}"]) == 2  # no silver table: names the command


def test_embed_spark_only_selection_candidates_with_a_stable_cap(spark, warehouse):
    from spark_jobs.candidates import excluded_datasets, selection_candidates
    from spark_jobs.delta import read_delta
    from spark_jobs.embed import run_embed

    silver = tables.table_path(warehouse, "silver/samples")
    dev = silver_rows(6, offset=100).to_pylist()
    for r in dev:
        r["split"] = "dev"
    tables.write_table(silver, silver_rows(40))
    tables.write_table(silver, pa.Table.from_pylist(dev, schema=SILVER_SAMPLES))
    tables.write_table(silver, silver_rows(5, dataset="crossner_ai"))  # OOD-DEV: never a candidate
    capped = load_config(None, [f"warehouse={warehouse}", "select.max_candidates_per_dataset=25"])

    res = run_embed(capped, spark)
    assert (res.candidates, res.computed) == (25, 25)
    first = set(tables.read_table(tables.table_path(warehouse, "gold/embeddings"))["sample_id"].to_pylist())
    train_ids = set(silver_rows(40)["sample_id"].to_pylist())
    assert first <= train_ids

    # The cap keeps a seeded hash order: a larger cap is a superset, so only the difference is embedded.
    wider = load_config(None, [f"warehouse={warehouse}", "select.max_candidates_per_dataset=30"])
    assert run_embed(wider, spark).computed == 5
    cands = selection_candidates(read_delta(spark, silver), wider, excluded_datasets(wider)[1])
    ids = {r["sample_id"] for r in cands.select("sample_id").collect()}
    assert first < ids and len(ids) == 30

    everything = load_config(None, [f"warehouse={warehouse}", "select.embed_scope=all"])
    assert run_embed(everything, spark).computed == 40 + 6 + 5 - 30
