"""Training rows read from the warehouse: the one owner of "which rows does training see".

- `training_rows(cfg)`: the rows of the gold/selection run `train.selection_run` (empty = `select.run_id`)
  joined with silver/samples, after the eval-leak guard (a run holding an evaluation dataset is refused).
  Every model family trains on this.
- `training_table(cfg)`: the span-encoder family's choice of source (`train.span.source`): "selection"
  (= `training_rows`), or "silver": every silver/samples row the selection stage could have drawn from
  (same splits, same excluded datasets, same decontamination against the evaluation texts), optionally
  capped at `train.span.max_samples` drawn with a seed: the "all data" arms of the ablation.
Columns: ROW_COLUMNS (sample_id, dataset, split, lang, text, entities, label_set).
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from b2ner_common import tables
from b2ner_common.tables import Table

ROW_COLUMNS = ["sample_id", "dataset", "split", "lang", "text", "entities", "label_set"]


def silver_pool(
    warehouse: str | Path,
    *,
    splits: Sequence[str] = ("train",),
    exclude: Collection[str] = (),
    decontaminate: Collection[str] | None = None,
    datasets: Collection[str] = (),
) -> pa.Table:
    """silver/samples rows eligible for training: `splits`, not evaluation or excluded datasets, and no text
    that also occurs (normalized) in an evaluation dataset. `datasets` restricts to these when non-empty."""
    from b2ner_common.selection.dedup import eval_datasets, text_hash

    path = tables.table_path(warehouse, Table.SILVER_SAMPLES)
    if not tables.table_exists(path):
        raise FileNotFoundError(f"table {path} does not exist: run `b2ner ingest` and `b2ner taxonomy` first")
    t = tables.read_table(path, columns=ROW_COLUMNS)
    evals = set(eval_datasets(decontaminate))
    eval_hashes = {
        text_hash(x) for x in t.filter(pc.is_in(t["dataset"], pa.array(sorted(evals))))["text"].to_pylist()
    }
    banned = sorted(evals | set(exclude))
    keep = pc.and_(
        pc.is_in(t["split"], pa.array(list(splits))), pc.invert(pc.is_in(t["dataset"], pa.array(banned)))
    )
    if datasets:
        keep = pc.and_(keep, pc.is_in(t["dataset"], pa.array(sorted(datasets))))
    t = t.filter(keep)
    clean = pa.array([text_hash(x) not in eval_hashes for x in t["text"].to_pylist()], type=pa.bool_())
    t = t.filter(clean)
    return t.take(pc.sort_indices(t, [("dataset", "ascending"), ("sample_id", "ascending")]))


def sample_rows(table: pa.Table, n: int | None, seed: int) -> pa.Table:
    """`n` rows drawn uniformly without replacement with `seed` (all rows when n is None or >= size)."""
    if n is None or n >= table.num_rows:
        return table
    idx = sorted(random.Random(seed).sample(range(table.num_rows), n))
    return table.take(pa.array(idx))


def selection_run(cfg) -> str:
    """The gold/selection run training reads: `train.selection_run`, else `select.run_id`."""
    return cfg.train.selection_run or cfg.select.run_id


def training_rows(cfg) -> pa.Table:
    """The rows of selection run `train.selection_run` joined with silver/samples (ROW_COLUMNS, ordered by
    dataset, sample_id).

    Raises FileNotFoundError when a table is missing or the run has no rows (naming the command or the
    knob that fixes it), ValueError when the run holds an evaluation dataset: the OOD-DEV corpora
    (`select.decontaminate`) or a dataset scored during training (`train.llm.eval_datasets`).
    """
    from b2ner_common.selection.dedup import eval_datasets
    from b2ner_common.selection.output import read_selection, selected_samples

    run = selection_run(cfg)
    for table, cmd in ((Table.GOLD_SELECTION, "b2ner select"), (Table.SILVER_SAMPLES, "b2ner taxonomy")):
        path = tables.table_path(cfg.warehouse, table)
        if not tables.table_exists(path):
            raise FileNotFoundError(f"table {path} does not exist: run `{cmd}` first")
    if read_selection(cfg.warehouse, run).num_rows == 0:
        raise FileNotFoundError(
            f"selection run {run!r} has no rows in {tables.table_path(cfg.warehouse, Table.GOLD_SELECTION)}: "
            "run `b2ner select` or set train.selection_run"
        )
    t = selected_samples(cfg.warehouse, run)
    evals = set(eval_datasets(cfg.select.decontaminate)) | set(cfg.train.llm.eval_datasets)
    leaked = set(t["dataset"].to_pylist()) & evals
    if leaked:
        raise ValueError(
            f"selection run {run!r} contains evaluation datasets {sorted(leaked)}: never train on them"
        )
    return t.select(ROW_COLUMNS)


def training_table(cfg) -> pa.Table:
    """The span-encoder's training rows (`train.span.source`), capped by `train.span.max_samples`."""
    span = cfg.train.span
    if span.source == "selection":
        t = training_rows(cfg)
    else:
        t = silver_pool(
            cfg.warehouse,
            splits=cfg.select.splits,
            exclude=cfg.select.exclude,
            decontaminate=cfg.select.decontaminate,
            datasets=cfg.select.datasets,
        )
    return sample_rows(t, span.max_samples, cfg.train.seed)
