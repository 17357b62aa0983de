"""Batch predict on Spark and Ray: same rows as the local engine; a killed Spark job resumes exactly."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from b2ner_common import tables
from b2ner_common.models.lexicon import LexiconPredictor
from b2ner_common.predict.job import read_predictions, run_local

pytestmark = pytest.mark.slow

KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from b2ner_common.config import load_config
    from b2ner_common.models.lexicon import LexiconPredictor
    from spark_jobs.predict import run_predict as run_spark

    LEX = json.loads(sys.argv[2])

    def slow_factory():
        class Slow(LexiconPredictor):
            def predict(self, texts, labels):
                time.sleep(0.05 * len(texts))  # slow enough to be killed mid-job
                return super().predict(texts, labels)
        return Slow(LEX)

    run_spark(load_config(None, json.loads(sys.argv[1])), predictor_factory=slow_factory)
    """
)


def _overrides(cfg) -> list[str]:
    p = cfg.predict
    return [
        f"warehouse={cfg.warehouse}",
        f"predict.input={p.input}",
        "predict.labels=[person, location]",
        f"predict.commit_every={p.commit_every}",
        f"predict.batch_size={p.batch_size}",
        f"predict.run_id={p.run_id}",
        "spark.shuffle_partitions=2",
    ]


def _lexicon_factory(lexicon: dict):
    """A factory Spark and Ray can pickle: it holds the lexicon, not the conftest class it came from."""
    lexicon = {k: list(v) for k, v in lexicon.items()}
    return lambda: LexiconPredictor(lexicon)


def _expected(kit, tmp_path, inp):
    clean = kit.cfg_for(tmp_path / "wh_local", inp)
    run_local(clean, predictor=LexiconPredictor(kit.LEXICON))
    return read_predictions(tables.table_path(clean.warehouse, "gold/predictions"))


def test_predict_spark_killed_job_resumes_to_exact_rows(tmp_path, spark, predict_kit):
    from spark_jobs.predict import run_predict as run_spark

    inp = predict_kit.write_jsonl(tmp_path / "docs.jsonl", predict_kit.make_docs(30))
    expected = _expected(predict_kit, tmp_path, inp)
    cfg = predict_kit.cfg_for(tmp_path / "wh", inp)
    out = tables.table_path(cfg.warehouse, "gold/predictions")
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    proc = subprocess.Popen(
        [sys.executable, str(script), json.dumps(_overrides(cfg)), json.dumps(predict_kit.LEXICON)],
        env=env,
        start_new_session=True,  # its own process group: the kill takes the JVM with it
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            # The first write creates the table empty, then MERGEs the first slice: wait for rows.
            if tables.table_exists(out) and tables.read_table(out, columns=["doc_id"]).num_rows:
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    partial = read_predictions(out).num_rows
    assert 0 < partial < 30  # killed after the first commit, before the last
    summary = run_spark(cfg, spark, predictor_factory=_lexicon_factory(predict_kit.LEXICON))
    assert summary.skipped_done == partial and summary.predicted == 30 - partial
    assert read_predictions(out).equals(expected)
    # A third run has nothing to do and changes nothing.
    assert run_spark(cfg, spark, predictor_factory=_lexicon_factory(predict_kit.LEXICON)).predicted == 0
    assert read_predictions(out).equals(expected)


def test_predict_ray_resumes_and_matches_local(tmp_path, predict_kit):
    from ray_train.predict import run_predict as run_ray

    inp = predict_kit.write_jsonl(tmp_path / "docs.jsonl", predict_kit.make_docs(50))
    expected = _expected(predict_kit, tmp_path, inp)
    cfg = predict_kit.cfg_for(tmp_path / "wh", inp)
    cfg.ray.num_cpus = 2
    cfg.predict.workers = 1  # one actor + read tasks fit in 2 CPUs
    out = tables.table_path(cfg.warehouse, "gold/predictions")
    # A previous attempt committed the first 20 documents, then died.
    first = cfg.model_copy(deep=True)
    first.predict.limit = 20
    run_local(first, predictor=LexiconPredictor(predict_kit.LEXICON))
    summary = run_ray(cfg, predictor_factory=_lexicon_factory(predict_kit.LEXICON))
    assert (summary.skipped_done, summary.predicted) == (20, 30)
    assert summary.commits == 3
    assert read_predictions(out).equals(expected)


def _fragile_factory(lexicon: dict):
    """A lexicon predictor that fails on any text with BOOM (a local class: pickled by value)."""
    lexicon = {k: list(v) for k, v in lexicon.items()}

    def make():
        class Fragile(LexiconPredictor):
            def predict(self, texts, labels):
                if any("BOOM" in t for t in texts):
                    raise RuntimeError("cannot handle BOOM")
                return super().predict(texts, labels)

        return Fragile(lexicon)

    return make


def test_predict_spark_rerun_replaces_error_rows(tmp_path, spark, predict_kit):
    """The Spark writer dropped replace_matched_when, so a retried error row was never replaced."""
    from spark_jobs.predict import run_predict as run_spark

    rows = predict_kit.make_docs(6) + [{"doc_id": "bad", "text": "BOOM Paris"}]
    cfg = predict_kit.cfg_for(tmp_path / "wh", predict_kit.write_jsonl(tmp_path / "d.jsonl", rows))
    cfg = cfg.model_copy(update={"predict": cfg.predict.model_copy(update={"engine": "spark"})})
    first = run_spark(cfg, spark, predictor_factory=_fragile_factory(predict_kit.LEXICON))
    assert first.table_errors == 1
    again = run_spark(cfg, spark, predictor_factory=_lexicon_factory(predict_kit.LEXICON))
    assert again.predicted == 1 and again.table_rows == 7 and again.table_errors == 0
