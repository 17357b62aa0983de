"""Per-dataset label mappings: raw label (as the readers emit it) -> universal taxonomy type.

One YAML file per dataset in `data/<version>/mappings/<dataset>.yaml`:

    dataset: weibo
    lang: zh
    role: ood-dev            # train-pool | ood-dev | external (documented, not in the shared corpora)
    source: Peng & Dredze 2015, revised 2nd version
    aliases: []              # other dataset names the same mapping serves
    labels:
      PER.NAM: person
      PER.NOM: {type: person nominal mention, note: "why it was split or renamed"}
      Term: {type: null, note: "why it is not kept"}   # entities stay, with an empty type

A type is given by English name or id; `resolve_mapping` canonicalizes to the English name, which is
what `Entity.type` and `label_set` carry (prompts show it, or the Chinese name for Chinese data).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from b2ner_common.schema import Entity, Sample
from b2ner_common.taxonomy.model import Taxonomy, TaxonomyError, load_taxonomy, taxonomy_dir, validate_types

ROLES = ("train-pool", "ood-dev", "external")
BRONZE_COLUMNS = ("sample_id", "dataset", "split", "lang", "text", "entities", "source", "repairs")
LANGS = ("en", "zh", "multi")


@dataclass(frozen=True, slots=True)
class LabelMapping:
    raw: str
    type: str | None  # taxonomy type (English name once resolved); None = not kept as a type
    note: str = ""


@dataclass
class DatasetMapping:
    dataset: str
    lang: str
    role: str
    labels: dict[str, LabelMapping]
    source: str = ""
    aliases: tuple[str, ...] = ()
    path: str = ""

    def type_of(self, raw: str) -> str | None:
        """Universal type of raw label `raw` (None when the label is deliberately not kept).

        Raises UnmappedLabelError when the mapping does not list the label.
        """
        m = self.labels.get(raw)
        if m is None:
            raise UnmappedLabelError(self.dataset, raw, self.path)
        return m.type

    def types(self) -> list[str]:
        """The mapped types in file order, without duplicates or dropped labels."""
        return list(dict.fromkeys(m.type for m in self.labels.values() if m.type))


class UnmappedLabelError(KeyError):
    def __init__(self, dataset: str, label: str, path: str = "") -> None:
        self.dataset, self.label, self.path = dataset, label, path
        where = path or f"mappings/{dataset}.yaml"
        super().__init__(f"dataset {dataset!r}: raw label {label!r} is not mapped; add it to {where}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def parse_mapping(text: str, source: str) -> DatasetMapping:
    """Parse one mapping YAML document; raises TaxonomyError naming `source` and the offending key."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TaxonomyError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(doc, dict):
        raise TaxonomyError(f"{source}: top level must be a mapping with dataset, lang, role, labels")
    unknown = set(doc) - {"dataset", "lang", "role", "source", "aliases", "labels", "notes"}
    if unknown:
        raise TaxonomyError(
            f"{source}: unknown keys {sorted(unknown)} (allowed: dataset lang role source aliases labels)"
        )
    for key in ("dataset", "lang", "role", "labels"):
        if key not in doc:
            raise TaxonomyError(f"{source}: missing required key {key!r}")
    if doc["lang"] not in LANGS:
        raise TaxonomyError(f"{source}: lang must be one of {LANGS}, got {doc['lang']!r}")
    if doc["role"] not in ROLES:
        raise TaxonomyError(f"{source}: role must be one of {ROLES}, got {doc['role']!r}")
    if not isinstance(doc["labels"], dict) or not doc["labels"]:
        raise TaxonomyError(f"{source}: labels must be a non-empty mapping raw_label -> type")
    labels: dict[str, LabelMapping] = {}
    for raw, value in doc["labels"].items():
        raw = str(raw)
        if isinstance(value, str) or value is None:
            labels[raw] = LabelMapping(raw, value)
        elif isinstance(value, dict) and "type" in value and set(value) <= {"type", "note"}:
            t = value["type"]
            if t is not None and not isinstance(t, str):
                raise TaxonomyError(f"{source}: label {raw!r}: type must be a string or null")
            labels[raw] = LabelMapping(raw, t, str(value.get("note") or ""))
        else:
            raise TaxonomyError(
                f"{source}: label {raw!r}: value must be a type name or {{type: ..., note: ...}}"
            )
    return DatasetMapping(
        dataset=str(doc["dataset"]),
        lang=doc["lang"],
        role=doc["role"],
        labels=labels,
        source=str(doc.get("source") or ""),
        aliases=tuple(str(a) for a in doc.get("aliases") or ()),
        path=source,
    )


def resolve_mapping(mapping: DatasetMapping, taxonomy: Taxonomy) -> DatasetMapping:
    """Copy of `mapping` whose types are canonical English names; unknown types are left as written
    (check_mappings reports them)."""
    labels = {
        raw: replace(m, type=taxonomy.find(m.type).en if m.type and taxonomy.find(m.type) else m.type)
        for raw, m in mapping.labels.items()
    }
    return replace(mapping, labels=labels)


def read_mapping_files(paths: Iterable[str | Path]) -> dict[str, DatasetMapping]:
    """Parse mapping files; raises TaxonomyError when two files claim the same dataset name."""
    out: dict[str, DatasetMapping] = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise TaxonomyError(f"mapping file {p} does not exist")
        m = parse_mapping(p.read_text(encoding="utf-8"), str(p))
        for name in (m.dataset, *m.aliases):
            if name in out and out[name].path != m.path:
                raise TaxonomyError(f"{p}: dataset name {name!r} is already mapped by {out[name].path}")
            out[name] = m
    return out


@functools.lru_cache(maxsize=8)
def _load_cached(version: str, extra: tuple[str, ...]) -> dict[str, DatasetMapping]:
    taxonomy = load_taxonomy(version)
    files = sorted((taxonomy_dir(version) / "mappings").glob("*.yaml"))
    raw = read_mapping_files([*files, *extra])
    resolved = {m.path: resolve_mapping(m, taxonomy) for m in raw.values()}  # one object per file
    return {name: resolved[m.path] for name, m in raw.items()}


def load_mappings(version: str = "v1", extra: Iterable[str] = ()) -> dict[str, DatasetMapping]:
    """All mappings of a taxonomy version (+ extra mapping files), keyed by dataset name and alias.

    Types are resolved to canonical English names. Returns a fresh dict (the parse is cached).
    """
    return dict(_load_cached(version, tuple(str(e) for e in extra)))


def find_mapping(mappings: Mapping[str, DatasetMapping], dataset: str) -> DatasetMapping:
    """The mapping of `dataset`; raises TaxonomyError naming the file to add."""
    m = mappings.get(dataset)
    if m is None:
        raise TaxonomyError(
            f"no label mapping for dataset {dataset!r}: add b2ner_common/taxonomy/data/<version>/mappings/"
            f"{dataset}.yaml or list a file in taxonomy.mappings"
        )
    return m


# ------------------------------------------------------------------------------------------ applying


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, Mapping) else getattr(obj, name, default)


def map_entities(entities: Iterable[Any], mapping: DatasetMapping) -> list[Entity]:
    """Entities with `type` filled from their raw `label` (empty type for labels mapped to null)."""
    out = []
    for e in entities:
        t = mapping.type_of(_get(e, "label"))
        out.append(
            Entity(int(_get(e, "start")), int(_get(e, "end")), _get(e, "label"), _get(e, "text"), t or "")
        )
    return out


def map_samples(
    samples: Iterable[Sample], mapping: DatasetMapping | Mapping[str, DatasetMapping]
) -> Iterator[Sample]:
    """Samples with every entity's universal `type` filled in.

    `mapping` is one dataset's mapping or all mappings keyed by dataset. Raises UnmappedLabelError
    (naming dataset, label and mapping file) on a label the mapping does not list: run
    `check_mappings` first to get all of them at once.
    """
    for s in samples:
        m = mapping if isinstance(mapping, DatasetMapping) else find_mapping(mapping, s.dataset)
        yield replace(s, entities=map_entities(s.entities, m))


def dataset_label_set(mapping: DatasetMapping, present_labels: Iterable[str] | None = None) -> list[str]:
    """A dataset's universal label set (English names, mapping-file order).

    With `present_labels` (raw labels seen in the data), only the types of those labels: a label
    the mapping documents but the data never uses is not offered to the model as a label.
    """
    if present_labels is None:
        return mapping.types()
    present = set(present_labels)
    return list(dict.fromkeys(m.type for raw, m in mapping.labels.items() if m.type and raw in present))


def map_rows(
    rows: Iterable[Mapping[str, Any]],
    mappings: Mapping[str, DatasetMapping],
    label_sets: Mapping[str, list[str]],
) -> list[dict]:
    """bronze/samples rows -> silver/samples rows (entities with `type`, plus the dataset's `label_set`)."""
    out = []
    for r in rows:
        m = find_mapping(mappings, r["dataset"])
        row = dict(r)
        row["entities"] = [
            {
                "start": e["start"],
                "end": e["end"],
                "label": e["label"],
                "text": e["text"],
                "type": m.type_of(e["label"]) or "",
            }
            for e in (r.get("entities") or [])
        ]
        row["label_set"] = list(label_sets.get(r["dataset"], m.types()))
        out.append(row)
    return out


def map_table(
    table, mappings: Mapping[str, DatasetMapping], label_sets: Mapping[str, list[str]] | None = None
):
    """Arrow bronze/samples table (or record batch) -> silver/samples table (schema.SILVER_SAMPLES).

    Vectorized: entity types come from one (dataset, label) -> type lookup over the flattened
    entities. `label_sets` overrides a dataset's label set (default: all types of its mapping).
    Raises UnmappedLabelError for the first unmapped (dataset, label), TaxonomyError for a dataset
    without mapping.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from b2ner_common.schema import ENTITY_TYPE, SILVER_SAMPLES

    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    table = table.select(BRONZE_COLUMNS).cast(pa.schema([SILVER_SAMPLES.field(c) for c in BRONZE_COLUMNS]))
    table = table.combine_chunks()
    datasets = table["dataset"].to_pylist() if table.num_rows else []
    names = list(dict.fromkeys(datasets))
    maps = {d: find_mapping(mappings, d) for d in names}
    sets = label_sets or {}
    set_values = pa.array([list(sets.get(d, maps[d].types())) for d in names], pa.list_(pa.string()))
    row_set = pc.take(set_values, pc.index_in(table["dataset"], pa.array(names, pa.string())))

    ents = table["entities"].chunk(0) if table["entities"].num_chunks else pa.array([], pa.list_(ENTITY_TYPE))
    flat = ents.flatten()
    keys = [f"{d}\x1f{raw}" for d in names for raw in maps[d].labels]
    types = [maps[d].labels[raw].type or "" for d in names for raw in maps[d].labels]
    ent_ds = pc.take(
        table["dataset"].chunk(0) if table.num_rows else pa.array([], pa.string()),
        pc.list_parent_indices(ents),
    )
    ent_keys = pc.binary_join_element_wise(ent_ds, flat.field("label"), "\x1f")
    pos = pc.index_in(ent_keys, pa.array(keys, pa.string()))
    if pos.null_count:
        bad = pc.filter(ent_keys, pc.is_null(pos))[0].as_py()
        d, raw = bad.split("\x1f", 1)
        raise UnmappedLabelError(d, raw, maps[d].path)
    new_types = pc.take(pa.array(types, pa.string()), pos)
    struct = pa.StructArray.from_arrays(
        [flat.field("start"), flat.field("end"), flat.field("label"), flat.field("text"), new_types],
        fields=list(ENTITY_TYPE),
    )
    offsets = pc.subtract(ents.offsets, ents.offsets[0])  # a sliced input need not start at 0
    new_ents = pa.ListArray.from_arrays(offsets, struct, mask=ents.is_null() if ents.null_count else None)
    cols = {c: table[c] for c in BRONZE_COLUMNS}
    cols["entities"] = new_ents
    cols["label_set"] = row_set
    return pa.table(cols, schema=SILVER_SAMPLES)


def label_names_for(
    dataset: str,
    lang: str | None = None,
    *,
    version: str = "v1",
    mappings: Mapping[str, DatasetMapping] | None = None,
    taxonomy: Taxonomy | None = None,
) -> list[str]:
    """The natural-language label names shown to a model for `dataset`.

    English names for English data, Chinese names for Chinese data. `lang` defaults to the mapping's
    language; for a multilingual mapping, to the dataset name's language suffix (`multiconer22_zh`).
    """
    taxonomy = taxonomy or load_taxonomy(version)
    m = find_mapping(mappings if mappings is not None else load_mappings(version), dataset)
    if lang is None and m.lang == "multi":
        # Multilingual mappings serve per-language datasets named like multiconer22_zh.
        suffix = dataset.rsplit("_", 1)[-1] if "_" in dataset else ""
        lang = suffix if len(suffix) == 2 and suffix.isalpha() else "en"
    lang = lang or m.lang
    return [taxonomy.name(t, lang) for t in m.types()]


# ------------------------------------------------------------------------------------------ checking


@dataclass(frozen=True, slots=True)
class Problem:
    kind: str  # unmapped_label | unknown_type | no_mapping | taxonomy | missing_language | unused_label
    dataset: str
    label: str
    message: str
    count: int = 0  # entities carrying the label, where known

    @property
    def fatal(self) -> bool:
        return self.kind != "unused_label"


def check_mappings(
    raw_labels_by_dataset: Mapping[str, Iterable[str] | Mapping[str, int]],
    taxonomy: Taxonomy,
    mappings: Mapping[str, DatasetMapping],
    *,
    report_unused: bool = False,
) -> list[Problem]:
    """Validate mappings against the raw labels present in the data and against the taxonomy.

    Args:
        raw_labels_by_dataset: {dataset: raw labels} or {dataset: {raw label: entity count}}.
        taxonomy: the taxonomy types must exist in.
        mappings: {dataset: DatasetMapping} (as from `load_mappings`).
        report_unused: also list mapped labels that never occur in the data (not fatal).

    Returns every problem: taxonomy problems (duplicate names, missing languages...), datasets with
    no mapping, raw labels not mapped (with their entity counts), mapped types unknown to the
    taxonomy. Empty when the data can be mapped.
    """
    problems = [Problem("taxonomy", "", "", p) for p in validate_types(taxonomy.types)]
    for t in taxonomy.types:
        if not (t.en and t.zh):
            problems.append(
                Problem("missing_language", "", t.id, f"type {t.id!r} lacks an English or Chinese name")
            )
    seen_files = set()
    for m in mappings.values():
        if m.path in seen_files:
            continue
        seen_files.add(m.path)
        for raw, lm in m.labels.items():
            if lm.type and taxonomy.find(lm.type) is None:
                problems.append(
                    Problem(
                        "unknown_type",
                        m.dataset,
                        raw,
                        f"{m.path}: label {raw!r} maps to {lm.type!r}, not a type of taxonomy "
                        f"{taxonomy.version}{taxonomy._suggest(lm.type)}",
                    )
                )
    for dataset, labels in sorted(raw_labels_by_dataset.items()):
        counts = Counter(labels) if not isinstance(labels, Mapping) else Counter(dict(labels))
        m = mappings.get(dataset)
        if m is None:
            problems.append(
                Problem(
                    "no_mapping",
                    dataset,
                    "",
                    f"dataset {dataset!r} has no mapping file ({len(counts)} raw labels: "
                    f"{', '.join(sorted(counts))})",
                    sum(counts.values()),
                )
            )
            continue
        for raw, n in sorted(counts.items()):
            if raw not in m.labels:
                problems.append(
                    Problem("unmapped_label", dataset, raw, f"{m.path}: raw label {raw!r} is not mapped", n)
                )
        if report_unused:
            for raw in m.labels:
                if raw not in counts:
                    problems.append(
                        Problem("unused_label", dataset, raw, f"{m.path}: label {raw!r} never occurs")
                    )
    return problems


def raw_label_counts(table) -> dict[str, dict[str, int]]:
    """{dataset: {raw label: entity count}} of an Arrow table with `dataset` and `entities` columns."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if table.num_rows == 0:
        return {}
    datasets = pc.take(table["dataset"], pc.list_parent_indices(table["entities"]))
    labels = pc.struct_field(pc.list_flatten(table["entities"]), "label")
    grouped = (
        pa.table({"dataset": datasets, "label": labels})
        .group_by(["dataset", "label"])
        .aggregate([("label", "count")])
    )
    out: dict[str, dict[str, int]] = {}
    for d, lb, n in zip(*(grouped[c].to_pylist() for c in ("dataset", "label", "label_count")), strict=True):
        out.setdefault(d, {})[lb] = n
    return out
