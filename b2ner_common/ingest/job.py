"""The ingest job around the core: resolve the catalog from config, run an engine, write bronze tables.

`run_local(cfg)` is the in-process engine (`ingest.engine=local`); `spark_jobs.ingest.run_ingest` is the
Spark one, over the same planning, readers and writers; the CLI picks one (b2ner_cli/stages.py). Both write:

- bronze/samples        MERGE on sample_id (insert-if-absent): re-runs add no rows
- bronze/rejects        predicate overwrite of the ingested datasets' rows
- bronze/reconciliation predicate overwrite of the ingested datasets' rows
and the resolved config to `<warehouse>/bronze/_ingest_config.yaml` and into each commit's metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from b2ner_common import tables
from b2ner_common.config import ConfigError, PipelineConfig, config_json, save_resolved
from b2ner_common.ingest.catalog import Catalog, FileTask, load_catalog
from b2ner_common.ingest.units import (
    IngestResult,
    WorkUnit,
    check_reconciliation,
    dataset_predicate,
    expected_counts,
    merge_stats,
    plan_units,
    read_unit,
    reconciliation_table,
    rejects_table,
    samples_table,
    table_counts,
)
from b2ner_common.tables import Table

SAMPLES, REJECTS, RECON = Table.BRONZE_SAMPLES, Table.BRONZE_REJECTS, Table.BRONZE_RECONCILIATION


@dataclass
class IngestReport:
    engine: str
    reconciliation: pa.Table  # schema.RECONCILIATION rows of this run
    problems: list[str] = field(default_factory=list)  # non-empty = the job failed (exit 1)
    seconds: float = 0.0  # reading + writing, after engine start
    units: int = 0

    @property
    def records(self) -> int:
        return sum(self.reconciliation["records_read"].to_pylist())


def resolve_tasks(cfg: PipelineConfig) -> tuple[Catalog, list[FileTask]]:
    """Catalog (built-in + ingest.catalogs) and the files selected by ingest.datasets / ingest.roles."""
    ic = cfg.ingest
    cat = load_catalog(ic.catalogs, builtin=ic.builtin_catalog)
    if not cat.datasets:
        raise ConfigError("no catalog: set ingest.builtin_catalog=true or list files in ingest.catalogs")
    tasks = cat.tasks(ic.corpora, ic.datasets or None, tuple(ic.roles))
    if not tasks:
        raise ConfigError(f"no datasets selected (ingest.datasets={ic.datasets}, ingest.roles={ic.roles})")
    needs_corpora = any(cat.roots[t.dataset] is None for t in tasks)
    if needs_corpora and not Path(ic.corpora).is_dir():
        raise ConfigError(
            f"corpora folder {ic.corpora} does not exist; pass --corpora DIR or ingest.corpora=DIR"
        )
    return cat, tasks


def plan(cfg: PipelineConfig) -> tuple[list[FileTask], list[WorkUnit]]:
    _, tasks = resolve_tasks(cfg)
    units = plan_units(tasks, int(cfg.ingest.chunk_mb * (1 << 20)), cfg.ingest.replicate)
    return tasks, units


def commit_metadata(cfg: PipelineConfig) -> dict:
    return {"b2ner.stage": "ingest", "b2ner.config": config_json(cfg)}


def save_config(cfg: PipelineConfig) -> Path:
    return save_resolved(cfg, Path(cfg.warehouse) / "bronze", "_ingest_config.yaml")


def reconciliation(cfg: PipelineConfig, tasks: list[FileTask], stats) -> pa.Table:
    """The run's bronze/reconciliation rows (with the catalog's expected counts)."""
    return reconciliation_table(stats, expected_counts(tasks, cfg.ingest.replicate))


def report(
    cfg: PipelineConfig,
    recon: pa.Table,
    stats,
    engine: str,
    seconds: float,
    units: int,
    have: dict[tuple[str, str], int] | None = None,
) -> IngestReport:
    """Compare the run's counts with what bronze/samples now holds ({(dataset, split): rows}, read here
    with delta-rs when the engine does not pass them)."""
    if have is None:
        have = table_counts(
            tables.read_table(tables.table_path(cfg.warehouse, SAMPLES), columns=["dataset", "split"])
        )
    return IngestReport(engine, recon, check_reconciliation(stats, have), seconds, units)


def run_local(cfg: PipelineConfig, progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Engine "local": read every unit in this process and commit with delta-rs."""
    tasks, units = plan(cfg)
    t0 = time.perf_counter()
    res = IngestResult()
    for i, u in enumerate(units):
        samples, rejects, st = read_unit(u)
        res.samples.extend(samples)
        res.rejects.extend(rejects)
        merge_stats(res.stats, (u.dataset, u.split), st)
        if progress:
            progress(i + 1, len(units))
    samples, rejects, stats = res.samples, res.rejects, res.stats
    write_bronze(cfg, tasks, samples_table(samples), rejects_table(rejects))
    recon = reconciliation(cfg, tasks, stats)
    pred = dataset_predicate({t.dataset for t in tasks})
    tables.write_table(
        tables.table_path(cfg.warehouse, RECON),
        recon,
        mode="overwrite",
        predicate=pred,
        metadata=commit_metadata(cfg),
    )
    return report(cfg, recon, stats, "local", time.perf_counter() - t0, len(units))


def write_bronze(cfg: PipelineConfig, tasks: list[FileTask], samples: pa.Table, rejects: pa.Table) -> None:
    """Commit samples (MERGE on sample_id) and rejects (predicate overwrite per dataset)."""
    meta = commit_metadata(cfg)
    save_config(cfg)
    tables.write_table(
        tables.table_path(cfg.warehouse, SAMPLES), samples, merge_keys=["sample_id"], metadata=meta
    )
    pred = dataset_predicate({t.dataset for t in tasks})
    tables.write_table(
        tables.table_path(cfg.warehouse, REJECTS), rejects, mode="overwrite", predicate=pred, metadata=meta
    )
