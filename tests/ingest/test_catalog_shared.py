"""The shipped catalog and user catalogs: validation, selection by role, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from b2ner_common.config import ConfigError
from b2ner_common.ingest.catalog import builtin_catalog_path, load_catalog, parse_catalog


def test_catalog_builtin_is_valid_and_roles_exclude_duplicates_by_default():
    cat = load_catalog()
    roles = cat.roles()
    assert roles["conll2003"] == "train_pool" and roles["cluener"] == "ood_dev"
    assert roles["crossner_conll2003"] == "duplicate"
    default = {t.dataset for t in cat.tasks("/corpora")}
    assert "crossner_conll2003" not in default and "mit_movie" in default
    named = {t.dataset for t in cat.tasks("/corpora", ["crossner_conll2003"])}
    assert named == {"crossner_conll2003"}
    msra = {t.split: t.options.scheme for t in cat.tasks("/corpora", ["msra"])}
    assert msra == {"train": "bmes", "test": "bio"}


@pytest.mark.corpora
def test_catalog_builtin_covers_every_shared_corpus_file(corpora_dir: Path):
    cat = load_catalog()
    listed = {f.path for d in cat.datasets.values() for f in d.files}
    skipped = {f.path for d in cat.datasets.values() for f in d.skipped}
    on_disk = {
        str(p.relative_to(corpora_dir))
        for p in corpora_dir.rglob("*")
        if p.is_file() and p.name not in ("SOURCE.txt", "README.md")
    }
    assert on_disk - listed - skipped == set(), "corpus files neither ingested nor documented as skipped"
    assert listed - on_disk == set(), "catalog lists files that do not exist"
    assert listed & skipped == set()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("datasets: {x: {lang: en, format: conll, files: [{path: a, split: train}], colour: red}}", "colour"),
        ("datasets: {x: {lang: en, format: csv, files: [{path: a, split: train}]}}", "unknown format 'csv'"),
        (
            "datasets: {x: {lang: en, format: conll, options: {delimter: tab}, files: [{path: a, split: t}]}}",
            "delimter",
        ),
        ("datasets: {x: {lang: en, format: conll, role: test, files: [{path: a, split: t}]}}", "role"),
        ("datasets: {x: {lang: en, format: conll, files: []}}", "lists no files"),
        ("datasets: [1, 2]", "datasets"),
        ("{{{", "not valid YAML"),
    ],
)
def test_catalog_invalid_documents_name_the_problem(doc, message):
    with pytest.raises(ConfigError, match="my.yaml") as e:
        parse_catalog(doc, "my.yaml")
    assert message in str(e.value)


def test_catalog_user_file_root_and_duplicate_dataset(tmp_path: Path):
    user = tmp_path / "cat.yaml"
    user.write_text(
        "root: data\ndatasets: {mine: {lang: de, format: inline, files: [{path: a.txt, split: train}]}}"
    )
    cat = load_catalog([user])
    (task,) = cat.tasks("/elsewhere", ["mine"])
    assert task.path == (tmp_path / "data" / "a.txt").resolve() and task.lang == "de"
    dup = tmp_path / "dup.yaml"
    dup.write_text(builtin_catalog_path().read_text(encoding="utf-8"))
    with pytest.raises(ConfigError, match="defined in both"):
        load_catalog([dup])
    with pytest.raises(ConfigError, match="unknown dataset"):
        cat.tasks("/x", ["nope"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_catalog([tmp_path / "missing.yaml"])
