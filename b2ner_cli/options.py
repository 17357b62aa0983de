"""Options shared by every command (kept apart from cli.py so command modules can import them)."""

from __future__ import annotations

import typer

from b2ner_common.config import PipelineConfig, load_config

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config (see configs/); defaults run locally.")
OVERRIDES_ARG = typer.Argument(None, help="key.sub=value overrides, e.g. warehouse=/data/wh select.seed=1")


class UsageError(Exception):
    """Unusable arguments: printed without a traceback, exit code 2."""


def resolve_config(config: str | None, overrides: list[str] | None, **flags: object) -> PipelineConfig:
    """Config file + `key=value` overrides + explicit CLI flags (flags win; None means not given).

    Flag values are Python values set as they are: a flag is never pasted into YAML, so quotes,
    backslashes and commas in it stay what the user typed.
    """
    return load_config(config, list(overrides or []), {k: v for k, v in flags.items() if v is not None})


def comma_list(value: str | None, flag: str, example: str) -> list[str] | None:
    """The one parser of comma-separated list flags: names stripped, empty ones dropped, taken literally.

    None when the flag was not given; UsageError when it was given but names nothing.
    """
    if value is None:
        return None
    names = [x.strip() for x in value.split(",") if x.strip()]
    if not names:
        raise UsageError(f"{flag} is empty: give comma-separated names, e.g. {flag} {example}")
    return names
