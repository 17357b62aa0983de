"""Concurrent predict runs into gold/predictions (local and Spark engines): conflicting commits are retried, nothing is lost or duplicated (2 and 4 writers)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from b2ner_common import tables

pytestmark = pytest.mark.slow


def _predict_cfgs(kit, tmp_path: Path, n: int, engine: str):
    inp = kit.write_jsonl(tmp_path / "docs.jsonl", kit.make_docs(40))
    # Writers 0 and 2 (1 and 3) run the same run_id over the same docs: the second adds nothing.
    return [
        kit.cfg_for(tmp_path / "wh", inp, **{"predict.engine": engine, "predict.run_id": f"r{w % 2}"})
        for w in range(n)
    ]


def _assert_predictions(cfg, n: int) -> None:
    rows = tables.read_table(
        tables.table_path(cfg.warehouse, "gold/predictions"), columns=["run_id", "doc_id"]
    )
    pairs = Counter(zip(rows["run_id"].to_pylist(), rows["doc_id"].to_pylist(), strict=True))
    assert set(pairs.values()) == {1}  # exactly once per (run, doc)
    assert Counter(r for r, _ in pairs) == {f"r{w}": 40 for w in range(min(n, 2))}


@pytest.mark.parametrize("n", [2, 4])
def test_predict_concurrent_runs_local(tmp_path: Path, n: int, predict_kit, run_threads):
    from b2ner_common.models.lexicon import LexiconPredictor
    from b2ner_common.predict.job import run_local

    cfgs = _predict_cfgs(predict_kit, tmp_path, n, "local")
    run_threads([lambda c=c: run_local(c, predictor=LexiconPredictor(predict_kit.LEXICON)) for c in cfgs])
    _assert_predictions(cfgs[0], n)


@pytest.mark.parametrize("n", [2, 4])
def test_predict_concurrent_runs_spark(spark, tmp_path: Path, n: int, predict_kit, run_threads):
    from b2ner_common.models.lexicon import LexiconPredictor
    from spark_jobs.predict import run_predict

    def factory():
        return LexiconPredictor(lexicon)

    lexicon = predict_kit.LEXICON
    cfgs = _predict_cfgs(predict_kit, tmp_path, n, "spark")
    run_threads([lambda c=c: run_predict(c, spark.newSession(), predictor_factory=factory) for c in cfgs])
    _assert_predictions(cfgs[0], n)
