"""Training rows (every model family): the selection run `train.selection_run` joined with silver, and the
eval-leak guard (b2ner_common/selection/training_rows.py)."""

from __future__ import annotations

import pytest

from b2ner_common.config import load_config
from b2ner_common.selection.training_rows import ROW_COLUMNS, selection_run, training_rows

pytestmark = pytest.mark.corpora


def test_training_rows_selection_run_defaults_to_select_run_id():
    assert selection_run(load_config(None, ["select.run_id=r7"])) == "r7"
    assert selection_run(load_config(None, ["select.run_id=r7", "train.selection_run=r8"])) == "r8"


def test_training_rows_reads_the_selected_rows(sft_warehouse):
    t = training_rows(load_config(None, [f"warehouse={sft_warehouse}"]))
    assert t.num_rows == 300 and t.column_names == ROW_COLUMNS
    assert set(t["dataset"].to_pylist()) == {"conll2003"}


def test_training_rows_unknown_run_names_the_knob(sft_warehouse):
    with pytest.raises(FileNotFoundError, match="train.selection_run"):
        training_rows(load_config(None, [f"warehouse={sft_warehouse}", "train.selection_run=nope"]))


@pytest.mark.parametrize(
    "override", ["train.llm.eval_datasets=[conll2003]", "select.decontaminate=[conll2003]"]
)
def test_training_rows_refuses_a_run_holding_an_eval_dataset(sft_warehouse, override):
    with pytest.raises(ValueError, match="evaluation datasets"):
        training_rows(load_config(None, [f"warehouse={sft_warehouse}", override]))
