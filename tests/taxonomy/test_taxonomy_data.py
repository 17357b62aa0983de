"""The shipped taxonomy is valid, large enough, bilingual, and the validator catches broken ones."""

from __future__ import annotations

import pytest

from b2ner_common.taxonomy import (
    EntityType,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    parse_types,
    validate_types,
)
from b2ner_common.taxonomy.model import FORBIDDEN_NAME_CHARS

HEADER = "id\ten\tzh\tparent\tdefinition_en\tdefinition_zh\texamples"


def _t(tid, en, zh, parent="", de="A thing.", dz="一种事物。"):
    return EntityType(tid, en, zh, parent, de, dz)


def test_taxonomy_v1_is_valid_and_has_400_types():
    tax = load_taxonomy("v1")
    assert len(tax) >= 400
    assert validate_types(tax.types) == []
    assert len({t.en for t in tax}) == len({t.zh for t in tax}) == len({t.id for t in tax}) == len(tax)


def test_taxonomy_v1_every_type_is_bilingual_with_definitions():
    for t in load_taxonomy("v1"):
        assert t.en == t.en.lower() and t.zh, t
        assert t.definition_en.endswith(".") and t.definition_zh.endswith("。"), t.id
        assert not (set(t.en) | set(t.zh)) & FORBIDDEN_NAME_CHARS


@pytest.mark.parametrize(
    "name",
    [
        "person",
        "organization",
        "location",
        "geo-political entity",
        "facility",
        "date or period",
        "time",
        "money",
        "percent",
        "quantity",
        "ordinal",
        "cardinal number",
        "event",
        "product",
        "work of art",
        "law",
        "language",
        "nationality or religious or political group",
        "gene or protein",
        "chemical",
        "disease",
        "anatomical structure",
        "cell line",
        "cell type",
        "dna",
        "rna",
        "species",
        "drug",
        "algorithm",
        "programming language",
        "research task",
        "field of study",
        "metric",
        "university",
        "conference",
        "album",
        "song",
        "musical instrument",
        "music genre",
        "band",
        "poem",
        "book",
        "writer",
        "award",
        "election",
        "political party",
        "politician",
        "astronomical object",
        "chemical element",
        "enzyme",
        "protein",
        "theory",
        "academic discipline",
        "brand",
        "product model",
        "product category",
        "province or state",
        "city",
        "district or county",
        "town",
        "road",
        "road number",
        "building number",
        "floor number",
        "room number",
        "point of interest",
        "crime suspect",
        "victim",
        "stolen goods",
        "symptom",
        "medical examination",
        "medical procedure",
        "medical department",
        "microorganism",
        "body part",
        "medical equipment",
        "actor",
        "director",
        "fictional character",
        "movie genre",
        "movie title",
        "rating",
        "plot",
        "review",
        "year",
        "trailer",
        "average rating",
        "amenity",
        "cuisine",
        "dish",
        "opening hours",
        "price",
        "restaurant",
        "location proximity",
        "nationality",
        "ethnicity",
        "job title",
        "educational degree",
        "profession",
        "username",
        "hashtag",
    ],
)
def test_taxonomy_v1_covers_required_types(name):
    assert load_taxonomy("v1").find(name) is not None


def test_taxonomy_lookup_by_id_english_and_chinese_name():
    tax = load_taxonomy("v1")
    t = tax.get("company")
    assert tax.get(t.id) is t and tax.get(t.zh) is t and tax.get("Company") is t
    assert t.zh == "组织机构名->公司" and t.name("zh") == t.zh and t.name("en") == "company"
    with pytest.raises(KeyError, match="did you mean"):
        tax.get("compnay")


def test_taxonomy_hierarchy_and_compatibility():
    tax = load_taxonomy("v1")
    assert [a.en for a in tax.ancestors("scientist")] == ["researcher", "scholar", "person"]
    assert tax.category("river").en == "location"
    assert tax.compatible("location", "country") and tax.compatible("country", "location")
    assert not tax.compatible("city", "country")
    assert "river" in {c.en for c in tax.children("body of water")}


def test_taxonomy_validator_reports_each_problem():
    types = [
        _t("a", "alpha", "甲"),
        _t("b", "alpha", "乙"),  # duplicate English name
        _t("c", "gamma", "甲"),  # duplicate Chinese name
        _t("d", "Delta", "丁"),  # not lower case
        _t("e", "eps, ilon", "戊"),  # forbidden comma
        _t("f", "phi", "己", parent="nope"),  # unknown parent
        _t("g", "g1", "庚", parent="h"),
        _t("h", "h1", "辛", parent="g"),  # cycle g <-> h
        _t("i", "iota", "", dz=""),  # missing Chinese name and definition
    ]
    problems = "\n".join(validate_types(types))
    assert "duplicate English name 'alpha'" in problems
    assert "duplicate Chinese name '甲'" in problems
    assert "must be lower case" in problems
    assert "contains [',']" in problems
    assert "parent 'nope' is not a type id" in problems
    assert problems.count("has a cycle") == 2
    assert "missing Chinese name" in problems and "missing Chinese definition" in problems


def test_taxonomy_parse_errors_name_the_line():
    with pytest.raises(TaxonomyError, match=r"t.tsv:3: expected 7"):
        parse_types([HEADER, "a\talpha\t甲\t\tA.\t甲。\t", "b\tbeta"], source="t.tsv")
    with pytest.raises(TaxonomyError, match="header"):
        parse_types(["x\ty"], source="t.tsv")


def test_taxonomy_load_rejects_invalid_file(tmp_path):
    p = tmp_path / "types.tsv"
    p.write_text(HEADER + "\na\talpha\t甲\t\tA.\t甲。\t\nb\talpha\t乙\t\tB.\t乙。\t\n", encoding="utf-8")
    with pytest.raises(TaxonomyError, match="duplicate English name"):
        load_taxonomy("custom", str(p))


def test_taxonomy_definitions_and_label_namer():
    tax = load_taxonomy("v1")
    assert tax.definitions("zh")["country"] == tax.get("country").definition_zh
    namer = tax.label_namer()
    assert namer("country", "zh") == "国家" and namer("country", "en") == "country"
    assert isinstance(tax, Taxonomy)


def test_taxonomy_label_namer_shows_unknown_types_and_languages_as_english():
    namer = load_taxonomy("v1").label_namer()
    assert namer("no such type", "zh") == "no such type"
    assert namer("country", "de") == "country"
