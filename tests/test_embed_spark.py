"""The Spark embedding job: silver/samples -> gold/embeddings, incremental and equal to local encoding."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.embeddings import arrow_to_vectors, encode_texts
from b2ner_common.schema import SILVER_SAMPLES, make_sample_id

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

    # Same vectors as a plain local encode (Spark is only the shell).
    by_id = dict(zip(gold["sample_id"].to_pylist(), arrow_to_vectors(gold["vector"]), strict=True))
    ids = first["sample_id"].to_pylist()[:8]
    local = encode_texts(first["text"].to_pylist()[:8])
    assert np.allclose(np.stack([by_id[i] for i in ids]), local, atol=1e-4)


def test_embed_cli_summary_and_bad_model(spark, warehouse, capsys):
    from b2ner_common.cli import main

    tables.write_table(tables.table_path(warehouse, "silver/samples"), silver_rows(12))
    assert main(["embed", f"warehouse={warehouse}", "--batch-size", "8"]) == 0
    assert "12" in capsys.readouterr().out
    assert tables.read_table(tables.table_path(warehouse, "gold/embeddings")).num_rows == 12
    assert main(["embed", f"warehouse={warehouse}", "--model", "/no/such/encoder"]) == 2
    assert main(["embed", f"warehouse={warehouse / 'empty'}"]) == 2  # no silver table: names the command
