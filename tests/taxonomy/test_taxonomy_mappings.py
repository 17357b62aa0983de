"""Mapping files: parse, resolve, check against raw labels, apply to samples and Arrow tables."""

from __future__ import annotations

import pyarrow as pa
import pytest

from b2ner_common.schema import BRONZE_SAMPLES, SILVER_SAMPLES, Entity, Sample, samples_to_arrow
from b2ner_common.taxonomy import (
    TaxonomyError,
    UnmappedLabelError,
    check_mappings,
    dataset_label_set,
    label_names_for,
    load_mappings,
    load_taxonomy,
    map_samples,
    map_table,
    raw_label_counts,
    resolve_mapping,
)
from b2ner_common.taxonomy.mappings import parse_mapping, read_mapping_files

MAPPING = """
dataset: toy
lang: zh
role: train-pool
labels:
  "PER": person
  "NO": {type: organization, note: "quoted: a bare NO key would be YAML false"}
  "X": {type: null, note: dropped}
"""


def _sample(dataset, text, ents, lang="en"):
    entities = [Entity(text.index(s), text.index(s) + len(s), lb, s) for s, lb in ents]
    return Sample(f"{dataset}-{text}", dataset, "train", lang, text, entities, f"{dataset}:1")


def test_mappings_v1_all_resolve_to_taxonomy_types():
    tax, maps = load_taxonomy("v1"), load_mappings("v1")
    assert check_mappings({}, tax, maps) == []
    for m in maps.values():
        for lm in m.labels.values():
            assert lm.type is None or tax.find(lm.type).en == lm.type, (m.path, lm)


@pytest.mark.corpora
def test_mappings_exist_for_every_shared_corpus(corpora_dir):
    maps = load_mappings("v1")
    folders = sorted(p.name for p in corpora_dir.iterdir() if p.is_dir())
    assert folders and [f for f in folders if f not in maps] == []
    ood = {
        "crossner_ai",
        "crossner_literature",
        "crossner_music",
        "crossner_politics",
        "crossner_science",
        "mit_movie",
        "mit_restaurant",
        "weibo",
        "cluener",
        "ccks2021_address",
    }
    assert {f for f in folders if maps[f].role == "ood-dev"} == ood


def test_mappings_split_labels_with_notes():
    maps = load_mappings("v1")
    assert maps["conll2003"].type_of("MISC") == "miscellaneous named entity"
    assert maps["wnut16"].type_of("other") == "other named entity"
    assert maps["weibo"].type_of("PER.NOM") == "person nominal mention"
    assert maps["crossner_ai"].type_of("task") == "research task"
    assert maps["mit_movie"].type_of("RATING") != maps["mit_restaurant"].type_of("Rating")
    assert maps["crossner_conll2003"].type_of("misc") != maps["crossner_ai"].type_of("misc")
    assert maps["weibo"].labels["PER.NOM"].note
    assert maps["weibo_v1"] is maps["weibo"]  # alias


def test_mappings_parse_quoted_keys_and_null_types():
    m = resolve_mapping(parse_mapping(MAPPING, "toy.yaml"), load_taxonomy("v1"))
    assert m.type_of("NO") == "organization" and m.type_of("X") is None
    assert m.types() == ["person", "organization"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("dataset: a\nlang: en\nrole: train-pool\nlabels: [", "not valid YAML"),
        ("dataset: a\nlang: en\nrole: nope\nlabels: {A: person}", "role must be one of"),
        ("dataset: a\nlang: fr\nrole: external\nlabels: {A: person}", "lang must be one of"),
        ("dataset: a\nlang: en\nrole: external\nlabels: {A: person}\nextra: 1", "unknown keys"),
        ("dataset: a\nlang: en\nrole: external", "missing required key 'labels'"),
        ("dataset: a\nlang: en\nrole: external\nlabels: {A: {kind: person}}", "label 'A'"),
    ],
)
def test_mappings_parse_errors_name_the_file(text, match):
    with pytest.raises(TaxonomyError, match=match) as e:
        parse_mapping(text, "bad.yaml")
    assert "bad.yaml" in str(e.value)


def test_mappings_duplicate_dataset_names_rejected(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("dataset: d\nlang: en\nrole: external\nlabels: {A: person}\n")
    b.write_text("dataset: e\naliases: [d]\nlang: en\nrole: external\nlabels: {A: person}\n")
    with pytest.raises(TaxonomyError, match="already mapped"):
        read_mapping_files([a, b])


def test_mappings_check_lists_unmapped_unknown_and_missing(tmp_path):
    extra = tmp_path / "toy2.yaml"
    extra.write_text("dataset: toy2\nlang: en\nrole: external\nlabels: {A: persn, B: person}\n")
    tax = load_taxonomy("v1")
    maps = load_mappings("v1", extra=[str(extra)])
    raw = {"conll2003": {"PER": 5, "LOC": 2, "GEO": 3}, "toy2": ["A", "B", "B"], "nowhere": ["Q"]}
    problems = check_mappings(raw, tax, maps)
    kinds = sorted((p.kind, p.dataset, p.label, p.count) for p in problems)
    assert kinds == [
        ("no_mapping", "nowhere", "", 1),
        ("unknown_type", "toy2", "A", 0),
        ("unmapped_label", "conll2003", "GEO", 3),
    ]
    assert "did you mean 'person'" in next(p.message for p in problems if p.kind == "unknown_type")


def test_mappings_map_samples_fills_types_and_raises_on_unmapped():
    maps = load_mappings("v1")
    s = _sample("weibo", "那个男人在北京", [("那个男人", "PER.NOM"), ("北京", "GPE.NAM")], lang="zh")
    (out,) = map_samples([s], maps)
    assert [e.type for e in out.entities] == ["person nominal mention", "geo-political entity"]
    assert [e.label for e in out.entities] == ["PER.NOM", "GPE.NAM"] and s.entities[0].type == ""
    bad = _sample("weibo", "张三", [("张三", "PER")], lang="zh")
    with pytest.raises(UnmappedLabelError, match=r"'PER' is not mapped.*weibo.yaml"):
        list(map_samples([bad], maps))


def test_mappings_dataset_label_set_and_names():
    maps = load_mappings("v1")
    assert dataset_label_set(maps["weibo"], present_labels=["GPE.NAM", "PER.NAM"]) == [
        "person",
        "geo-political entity",
    ]
    assert label_names_for("weibo")[:2] == ["人名", "人物指代"]
    assert label_names_for("crossner_ai")[:3] == ["algorithm", "field of study", "research task"]
    assert label_names_for("msra", "en") == ["person", "location", "organization"]
    assert "组织机构名->公司" in label_names_for("multiconer22", "zh")
    assert label_names_for("multiconer22_zh") == label_names_for("multiconer22", "zh")
    assert label_names_for("multiconer22_de")[0] == "person"


def test_mappings_cover_every_catalog_dataset():
    from b2ner_common.ingest.catalog import load_catalog

    maps = load_mappings("v1")
    assert [d for d in load_catalog().datasets if d not in maps] == []


def test_mappings_map_table_and_raw_label_counts():
    samples = [
        _sample("conll2003", "Obama visited Paris", [("Obama", "PER"), ("Paris", "LOC")]),
        _sample("conll2003", "Nothing here", []),
        _sample("wnut17", "Apple rocks", [("Apple", "corporation")]),
    ]
    table = samples_to_arrow(samples, BRONZE_SAMPLES)
    assert raw_label_counts(table) == {"conll2003": {"PER": 1, "LOC": 1}, "wnut17": {"corporation": 1}}
    silver = map_table(table, load_mappings("v1"), {"conll2003": ["person", "location"]})
    assert silver.schema == SILVER_SAMPLES
    rows = silver.to_pylist()
    assert [e["type"] for e in rows[0]["entities"]] == ["person", "location"]
    assert rows[0]["label_set"] == ["person", "location"]
    assert rows[2]["label_set"] == load_mappings("v1")["wnut17"].types()
    assert raw_label_counts(pa.Table.from_pylist([], schema=BRONZE_SAMPLES)) == {}
    # A slice (offsets not starting at 0) and an empty table map correctly too.
    sliced = map_table(table.slice(2, 1), load_mappings("v1"))
    assert [e["type"] for e in sliced.to_pylist()[0]["entities"]] == ["company"]
    assert map_table(table.slice(0, 0), load_mappings("v1")).num_rows == 0
    bad = samples_to_arrow([_sample("wnut17", "Bob", [("Bob", "PER")])], BRONZE_SAMPLES)
    with pytest.raises(UnmappedLabelError, match="'PER'"):
        map_table(bad, load_mappings("v1"))
