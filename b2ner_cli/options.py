"""Options shared by every command (kept apart from cli.py so command modules can import them)."""

from __future__ import annotations

import typer

from b2ner_common.config import PipelineConfig, load_config

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config (see configs/); defaults run locally.")
OVERRIDES_ARG = typer.Argument(None, help="key.sub=value overrides, e.g. warehouse=/data/wh select.seed=1")


class UsageError(Exception):
    """Unusable arguments: printed without a traceback, exit code 2."""


def resolve_config(config: str | None, overrides: list[str] | None, **flags: object) -> PipelineConfig:
    """Config file + `key=value` overrides + explicit CLI flags (flags win; None means not given)."""
    extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return load_config(config, list(overrides or []) + extra)
