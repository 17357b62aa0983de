"""Optimistic concurrency in the table API: a lost commit race is retried with backoff, within a bound."""

import pytest
from deltalake.exceptions import CommitFailedError

from b2ner_common import tables


class Flaky:
    def __init__(self, failures: int, exc: Exception):
        self.left, self.exc, self.calls = failures, exc, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise self.exc
        return 7


def test_tables_retry_commit_retries_conflicts_with_growing_backoff():
    waits: list[float] = []
    commit = Flaky(3, CommitFailedError("version 3 already exists"))
    assert tables.retry_commit(commit, tables.is_commit_conflict, sleep=waits.append) == 7
    assert commit.calls == 4 and len(waits) == 3
    # Exponential with jitter in [0.5, 1.5): each wait's upper bound doubles.
    for n, w in enumerate(waits):
        assert 0.5 * tables.BACKOFF_S * 2**n <= w < 1.5 * tables.BACKOFF_S * 2**n


def test_tables_retry_commit_gives_up_after_the_bound():
    commit = Flaky(99, CommitFailedError("lost again"))
    with pytest.raises(CommitFailedError):
        tables.retry_commit(commit, tables.is_commit_conflict, attempts=4, sleep=lambda s: None)
    assert commit.calls == 4


def test_tables_retry_commit_raises_other_errors_at_once():
    commit = Flaky(1, ValueError("schema mismatch"))
    with pytest.raises(ValueError):
        tables.retry_commit(commit, tables.is_commit_conflict, sleep=lambda s: None)
    assert commit.calls == 1


def test_tables_commit_metadata_reads_delta_rs_commits(warehouse):
    import pyarrow as pa

    path = tables.table_path(warehouse, "t")
    tables.write_table(path, pa.table({"k": ["a"]}), metadata={"stage": "x", "config": {"a": 1}})
    assert tables.commit_metadata(path) == {"stage": "x", "config": '{"a": 1}'}
    # Top-level keys carry "b2ner.": a plain "job" collides with the Delta protocol field and breaks Spark.
    assert tables.table_history(path)[0]["b2ner.stage"] == "x"
