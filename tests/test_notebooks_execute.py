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

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SMALL_DATASETS = "wnut17,resume,crossner_ai,weibo"


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
