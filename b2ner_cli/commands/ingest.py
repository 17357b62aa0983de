"""`b2ner ingest`: read the catalog's corpora into bronze/samples, bronze/rejects, bronze/reconciliation."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config
from b2ner_common.config import PipelineConfig
from b2ner_common.ingest.job import IngestReport


def wide_console() -> Console:
    """A console that does not squeeze the summary table to 80 columns when output is piped."""
    c = Console()
    return c if c.is_terminal else Console(width=160)


def ingest_with_progress(cfg: PipelineConfig, console: Console) -> IngestReport:
    """Run the ingest with progress: work units done for the local engine, Spark tasks for Spark."""
    from b2ner_cli.progress import StageProgress, spark_progress
    from b2ner_cli.stages import run_stage

    if cfg.ingest.engine == "local":
        with StageProgress(console, "ingest", unit="units") as bar:
            return run_stage("ingest", cfg, progress=bar.update)
    from spark_jobs.session import get_spark

    with spark_progress(get_spark(cfg.spark), console, "ingest"):
        return run_stage("ingest", cfg)


def summary_table(report: IngestReport) -> Table:
    """Per dataset/split: read, accepted, rejected, entities, repairs (+ kinds), expected."""
    t = Table(title=f"ingest ({report.engine}): {report.records:,} records in {report.seconds:.1f} s")
    for col in ("dataset", "split", "read", "accepted", "rejected", "entities", "repairs", "expected"):
        t.add_column(col, justify="left" if col in ("dataset", "split") else "right")
    totals = [0, 0, 0, 0, 0]
    for r in report.reconciliation.to_pylist():
        kinds = json.loads(r["repair_detail"] or "{}")
        rep = f"{r['repairs']:,}" + (f" ({', '.join(f'{k} {v}' for k, v in kinds.items())})" if kinds else "")
        exp = "" if r["expected"] is None else f"{r['expected']:,}"
        if r["expected"] is not None and r["expected"] != r["records_read"]:
            exp = f"[yellow]{exp}[/yellow]"
        rej = f"[red]{r['rejected']:,}[/red]" if r["rejected"] else "0"
        t.add_row(
            r["dataset"],
            r["split"],
            f"{r['records_read']:,}",
            f"{r['accepted']:,}",
            rej,
            f"{r['entities']:,}",
            rep,
            exp,
        )
        for i, k in enumerate(("records_read", "accepted", "rejected", "entities", "repairs")):
            totals[i] += r[k]
    t.add_section()
    t.add_row("total", "", *(f"{v:,}" for v in totals), "")
    return t


def print_report(report: IngestReport, console: Console) -> None:
    console.print(summary_table(report))
    for p in report.problems:
        console.print(f"reconciliation problem: {p}", style="bold red", markup=False)


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        corpora: str = typer.Option(None, "--corpora", help="folder of corpora (ingest.corpora)"),
        warehouse: str = typer.Option(None, "--warehouse", help="warehouse root (warehouse)"),
        dataset: list[str] = typer.Option(None, "--dataset", "-d", help="only these datasets (repeatable)"),
        catalog: list[str] = typer.Option(None, "--catalog", help="extra catalog YAML (repeatable)"),
        engine: str = typer.Option(None, "--engine", help="spark (default) or local"),
    ) -> None:
        """Read corpora (catalog files) into Delta tables bronze/samples, bronze/rejects, bronze/reconciliation."""
        flags = {"ingest.corpora": corpora, "warehouse": warehouse, "ingest.engine": engine}
        flags["ingest.datasets"] = list(dataset) if dataset else None
        flags["ingest.catalogs"] = list(catalog) if catalog else None
        cfg = resolve_config(config, overrides, **flags)
        console = wide_console()
        report = ingest_with_progress(cfg, console)
        print_report(report, console)
        if report.problems:
            raise typer.Exit(1)
