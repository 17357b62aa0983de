"""`b2ner embed`: sentence embeddings of silver/samples into gold/embeddings (incremental, Spark)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config


def register(app: typer.Typer) -> None:
    @app.command("embed")
    def embed_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        model: str = typer.Option(
            None, "--model", help="select.embed_model: short name or local encoder dir"
        ),
        batch_size: int = typer.Option(None, "--batch-size", help="select.embed_batch_size"),
    ) -> None:
        """Embed every silver sample that has no vector for the configured model yet."""
        cfg = resolve_config(
            config, overrides, **{"select.embed_model": model, "select.embed_batch_size": batch_size}
        )
        from b2ner_cli.stages import run_stage

        console = Console(stderr=True)
        with console.status(f"embedding with {cfg.select.embed_model} on Spark ({cfg.spark.master})"):
            res = run_stage("embed", cfg)
        table = Table(title="b2ner embed")
        for col in ("model", "silver samples", "embedded now", "already present", "seconds", "sent/s"):
            table.add_column(col)
        rate = f"{res.computed / res.seconds:.0f}" if res.computed else "-"
        table.add_row(
            res.model,
            str(res.candidates),
            str(res.computed),
            str(res.candidates - res.computed),
            f"{res.seconds:.1f}",
            rate,
        )
        Console().print(table)
