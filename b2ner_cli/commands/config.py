"""`b2ner config`: print the resolved config (file + overrides) as YAML, or fail naming the bad key."""

from __future__ import annotations

import typer
import yaml

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, resolve_config


def register(app: typer.Typer) -> None:
    @app.command("config")
    def config_cmd(config: str = CONFIG_OPTION, overrides: list[str] = OVERRIDES_ARG) -> None:
        """Show the resolved configuration (defaults + --config file + key=value overrides)."""
        cfg = resolve_config(config, overrides)
        typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False))
