"""`b2ner taxonomy check|apply|conflicts|report`: the universal taxonomy stage.

show       browse the taxonomy types or one dataset's mapping
check      raw labels in bronze/samples vs the mapping files (exit 1 listing unmapped labels)
apply      bronze/samples -> silver/samples (universal `type` per entity, dataset `label_set`)
conflicts  silver/samples -> silver/label_conflicts (modes raw and mapped)
report     silver/label_conflicts + mappings -> report.md + conflict heatmap PNG
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, UsageError, resolve_config
from b2ner_common.config import PipelineConfig
from b2ner_common.taxonomy.mappings import Problem

ENGINE_OPTION = typer.Option(None, "--engine", help="spark (default) or local (taxonomy.engine)")
WAREHOUSE_OPTION = typer.Option(None, "--warehouse", help="warehouse root (warehouse)")


def _console() -> Console:
    c = Console()
    return c if c.is_terminal else Console(width=160)


def problems_table(problems: list[Problem]) -> Table:
    t = Table(title=f"{len(problems)} mapping problem(s)")
    for col in ("kind", "dataset", "label", "entities", "message"):
        t.add_column(col, justify="right" if col == "entities" else "left", overflow="fold")
    for p in problems:
        t.add_row(p.kind, p.dataset, p.label, f"{p.count:,}" if p.count else "", p.message)
    return t


def _cfg(config, overrides, warehouse=None, engine=None) -> PipelineConfig:
    if engine not in (None, "spark", "local"):
        raise UsageError(f"--engine must be spark or local, got {engine!r}")
    return resolve_config(config, overrides, warehouse=warehouse, **{"taxonomy.engine": engine})


def _fail_on(problems: list[Problem], console: Console) -> None:
    fatal = [p for p in problems if p.fatal]
    if fatal:
        console.print(problems_table(fatal))
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    tax = typer.Typer(
        help="Universal taxonomy: check mappings, apply them, screen conflicts, report.", no_args_is_help=True
    )
    app.add_typer(tax, name="taxonomy")

    @tax.command("show")
    def show_cmd(
        query: str = typer.Argument("", help="substring of a type id, English or Chinese name"),
        dataset: str = typer.Option(None, "--dataset", "-d", help="show this dataset's mapping instead"),
        config: str = CONFIG_OPTION,
    ) -> None:
        """Browse the taxonomy (types matching QUERY) or one dataset's label mapping."""
        from b2ner_common.taxonomy.job import load_stage
        from b2ner_common.taxonomy.mappings import find_mapping

        cfg = resolve_config(config, [])
        taxonomy, mappings = load_stage(cfg)
        console = _console()
        if dataset:
            m = find_mapping(mappings, dataset)
            t = Table(title=f"{m.dataset} ({m.lang}, {m.role}): {m.path}")
            for col in ("raw label", "type", "中文", "note"):
                t.add_column(col, overflow="fold")
            for raw, lm in m.labels.items():
                et = taxonomy.find(lm.type) if lm.type else None
                t.add_row(raw, et.en if et else "(not kept)", et.zh if et else "", lm.note)
            console.print(t)
            return
        q = query.lower()
        hits = [x for x in taxonomy if not q or q in x.id or q in x.en or query in x.zh]
        if not hits:
            raise UsageError(f"no taxonomy type matches {query!r}")
        t = Table(title=f"taxonomy {taxonomy.version}: {len(hits)} of {len(taxonomy)} types")
        for col in ("id", "en", "zh", "parent", "definition"):
            t.add_column(col, overflow="fold")
        for x in hits:
            t.add_row(x.id, x.en, x.zh, x.parent, x.definition_en)
        console.print(t)

    @tax.command("check")
    def check_cmd(
        config: str = CONFIG_OPTION, overrides: list[str] = OVERRIDES_ARG, warehouse: str = WAREHOUSE_OPTION
    ) -> None:
        """Check that every raw label in bronze/samples is mapped to an existing taxonomy type."""
        from b2ner_common.taxonomy.job import bronze_label_counts, check_counts

        cfg = _cfg(config, overrides, warehouse)
        console = _console()
        counts = bronze_label_counts(cfg)
        problems = check_counts(cfg, counts)
        _fail_on(problems, console)
        t = Table(title=f"taxonomy {cfg.taxonomy.version}: all raw labels mapped")
        for col in ("dataset", "raw labels", "entities"):
            t.add_column(col, justify="left" if col == "dataset" else "right")
        for d, labels in sorted(counts.items()):
            t.add_row(d, str(len(labels)), f"{sum(labels.values()):,}")
        console.print(t)

    @tax.command("apply")
    def apply_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        warehouse: str = WAREHOUSE_OPTION,
        engine: str = ENGINE_OPTION,
    ) -> None:
        """Map bronze/samples to silver/samples (fails with exit 1 listing unmapped labels)."""
        from b2ner_cli.stages import run_stage
        from b2ner_common.taxonomy.job import CheckFailed

        cfg = _cfg(config, overrides, warehouse, engine)
        console = _console()
        try:
            with console.status(f"taxonomy apply ({cfg.taxonomy.engine}) into {cfg.warehouse} ..."):
                report = run_stage("taxonomy", cfg)
        except CheckFailed as e:
            _fail_on(e.problems, console)
            raise
        t = Table(
            title=f"taxonomy apply ({report.engine}): {report.rows:,} samples in {report.seconds:.1f} s"
        )
        for col in ("dataset", "samples", "entities", "untyped", "label set"):
            t.add_column(col, justify="left" if col in ("dataset", "label set") else "right", overflow="fold")
        for d, s in sorted(report.datasets.items()):
            t.add_row(
                d, f"{s['samples']:,}", f"{s['entities']:,}", f"{s['untyped']:,}", ", ".join(s["label_set"])
            )
        console.print(t)

    @tax.command("conflicts")
    def conflicts_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        warehouse: str = WAREHOUSE_OPTION,
        engine: str = ENGINE_OPTION,
        mode: str = typer.Option("both", "--mode", help="raw, mapped or both"),
    ) -> None:
        """Screen silver/samples for cross-dataset label conflicts into silver/label_conflicts."""
        from b2ner_cli.stages import run_stage

        if mode not in ("raw", "mapped", "both"):
            raise UsageError(f"--mode must be raw, mapped or both, got {mode!r}")
        modes = ("raw", "mapped") if mode == "both" else (mode,)
        cfg = _cfg(config, overrides, warehouse, engine)
        console = _console()
        with console.status(f"conflict screening ({cfg.taxonomy.engine}) ..."):
            report = run_stage("conflicts", cfg, modes=modes)
        t = Table(
            title=f"label conflicts ({report.engine}): {report.kept_mentions:,} of {report.indexed_mentions:,} "
            f"indexed mention strings screened in {report.seconds:.1f} s"
        )
        cols = (
            "mode",
            "mentions",
            "agree",
            "type_conflict",
            "boundary_conflict",
            "missing",
            "type-conflict rate",
        )
        for col in cols:
            t.add_column(col, justify="left" if col == "mode" else "right")
        for m, s in sorted(report.summary.items(), reverse=True):
            t.add_row(m, *(f"{int(s[c]):,}" for c in cols[1:6]), f"{100 * s['type_conflict_rate']:.1f}%")
        console.print(t)

    @tax.command("report")
    def report_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        warehouse: str = WAREHOUSE_OPTION,
        out: str = typer.Option(None, "--out", help="output folder (taxonomy.report_dir)"),
    ) -> None:
        """Write the mapping tables and the before/after conflict heatmap as a markdown report."""
        from b2ner_common.taxonomy.job import load_stage, read_conflicts
        from b2ner_common.taxonomy.report import write_report

        cfg = _cfg(config, overrides, warehouse)
        rows = read_conflicts(cfg)
        taxonomy, mappings = load_stage(cfg)
        datasets = sorted({r["dataset_a"] for r in rows} | {r["dataset_b"] for r in rows})
        path = write_report(rows, mappings, taxonomy, out or cfg.taxonomy.report_dir, datasets or None)
        _console().print(f"report: {path}")
