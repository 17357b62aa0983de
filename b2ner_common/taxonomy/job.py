"""Taxonomy stage jobs over the warehouse: check, apply (bronze -> silver), conflicts, report.

Plain Python over `b2ner_common.tables` (delta-rs): the local engine and the pieces the Spark shells
(`spark_jobs/taxonomy.py`, `spark_jobs/conflicts.py`) share. No engine is imported here.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from b2ner_common import tables
from b2ner_common.config import PipelineConfig, config_json
from b2ner_common.schema import LABEL_CONFLICTS, SILVER_SAMPLES
from b2ner_common.tables import Table
from b2ner_common.taxonomy.conflicts import MODES, screen, summarize
from b2ner_common.taxonomy.mappings import (
    DatasetMapping,
    Problem,
    check_mappings,
    dataset_label_set,
    find_mapping,
    load_mappings,
    map_table,
    raw_label_counts,
)
from b2ner_common.taxonomy.model import Taxonomy, load_taxonomy

BRONZE, SILVER, CONFLICTS = Table.BRONZE_SAMPLES, Table.SILVER_SAMPLES, Table.SILVER_LABEL_CONFLICTS


@dataclass
class ApplyReport:
    engine: str
    rows: int
    seconds: float
    datasets: dict[str, dict] = field(
        default_factory=dict
    )  # dataset -> {samples, entities, dropped, label_set}


@dataclass
class ConflictReport:
    engine: str
    seconds: float
    rows: list[dict]
    indexed_mentions: int
    kept_mentions: int

    @property
    def summary(self) -> dict[str, dict[str, float]]:
        return summarize(self.rows)


def load_stage(cfg: PipelineConfig) -> tuple[Taxonomy, dict[str, DatasetMapping]]:
    """The configured taxonomy version and its mappings (+ the user's extra mapping files)."""
    return load_taxonomy(cfg.taxonomy.version), load_mappings(cfg.taxonomy.version, cfg.taxonomy.mappings)


def commit_metadata(cfg: PipelineConfig, job: str) -> dict:
    return {"job": job, "config": config_json(cfg)}


def check_counts(cfg: PipelineConfig, counts: Mapping[str, Mapping[str, int]]) -> list[Problem]:
    """check_mappings of raw label counts against the configured taxonomy and mappings."""
    taxonomy, mappings = load_stage(cfg)
    return check_mappings(counts, taxonomy, mappings)


def bronze_label_counts(cfg: PipelineConfig) -> dict[str, dict[str, int]]:
    """{dataset: {raw label: entities}} of bronze/samples (read with delta-rs, two columns only)."""
    path = tables.table_path(cfg.warehouse, BRONZE)
    if not tables.table_exists(path):
        raise FileNotFoundError(f"{path} does not exist: run `b2ner ingest` first")
    return raw_label_counts(tables.read_table(path, columns=["dataset", "entities"]))


def label_sets_for(
    counts: Mapping[str, Mapping[str, int]], mappings: Mapping[str, DatasetMapping]
) -> dict[str, list[str]]:
    """Each dataset's universal label set: the types of the raw labels its data actually uses."""
    return {d: dataset_label_set(find_mapping(mappings, d), labels) for d, labels in counts.items()}


def apply_summary(silver: pa.Table) -> dict[str, dict]:
    """Per dataset: samples, entities, entities left without type (labels mapped to null), label set."""
    out: dict[str, dict] = {}
    for row in silver.select(["dataset", "entities", "label_set"]).to_pylist():
        d = out.setdefault(
            row["dataset"], {"samples": 0, "entities": 0, "untyped": 0, "label_set": row["label_set"]}
        )
        d["samples"] += 1
        d["entities"] += len(row["entities"] or ())
        d["untyped"] += sum(1 for e in row["entities"] or () if not e["type"])
    return out


def dataset_predicate(datasets: Iterable[str]) -> str:
    names = sorted(set(datasets))
    return "dataset IN (" + ", ".join("'" + d.replace("'", "''") + "'" for d in names) + ")"


def apply_local(cfg: PipelineConfig) -> ApplyReport:
    """bronze/samples -> silver/samples in this process (Arrow-vectorized mapping, delta-rs write).

    Idempotent: the silver rows of the datasets present in bronze are replaced (predicate overwrite),
    so a re-run after a mapping change updates types instead of duplicating rows.
    """
    t0 = time.perf_counter()
    _, mappings = load_stage(cfg)
    bronze = tables.read_table(tables.table_path(cfg.warehouse, BRONZE))
    counts = raw_label_counts(bronze)
    require_clean(check_counts(cfg, counts))
    silver = map_table(bronze, mappings, label_sets_for(counts, mappings))
    write_silver(cfg, silver)
    return ApplyReport("local", silver.num_rows, time.perf_counter() - t0, apply_summary(silver))


def write_silver(cfg: PipelineConfig, silver: pa.Table) -> None:
    datasets = set(silver["dataset"].to_pylist())
    if not datasets:
        return
    path = tables.table_path(cfg.warehouse, SILVER)
    tables.write_table(
        path,
        silver.cast(SILVER_SAMPLES),
        mode="overwrite",
        predicate=dataset_predicate(datasets) if tables.table_exists(path) else None,
        metadata=commit_metadata(cfg, "taxonomy apply"),
    )


def read_silver(cfg: PipelineConfig, columns: list[str] | None = None) -> pa.Table:
    path = tables.table_path(cfg.warehouse, SILVER)
    if not tables.table_exists(path):
        raise FileNotFoundError(f"{path} does not exist: run `b2ner taxonomy apply` first")
    return tables.read_table(path, columns=columns)


SCREEN_COLUMNS = ["sample_id", "dataset", "lang", "text", "entities"]


def conflicts_local(cfg: PipelineConfig, modes: Iterable[str] = MODES) -> ConflictReport:
    """Screen silver/samples for label conflicts in one process; write silver/label_conflicts."""
    t0 = time.perf_counter()
    taxonomy, _ = load_stage(cfg)
    tc = cfg.taxonomy
    found = screen(
        read_silver(cfg, SCREEN_COLUMNS).to_pylist(),
        taxonomy.compatible,
        examples=tc.conflict_examples,
        min_chars=tc.min_mention_chars,
        min_self_ratio=tc.min_self_ratio,
    )
    result = [r for r in found.rows if r["mode"] in set(modes)]
    write_conflicts(cfg, result, modes)
    return ConflictReport(
        "local", time.perf_counter() - t0, result, found.indexed_mentions, found.screened_mentions
    )


def write_conflicts(cfg: PipelineConfig, rows: list[dict], modes: Iterable[str]) -> None:
    """Replace the rows of the screened modes in silver/label_conflicts (idempotent re-runs)."""
    path = tables.table_path(cfg.warehouse, CONFLICTS)
    table = pa.Table.from_pylist(rows, schema=LABEL_CONFLICTS)
    pred = "mode IN (" + ", ".join(f"'{m}'" for m in sorted(set(modes))) + ")"
    tables.write_table(
        path,
        table,
        mode="overwrite",
        predicate=pred if tables.table_exists(path) else None,
        metadata=commit_metadata(cfg, "taxonomy conflicts"),
    )


def read_conflicts(cfg: PipelineConfig) -> list[dict]:
    path = tables.table_path(cfg.warehouse, CONFLICTS)
    if not tables.table_exists(path):
        raise FileNotFoundError(f"{path} does not exist: run `b2ner taxonomy conflicts` first")
    return tables.read_table(path).to_pylist()


class CheckFailed(Exception):
    """The mapping check found problems (unmapped labels, unknown types...): the job did not run."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        unmapped = [f"{p.dataset}:{p.label}" for p in problems if p.kind == "unmapped_label"]
        super().__init__(
            f"{len(problems)} mapping problem(s)"
            + (f"; unmapped labels: {', '.join(unmapped)}" if unmapped else "")
        )


def require_clean(problems: list[Problem]) -> None:
    fatal = [p for p in problems if p.fatal]
    if fatal:
        raise CheckFailed(fatal)


def counts_from_rows(rows: Iterable[Mapping]) -> tuple[dict, dict]:
    """(mention counts, label sets) from grouped rows {dataset, lang, text, label, type, count}
    (what the Spark job collects), in the shapes `build_mention_index` takes."""
    counts: dict = {}
    sets: dict[str, dict[str, set[str]]] = {}
    for r in rows:
        typ = r["type"] or ""
        counts[(r["dataset"], r["lang"] or "en", r["text"], r["label"], typ)] = int(r["count"])
        s = sets.setdefault(r["dataset"], {"raw": set(), "mapped": set()})
        s["raw"].add(r["label"].lower())
        if typ:
            s["mapped"].add(typ)
    return counts, sets
