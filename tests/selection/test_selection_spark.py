"""The Spark selection job: per-dataset selection on executors, decontamination, idempotent runs, report,
parity with the local function, and what training reads back (`selected_samples`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.schema import EMBEDDINGS, SILVER_SAMPLES, make_sample_id
from b2ner_common.selection import SelectParams, select_dataset, selected_samples, text_hash
from b2ner_common.selection.embeddings import vectors_to_arrow

pytestmark = pytest.mark.slow

TYPES = {"ds_a": ["person", "location", "organization", "award"], "ds_b": ["gene", "disease"]}


def build_warehouse(warehouse, rng) -> dict:
    """silver/samples of two training datasets + one OOD-DEV dataset, and random unit embeddings."""
    rows, planted = [], {"contaminated": 0, "exact": 0, "near": []}
    eval_texts = [f"CrossNER sentence {i} about neural networks ." for i in range(30)]
    for t in eval_texts:
        rows.append(("crossner_ai", "train", t, ["algorithm"]))
    for ds, n in (("ds_a", 300), ("ds_b", 150)):
        for i in range(n):
            text = f"{ds} training sentence number {i} ."
            if ds == "ds_a" and i < 4:
                text = eval_texts[i].upper()  # contamination (normalized match)
                planted["contaminated"] += 1
            elif ds == "ds_a" and i in (10, 11):
                text = "ds_a training sentence number 9 ."  # exact duplicates of row 9
                planted["exact"] += 1
            k = rng.integers(0, 3)
            types = list(rng.choice(TYPES[ds], size=min(k, len(TYPES[ds])), replace=False))
            if ds == "ds_a" and i == 299:
                types = ["award"]  # the only sample of a rare type: it must be selected
            elif "award" in types:
                types.remove("award")
            rows.append((ds, "train", text, types))
        rows.append((ds, "dev", f"{ds} dev sentence .", [TYPES[ds][0]]))  # not a candidate split
    records = []
    for i, (ds, split, text, types) in enumerate(rows):
        ents = [{"start": 0, "end": 1, "label": t.upper(), "text": text[0], "type": t} for t in types]
        records.append(
            {
                "sample_id": make_sample_id(ds, split, f"x:{i}", text),
                "dataset": ds,
                "split": split,
                "lang": "en",
                "text": text,
                "entities": ents,
                "source": f"x:{i}",
                "repairs": 0,
                "label_set": sorted(TYPES.get(ds, ["algorithm"])),
            }
        )
    silver = pa.Table.from_pylist(records, schema=SILVER_SAMPLES)
    tables.write_table(tables.table_path(warehouse, "silver/samples"), silver)
    vecs = rng.normal(size=(silver.num_rows, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    ids = silver["sample_id"].to_pylist()
    a_rows = [i for i, r in enumerate(records) if r["dataset"] == "ds_a" and r["split"] == "train"]
    vecs[a_rows[50]] = vecs[a_rows[49]] * 0.999 + vecs[a_rows[48]] * 0.01  # near duplicate of row 49
    vecs[a_rows[50]] /= np.linalg.norm(vecs[a_rows[50]])
    planted["near"] = [ids[a_rows[50]]]
    emb = pa.table(
        {"sample_id": ids, "model": ["all-minilm-l6-v2"] * len(ids), "vector": vectors_to_arrow(vecs)},
        schema=EMBEDDINGS,
    )
    tables.write_table(tables.table_path(warehouse, "gold/embeddings"), emb)
    return {
        "silver": silver,
        "vectors": dict(zip(ids, vecs, strict=True)),
        "planted": planted,
        "evals": eval_texts,
    }


def local_selection(data, params) -> pd.DataFrame:
    """The same selection without Spark (parity reference)."""
    df = data["silver"].to_pandas()
    df = df[(df["split"] == "train") & (df["dataset"] != "crossner_ai")]
    df["types"] = [sorted({e["type"] for e in ents if e["type"]}) for ents in df["entities"]]
    eval_h = {text_hash(t) for t in data["evals"]}
    outs = []
    for _, g in df.groupby("dataset"):
        vecs = np.stack([data["vectors"][s] for s in g["sample_id"]])
        out, _ = select_dataset(g.reset_index(drop=True), vecs, params, eval_h)
        outs.append(out)
    return pd.concat(outs, ignore_index=True)


def test_selection_spark_job_end_to_end(spark, warehouse, tmp_path):
    from spark_jobs.select import run_select

    data = build_warehouse(warehouse, np.random.default_rng(0))
    over = [f"warehouse={warehouse}", "select.budget_per_dataset=60", f"select.report_dir={tmp_path / 'rep'}"]
    cfg = load_config(None, over + ["select.run_id=t1"])
    res = run_select(cfg, spark)

    stats = {s["dataset"]: s for s in res.stats}
    assert set(stats) == {"ds_a", "ds_b"}  # the OOD-DEV dataset is never a candidate
    a = stats["ds_a"]["cleaning"]
    assert a["input"] == 300 and a["contaminated"] == data["planted"]["contaminated"] == 4
    assert a["exact_duplicate"] == 2 and a["near_duplicate"] == 1
    assert a["kept"] == 300 - 4 - 2 - 1
    assert stats["ds_b"]["cleaning"] == {
        "input": 150,
        "contaminated": 0,
        "exact_duplicate": 0,
        "near_duplicate": 0,
        "kept": 150,
    }
    assert set(stats["ds_a"]["coverage"]) == {"kmeans", "kcenter", "random"}

    sel = tables.read_table(tables.table_path(warehouse, "gold/selection")).to_pandas()
    assert len(sel) == 120 and sel["sample_id"].is_unique
    assert sel.groupby("dataset").size().to_dict() == {"ds_a": 60, "ds_b": 60}
    assert set(sel["selection_run"]) == {"t1"}
    assert not set(sel["sample_id"]) & set(data["planted"]["near"])
    silver = data["silver"].to_pandas().set_index("sample_id")
    assert (silver.loc[sel["sample_id"], "split"] == "train").all()
    award_id = silver[
        (silver["dataset"] == "ds_a")
        & silver["entities"].map(lambda es: any(e["type"] == "award" for e in es))
    ].index
    assert set(award_id) <= set(sel["sample_id"])  # the rare type is represented

    # Parity: the Spark job and the plain function give the same rows.
    local = local_selection(data, SelectParams.from_config(cfg.select))
    key = ["sample_id", "category", "stage", "cluster"]
    spark_rows = sel[key].sort_values("sample_id").reset_index(drop=True)
    local_rows = local[key].sort_values("sample_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(spark_rows, local_rows, check_dtype=False)

    # The report: counts, coverage table and the plot.
    md = res.report.read_text()
    assert "| ds_a | 300 | 4 | 2 | 1 | 293 | 60 | 60 |" in md and "kcenter" in md
    assert (res.report.parent / "coverage.png").stat().st_size > 1000

    # Idempotent per run id; another run id is kept apart.
    run_select(cfg, spark)
    run_select(
        load_config(
            None, over + ["select.run_id=t2", "select.strategy=random", "select.compare_strategies=false"]
        ),
        spark,
    )
    sel2 = tables.read_table(tables.table_path(warehouse, "gold/selection")).to_pandas()
    assert sel2.groupby("selection_run").size().to_dict() == {"t1": 120, "t2": 120}
    assert set(sel2.loc[sel2["selection_run"] == "t1", "sample_id"]) == set(sel["sample_id"])

    # What training reads.
    got = selected_samples(warehouse, "t1")
    assert got.num_rows == 120
    assert {"text", "entities", "label_set", "category", "stage", "cluster", "selection_run"} <= set(
        got.column_names
    )
    with pytest.raises(ValueError, match="nope"):
        selected_samples(warehouse, "nope")


def test_selection_spark_missing_embeddings_fail_the_job(spark, warehouse, tmp_path):
    from spark_jobs.select import SelectionError, run_select

    data = build_warehouse(warehouse, np.random.default_rng(1))
    extra = data["silver"].slice(40, 1).to_pylist()[0]
    extra["sample_id"], extra["text"] = "no-vector-yet", "a sentence added after embedding ."
    tables.write_table(
        tables.table_path(warehouse, "silver/samples"), pa.Table.from_pylist([extra], schema=SILVER_SAMPLES)
    )
    cfg = load_config(None, [f"warehouse={warehouse}", f"select.report_dir={tmp_path}"])
    with pytest.raises(SelectionError, match="b2ner embed"):
        run_select(cfg, spark)
    assert not tables.table_exists(tables.table_path(warehouse, "gold/selection"))


def test_selection_spark_no_candidates_names_the_filters(spark, warehouse, tmp_path):
    from spark_jobs.select import SelectionError, run_select

    build_warehouse(warehouse, np.random.default_rng(3))
    cfg = load_config(None, [f"warehouse={warehouse}", f"select.report_dir={tmp_path}", "select.langs=[xx]"])
    with pytest.raises(SelectionError, match=r"no candidate samples: .*langs \['xx'\]"):
        run_select(cfg, spark)
    assert not tables.table_exists(tables.table_path(warehouse, "gold/selection"))


def test_selection_cli_select_exit_codes(spark, warehouse, tmp_path):
    from b2ner_cli.main import main

    build_warehouse(warehouse, np.random.default_rng(2))
    base = [f"warehouse={warehouse}", f"select.report_dir={tmp_path}"]
    assert main(["select", "--strategy", "kcenter", "--budget", "30", "--run-id", "cli", *base]) == 0
    sel = tables.read_table(tables.table_path(warehouse, "gold/selection")).to_pandas()
    assert sel.groupby("dataset").size().to_dict() == {"ds_a": 30, "ds_b": 30}
    assert main(["select", "--run-id", "bad id!", *base]) == 2
    assert main(["select", "select.strategy=dpp", *base]) == 2
