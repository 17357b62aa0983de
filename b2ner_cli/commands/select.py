"""`b2ner select`: cleaning + two-stage diversity selection into gold/selection, with a report."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config


def register(app: typer.Typer) -> None:
    @app.command("select")
    def select_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        strategy: str = typer.Option(None, "--strategy", help="select.strategy: kmeans | kcenter | random"),
        budget: int = typer.Option(None, "--budget", help="select.budget_per_dataset (samples per dataset)"),
        seed: int = typer.Option(None, "--seed", help="select.seed"),
        run_id: str = typer.Option(None, "--run-id", help="select.run_id (rows of this run are replaced)"),
    ) -> None:
        """Select a diverse, category-balanced training subset per dataset (B2NERD-style)."""
        flags = {"select.strategy": strategy, "select.budget_per_dataset": budget, "select.seed": seed}
        cfg = resolve_config(config, overrides, **flags, **{"select.run_id": run_id})
        from b2ner_cli.stages import run_stage
        from b2ner_common.selection import SelectionError

        console = Console(stderr=True)
        try:
            with console.status(
                f"selecting ({cfg.select.strategy}, run {cfg.select.run_id}) on {cfg.spark.master}"
            ):
                res = run_stage("select", cfg)
        except SelectionError as e:
            console.print(f"selection failed: {e}", style="bold red", markup=False, highlight=False)
            raise typer.Exit(1) from None
        table = Table(title=f"b2ner select: run {res.run_id} ({cfg.select.strategy})")
        for col in ("dataset", "input", "contaminated", "exact dup", "near dup", "kept", "selected"):
            table.add_column(col)
        for st in sorted(res.stats, key=lambda x: x["dataset"]):
            c = st["cleaning"]
            table.add_row(
                st["dataset"],
                *(str(c[k]) for k in ("input", "contaminated", "exact_duplicate", "near_duplicate", "kept")),
                str(st["selected"]),
            )
        out = Console()
        out.print(table)
        for note in res.notes:
            out.print(f"note: {note}", markup=False, highlight=False)
        out.print(
            f"{res.selected} samples selected in {res.seconds:.1f} s; report: {res.report}", markup=False
        )
