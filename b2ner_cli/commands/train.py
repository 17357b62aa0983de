"""`b2ner train`: fine-tune the configured model family on the selected data (Ray Train).

The trainer of each family is an entry of b2ner_cli/stages.py: llm -> LoRA SFT (optional DeepSpeed ZeRO),
span-encoder -> the CPU-trainable span encoder.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config
from b2ner_cli.stages import run_stage


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        family: str = typer.Option(None, "--family", help="model.family: llm | span-encoder"),
        run_name: str = typer.Option(
            None, "--run-name", help="train.run_name (same name + output_dir resumes)"
        ),
    ) -> None:
        """Train on gold/selection (joined with silver/samples); resumes a run of the same name."""
        cfg = resolve_config(config, overrides, **{"model.family": family, "train.run_name": run_name})
        console = Console(stderr=True)
        from b2ner_cli.progress import train_with_progress

        summary = train_with_progress(run_stage, cfg, console)
        table = Table(title=f"b2ner train: {cfg.model.family} run {cfg.train.run_name}")
        table.add_column("key")
        table.add_column("value")
        for k, v in summary.items():
            if k == "metrics":
                for mk, mv in sorted((v or {}).items()):
                    table.add_row(mk, f"{mv:.4g}" if isinstance(mv, float) else str(mv))
            else:
                table.add_row(k, str(v))
        Console().print(table)
