"""Span-encoder training through Ray Train on a warehouse: checkpoints, resume, final model, MLflow."""

from __future__ import annotations

import pyarrow as pa
import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.models.span_encoder.model import load_span_encoder
from b2ner_common.schema import SILVER_SAMPLES, sample_to_row
from b2ner_common.selection.training_rows import silver_pool, training_table

NAMES = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"}


def _write_silver(corpora_dir, warehouse, n: int = 48) -> None:
    """A small silver/samples table from real CoNLL-2003 rows (+ a few OOD-DEV rows that must not be used)."""
    from dataclasses import replace

    from b2ner_common.ingest.catalog import load_catalog
    from b2ner_common.ingest.units import ingest_tasks

    cat = load_catalog()
    conll = [t for t in cat.tasks(corpora_dir, ["conll2003"]) if t.split in ("train", "dev")]
    ood = [t for t in cat.tasks(corpora_dir, ["mit_restaurant"])]
    rows = []
    for s in ingest_tasks(conll).samples[: 2 * n] + ingest_tasks(ood).samples[:10]:
        ents = [replace(e, type=NAMES.get(e.label, e.label.lower())) for e in s.entities]
        row = sample_to_row(replace(s, entities=ents))
        row["label_set"] = sorted(NAMES.values()) if s.dataset == "conll2003" else ["dish"]
        rows.append(row)
    tables.write_table(
        tables.table_path(warehouse, "silver/samples"), pa.Table.from_pylist(rows, SILVER_SAMPLES)
    )


@pytest.mark.corpora
def test_span_encoder_silver_pool_keeps_train_split_and_never_eval_data(corpora_dir, warehouse):
    _write_silver(corpora_dir, warehouse, n=20)
    pool = silver_pool(warehouse)
    assert pool.num_rows > 0
    assert set(pool["dataset"].to_pylist()) == {"conll2003"}
    assert set(pool["split"].to_pylist()) == {"train"}
    cfg = load_config(
        None, [f"warehouse={warehouse}", "train.span.source=silver", "train.span.max_samples=5"]
    )
    t1, t2 = training_table(cfg), training_table(cfg)
    assert t1.num_rows == 5 and t1["sample_id"].to_pylist() == t2["sample_id"].to_pylist()


@pytest.mark.slow
@pytest.mark.corpora
def test_span_encoder_ray_train_checkpoints_and_resumes(corpora_dir, warehouse, tmp_path):
    from ray_train.train_span_encoder import train_span_encoder

    _write_silver(corpora_dir, warehouse)
    base = [
        f"warehouse={warehouse}",
        f"train.output_dir={tmp_path / 'runs'}",
        "train.run_name=se",
        "train.num_workers=1",
        "train.span.source=silver",
        "train.span.batch_size=8",
        "train.report_every=2",
        "train.checkpoint_every=2",
        "ray.num_cpus=2",
        "model.span.max_tokens=64",
    ]
    first = train_span_encoder(load_config(None, base + ["train.max_steps=2"]))
    assert first["metrics"]["step"] == 2 and first["metrics"]["start_step"] == 0
    # Same output_dir + run_name: the second launch resumes from step 2 instead of starting over.
    second = train_span_encoder(load_config(None, base + ["train.max_steps=4"]))
    assert second["metrics"]["step"] == 4 and second["metrics"]["start_step"] == 2
    model = load_span_encoder(second["model"])
    preds = model.predict(["Peter Blackburn visited Brussels ."], ["person", "location"], threshold=0.01)
    assert all(p.text == "Peter Blackburn visited Brussels ."[p.start : p.end] for p in preds[0])
    run_id = (tmp_path / "runs" / "se" / "mlflow_run_id").read_text().strip()
    metrics = list((tmp_path / "runs" / "mlruns").rglob(f"{run_id}/metrics/loss"))
    assert metrics, "loss was not logged to MLflow"
    steps = [int(line.split()[2]) for line in metrics[0].read_text().splitlines()]  # "timestamp value step"
    assert steps == [2, 4]  # one MLflow run across both launches
