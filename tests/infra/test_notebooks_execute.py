"""The notebooks run top to bottom on a temporary warehouse (nbclient, this interpreter's kernel).

quickstart.ipynb fills the warehouse (ingest -> taxonomy -> select -> predict -> evaluate on a few small
corpora); explore.ipynb then plots what is in it. Both are driven by B2NER_NB_* environment variables so
the test never touches the user's warehouse.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from b2ner_common import tables

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
SMALL_DATASETS = "wnut17,resume,crossner_ai,weibo"
QUICKSTART_TABLES = [
    "bronze/samples",
    "bronze/reconciliation",
    "silver/samples",
    "gold/embeddings",
    "gold/selection",
    "gold/predictions",
]


def _execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    # kernel "python3" resolves to ipykernel on sys.executable (the venv), so the kernel sees b2ner.
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    client.execute()
    return nb


def _outputs(nb: nbformat.NotebookNode, kind: str) -> list:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if kind == "image" and "image/png" in o.get("data", {}):
                out.append(o)
            elif kind == "error" and o.get("output_type") == "error":
                out.append(o)
            elif kind == "text":
                out.append(o.get("text", "") or o.get("data", {}).get("text/plain", ""))
    return out


def test_notebooks_are_valid_and_have_no_stale_errors():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert not _outputs(nb, "error"), f"{path.name} is committed with an error output"


@pytest.mark.slow
@pytest.mark.corpora
def test_notebooks_explore_runs_on_fresh_warehouse(corpora_dir, tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv("B2NER_NB_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("B2NER_NB_CORPORA", str(corpora_dir))
    monkeypatch.setenv("B2NER_NB_DATASETS", SMALL_DATASETS)
    nb = _execute("explore.ipynb", tmp_path)
    assert not _outputs(nb, "error")
    assert len(_outputs(nb, "image")) >= 3, "explore draws dataset, label and length plots"
    # the notebook ingested the datasets into the given warehouse, nothing else
    samples = tables.read_table(tables.table_path(warehouse, "bronze/samples"), columns=["dataset"])
    assert set(samples["dataset"].to_pylist()) == set(SMALL_DATASETS.split(","))


@pytest.mark.slow
@pytest.mark.corpora
def test_notebooks_quickstart_then_explore_on_one_warehouse(corpora_dir, tmp_path, monkeypatch):
    """quickstart runs every stage on a small sample; explore then plots types and selection coverage."""
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv("B2NER_NB_WAREHOUSE", str(warehouse))
    monkeypatch.setenv("B2NER_NB_CORPORA", str(corpora_dir))
    monkeypatch.setenv("B2NER_NB_SELECTION_RUN", "quickstart")
    quick = _execute("quickstart.ipynb", tmp_path)
    assert not _outputs(quick, "error")
    for name in QUICKSTART_TABLES:
        assert tables.table_exists(tables.table_path(warehouse, name)), f"quickstart did not write {name}"
    silver = tables.read_table(tables.table_path(warehouse, "silver/samples"), columns=["dataset"])
    assert set(silver["dataset"].to_pylist()) == {"conll2003", "msra", "crossner_ai", "weibo"}
    selection = tables.read_table(tables.table_path(warehouse, "gold/selection"), columns=["dataset"])
    # only training-pool datasets are selected from; the OOD sets stay evaluation-only
    assert set(selection["dataset"].to_pylist()) == {"conll2003", "msra"}
    preds = tables.read_table(tables.table_path(warehouse, "gold/predictions"), columns=["run_id", "doc_id"])
    assert preds.num_rows == 150 and set(preds["run_id"].to_pylist()) == {"quickstart"}
    text = "\n".join(_outputs(quick, "text"))
    assert "second run: 150 skipped as done" in text, (
        "a re-run of the same predict run must skip every document"
    )
    assert "crossner_ai" in text and "weibo" in text  # the evaluation table
    assert (tmp_path / "quickstart_work" / "report" / "report.md").is_file()

    explore = _execute("explore.ipynb", tmp_path)
    assert not _outputs(explore, "error")
    assert len(_outputs(explore, "image")) >= 5, "explore draws its type heatmap and selection coverage too"
    assert "no rows for selection run" not in "\n".join(_outputs(explore, "text"))
