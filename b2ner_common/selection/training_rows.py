"""Training rows for the span-encoder family, read from the warehouse.

Two sources (config `train.span.source`):
- "selection": the rows of one gold/selection run joined with silver/samples (the product path);
- "silver": every silver/samples row the selection stage could have drawn from (same splits, same
  excluded datasets, same decontamination against the evaluation texts), optionally capped at
  `max_samples` drawn with a seed: the "all data" arms of the ablation.
Rows are plain dicts (sample_id, dataset, lang, text, entities, label_set) as `span_train` expects.
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


def training_table(cfg) -> pa.Table:
    """The training rows a PipelineConfig asks for (`train.span.source`), capped by `train.span.max_samples`."""
    span = cfg.train.span
    if span.source == "selection":
        from b2ner_common.selection.output import selected_samples

        run = span.selection_run or cfg.select.run_id
        t = selected_samples(cfg.warehouse, run)
        from b2ner_common.selection.dedup import eval_datasets

        leaked = set(t["dataset"].to_pylist()) & set(eval_datasets(cfg.select.decontaminate))
        if leaked:
            raise ValueError(
                f"selection run {run!r} contains evaluation datasets {sorted(leaked)}: never train on them"
            )
        t = t.select(ROW_COLUMNS)
    else:
        t = silver_pool(
            cfg.warehouse,
            splits=cfg.select.splits,
            exclude=cfg.select.exclude,
            decontaminate=cfg.select.decontaminate,
            datasets=cfg.select.datasets,
        )
    return sample_rows(t, span.max_samples, cfg.train.seed)
