"""Universal entity taxonomy: versioned type data, per-dataset label mappings, checks and conflict screening.

Public API (plain functions over records / Arrow; no engines imported):
- `load_taxonomy(version) -> Taxonomy` (lookups by id / English / Chinese name, hierarchy, definitions)
- `load_mappings(version) -> {dataset: DatasetMapping}`, `find_mapping(mappings, dataset)`
- `map_samples(samples, mapping)`, `map_table(table, mappings, label_sets)` (bronze -> silver rows)
- `dataset_label_set(mapping, present_labels)`, `label_names_for(dataset, lang)`
- `check_mappings(raw_labels_by_dataset, taxonomy, mappings) -> [Problem]`, `raw_label_counts(table)`
- conflict screening: `b2ner_common.taxonomy.conflicts` (`screen_conflicts`, `build_mention_index`, ...)
"""

from b2ner_common.taxonomy.mappings import (
    DatasetMapping,
    LabelMapping,
    Problem,
    UnmappedLabelError,
    check_mappings,
    dataset_label_set,
    find_mapping,
    label_names_for,
    load_mappings,
    map_entities,
    map_rows,
    map_samples,
    map_table,
    raw_label_counts,
    resolve_mapping,
)
from b2ner_common.taxonomy.model import (
    EntityType,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    parse_types,
    validate_types,
)

__all__ = [
    "DatasetMapping",
    "EntityType",
    "LabelMapping",
    "Problem",
    "Taxonomy",
    "TaxonomyError",
    "UnmappedLabelError",
    "check_mappings",
    "dataset_label_set",
    "find_mapping",
    "label_names_for",
    "load_mappings",
    "load_taxonomy",
    "map_entities",
    "map_rows",
    "map_samples",
    "map_table",
    "parse_types",
    "raw_label_counts",
    "resolve_mapping",
    "validate_types",
]
