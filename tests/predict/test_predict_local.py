"""Batch predict, local engine: exactly-once rows, kill-and-resume equality, per-row errors, inputs."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from b2ner_common import tables
from b2ner_common.config import load_config
from b2ner_common.models.lexicon import LexiconPredictor
from b2ner_common.predict.batch import InputError, predict_batch
from b2ner_common.predict.job import read_documents, read_predictions, run_local


class DiesAfter:
    """A predictor that dies like a killed worker (SystemExit is not an Exception) after `n` documents."""

    def __init__(self, n, lexicon):
        self.inner = LexiconPredictor(lexicon)
        self.name = self.inner.name
        self.left = n

    def predict(self, texts, labels):
        self.left -= len(texts)
        if self.left < 0:
            raise SystemExit(9)
        return self.inner.predict(texts, labels)


def test_predict_local_rows_and_idempotent_rerun(tmp_path, predict_kit):
    inp = predict_kit.write_jsonl(tmp_path / "docs.jsonl", predict_kit.make_docs(35))
    cfg = predict_kit.cfg_for(tmp_path / "wh", inp)
    s = run_local(cfg, predictor=LexiconPredictor(predict_kit.LEXICON))
    assert (s.input_docs, s.predicted, s.ok, s.errors, s.commits) == (35, 35, 35, 0, 4)
    rows = read_predictions(tables.table_path(cfg.warehouse, "gold/predictions"), "r1").to_pylist()
    assert len(rows) == 35
    d0 = rows[0]
    assert [(e["start"], e["end"], e["label"], e["text"]) for e in d0["entities"]] == [
        (0, 12, "person", "Barack Obama"),
        (21, 26, "location", "Paris"),
    ]
    s2 = run_local(cfg, predictor=LexiconPredictor(predict_kit.LEXICON))
    assert (s2.skipped_done, s2.predicted, s2.commits) == (35, 0, 0)
    assert read_predictions(tables.table_path(cfg.warehouse, "gold/predictions")).num_rows == 35


def test_predict_local_kill_and_resume_equals_uninterrupted(tmp_path, predict_kit):
    inp = predict_kit.write_jsonl(tmp_path / "docs.jsonl", predict_kit.make_docs(47))
    clean = predict_kit.cfg_for(tmp_path / "wh_clean", inp)
    run_local(clean, predictor=LexiconPredictor(predict_kit.LEXICON))
    expected = read_predictions(tables.table_path(clean.warehouse, "gold/predictions"))

    cfg = predict_kit.cfg_for(tmp_path / "wh", inp)
    out = tables.table_path(cfg.warehouse, "gold/predictions")
    with pytest.raises(SystemExit):
        run_local(cfg, predictor=DiesAfter(25, predict_kit.LEXICON))  # dies inside the third commit slice
    assert read_predictions(out).num_rows == 20  # two commits of 10 survived, nothing partial
    resumed = run_local(cfg, predictor=LexiconPredictor(predict_kit.LEXICON))
    assert (resumed.skipped_done, resumed.predicted) == (20, 27)
    assert read_predictions(out).equals(expected)


def test_predict_local_per_row_errors_are_rows(tmp_path, predict_kit):
    class Fragile(LexiconPredictor):
        def predict(self, texts, labels):
            if any("BOOM" in t for t in texts):
                raise RuntimeError("cannot handle BOOM")
            return super().predict(texts, labels)

    rows = predict_kit.make_docs(6) + [
        {"doc_id": "bad", "text": "BOOM Paris"},
        {"doc_id": "null", "text": None},
    ]
    cfg = predict_kit.cfg_for(tmp_path / "wh", predict_kit.write_jsonl(tmp_path / "d.jsonl", rows))
    s = run_local(cfg, predictor=Fragile(predict_kit.LEXICON))
    got = {
        r["doc_id"]: r
        for r in read_predictions(tables.table_path(cfg.warehouse, "gold/predictions")).to_pylist()
    }
    assert s.predicted == 8 and s.errors == 2 and s.ok == 6
    assert got["bad"]["status"] == "error: RuntimeError" and "BOOM" in got["bad"]["error"]
    assert got["null"]["status"] == "error: no text"
    assert got["d0000"]["status"] == "ok" and len(got["d0000"]["entities"]) == 2


def test_predict_local_parquet_delta_inputs_labels_column_and_derived_ids(tmp_path, predict_kit):
    docs = predict_kit.make_docs(5)
    for i, d in enumerate(docs):
        d["labels"] = "location" if i % 2 else ["person"]
    docs[1]["labels"] = "location"
    t = pa.Table.from_pylist(
        [
            {
                "text": d["text"],
                "labels": d["labels"] if isinstance(d["labels"], str) else ",".join(d["labels"]),
            }
            for d in docs
        ]
    )
    pq.write_table(t, tmp_path / "docs.parquet")
    cfg = predict_kit.cfg_for(
        tmp_path / "wh", tmp_path / "docs.parquet", **{"predict.labels_column": "labels"}
    )
    a = read_documents(cfg)
    assert a["doc_id"].to_pylist() == read_documents(cfg)["doc_id"].to_pylist()  # stable without an id column
    assert len(set(a["doc_id"].to_pylist())) == 5
    tables.write_table(str(tmp_path / "delta_in"), t)
    cfg_delta = predict_kit.cfg_for(
        tmp_path / "wh", tmp_path / "delta_in", **{"predict.labels_column": "labels"}
    )
    assert read_documents(cfg_delta).equals(a)
    run_local(cfg, predictor=LexiconPredictor(predict_kit.LEXICON))
    rows = read_predictions(tables.table_path(cfg.warehouse, "gold/predictions")).to_pylist()
    by_text = {r["doc_id"]: {e["label"] for e in r["entities"]} for r in rows}
    ids = a["doc_id"].to_pylist()
    assert by_text[ids[0]] == {"person"} and by_text[ids[1]] == {"location"}


def test_predict_local_input_errors_name_the_fix(tmp_path, predict_kit):
    inp = predict_kit.write_jsonl(tmp_path / "d.jsonl", [{"body": "x"}])
    with pytest.raises(InputError, match="text_column"):
        read_documents(predict_kit.cfg_for(tmp_path, inp))
    with pytest.raises(InputError, match="does not exist"):
        read_documents(predict_kit.cfg_for(tmp_path, tmp_path / "missing.jsonl"))


def test_predict_batch_without_labels_is_an_error_row(tmp_path, predict_kit):
    import pandas as pd

    cfg = predict_kit.cfg_for(tmp_path, tmp_path / "x.jsonl", **{"predict.labels": "[]"})
    out = predict_batch(
        pd.DataFrame(predict_kit.make_docs(2)),
        LexiconPredictor(predict_kit.LEXICON),
        run_id="r",
        labels=[],
        cfg=cfg,
    )
    assert out["status"].tolist() == ["error: no labels"] * 2


def test_predict_local_rerun_retries_error_rows_and_counts_the_table(tmp_path, predict_kit):
    """Error rows are not done: a re-run with the cause fixed redoes them (issue 14.8)."""

    class Fragile(LexiconPredictor):
        def predict(self, texts, labels):
            if any("BOOM" in t for t in texts):
                raise RuntimeError("cannot handle BOOM")
            return super().predict(texts, labels)

    rows = predict_kit.make_docs(4) + [{"doc_id": "bad", "text": "BOOM Paris"}]
    cfg = predict_kit.cfg_for(tmp_path / "wh", predict_kit.write_jsonl(tmp_path / "d.jsonl", rows))
    first = run_local(cfg, predictor=Fragile(predict_kit.LEXICON))
    assert first.errors == 1 and first.table_rows == 5 and first.table_errors == 1
    kept = run_local(
        cfg.model_copy(update={"predict": cfg.predict.model_copy(update={"retry_errors": False})}),
        predictor=LexiconPredictor(predict_kit.LEXICON),
    )
    assert kept.predicted == 0 and kept.table_errors == 1  # retry_errors=false keeps them
    again = run_local(cfg, predictor=LexiconPredictor(predict_kit.LEXICON))  # the cause fixed
    assert again.skipped_done == 4 and again.predicted == 1 and again.ok == 1
    assert again.table_rows == 5 and again.table_errors == 0
    got = {
        r["doc_id"]: r
        for r in read_predictions(tables.table_path(cfg.warehouse, "gold/predictions")).to_pylist()
    }
    assert len(got) == 5 and got["bad"]["status"] == "ok"


def test_predict_local_null_text_without_id_column_gets_its_own_error_row(tmp_path, predict_kit):
    """Null and empty texts used to share one content id; the null one was dropped (issue 14.9)."""
    inp = predict_kit.write_jsonl(tmp_path / "d.jsonl", [{"text": ""}, {"text": None}, {"text": "Paris"}])
    cfg = predict_kit.cfg_for(tmp_path / "wh", inp, **{"predict.id_column": "nope"})
    s = run_local(cfg, predictor=LexiconPredictor(predict_kit.LEXICON))
    statuses = sorted(
        r["status"]
        for r in read_predictions(tables.table_path(cfg.warehouse, "gold/predictions")).to_pylist()
    )
    assert s.duplicate_ids == 0 and len(statuses) == 3
    assert "error: no text" in statuses


def test_predict_batch_null_label_sets_never_raise():
    """Ray Data passes pd.NA for a null list (issue 14.6); no value of a labels column may kill a job."""
    import numpy as np
    import pandas as pd

    from b2ner_common.predict.batch import parse_labels

    assert parse_labels(pd.NA) is None and parse_labels(None) is None and parse_labels(float("nan")) is None
    assert parse_labels(np.array(["person", None, " city "], dtype=object)) == ["person", "city"]
    assert parse_labels("a, b,") == ["a", "b"] and parse_labels(7) == ["7"]


@pytest.mark.parametrize("override", ["predict.commit_every=0", "predict.batch_size=0", "predict.limit=-1"])
def test_predict_config_rejects_unusable_numbers(override):
    from b2ner_common.config import ConfigError

    with pytest.raises(ConfigError, match=override.split("=")[0]):
        load_config(None, [override])


def test_predict_lexicon_finds_latin_term_next_to_cjk():
    ents = LexiconPredictor({"location": ["Tokyo"]}).predict(["我们去了Tokyo玩", "Tokyoite"], ["location"])
    assert [(e.start, e.end) for e in ents[0]] == [(4, 9)]
    assert ents[1] == []  # still a whole word in Latin text
