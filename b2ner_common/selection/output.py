"""Reading a selection run back: what the training stage consumes."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
from deltalake import DeltaTable

from b2ner_common import tables
from b2ner_common.schema import SELECTION
from b2ner_common.tables import Table


def read_selection(warehouse: str | Path, run_id: str) -> pa.Table:
    """gold/selection rows of one run (empty table with the SELECTION schema when the run has none)."""
    path = tables.table_path(warehouse, Table.GOLD_SELECTION)
    if not tables.table_exists(path):
        return SELECTION.empty_table()
    return DeltaTable(path).to_pyarrow_table(filters=[("selection_run", "=", run_id)])


def selected_samples(warehouse: str | Path, run_id: str = "default") -> pa.Table:
    """The silver/samples rows picked by selection run `run_id`, joined with their selection columns.

    Columns: every silver/samples column + stage, category (universal type the sample was picked for),
    cluster, selection_run. One row per selected sample, ordered by (dataset, sample_id).
    Raises ValueError when the run has no rows (names the run and the command that makes one).
    """
    sel = read_selection(warehouse, run_id)
    if sel.num_rows == 0:
        raise ValueError(
            f"selection run {run_id!r} has no rows in {warehouse}/gold/selection; run `b2ner select`"
        )
    silver = DeltaTable(tables.table_path(warehouse, Table.SILVER_SAMPLES)).to_pyarrow_dataset()
    samples = silver.to_table(filter=pads.field("sample_id").isin(sel["sample_id"]))
    # Arrow's hash join cannot carry list<struct> columns (entities): join by index lookup instead.
    pos = pc.index_in(samples["sample_id"], value_set=sel["sample_id"])
    for name in ("stage", "category", "cluster", "selection_run"):
        samples = samples.append_column(name, sel[name].take(pos))
    return samples.take(pc.sort_indices(samples, [("dataset", "ascending"), ("sample_id", "ascending")]))
