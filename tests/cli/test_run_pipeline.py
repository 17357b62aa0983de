"""`b2ner run` end to end on the generated sample corpus: every stage, then an idempotent re-run."""

import io
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from b2ner_cli.commands.run import run_pipeline
from b2ner_cli.main import main
from b2ner_common import tables
from b2ner_common.config import load_config

pytestmark = pytest.mark.slow


def test_run_pipeline_sample_corpus_end_to_end_and_rerun(tmp_path: Path, monkeypatch, capfd):
    monkeypatch.chdir(tmp_path)
    overrides = [
        "ingest.corpora=/no/such/corpora",
        "warehouse=wh",
        "train.max_steps=20",
        "run.eval_samples=40",
        "train.num_workers=1",
        "select.budget_per_dataset=60",
        "run.candidates_per_dataset=80",
    ]
    log = io.StringIO()
    results = run_pipeline(load_config(None, overrides), Console(file=log, width=160))
    shown = log.getvalue()
    # What a user watches: progress lines per long stage (no terminal: one line per 10%), the stage
    # table with rows in / out, the selection per dataset and the F1 table with the language average.
    for expected in (
        "ingest: ",
        "embed: ",
        "select: ",
        "train span-encoder: 100%",
        "evaluate: 100%",
        "rows in",
    ):
        assert expected in shown, f"{expected!r} not in the output:\n{shown}"
    assert "zero-shot F1" in shown and "average (1 sets)" in shown and "samples per dataset" in shown
    noise = capfd.readouterr()
    for line in ("PlacementGroupCleaner", "TrainingReport(", "Failed to query Ray Train Controller"):
        assert line not in noise.out + noise.err + shown, line
    wh = tmp_path / "wh"
    bronze = tables.read_table(tables.table_path(wh, "bronze/samples"))
    silver = tables.read_table(tables.table_path(wh, "silver/samples"))
    assert bronze.num_rows == sum(results["ingest"].reconciliation["accepted"].to_pylist()) > 0
    assert silver.num_rows == bronze.num_rows
    types = {e["type"] for ents in silver["entities"].to_pylist() for e in ents}
    assert types == {"person", "location", "organization"}
    # Only selection candidates are embedded: train rows, at most run.candidates_per_dataset per dataset.
    train_rows = Counter(
        d
        for d, s in zip(silver["dataset"].to_pylist(), silver["split"].to_pylist(), strict=True)
        if s == "train"
    )
    assert max(train_rows.values()) > 80
    embedded = sum(min(n, 80) for n in train_rows.values())
    assert results["embed"].computed == embedded
    selected = tables.read_table(tables.table_path(wh, "gold/selection"))
    assert 0 < selected.num_rows <= silver.num_rows
    assert set(selected["dataset"].to_pylist()) <= set(silver["dataset"].to_pylist())
    assert Path(results["train"]["model"]).is_dir()
    # No OOD-DEV corpora in the sample: evaluation falls back to held-out splits, never to train.
    assert {s.dataset for s in results["evaluate"].scores} == {"sample_en"}
    assert "sample_en:dev" in (tmp_path / "reports" / "report.md").read_text(encoding="utf-8")

    # Re-run the data stages through the CLI: same rows, nothing embedded twice.
    rc = main(["run", *overrides, "run.stages=[ingest,taxonomy,embed]"])
    assert rc == 0
    assert tables.read_table(tables.table_path(wh, "bronze/samples")).num_rows == bronze.num_rows
    assert tables.read_table(tables.table_path(wh, "silver/samples")).num_rows == silver.num_rows
    emb = tables.read_table(tables.table_path(wh, "gold/embeddings"), columns=["sample_id"])
    assert emb.num_rows == embedded
